"""The offline auditor's report: findings with their location, and the summary.

Kept apart from :mod:`verifier.audit` so the CLI and other tools can render or
inspect reports without the checking code.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class Severity(StrEnum):
    """How bad a finding is: errors prove tampering, warnings limit what can be proven."""

    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True)
class Finding:
    """One problem and where it is.

    Attributes:
        code: Stable code (``audit_gap``, ``audit_altered``, ..., or ``malformed``).
        severity: :class:`Severity`.
        message: Human explanation.
        seq: The entry sequence number concerned, when there is one.
        line: The export file line concerned (1-based), when there is one.
    """

    code: str
    severity: Severity
    message: str
    seq: int | None = None
    line: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON form for ``--json`` output."""
        out: dict[str, Any] = {"code": self.code, "severity": str(self.severity)}
        out["message"] = self.message
        if self.seq is not None:
            out["seq"] = self.seq
        if self.line is not None:
            out["line"] = self.line
        return out


@dataclass(frozen=True)
class AuditReport:
    """The result of auditing one export.

    Attributes:
        log_id: The log's identifier from the export header (``None`` if missing).
        entries: Entries read.
        heads: Signed heads read.
        valid_heads: Heads whose signature verifies and that match the chain.
        last_seq: Highest entry ``seq`` in the export (0 if none).
        last_signed_seq: Highest ``seq`` covered by a valid head (``None`` if none).
        exported_at: When a valid export head vouched for the export's end (epoch
            seconds; ``None`` without one): an auditor checks it is recent enough.
        reverified: Entries passed to the ``reverify`` hook.
        findings: Every problem found, in the order the checks found them.
    """

    log_id: str | None
    entries: int
    heads: int
    valid_heads: int
    last_seq: int
    last_signed_seq: int | None
    exported_at: int | None
    reverified: int
    findings: tuple[Finding, ...] = ()

    @property
    def clean(self) -> bool:
        """True when there is nothing to report (no errors, no warnings)."""
        return not self.findings

    @property
    def errors(self) -> tuple[Finding, ...]:
        """The findings that prove the log was tampered with or is unreadable."""
        return tuple(f for f in self.findings if f.severity is Severity.ERROR)

    def codes(self) -> list[str]:
        """The finding codes, in order (handy for tests and scripts)."""
        return [f.code for f in self.findings]

    def to_dict(self) -> dict[str, Any]:
        """JSON form for ``--json`` output."""
        return {
            "log_id": self.log_id,
            "entries": self.entries,
            "heads": self.heads,
            "valid_heads": self.valid_heads,
            "last_seq": self.last_seq,
            "last_signed_seq": self.last_signed_seq,
            "exported_at": self.exported_at,
            "reverified": self.reverified,
            "clean": self.clean,
            "findings": [f.to_dict() for f in self.findings],
        }
