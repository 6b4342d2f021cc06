"""The offline auditor: checks an exported audit log from files alone.

Given an export (:mod:`verifier.audit_format`) and the verifier's public key, the
auditor reports *every* problem it can locate, not just the first:

* an entry whose content does not match its ``entry_hash`` (``audit_altered``);
* a broken link, i.e. an entry changed and re-hashed after its successor was
  written (``audit_altered``, located at the changed entry);
* missing sequence numbers (``audit_gap``) and repeated ones (``audit_duplicate``);
* entries out of order in the file (``audit_reordered``);
* a head whose signature does not verify (``audit_bad_head_signature``), or a
  correctly signed head that names another hash or log (``audit_head_mismatch``);
* signed heads, or the export head, beyond the last exported entry
  (``audit_truncated``): the export's tail was cut;
* an export without a valid export head (``audit_export_unsigned``), whose end
  therefore nobody vouched for, and (given the time the auditor asked for it) an
  export head signed before that time (``audit_export_stale``);
* entries after the last signed head, whose removal could not be detected
  (``audit_unsigned_tail``, a warning);
* a verdict recorded as verified without its presentation or trust list
  (``audit_missing_evidence``), and a verdict under an older trust list than an
  earlier one used (``audit_trust_rollback``), see :mod:`verifier.audit_checks`.

Re-verification of recorded presentations is a hook: pass ``reverify``, a callable
that re-checks an entry's presentation (with the trust and status list versions the
entry names) and returns a :class:`~verifier.audit_format.VerificationOutcome`; every
entry whose recomputed outcome differs from the recorded one is reported
(``audit_reverify_mismatch``). It is called for entries that carry both a
``presentation`` and an ``outcome``.

Nothing here writes, touches a network or reads a clock; :func:`audit_file` only
reads the export file.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path
from typing import Any, Final

from pydantic import ValidationError

from onceonly.errors import (
    AuditAltered,
    AuditDuplicate,
    AuditExportStale,
    AuditGap,
    AuditReordered,
    AuditReverifyMismatch,
    AuditTruncated,
    AuditUnsignedTail,
    MalformedInput,
    OnceOnlyError,
    StoreError,
)
from onceonly.jose import PublicKey, strict_json_loads
from verifier.audit_checks import (
    ChainItem,
    check_evidence,
    check_export_head,
    check_heads,
    check_trust_rollback,
    error,
)
from verifier.audit_format import (
    EXPORT_FORMAT,
    AuditEntry,
    VerificationOutcome,
    compute_entry_hash,
    genesis_hash,
)
from verifier.audit_report import AuditReport, Finding, Severity

MAX_LINE_BYTES: Final = 1024 * 1024
"""One export line (an entry with its presentation) may not exceed this."""

Reverify = Callable[[AuditEntry], VerificationOutcome]
"""Re-verifies an entry's recorded presentation and returns the fresh outcome."""


@dataclass
class _Parsed:
    log_id: str | None = None
    exported_at: int | None = None
    entries: list[ChainItem] = field(default_factory=list)
    heads: list[tuple[int, str]] = field(default_factory=list)
    export_heads: list[tuple[int, str]] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)


def _parse(lines: Iterable[str]) -> _Parsed:
    parsed = _Parsed()
    saw_header = False
    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        try:
            record = strict_json_loads(raw, max_bytes=MAX_LINE_BYTES)
        except MalformedInput as exc:
            parsed.findings.append(error(exc.code, f"unreadable line: {exc.message}", line=number))
            continue
        if not isinstance(record, dict) or len(record) != 1:
            parsed.findings.append(error(MalformedInput.code, "not an export record", line=number))
            continue
        ((kind, value),) = record.items()
        if kind == "log" and not saw_header and not parsed.entries and not parsed.heads:
            saw_header = True
            parsed.log_id = _parse_header(value, number, parsed.findings)
            if parsed.log_id is not None and isinstance(value.get("exported_at"), int):
                parsed.exported_at = value["exported_at"]
        elif kind == "entry" and isinstance(value, dict):
            _parse_entry(value, number, parsed)
        elif kind == "head" and isinstance(value, str):
            parsed.heads.append((number, value))
        elif kind == "export_head" and isinstance(value, str):
            parsed.export_heads.append((number, value))
        else:
            parsed.findings.append(
                error(MalformedInput.code, f"unexpected {kind[:40]!r} record", line=number)
            )
    if not saw_header:
        parsed.findings.append(error(MalformedInput.code, "export has no log header line", line=1))
    return parsed


def _parse_header(value: Any, line: int, findings: list[Finding]) -> str | None:
    if not isinstance(value, dict) or value.get("format") != EXPORT_FORMAT:
        findings.append(error(MalformedInput.code, f"header is not {EXPORT_FORMAT}", line=line))
        return None
    log_id = value.get("log_id")
    if not isinstance(log_id, str) or not log_id:
        findings.append(error(MalformedInput.code, "header has no log_id", line=line))
        return None
    return log_id


def _parse_entry(value: dict[str, Any], line: int, parsed: _Parsed) -> None:
    seq = value.get("seq") if isinstance(value.get("seq"), int) else None
    try:
        entry = AuditEntry.model_validate(value)
    except ValidationError as exc:
        parsed.findings.append(
            error(
                MalformedInput.code,
                f"invalid entry ({exc.error_count()} problem(s))",
                seq=seq,
                line=line,
            )
        )
        return
    # The hash is computed over the JSON as found in the file, so any change to it
    # (even one the model would normalise away) is visible.
    hash_ok = compute_entry_hash(value) == entry.entry_hash
    if not hash_ok:
        parsed.findings.append(
            error(
                AuditAltered.code,
                f"entry {entry.seq} does not match its entry_hash: its content was changed",
                seq=entry.seq,
                line=line,
            )
        )
    parsed.entries.append(ChainItem(line, entry, hash_ok))


def _check_order(entries: list[ChainItem], findings: list[Finding]) -> None:
    for before, after in pairwise(entries):
        if after.entry.seq < before.entry.seq:
            findings.append(
                error(
                    AuditReordered.code,
                    f"entry {after.entry.seq} (line {after.line}) comes after entry "
                    f"{before.entry.seq} (line {before.line})",
                    seq=after.entry.seq,
                    line=after.line,
                )
            )


def _by_seq(entries: list[ChainItem], findings: list[Finding]) -> dict[int, ChainItem]:
    chosen: dict[int, ChainItem] = {}
    for item in entries:
        seq = item.entry.seq
        if seq not in chosen:
            chosen[seq] = item
            continue
        findings.append(
            error(
                AuditDuplicate.code,
                f"entry {seq} appears again (first at line {chosen[seq].line})",
                seq=seq,
                line=item.line,
            )
        )
        if item.hash_ok and not chosen[seq].hash_ok:
            chosen[seq] = item  # prefer the copy that is at least self-consistent
    return chosen


def _check_chain(chain: dict[int, ChainItem], log_id: str | None, findings: list[Finding]) -> None:
    expected_seq = 1
    expected_prev = genesis_hash(log_id) if log_id is not None else None
    previous: ChainItem | None = None
    for seq in sorted(chain):
        item = chain[seq]
        if seq > expected_seq:
            after = f"after line {previous.line}" if previous else "at the start"
            findings.append(
                error(
                    AuditGap.code,
                    f"entries {_range(expected_seq, seq - 1)} are missing ({after}, "
                    f"before line {item.line})",
                    seq=expected_seq,
                    line=item.line,
                )
            )
        elif expected_prev is not None and item.entry.prev_hash != expected_prev:
            if previous is None:
                findings.append(
                    error(
                        AuditAltered.code,
                        "entry 1 does not start from this log's genesis hash",
                        seq=seq,
                        line=item.line,
                    )
                )
            else:
                findings.append(
                    error(
                        AuditAltered.code,
                        f"entry {previous.entry.seq} was changed and re-hashed: entry {seq} "
                        f"(line {item.line}) recorded a different hash for it",
                        seq=previous.entry.seq,
                        line=previous.line,
                    )
                )
        expected_seq, expected_prev, previous = seq + 1, item.entry.entry_hash, item


def _range(first: int, last: int) -> str:
    return str(first) if first == last else f"{first}..{last}"


def _truncated(beyond: tuple[int, int], last_seq: int) -> Finding:
    return error(
        AuditTruncated.code,
        f"a signed head covers entry {beyond[0]} but the export ends at entry "
        f"{last_seq}: entries {_range(last_seq + 1, beyond[0])} were removed",
        seq=last_seq + 1,
        line=beyond[1],
    )


def _reverify(chain: dict[int, ChainItem], reverify: Reverify, findings: list[Finding]) -> int:
    count = 0
    for seq in sorted(chain):
        item = chain[seq]
        recorded = item.entry.outcome
        if recorded is None or item.entry.presentation is None:
            continue
        count += 1
        try:
            fresh = reverify(item.entry)
        except OnceOnlyError as exc:
            fresh = VerificationOutcome.rejected(exc.code)
        if fresh != recorded:
            findings.append(
                error(
                    AuditReverifyMismatch.code,
                    f"entry {seq} recorded {_describe(recorded)} but re-verification gives "
                    f"{_describe(fresh)}",
                    seq=seq,
                    line=item.line,
                )
            )
    return count


def _describe(outcome: VerificationOutcome) -> str:
    if not outcome.verified:
        return f"rejected ({outcome.error_code})"
    return f"verified [{', '.join(outcome.disclosed)}]"


def audit_lines(
    lines: Iterable[str],
    *,
    verifier_key: PublicKey,
    reverify: Reverify | None = None,
    exported_after: int | None = None,
) -> AuditReport:
    """Audit an export given as lines of text.

    Args:
        lines: The export's lines (with or without trailing newlines).
        verifier_key: The verifier's public key, obtained independently of the export.
        reverify: Optional hook re-verifying recorded presentations.
        exported_after: When the auditor asked for the export (epoch seconds): an
            export head signed earlier means an older export stands in for the
            current one, which may lack everything appended since
            (``audit_export_stale``).

    Returns:
        The report; ``report.clean`` is true only if there is nothing to report.
    """
    parsed = _parse(lines)
    findings = parsed.findings
    _check_order(parsed.entries, findings)
    chain = _by_seq(parsed.entries, findings)
    _check_chain(chain, parsed.log_id, findings)
    heads = check_heads(parsed.heads, chain, parsed.log_id, verifier_key, findings)
    last_seq = max(chain, default=0)
    end = check_export_head(
        parsed.export_heads,
        chain,
        log_id=parsed.log_id,
        exported_at=parsed.exported_at,
        key=verifier_key,
        findings=findings,
    )
    beyond = [b for b in (heads.beyond, end.beyond if end else None) if b is not None]
    if beyond:
        findings.append(_truncated(max(beyond), last_seq))
    if end is not None and end.signed_seq is not None:
        heads.last_signed_seq = max(heads.last_signed_seq or 0, end.signed_seq)
    if end is not None and exported_after is not None and end.payload.time < exported_after:
        findings.append(
            error(
                AuditExportStale.code,
                f"the export head was signed at {end.payload.time}, before {exported_after}: "
                "this is an older export, entries appended since may be missing",
                seq=end.payload.seq + 1,
                line=parsed.export_heads[0][0],
            )
        )
    signed = heads.last_signed_seq or 0
    if last_seq > signed:
        findings.append(
            Finding(
                AuditUnsignedTail.code,
                Severity.WARNING,
                f"entries {_range(signed + 1, last_seq)} follow the last valid signed head: "
                "their removal or change could not be detected",
                seq=signed + 1,
            )
        )
    check_evidence(chain, findings)
    check_trust_rollback(chain, findings)
    reverified = _reverify(chain, reverify, findings) if reverify is not None else 0
    return AuditReport(
        log_id=parsed.log_id,
        entries=len(parsed.entries),
        heads=len(parsed.heads),
        valid_heads=heads.valid,
        last_seq=last_seq,
        last_signed_seq=heads.last_signed_seq,
        exported_at=end.payload.time if end is not None and end.signed_seq is not None else None,
        reverified=reverified,
        findings=tuple(findings),
    )


def audit_file(
    path: Path,
    *,
    verifier_key: PublicKey,
    reverify: Reverify | None = None,
    exported_after: int | None = None,
) -> AuditReport:
    """Audit an export file (JSON Lines, UTF-8); the arguments are :func:`audit_lines`'s.

    Raises:
        StoreError: the file cannot be read.
        MalformedInput: the file is not UTF-8.
    """
    try:
        with path.open("r", encoding="utf-8", newline="\n") as stream:
            return audit_lines(
                stream,
                verifier_key=verifier_key,
                reverify=reverify,
                exported_after=exported_after,
            )
    except UnicodeDecodeError as exc:
        raise MalformedInput(f"{path.name} is not UTF-8 text") from exc
    except OSError as exc:
        raise StoreError(f"cannot read {path.name}: {exc.strerror}") from exc


__all__ = [
    "MAX_LINE_BYTES",
    "AuditReport",
    "Finding",
    "Reverify",
    "Severity",
    "audit_file",
    "audit_lines",
]
