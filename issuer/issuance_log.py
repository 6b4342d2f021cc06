"""The issuer's record of every credential it issued (SQLite or PostgreSQL).

One row per issuance: who (register person id and Matrix account), what type,
which status list entry, when, and a credential id with a digest of the
issuer-signed JWT. **No claim values** are stored: the register already holds
them, and a log that copies them would be a second, unguarded copy of personal
data. The digest lets an auditor or the agency tie a presentation back to the
log entry without the log knowing what the credential said.

The log answers ``issuer revoke`` ("which credentials did we issue to this
person?", "what is behind status index N?").
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any, Final

from pydantic import BaseModel, ConfigDict, Field, model_validator

from onceonly.errors import MalformedInput, StoreError, UnknownStatusEntry
from onceonly.jose import b64url_encode
from onceonly.sql import Schema, SqlStore
from onceonly.status_list import StatusReference
from onceonly.types import UserId, Vct

SCHEMA_VERSION: Final = 1
_STORE: Final = "issuance log"
_COLUMNS: Final = (
    "credential_id, person_id, matrix_user_id, vct, status_list_uri, status_index,"
    " issued_at, expires_at, credential_digest, signing_kid"
)


class IssuanceRecord(BaseModel):
    """One issued credential, as the log keeps it.

    Attributes:
        credential_id: Unique id of the issued credential (e.g. the exchange or a random id).
        person_id: The register person it was issued to.
        matrix_user_id: The Matrix account it was delivered to.
        vct: Its credential type.
        status_list_uri: The ``status.status_list.uri`` it carries.
        status_index: The ``status.status_list.idx`` it carries.
        issued_at: ``iat``, Unix seconds.
        expires_at: ``exp``, Unix seconds.
        credential_digest: :func:`credential_digest` of the issued SD-JWT.
        signing_kid: ``kid`` of the key that signed it.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    credential_id: str = Field(min_length=1, max_length=200)
    person_id: str = Field(min_length=1, max_length=64)
    matrix_user_id: str = Field(pattern=r"^@[^:\s]+:[^\s]+$", max_length=255)
    vct: str = Field(min_length=1)
    status_list_uri: str = Field(min_length=1)
    status_index: int = Field(ge=0)
    issued_at: int
    expires_at: int
    credential_digest: str = Field(pattern=r"^[A-Za-z0-9_-]{43}$")
    signing_kid: str | None = None

    @model_validator(mode="after")
    def _expires_after_issuance(self) -> IssuanceRecord:
        if self.expires_at <= self.issued_at:
            raise ValueError("expires_at must lie after issued_at")
        return self

    @property
    def status_reference(self) -> StatusReference:
        """The status list entry of this credential."""
        return StatusReference(idx=self.status_index, uri=self.status_list_uri)


def credential_digest(sd_jwt: str) -> str:
    """SHA-256 (base64url) of the issuer-signed JWT of an SD-JWT.

    Only the part before the first ``~`` is hashed: it is the same in every
    presentation of the credential, whatever the holder discloses.
    """
    issuer_jwt = sd_jwt.split("~", 1)[0]
    return b64url_encode(hashlib.sha256(issuer_jwt.encode("ascii")).digest())


_SCHEMA: Final = Schema(
    _STORE,
    SCHEMA_VERSION,
    (
        "CREATE TABLE IF NOT EXISTS issuance_log ("
        " credential_id TEXT PRIMARY KEY,"
        " person_id TEXT NOT NULL,"
        " matrix_user_id TEXT NOT NULL,"
        " vct TEXT NOT NULL,"
        " status_list_uri TEXT NOT NULL,"
        " status_index BIGINT NOT NULL,"
        " issued_at BIGINT NOT NULL,"
        " expires_at BIGINT NOT NULL,"
        " credential_digest TEXT NOT NULL UNIQUE,"
        " signing_kid TEXT,"
        " UNIQUE (status_list_uri, status_index))",
        "CREATE INDEX IF NOT EXISTS issuance_log_person ON issuance_log (person_id, issued_at)",
        "CREATE INDEX IF NOT EXISTS issuance_log_matrix_user"
        " ON issuance_log (matrix_user_id, issued_at)",
    ),
)


class IssuanceLog(SqlStore):
    """Append-only record of issued credentials.

    Open with :meth:`open`; the constructor only stores the connection.
    """

    SCHEMA = _SCHEMA

    def record(self, entry: IssuanceRecord) -> None:
        """Append ``entry``.

        Raises:
            StoreError: the credential id, digest or status entry is already recorded
                (each must be unique), or the database failed.
        """
        with self._db.write() as tx:
            clash = tx.execute(
                "SELECT credential_id FROM issuance_log WHERE credential_id = ?"
                " OR credential_digest = ? OR (status_list_uri = ? AND status_index = ?)",
                (
                    entry.credential_id,
                    entry.credential_digest,
                    entry.status_list_uri,
                    entry.status_index,
                ),
            ).one()
            if clash is not None:
                # Checked first for a clear message; the UNIQUE constraints still
                # decide when two processes race.
                raise StoreError(
                    "issuance already recorded (same credential id, digest or status entry)",
                    detail={"credential_id": str(clash[0])},
                )
            tx.execute(
                f"INSERT INTO issuance_log ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",  # noqa: S608 - constant columns
                (
                    entry.credential_id,
                    entry.person_id,
                    entry.matrix_user_id,
                    entry.vct,
                    entry.status_list_uri,
                    entry.status_index,
                    entry.issued_at,
                    entry.expires_at,
                    entry.credential_digest,
                    entry.signing_kid,
                ),
            )

    def by_person(self, person_id: str) -> list[IssuanceRecord]:
        """Everything issued to ``person_id``, oldest first."""
        return self._select("person_id = ?", (person_id,))

    def by_matrix_user(self, matrix_user_id: UserId | str) -> list[IssuanceRecord]:
        """Everything delivered to ``matrix_user_id``, oldest first."""
        return self._select("matrix_user_id = ?", (matrix_user_id,))

    def by_status(self, reference: StatusReference) -> IssuanceRecord:
        """The credential that carries status entry ``reference``.

        Raises:
            UnknownStatusEntry: no logged credential carries it.
        """
        found = self._select(
            "status_list_uri = ? AND status_index = ?", (reference.uri, reference.idx)
        )
        if not found:
            raise UnknownStatusEntry(
                "no issued credential carries this status entry",
                detail={"uri": reference.uri, "idx": reference.idx},
            )
        return found[0]

    def by_credential_id(self, credential_id: str) -> IssuanceRecord:
        """The record of ``credential_id``.

        Raises:
            MalformedInput: no credential has this id.
        """
        found = self._select("credential_id = ?", (credential_id,))
        if not found:
            raise MalformedInput(f"no issued credential has id {credential_id!r}")
        return found[0]

    def by_digest(self, digest: str) -> IssuanceRecord | None:
        """The record whose :func:`credential_digest` is ``digest``, if any."""
        found = self._select("credential_digest = ?", (digest,))
        return found[0] if found else None

    def count_by_vct(self) -> dict[Vct, int]:
        """How many credentials of each type were issued."""
        with self._db.read() as tx:
            rows = tx.execute("SELECT vct, COUNT(*) FROM issuance_log GROUP BY vct").all()
        return {Vct(str(vct)): int(count) for vct, count in rows}

    def _select(self, where: str, params: Sequence[Any]) -> list[IssuanceRecord]:
        # ``where`` is always one of the constant conditions above, never input.
        query = (
            f"SELECT {_COLUMNS} FROM issuance_log WHERE {where}"  # noqa: S608
            " ORDER BY issued_at, credential_id"
        )
        with self._db.read() as tx:
            rows = tx.execute(query, params).all()
        return [_record(row) for row in rows]


def _record(row: Sequence[Any]) -> IssuanceRecord:
    names = [name.strip() for name in _COLUMNS.split(",")]
    return IssuanceRecord.model_validate(dict(zip(names, row, strict=True)))
