"""What a verification gives the agency's code: verified credentials and the verdict.

Plain frozen dataclasses with a JSON form (what ``onceonly verifier request
--wait`` prints and the request store keeps).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final

from onceonly.sdjwt import VerifiedCredential, format_path
from onceonly.sdjwt.claims import TECHNICAL_CLAIMS
from verifier.audit_format import StatusListVersion, TrustListVersion

_TECHNICAL_CLAIMS: Final = TECHNICAL_CLAIMS


@dataclass(frozen=True)
class StatusChecked:
    """The status list entry a credential was checked against."""

    uri: str
    idx: int
    list_hash: str


@dataclass(frozen=True)
class AcceptedCredential:
    """One verified presentation.

    Attributes:
        query_id: The credential query it answers.
        issuer: ``iss`` (a trusted agency).
        vct: The credential type.
        claims: The subject's claims the citizen disclosed (and the issuer's
            always-visible ones), without the technical claims listed as fields here.
        disclosed_paths: Paths revealed by disclosures, e.g. ``address.locality``.
        issued_at: ``iat``.
        expires_at: ``exp``, if any.
        status: The status entry checked (``None`` only if status is not required).
    """

    query_id: str
    issuer: str
    vct: str
    claims: dict[str, Any]
    disclosed_paths: tuple[str, ...]
    issued_at: int
    expires_at: int | None
    status: StatusChecked | None

    def to_json(self) -> dict[str, Any]:
        """JSON form for the agency's code and the CLI."""
        return {
            "issuer": self.issuer,
            "vct": self.vct,
            "claims": self.claims,
            "disclosed_paths": list(self.disclosed_paths),
            "issued_at": self.issued_at,
            "expires_at": self.expires_at,
            "status": None
            if self.status is None
            else {
                "uri": self.status.uri,
                "idx": self.status.idx,
                "list_hash": self.status.list_hash,
            },
        }


@dataclass(frozen=True)
class VerificationResult:
    """What the agency's code gets for one response.

    Attributes:
        exchange_id: The exchange.
        verified: Whether every check passed.
        error_code: The stable error code when not verified (a refusal's code for a refusal).
        message: Human explanation of the failure.
        refused: The citizen declined (``error_code`` is the refusal's code).
        credentials: Verified presentations per credential query id.
        trust_list: The trust list version used.
        status_lists: The status list versions used.
        audit_seq: The audit entry recording the verdict.
        audit_hash: That entry's hash.
    """

    exchange_id: str
    verified: bool
    error_code: str | None = None
    message: str | None = None
    refused: bool = False
    credentials: dict[str, tuple[AcceptedCredential, ...]] = field(default_factory=dict)
    trust_list: TrustListVersion | None = None
    status_lists: tuple[StatusListVersion, ...] = ()
    audit_seq: int | None = None
    audit_hash: str | None = None

    def to_json(self) -> dict[str, Any]:
        """JSON form (what ``onceonly verifier request --wait`` prints)."""
        out: dict[str, Any] = {"exchange_id": self.exchange_id, "verified": self.verified}
        if not self.verified:
            out.update(error_code=self.error_code, message=self.message, refused=self.refused)
        out["credentials"] = {
            qid: [credential.to_json() for credential in items]
            for qid, items in self.credentials.items()
        }
        out["audit"] = {"seq": self.audit_seq, "entry_hash": self.audit_hash}
        return out


def accepted_credential(
    query_id: str, credential: VerifiedCredential, status: StatusChecked | None
) -> AcceptedCredential:
    """The agency-facing view of one verified presentation."""
    return AcceptedCredential(
        query_id=query_id,
        issuer=credential.issuer,
        vct=credential.vct,
        claims={k: v for k, v in credential.claims.items() if k not in _TECHNICAL_CLAIMS},
        disclosed_paths=tuple(sorted(format_path(p) for p in credential.disclosed_paths)),
        issued_at=int(credential.issued_at),
        expires_at=None if credential.expires_at is None else int(credential.expires_at),
        status=status,
    )
