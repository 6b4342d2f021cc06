"""The audit log's data model, hash chain and export format (pure: no I/O, no clock).

Shared by the verifier's store (:mod:`verifier.audit_log`) and the offline
auditor (:mod:`verifier.audit`), so both compute hashes the same way. The format
is simple enough to re-implement independently:

* **Entry hash.** ``entry_hash = hex(SHA-256(b"onceonly-audit-entry-v1\\n" || C))``
  where ``C`` is the entry object *without* ``entry_hash`` (but with
  ``prev_hash``), serialized as UTF-8 JSON with keys sorted, no whitespace and
  non-ASCII characters unescaped. Entries hold only strings, integers, booleans,
  null, arrays and objects (never floats), so this coincides with RFC 8785 (JCS).
* **Chain.** Entry ``seq`` 1 has ``prev_hash = genesis_hash(log_id)``; entry
  ``n`` has ``prev_hash`` = entry ``n-1``'s ``entry_hash``. Binding the genesis to
  the log id means entries cannot be spliced from one log into another.
* **Signed head.** A compact JWS, ``typ`` :data:`HEAD_TYP`, signed by the
  verifier's key over ``{seq, entry_hash, time, log_id}``. A head at ``seq`` 0
  names the genesis hash (an empty log).
* **Export head.** A compact JWS, ``typ`` :data:`EXPORT_HEAD_TYP`, signed at
  export time over ``{seq, entry_hash, time, entries, log_id}``: the exact last
  entry written, the export time (the header's ``exported_at``) and how many
  entries the export holds. It binds the export's *end*: an export cut back to an
  earlier signed head no longer reaches the ``seq`` its export head names.
* **Export.** JSON Lines: first ``{"log": {"format", "log_id", "exported_at"}}``,
  then one ``{"entry": {...}}`` per entry in ``seq`` order, then one
  ``{"head": "<jws>"}`` per signed head, and last one ``{"export_head": "<jws>"}``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from enum import StrEnum
from typing import Any, Final

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, model_validator

from onceonly.jose import PrivateKey, json_dumps_compact, sign_compact

EXPORT_FORMAT: Final = "onceonly-audit-log/1"
HEAD_TYP: Final = "onceonly-audit-head+jwt"
EXPORT_HEAD_TYP: Final = "onceonly-audit-export+jwt"
_ENTRY_DOMAIN: Final = b"onceonly-audit-entry-v1\n"
_GENESIS_DOMAIN: Final = b"onceonly-audit-genesis-v1\n"
_HEX_SHA256: Final = r"^[0-9a-f]{64}$"


class EntryKind(StrEnum):
    """What an audit entry records."""

    REQUEST = "request"
    """The verifier sent a presentation request."""
    RESPONSE = "response"
    """A presentation (or refusal) arrived; ``presentation`` holds it verbatim."""
    VERIFICATION = "verification"
    """The verifier's verdict on a presentation; ``outcome`` holds it."""
    STATUS_SENT = "status_sent"
    """The verifier told the citizen the exchange's result."""


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class TrustListVersion(_Frozen):
    """The trust list a verification relied on.

    Attributes:
        sequence: The trust list's sequence number.
        hash: SHA-256 (hex) of the signed trust list as used.
    """

    sequence: StrictInt = Field(ge=0)
    hash: str = Field(pattern=_HEX_SHA256)


class StatusListVersion(_Frozen):
    """A status list token a verification relied on.

    Attributes:
        uri: The status list's URI (the credential's ``status.status_list.uri``).
        hash: SHA-256 (hex) of the status list token as used.
    """

    uri: str = Field(min_length=1)
    hash: str = Field(pattern=_HEX_SHA256)


class VerificationOutcome(_Frozen):
    """The verdict on one presentation, as recorded and as re-computed by an auditor.

    Attributes:
        verified: Whether the presentation passed every check.
        error_code: The stable error code when it did not (``None`` when verified).
        issuer: The credential's issuer, when it could be read.
        vct: The credential type, when it could be read.
        disclosed: Paths of the claims the verifier accepted (names only: the
            values are in the recorded presentation).
    """

    verified: StrictBool
    error_code: str | None = None
    issuer: str | None = None
    vct: str | None = None
    disclosed: tuple[str, ...] = ()

    @model_validator(mode="after")
    def _code_iff_rejected(self) -> VerificationOutcome:
        if self.verified == (self.error_code is not None):
            raise ValueError("a rejected outcome needs an error_code and a verified one none")
        return self

    @classmethod
    def rejected(cls, error_code: str) -> VerificationOutcome:
        """A failed verification with ``error_code``."""
        return cls(verified=False, error_code=error_code)


class AuditEntry(_Frozen):
    """One entry of the hash-chained audit log.

    Attributes:
        seq: Position in the chain, from 1, without gaps.
        time: When it was appended (epoch seconds, the verifier's clock).
        kind: What happened.
        exchange_id: The exchange it belongs to.
        presentation: The presentation exactly as received (``response`` entries).
        outcome: The verdict (``verification`` entries).
        trust_list: The trust list version the verdict relied on.
        status_lists: The status list versions the verdict relied on.
        details: Other facts as strings (e.g. the nonce and query of a request).
        prev_hash: The previous entry's ``entry_hash`` (the genesis hash for seq 1).
        entry_hash: Hash over all other fields, see the module documentation.
    """

    seq: StrictInt = Field(ge=1)
    time: StrictInt
    kind: EntryKind
    exchange_id: str
    presentation: str | None = None
    outcome: VerificationOutcome | None = None
    trust_list: TrustListVersion | None = None
    status_lists: tuple[StatusListVersion, ...] = ()
    details: dict[str, str] = Field(default_factory=dict)
    prev_hash: str = Field(pattern=_HEX_SHA256)
    entry_hash: str = Field(pattern=_HEX_SHA256)

    def to_json(self) -> dict[str, Any]:
        """The entry as the JSON object that is exported and hashed."""
        return self.model_dump(mode="json")


class HeadPayload(_Frozen):
    """The signed statement "entry ``seq`` of log ``log_id`` has hash ``entry_hash``"."""

    seq: StrictInt = Field(ge=0)
    entry_hash: str = Field(pattern=_HEX_SHA256)
    time: StrictInt
    log_id: str = Field(min_length=1)


class ExportHeadPayload(_Frozen):
    """The signed statement "this export of ``log_id``, made at ``time``, ends at entry
    ``seq`` (hash ``entry_hash``) and holds ``entries`` entries"."""

    seq: StrictInt = Field(ge=0)
    entry_hash: str = Field(pattern=_HEX_SHA256)
    time: StrictInt
    entries: StrictInt = Field(ge=0)
    log_id: str = Field(min_length=1)


def genesis_hash(log_id: str) -> str:
    """The ``prev_hash`` of a log's first entry (and the hash a ``seq`` 0 head names)."""
    return hashlib.sha256(_GENESIS_DOMAIN + log_id.encode("utf-8")).hexdigest()


def canonical_json(value: Mapping[str, Any]) -> bytes:
    """Sorted-key, whitespace-free UTF-8 JSON (JCS for our float-free values)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode(
        "utf-8"
    )


def compute_entry_hash(entry_json: Mapping[str, Any]) -> str:
    """Hash an entry given as a JSON object; its ``entry_hash`` member (if any) is ignored."""
    body = {name: value for name, value in entry_json.items() if name != "entry_hash"}
    return hashlib.sha256(_ENTRY_DOMAIN + canonical_json(body)).hexdigest()


def build_entry(
    *,
    seq: int,
    time: int,
    kind: EntryKind,
    exchange_id: str,
    prev_hash: str,
    presentation: str | None = None,
    outcome: VerificationOutcome | None = None,
    trust_list: TrustListVersion | None = None,
    status_lists: tuple[StatusListVersion, ...] = (),
    details: Mapping[str, str] | None = None,
) -> AuditEntry:
    """Create the next entry of a chain, with its ``entry_hash`` computed.

    Raises:
        pydantic.ValidationError: a field has the wrong type or shape.
    """
    fields: dict[str, Any] = {
        "seq": seq,
        "time": time,
        "kind": kind,
        "exchange_id": exchange_id,
        "presentation": presentation,
        "outcome": outcome,
        "trust_list": trust_list,
        "status_lists": status_lists,
        "details": dict(details or {}),
        "prev_hash": prev_hash,
    }
    draft = AuditEntry.model_validate({**fields, "entry_hash": "0" * 64})
    return draft.model_copy(update={"entry_hash": compute_entry_hash(draft.to_json())})


def sign_head(key: PrivateKey, *, log_id: str, seq: int, entry_hash: str, time: int) -> str:
    """Sign a head statement with the verifier's key; returns a compact JWS."""
    payload = HeadPayload(seq=seq, entry_hash=entry_hash, time=time, log_id=log_id)
    return sign_compact(payload.model_dump(mode="json"), key, typ=HEAD_TYP)


def sign_export_head(key: PrivateKey, payload: ExportHeadPayload) -> str:
    """Sign an export head with the verifier's key; returns a compact JWS."""
    return sign_compact(payload.model_dump(mode="json"), key, typ=EXPORT_HEAD_TYP)


def export_lines(
    *,
    log_id: str,
    exported_at: int,
    entries: list[AuditEntry],
    heads: list[str],
    export_head: str | None = None,
) -> list[str]:
    """Serialize a whole log to JSON Lines (each string is one line, without the newline)."""
    return [
        export_header_line(log_id=log_id, exported_at=exported_at),
        *(export_entry_line(entry) for entry in entries),
        *(export_head_line(head) for head in heads),
        *([] if export_head is None else [export_final_line(export_head)]),
    ]


def export_header_line(*, log_id: str, exported_at: int) -> str:
    """The first line of an export (for writers that stream the entries)."""
    meta = {"format": EXPORT_FORMAT, "log_id": log_id, "exported_at": exported_at}
    return json_dumps_compact({"log": meta})


def export_entry_line(entry: AuditEntry) -> str:
    """One entry line of an export."""
    return json_dumps_compact({"entry": entry.to_json()})


def export_head_line(head: str) -> str:
    """One signed-head line of an export."""
    return json_dumps_compact({"head": head})


def export_final_line(export_head: str) -> str:
    """The last line of an export: its signed export head."""
    return json_dumps_compact({"export_head": export_head})
