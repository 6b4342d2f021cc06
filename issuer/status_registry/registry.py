"""The status registry itself: allocate, change and publish status list entries.

See the package docstring for the design (shuffled indices, serialized
allocation, roll-over, final revocation).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, TypeVar

from onceonly.errors import ConfigError, StatusChangeForbidden, UnknownStatusEntry
from onceonly.jose import PrivateKey
from onceonly.sql import Database, Dialect, Schema, SqlHandle, Tx, open_schema
from onceonly.status_list import (
    ALLOWED_BITS,
    INVALID,
    SUSPENDED,
    VALID,
    IndexPermutation,
    StatusList,
    StatusReference,
    sign_status_list_cwt,
    sign_status_list_jwt,
)
from onceonly.types import Vct

DEFAULT_LIST_SIZE: Final = 1 << 17
"""Entries per list: large enough for herd privacy, 32 KiB uncompressed at 2 bits."""

DEFAULT_BITS: Final = 2
"""Two bits, so VALID, INVALID and SUSPENDED (and one application value) fit."""

DEFAULT_TOKEN_VALIDITY_SECONDS: Final = 24 * 3600
DEFAULT_TOKEN_TTL_SECONDS: Final = 3600

_PERMUTATION_KEY_BYTES: Final = 32
_Token = TypeVar("_Token", str, bytes)
SCHEMA_VERSION: Final = 1


def _table_statements(dialect: Dialect) -> list[str]:
    blob = "BYTEA" if dialect == "postgres" else "BLOB"
    return [
        # One row: the list currently being filled (locked by every allocation).
        "CREATE TABLE IF NOT EXISTS status_registry_meta ("
        " id INTEGER PRIMARY KEY CHECK (id = 1),"
        " active_list_id INTEGER)",
        "CREATE TABLE IF NOT EXISTS status_lists ("
        " list_id INTEGER PRIMARY KEY,"
        " uri TEXT NOT NULL UNIQUE,"
        " bits INTEGER NOT NULL,"
        " size INTEGER NOT NULL,"
        f" permutation_key {blob} NOT NULL,"
        " allocated INTEGER NOT NULL,"
        " created_at BIGINT NOT NULL)",
        "CREATE TABLE IF NOT EXISTS status_entries ("
        " list_id INTEGER NOT NULL REFERENCES status_lists (list_id),"
        " idx INTEGER NOT NULL,"
        " status INTEGER NOT NULL,"
        " vct TEXT NOT NULL,"
        " issued_at BIGINT NOT NULL,"
        " updated_at BIGINT NOT NULL,"
        " PRIMARY KEY (list_id, idx))",
        "INSERT INTO status_registry_meta (id, active_list_id) VALUES (1, NULL)"
        " ON CONFLICT (id) DO NOTHING",
    ]


_SCHEMA: Final = Schema("status registry", SCHEMA_VERSION, _table_statements)


@dataclass(frozen=True)
class StatusEntry:
    """What the registry knows about one allocated index.

    Attributes:
        uri: The status list URI.
        idx: The index in that list.
        status: The current status value.
        vct: The credential type issued with this entry.
        issued_at: When the credential was issued (Unix seconds).
        updated_at: When the status last changed (Unix seconds).
    """

    uri: str
    idx: int
    status: int
    vct: Vct
    issued_at: int
    updated_at: int


class StatusRegistry(SqlHandle):
    """Allocates status list entries, records status changes, signs the lists.

    Use :meth:`open`; the constructor only stores its arguments.
    """

    def __init__(
        self,
        backend: Database,
        *,
        base_uri: str,
        bits: int,
        list_size: int,
        random_bytes: Callable[[int], bytes],
    ) -> None:
        super().__init__(backend)
        self._base_uri = base_uri.rstrip("/")
        self._bits = bits
        self._list_size = list_size
        self._random_bytes = random_bytes

    @classmethod
    def open(
        cls,
        target: str,
        *,
        base_uri: str,
        bits: int = DEFAULT_BITS,
        list_size: int = DEFAULT_LIST_SIZE,
        random_bytes: Callable[[int], bytes] = secrets.token_bytes,
    ) -> StatusRegistry:
        """Open (and create if needed) a registry.

        Args:
            target: A ``postgresql://`` (or ``postgres://``) DSN, or a SQLite file path.
            base_uri: Prefix of the list URIs; list ``n`` is published at ``{base_uri}/{n}``.
            bits: Bits per entry for lists created from now on (1, 2, 4 or 8).
            list_size: Entries per list for lists created from now on (a multiple of 8).
            random_bytes: Source of the per-list permutation keys (the OS CSPRNG by default).

        Raises:
            ConfigError: invalid ``bits``, ``list_size`` or ``base_uri``.
            StoreError: the database cannot be opened or has another schema version.
        """
        if bits not in ALLOWED_BITS:
            raise ConfigError(f"status list bits must be one of 1, 2, 4, 8, not {bits!r}")
        if list_size < 8 or list_size % 8:
            # Whole bytes, as the draft recommends, so no padding entries exist.
            raise ConfigError("status list size must be a positive multiple of 8")
        if "://" not in base_uri:
            raise ConfigError("status list base URI must be an absolute URI")
        return cls(
            open_schema(target, _SCHEMA),
            base_uri=base_uri,
            bits=bits,
            list_size=list_size,
            random_bytes=random_bytes,
        )

    # --- allocation ----------------------------------------------------------------

    def allocate(self, *, vct: Vct, issued_at: int) -> StatusReference:
        """Reserve a fresh entry (status ``VALID``) for a credential about to be issued.

        Args:
            vct: The credential type (recorded; no claim values are).
            issued_at: Issuance time, Unix seconds.

        Returns:
            The reference to embed as the credential's ``status`` claim.

        Raises:
            StoreError: the database failed.
        """
        with self._db.write() as tx:
            (active,) = tx.execute(
                "SELECT active_list_id FROM status_registry_meta WHERE id = 1", lock=True
            ).one()
            row = None
            if active is not None:
                row = tx.execute(
                    "SELECT list_id, uri, size, allocated, permutation_key"
                    " FROM status_lists WHERE list_id = ?",
                    (active,),
                ).one()
            if row is None or row[3] >= row[2]:
                row = self._start_list(tx, created_at=issued_at)
            list_id, uri, size, allocated, key = row
            idx = IndexPermutation(bytes(key), size).index_at(allocated)
            tx.execute(
                "UPDATE status_lists SET allocated = allocated + 1 WHERE list_id = ?",
                (list_id,),
            )
            tx.execute(
                "INSERT INTO status_entries (list_id, idx, status, vct, issued_at, updated_at)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (list_id, idx, VALID, str(vct), issued_at, issued_at),
            )
        return StatusReference(idx=idx, uri=uri)

    def _start_list(self, tx: Tx, *, created_at: int) -> tuple[int, str, int, int, bytes]:
        # Runs under the meta row lock, so list ids are assigned one at a time.
        (last,) = tx.execute("SELECT MAX(list_id) FROM status_lists").one()
        list_id = 1 if last is None else int(last) + 1
        uri = f"{self._base_uri}/{list_id}"
        key = self._random_bytes(_PERMUTATION_KEY_BYTES)
        tx.execute(
            "INSERT INTO status_lists"
            " (list_id, uri, bits, size, permutation_key, allocated, created_at)"
            " VALUES (?, ?, ?, ?, ?, 0, ?)",
            (list_id, uri, self._bits, self._list_size, key, created_at),
        )
        tx.execute("UPDATE status_registry_meta SET active_list_id = ? WHERE id = 1", (list_id,))
        return list_id, uri, self._list_size, 0, key

    # --- status changes ------------------------------------------------------------

    def set_status(self, reference: StatusReference, status: int, *, now: int) -> None:
        """Change an entry's status.

        Raises:
            UnknownStatusEntry: the registry never allocated this entry.
            StatusChangeForbidden: the entry is revoked (final), or ``status`` does
                not fit the list's bit width.
            StoreError: the database failed.
        """
        with self._db.write() as tx:
            found = tx.execute(
                "SELECT l.list_id, l.bits FROM status_lists l WHERE l.uri = ?",
                (reference.uri,),
            ).one()
            if found is None:
                raise UnknownStatusEntry("no such status list", detail={"uri": reference.uri})
            list_id, bits = found
            if not 0 <= status < (1 << bits):
                raise StatusChangeForbidden(
                    f"status {status} does not fit a {bits}-bit list", detail={"status": status}
                )
            entry = tx.execute(
                "SELECT status FROM status_entries WHERE list_id = ? AND idx = ?",
                (list_id, reference.idx),
                lock=True,
            ).one()
            if entry is None:
                raise UnknownStatusEntry(
                    "no such status entry", detail={"uri": reference.uri, "idx": reference.idx}
                )
            if entry[0] == INVALID and status != INVALID:
                raise StatusChangeForbidden(
                    "a revoked credential cannot be reinstated",
                    detail={"uri": reference.uri, "idx": reference.idx},
                )
            tx.execute(
                "UPDATE status_entries SET status = ?, updated_at = ?"
                " WHERE list_id = ? AND idx = ?",
                (status, now, list_id, reference.idx),
            )

    def revoke(self, reference: StatusReference, *, now: int) -> None:
        """Mark the entry ``INVALID`` (permanent)."""
        self.set_status(reference, INVALID, now=now)

    def suspend(self, reference: StatusReference, *, now: int) -> None:
        """Mark the entry ``SUSPENDED`` (needs a list with at least 2 bits)."""
        self.set_status(reference, SUSPENDED, now=now)

    def reinstate(self, reference: StatusReference, *, now: int) -> None:
        """Return a suspended entry to ``VALID``."""
        self.set_status(reference, VALID, now=now)

    # --- reading and publishing ----------------------------------------------------

    def entry(self, reference: StatusReference) -> StatusEntry:
        """Return what the registry recorded for ``reference``.

        Raises:
            UnknownStatusEntry: the registry never allocated this entry.
        """
        with self._db.read() as tx:
            row = tx.execute(
                "SELECT e.status, e.vct, e.issued_at, e.updated_at"
                " FROM status_entries e JOIN status_lists l ON l.list_id = e.list_id"
                " WHERE l.uri = ? AND e.idx = ?",
                (reference.uri, reference.idx),
            ).one()
        if row is None:
            raise UnknownStatusEntry(
                "no such status entry", detail={"uri": reference.uri, "idx": reference.idx}
            )
        status, vct, issued_at, updated_at = row
        return StatusEntry(
            uri=reference.uri,
            idx=reference.idx,
            status=int(status),
            vct=Vct(vct),
            issued_at=int(issued_at),
            updated_at=int(updated_at),
        )

    def list_uris(self) -> list[str]:
        """URIs of every list, oldest first."""
        with self._db.read() as tx:
            rows = tx.execute("SELECT uri FROM status_lists ORDER BY list_id").all()
        return [str(uri) for (uri,) in rows]

    def build_status_list(self, uri: str) -> StatusList:
        """The current contents of the list at ``uri`` (unallocated entries read ``VALID``).

        Raises:
            UnknownStatusEntry: no list has this URI.
        """
        with self._db.read() as tx:
            found = tx.execute(
                "SELECT list_id, bits, size FROM status_lists WHERE uri = ?", (uri,)
            ).one()
            if found is None:
                raise UnknownStatusEntry("no such status list", detail={"uri": uri})
            list_id, bits, size = found
            # Only non-VALID rows matter: the list starts all VALID.
            rows = tx.execute(
                "SELECT idx, status FROM status_entries WHERE list_id = ? AND status <> ?",
                (list_id, VALID),
            ).all()
        status_list = StatusList(int(size), int(bits))
        status_list.set_many((int(idx), int(status)) for idx, status in rows)
        return status_list

    def sign_jwt(
        self,
        uri: str,
        key: PrivateKey,
        *,
        now: int,
        validity: int = DEFAULT_TOKEN_VALIDITY_SECONDS,
        ttl: int = DEFAULT_TOKEN_TTL_SECONDS,
    ) -> str:
        """Sign the current list at ``uri`` as a JWT Status List Token.

        Args:
            uri: The list's URI.
            key: The status issuer's signing key.
            now: ``iat``, Unix seconds.
            validity: Seconds until ``exp``.
            ttl: The ``ttl`` claim: how long verifiers may cache the token.
        """
        return self._sign(sign_status_list_jwt, uri, key, now=now, validity=validity, ttl=ttl)

    def sign_cwt(
        self,
        uri: str,
        key: PrivateKey,
        *,
        now: int,
        validity: int = DEFAULT_TOKEN_VALIDITY_SECONDS,
        ttl: int = DEFAULT_TOKEN_TTL_SECONDS,
    ) -> bytes:
        """Sign the current list at ``uri`` as a CWT Status List Token (see :meth:`sign_jwt`)."""
        return self._sign(sign_status_list_cwt, uri, key, now=now, validity=validity, ttl=ttl)

    def _sign(
        self,
        signer: Callable[..., _Token],
        uri: str,
        key: PrivateKey,
        *,
        now: int,
        validity: int,
        ttl: int,
    ) -> _Token:
        # Both token forms take the same arguments; only the signer differs.
        return signer(
            self.build_status_list(uri),
            key,
            uri=uri,
            issued_at=now,
            expires_at=now + validity,
            ttl=ttl,
        )
