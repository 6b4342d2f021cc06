"""Build real audit logs (through the store) and exports to tamper with, for the audit tests."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from onceonly.jose import PrivateKey, b64url_decode, json_dumps_compact
from verifier.audit_format import (
    EntryKind,
    StatusListVersion,
    TrustListVersion,
    VerificationOutcome,
    compute_entry_hash,
)
from verifier.audit_log import AuditLog

T0 = 1_800_000_000
TRUST = TrustListVersion(sequence=7, hash="ab" * 32)
STATUS = (StatusListVersion(uri="https://issuer.example/status/1", hash="cd" * 32),)
OUTCOME = VerificationOutcome(
    verified=True, issuer="https://issuer.example", vct="urn:eu:pid:1", disclosed=("given_name",)
)


def append_sample(log: AuditLog, index: int, *, exchange_prefix: str = "ex") -> None:
    """Append entry number ``index`` of a realistic exchange cycle."""
    exchange = f"{exchange_prefix}-{index // 4}"
    kind = list(EntryKind)[index % 4]
    presentation = f"eyJhbGciOiJFUzI1NiJ9.payload{index}.sig~WyJzYWx0Il0~kb{index}"
    if kind is EntryKind.REQUEST:
        log.append(kind=kind, exchange_id=exchange, now=T0 + index, details={"nonce": f"n{index}"})
    elif kind is EntryKind.RESPONSE:
        log.append(kind=kind, exchange_id=exchange, now=T0 + index, presentation=presentation)
    elif kind is EntryKind.VERIFICATION:
        log.append(
            kind=kind,
            exchange_id=exchange,
            now=T0 + index,
            presentation=presentation,
            outcome=OUTCOME,
            trust_list=TRUST,
            status_lists=STATUS,
        )
    else:
        log.append(kind=kind, exchange_id=exchange, now=T0 + index, details={"status": "ok"})


def build_export(
    directory: Path,
    key: PrivateKey,
    *,
    entries: int,
    head_every: int = 10,
    final_head: bool = True,
    export_head: bool = True,
) -> list[str]:
    """Create a log with ``entries`` entries in SQLite, export it and return its lines.

    Line 0 is the header, line ``i`` (1-based seq) is entry ``i``, heads follow, and
    last the export head (unless ``export_head`` is false: an export made without
    the signing key).
    """
    store = directory / "audit.sqlite3"
    with AuditLog.open(store, signing_key=key, head_every=head_every) as log:
        for index in range(1, entries + 1):
            append_sample(log, index)
        if final_head:
            log.sign_head(now=T0 + entries + 1)
    with AuditLog.open(store, signing_key=key if export_head else None) as log:
        log.export(directory / "export.jsonl", now=T0 + entries + 2)
    return (directory / "export.jsonl").read_text(encoding="utf-8").splitlines()


def entry_of(line: str) -> dict[str, Any]:
    """The entry object of an export line."""
    entry: dict[str, Any] = json.loads(line)["entry"]
    return entry


def entry_line(entry: dict[str, Any], *, rehash: bool = False) -> str:
    """An export line for ``entry``; with ``rehash`` its entry_hash is recomputed."""
    if rehash:
        entry = {**entry, "entry_hash": compute_entry_hash(entry)}
    return json_dumps_compact({"entry": entry})


def head_seq(line: str) -> int | None:
    """The ``seq`` a head or export head line names (``None`` for any other line)."""
    record = json.loads(line)
    jws = record.get("head") or record.get("export_head")
    if not isinstance(jws, str):
        return None
    seq: int = json.loads(b64url_decode(jws.split(".")[1]))["seq"]
    return seq


def cut_tail(lines: list[str], keep: int, *, keep_export_head: bool) -> list[str]:
    """The export cut back to entry ``keep``: later entries and the heads over them removed.

    The forger's best effort: every regular head that names a removed entry goes too,
    so what is left ends at an earlier signed head. The export head (which names the
    real last entry) is kept or dropped as asked.
    """
    out = []
    for line in lines:
        record = json.loads(line)
        if "entry" in record and record["entry"]["seq"] > keep:
            continue
        if "head" in record and (head_seq(line) or 0) > keep:
            continue
        if "export_head" in record and not keep_export_head:
            continue
        out.append(line)
    return out


def export_of(tmp_path: Path, key: PrivateKey, appends: list[dict[str, object]]) -> list[str]:
    """Append ``appends`` (keyword arguments of AuditLog.append) properly, then export."""
    with AuditLog.open(tmp_path / "custom.sqlite3", signing_key=key, head_every=0) as log:
        for number, fields in enumerate(appends, start=1):
            log.append(exchange_id=f"ex-{number}", now=T0 + number, **fields)  # type: ignore[arg-type]
        log.export(tmp_path / "custom.jsonl", now=T0 + 100)
    return (tmp_path / "custom.jsonl").read_text(encoding="utf-8").splitlines()


def verdict(
    trust_seq: int, *, presentation: str | None = "{}", verified: bool = True
) -> dict[str, object]:
    """A verification entry's fields, under trust list ``trust_seq``."""
    return {
        "kind": EntryKind.VERIFICATION,
        "presentation": presentation,
        "outcome": OUTCOME if verified else VerificationOutcome.rejected("revoked"),
        "trust_list": TrustListVersion(sequence=trust_seq, hash=f"{trust_seq:02d}" * 32),
    }
