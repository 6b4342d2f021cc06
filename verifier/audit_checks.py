"""The auditor's checks beyond the chain's links: signed heads, the export's end, verdicts' basis.

Used by :mod:`verifier.audit`; each check appends :class:`~verifier.audit_report.Finding`
objects located at the entry (and export line) concerned:

* :func:`check_heads`: every signed head must verify and name the hash the chain
  has at its ``seq`` (``audit_bad_head_signature``, ``audit_head_mismatch``);
  heads beyond the export's last entry are returned for ``audit_truncated``;
* :func:`check_export_head`: the export head (``export_head`` record, see
  :mod:`verifier.audit_format`) must verify, name this log, the header's export
  time, and the exact last entry of the export. An export that ends before the
  entry it names was cut (``audit_truncated``); one without a valid export head
  has an end nobody vouched for (``audit_export_unsigned``).
* :func:`check_evidence`: a verdict recorded as verified must carry the
  presentation and the trust list it rests on (``audit_missing_evidence``):
  otherwise nothing can re-verify it.
* :func:`check_trust_rollback`: trust lists have increasing sequence numbers; a
  verdict under an older list than an earlier verdict had used means the verifier
  went back to a list it had already replaced (``audit_trust_rollback``), e.g. one
  that still trusted a since-removed issuer.

Pure: no I/O, no clock.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from pydantic import ValidationError

from onceonly.errors import (
    AuditBadHeadSignature,
    AuditDuplicate,
    AuditExportUnsigned,
    AuditGap,
    AuditHeadMismatch,
    AuditMissingEvidence,
    AuditTrustRollback,
    MalformedInput,
    OnceOnlyError,
)
from onceonly.jose import PublicKey, verify_compact
from verifier.audit_format import (
    EXPORT_HEAD_TYP,
    HEAD_TYP,
    AuditEntry,
    ExportHeadPayload,
    HeadPayload,
    genesis_hash,
)
from verifier.audit_report import Finding, Severity


@dataclass(frozen=True)
class ChainItem:
    """An entry as read from the export: its line, and whether its own hash matches."""

    line: int
    entry: AuditEntry
    hash_ok: bool


@dataclass(frozen=True)
class ExportEnd:
    """What a valid export head vouches for.

    Attributes:
        signed_seq: The ``seq`` it covers, when that entry is in the export (or 0).
        beyond: ``(seq, line)`` when it names an entry past the export's end.
        payload: The verified statement.
    """

    signed_seq: int | None
    beyond: tuple[int, int] | None
    payload: ExportHeadPayload


def error(code: str, message: str, *, seq: int | None = None, line: int | None = None) -> Finding:
    """An error finding."""
    return Finding(code, Severity.ERROR, message, seq=seq, line=line)


def check_export_head(
    records: list[tuple[int, str]],
    chain: Mapping[int, ChainItem],
    *,
    log_id: str | None,
    exported_at: int | None,
    key: PublicKey,
    findings: list[Finding],
) -> ExportEnd | None:
    """Check the export head records (``(line, jws)``); returns what a valid one vouches for."""
    last_seq = max(chain, default=0)
    if not records:
        findings.append(
            error(
                AuditExportUnsigned.code,
                f"the export ends at entry {last_seq} without a signed export head: "
                "entries after it may have been cut off unnoticed",
                seq=last_seq + 1,
            )
        )
        return None
    for line, _ in records[1:]:
        findings.append(error(MalformedInput.code, "a second export head", line=line))
    line, jws = records[0]
    try:
        payload = ExportHeadPayload.model_validate(
            verify_compact(jws, key, expected_typ=EXPORT_HEAD_TYP).payload
        )
    except (OnceOnlyError, ValidationError) as exc:
        reason = exc.code if isinstance(exc, OnceOnlyError) else "not an export head statement"
        findings.append(
            error(AuditBadHeadSignature.code, f"export head does not verify: {reason}", line=line)
        )
        return None
    if payload.seq > last_seq:
        return ExportEnd(signed_seq=None, beyond=(payload.seq, line), payload=payload)
    problem = _export_mismatch(payload, chain, log_id, exported_at, findings)
    if problem is not None:
        seq = payload.seq + 1 if problem.startswith("the export holds") else payload.seq
        findings.append(error(AuditHeadMismatch.code, problem, seq=seq, line=line))
        return ExportEnd(signed_seq=None, beyond=None, payload=payload)
    covered = payload.seq if payload.seq in chain or payload.seq == 0 else None
    return ExportEnd(signed_seq=covered, beyond=None, payload=payload)


def _export_mismatch(
    payload: ExportHeadPayload,
    chain: Mapping[int, ChainItem],
    log_id: str | None,
    exported_at: int | None,
    findings: list[Finding],
) -> str | None:
    last_seq = max(chain, default=0)
    if log_id is not None and payload.log_id != log_id:
        return f"export head is for log {payload.log_id!r}, not {log_id!r}"
    if exported_at is not None and payload.time != exported_at:
        return f"export head was signed at {payload.time}, the header says {exported_at}"
    if payload.seq < last_seq:
        return (
            f"the export holds entries {payload.seq + 1}..{last_seq} after the entry its "
            f"export head ends at ({payload.seq}): they were added to the export"
        )
    if payload.seq == 0:
        if payload.entry_hash != genesis_hash(payload.log_id):
            return "export head of an empty log does not name the genesis hash"
    elif payload.seq in chain and chain[payload.seq].entry.entry_hash != payload.entry_hash:
        return f"export head names another hash for entry {payload.seq}: it was changed"
    explained = {AuditGap.code, AuditDuplicate.code}
    if payload.entries != len(chain) and not any(f.code in explained for f in findings):
        return f"export head counts {payload.entries} entries, the export holds {len(chain)}"
    return None


@dataclass
class HeadResult:
    """What the regular signed heads vouch for."""

    valid: int = 0
    last_signed_seq: int | None = None
    beyond: tuple[int, int] | None = None  # (head seq, line) of the furthest head past the end


def check_heads(
    heads: list[tuple[int, str]],
    chain: dict[int, ChainItem],
    log_id: str | None,
    key: PublicKey,
    findings: list[Finding],
) -> HeadResult:
    """Verify every signed head (``(line, jws)``) and match it against the chain."""
    result = HeadResult()
    last_seq = max(chain, default=0)
    for line, jws in heads:
        try:
            payload = HeadPayload.model_validate(
                verify_compact(jws, key, expected_typ=HEAD_TYP).payload
            )
        except (OnceOnlyError, ValidationError) as exc:
            reason = exc.code if isinstance(exc, OnceOnlyError) else "not a head statement"
            findings.append(
                error(
                    AuditBadHeadSignature.code, f"signed head does not verify: {reason}", line=line
                )
            )
            continue
        mismatch = _head_mismatch(payload, chain, log_id, last_seq)
        if mismatch == "beyond":
            if result.beyond is None or payload.seq > result.beyond[0]:
                result.beyond = (payload.seq, line)
            continue
        if mismatch:
            findings.append(error(AuditHeadMismatch.code, mismatch, seq=payload.seq, line=line))
            continue
        if payload.seq in chain or payload.seq == 0:
            result.valid += 1
            result.last_signed_seq = max(result.last_signed_seq or 0, payload.seq)
    return result


def _head_mismatch(
    payload: HeadPayload, chain: dict[int, ChainItem], log_id: str | None, last_seq: int
) -> str | None:
    if log_id is not None and payload.log_id != log_id:
        return f"signed head is for log {payload.log_id!r}, not {log_id!r}"
    if payload.seq == 0:
        if payload.entry_hash != genesis_hash(payload.log_id):
            return "signed head for the empty log does not name the genesis hash"
        return None
    if payload.seq > last_seq:
        return "beyond"
    item = chain.get(payload.seq)
    if item is None:
        return None  # the entry is missing: already reported as a gap
    if item.entry.entry_hash != payload.entry_hash:
        return (
            f"signed head for entry {payload.seq} names another hash: entries up to "
            f"{payload.seq} were changed after the head was signed"
        )
    return None


def check_evidence(chain: Mapping[int, ChainItem], findings: list[Finding]) -> None:
    """Report verdicts recorded as verified without the evidence they rest on."""
    for seq in sorted(chain):
        item = chain[seq]
        entry = item.entry
        if entry.outcome is None or not entry.outcome.verified:
            continue
        evidence = (("presentation", entry.presentation), ("trust list", entry.trust_list))
        missing = [name for name, value in evidence if value is None]
        if missing:
            findings.append(
                error(
                    AuditMissingEvidence.code,
                    f"entry {seq} records a verified presentation without its "
                    f"{' and '.join(missing)}: the verdict cannot be re-verified",
                    seq=seq,
                    line=item.line,
                )
            )


def check_trust_rollback(chain: Mapping[int, ChainItem], findings: list[Finding]) -> None:
    """Report verdicts under an older trust list than one already used before them."""
    newest: tuple[int, int] | None = None  # (trust list sequence, entry seq that used it)
    for seq in sorted(chain):
        item = chain[seq]
        version = item.entry.trust_list
        if version is None:
            continue
        if newest is not None and version.sequence < newest[0]:
            findings.append(
                error(
                    AuditTrustRollback.code,
                    f"entry {seq} relied on trust list {version.sequence} after entry "
                    f"{newest[1]} had used trust list {newest[0]}: the verifier went back "
                    "to a replaced trust list",
                    seq=seq,
                    line=item.line,
                )
            )
        elif newest is None or version.sequence > newest[0]:
            newest = (version.sequence, seq)
