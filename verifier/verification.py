"""Verifying a ``presentation.response`` completely, and recording the verdict.

:class:`Verifier` checks an answer to one of our presentation requests in this
order, and the first failure decides the error code:

1. the request's nonce is consumed (:class:`~verifier.nonce_store.NonceStore`):
   issued by us, for this exchange and audience, unexpired, and used exactly
   once, also across restarts and verifier processes;
2. every presentation passes the SD-JWT VC core (RFC 9901 section 7) with key
   binding *required*, ``aud`` = our id and ``nonce`` = the request's nonce, with
   the issuer's key chosen from the trust list (the key must have been valid at
   the credential's ``iat``);
3. the issuer may issue that ``vct`` at the credential's issuance time;
4. the disclosed claims satisfy the query we sent (values included; an array
   index counts the elements we cannot see, as the SD-JWT VC claim path does);
5. each credential's status list entry is valid, in a Status List Token signed by
   the credential's issuer (:mod:`onceonly.status_cache`).

Every verdict, verified or not, is appended to the audit log with the exact
presentations received, the trust list version and the status list versions
used; the tokens themselves go to the :class:`~verifier.evidence.EvidenceArchive`
so that the offline auditor can redo steps 1-5 (:mod:`verifier.reverify`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from onceonly.credential_types import type_metadata
from onceonly.errors import (
    InvalidClaim,
    NotAuthorizedToRequest,
    OnceOnlyError,
    StoreError,
    TrustError,
    UntrustedIssuer,
)
from onceonly.jose import json_dumps_compact
from onceonly.query import DcqlQuery, claims_satisfy, positioned_claims, uses_indices
from onceonly.sdjwt import (
    VerificationPolicy,
    VerifiedCredential,
    format_path,
    parse_sd_jwt,
    verify_presentation,
)
from onceonly.status_cache import DEFAULT_MAX_AGE_SECONDS, StatusCache, status_key_resolver
from onceonly.status_list import check_status, status_reference_from_claims
from onceonly.trust import TrustList, VerifiedTrustList
from verifier.audit_format import (
    EntryKind,
    StatusListVersion,
    TrustListVersion,
    VerificationOutcome,
)
from verifier.audit_log import AuditLog
from verifier.evidence import EvidenceArchive, token_hash
from verifier.nonce_store import NonceStore
from verifier.requests import PendingRequest
from verifier.results import (
    AcceptedCredential,
    StatusChecked,
    VerificationResult,
    accepted_credential,
)

VpToken = Mapping[str, Sequence[str]]
"""Credential query id to the presentations answering it (OpenID4VP ``vp_token``)."""

TrustSource = Callable[[int], VerifiedTrustList | None]
"""Returns the current verified trust list at ``now`` (e.g. ``TrustCache.current``)."""


@dataclass(frozen=True)
class VerifierOptions:
    """Policy knobs (the defaults are the protocol's).

    Attributes:
        leeway_seconds: Clock skew tolerated for credential and KB-JWT times.
        max_kb_age_seconds: How old a KB-JWT's ``iat`` may be.
        require_status: Refuse credentials without a ``status`` claim (every
            shipped credential type has one, so a missing one means it cannot be revoked).
        status_max_age_seconds: Longest time a fetched status list is trusted, whatever
            its ``ttl`` says: how late this verifier may notice a revocation.
    """

    leeway_seconds: int = 60
    max_kb_age_seconds: int = 300
    require_status: bool = True
    status_max_age_seconds: int = DEFAULT_MAX_AGE_SECONDS


def check_presentations(
    vp_token: VpToken,
    *,
    query: DcqlQuery,
    trust_list: TrustList,
    audience: str,
    nonce: str,
    now: int,
    options: VerifierOptions,
) -> list[tuple[str, VerifiedCredential]]:
    """Steps 2-4 of the module description (pure: no store, no fetch).

    Returns:
        ``(query id, verified credential)`` in the order received.

    Raises:
        OnceOnlyError: the first failed check.
    """
    policy = VerificationPolicy(
        require_key_binding=True,
        expected_audience=audience,
        expected_nonce=nonce,
        leeway_seconds=options.leeway_seconds,
        max_kb_age_seconds=options.max_kb_age_seconds,
        type_metadata=type_metadata,
    )
    resolver = trust_list.issuer_key_resolver()
    parts: list[tuple[str, VerifiedCredential]] = []
    by_query: dict[str, list[dict[str, Any]]] = {}
    positioned = uses_indices(query)
    for query_id, presentations in vp_token.items():
        for text in presentations:
            credential = verify_presentation(text, issuer_key=resolver, policy=policy, now=now)
            # The resolver already ties the key to iat and vct; asking the policy
            # question directly keeps this rule independent of how keys are found.
            if not trust_list.may_issue(
                credential.issuer, credential.vct, int(credential.issued_at)
            ):
                raise UntrustedIssuer(
                    f"{credential.issuer} may not issue {credential.vct}",
                    detail={"iss": credential.issuer, "vct": credential.vct},
                )
            if options.require_status and credential.status is None:
                raise InvalidClaim(
                    "the credential has no 'status' claim", detail={"claim": "status"}
                )
            parts.append((query_id, credential))
            claims = credential.claims
            if positioned:
                # Verified above; parsed again only for the array slots of what we see.
                seen = parse_sd_jwt(
                    text, max_bytes=policy.max_presentation_bytes, limits=policy.limits
                )
                claims = positioned_claims(seen.claims, seen.claim_paths)
            by_query.setdefault(query_id, []).append(claims)
    claims_satisfy(query, by_query)
    return parts


def check_registration(
    trust_list: TrustList, verifier_id: str, query: DcqlQuery, purpose: str | None
) -> None:
    """The verifier must be registered for ``query`` and ``purpose`` in ``trust_list``.

    Checked when the request is made (:func:`~verifier.requests.prepare_request`)
    and again under the trust list in force when its answer is judged, online and
    by the auditor: a registration withdrawn meanwhile must not yield a verdict.

    Raises:
        NotAuthorizedToRequest: the query or purpose is not (or no longer) registered.
    """
    if not purpose:
        raise NotAuthorizedToRequest("the request names no purpose")
    trust_list.may_request_query(verifier_id, query, purpose)


def verified_outcome(parts: Sequence[tuple[str, VerifiedCredential]]) -> VerificationOutcome:
    """The audit outcome of verified presentations (recomputable by the auditor)."""
    issuers = {credential.issuer for _, credential in parts}
    vcts = {credential.vct for _, credential in parts}
    disclosed = sorted(
        {
            f"{qid}:{format_path(path)}"
            for qid, credential in parts
            for path in credential.disclosed_paths
        }
    )
    return VerificationOutcome(
        verified=True,
        issuer=next(iter(issuers)) if len(issuers) == 1 else None,
        vct=next(iter(vcts)) if len(vcts) == 1 else None,
        disclosed=tuple(disclosed),
    )


def request_details(pending: PendingRequest) -> dict[str, str]:
    """What the audit entry records about the request (the auditor needs all of it)."""
    return {
        "nonce": pending.nonce,
        "audience": pending.verifier_id,
        "expires_at": str(pending.expires_at),
        "query": pending.query_json(),
        "purpose": pending.purpose,
        "citizen": pending.citizen,
    }


class Verifier:
    """The verifier agency's checks, with their audit trail.

    Args:
        verifier_id: Our id on the trust list (the ``aud`` presentations must name).
        trust: Returns the current verified trust list.
        nonces: The nonce store the requests' nonces were issued from.
        audit: The audit log.
        status: The status list cache.
        evidence: Where trust list and status list tokens are kept for auditors.
        options: Policy knobs.
    """

    def __init__(
        self,
        *,
        verifier_id: str,
        trust: TrustSource,
        nonces: NonceStore,
        audit: AuditLog,
        status: StatusCache,
        evidence: EvidenceArchive,
        options: VerifierOptions | None = None,
    ) -> None:
        self._verifier_id = verifier_id
        self._trust = trust
        self._nonces = nonces
        self._audit = audit
        self._status = status
        self._evidence = evidence
        self._options = options or VerifierOptions()

    async def verify_response(
        self, pending: PendingRequest, vp_token: VpToken, *, now: int
    ) -> VerificationResult:
        """Verify the presentations answering ``pending`` and record the verdict.

        A failed check is a result (``verified`` false, its ``error_code``), not an
        exception.

        Raises:
            StoreError: a store or the evidence archive failed (nothing was decided).
        """
        tracker = _Versions()
        credentials: dict[str, tuple[AcceptedCredential, ...]] = {}
        try:
            parts = await self._check(pending, vp_token, now, tracker, credentials)
            outcome = verified_outcome(parts)
            error: OnceOnlyError | None = None
        except StoreError:
            raise
        except OnceOnlyError as exc:
            outcome, error, credentials = VerificationOutcome.rejected(exc.code), exc, {}
        entry = self._audit.append(
            kind=EntryKind.VERIFICATION,
            exchange_id=pending.exchange_id,
            now=now,
            presentation=json_dumps_compact({k: list(v) for k, v in vp_token.items()}),
            outcome=outcome,
            trust_list=tracker.trust_list,
            status_lists=tuple(tracker.status_lists),
            details=request_details(pending),
        )
        return VerificationResult(
            exchange_id=pending.exchange_id,
            verified=error is None,
            error_code=None if error is None else error.code,
            message=None if error is None else error.message,
            credentials=credentials,
            trust_list=tracker.trust_list,
            status_lists=tuple(tracker.status_lists),
            audit_seq=entry.seq,
            audit_hash=entry.entry_hash,
        )

    async def _check(
        self,
        pending: PendingRequest,
        vp_token: VpToken,
        now: int,
        tracker: _Versions,
        credentials: dict[str, tuple[AcceptedCredential, ...]],
    ) -> list[tuple[str, VerifiedCredential]]:
        self._nonces.consume(
            pending.nonce, now=now, exchange_id=pending.exchange_id, audience=self._verifier_id
        )
        try:
            current = self._trust(now)
        except StoreError:
            raise
        except OnceOnlyError as exc:
            # e.g. the cached list expired: the verifier's problem, not the credential's.
            raise TrustError(
                "the verifier's trust list is not usable", detail={"cause": exc.code}
            ) from exc
        if current is None:
            raise TrustError("the verifier holds no valid trust list")
        tracker.trust_list = TrustListVersion(
            sequence=current.trust_list.seq, hash=self._evidence.put(current.token)
        )
        check_registration(current.trust_list, self._verifier_id, pending.query, pending.purpose)
        parts = check_presentations(
            vp_token,
            query=pending.query,
            trust_list=current.trust_list,
            audience=self._verifier_id,
            nonce=pending.nonce,
            now=now,
            options=self._options,
        )
        accepted: dict[str, list[AcceptedCredential]] = {}
        for query_id, credential in parts:
            checked: StatusChecked | None = None
            if credential.status is not None:
                reference = status_reference_from_claims(credential.claims)
                issuer = current.trust_list.agency(credential.issuer)
                assert issuer is not None  # the issuer key resolver found it
                cached = await self._status.get(
                    reference.uri,
                    signer=issuer,
                    key=status_key_resolver(current.trust_list, credential.issuer),
                    trust_version=tracker.trust_list.hash,
                    now=now,
                )
                tracker.add_status(reference.uri, self._evidence.put(cached.token))
                check_status(reference, cached.verified, issuer_key=cached.key, now=now)
                checked = StatusChecked(uri=reference.uri, idx=reference.idx, list_hash=cached.hash)
            accepted.setdefault(query_id, []).append(
                accepted_credential(query_id, credential, checked)
            )
        credentials.update({qid: tuple(items) for qid, items in accepted.items()})
        return parts

    def record_refusal(
        self, pending: PendingRequest, refusal_code: str, *, now: int
    ) -> VerificationResult:
        """Record that the citizen declined; the request's nonce is used up.

        Raises:
            StoreError: a store failed.
        """
        try:
            self._nonces.consume(
                pending.nonce, now=now, exchange_id=pending.exchange_id, audience=self._verifier_id
            )
            code, message = refusal_code, "the citizen declined the request"
        except StoreError:
            raise
        except OnceOnlyError as exc:
            code, message = exc.code, exc.message
        details = request_details(pending) | {"refusal": refusal_code}
        entry = self._audit.append(
            kind=EntryKind.RESPONSE,
            exchange_id=pending.exchange_id,
            now=now,
            outcome=VerificationOutcome.rejected(code),
            details=details,
        )
        return VerificationResult(
            exchange_id=pending.exchange_id,
            verified=False,
            error_code=code,
            message=message,
            refused=code == refusal_code,
            audit_seq=entry.seq,
            audit_hash=entry.entry_hash,
        )


@dataclass
class _Versions:
    trust_list: TrustListVersion | None = None
    status_lists: list[StatusListVersion] = field(default_factory=list)

    def add_status(self, uri: str, digest: str) -> None:
        version = StatusListVersion(uri=uri, hash=digest)
        if version not in self.status_lists:
            self.status_lists.append(version)


__all__ = [
    "AcceptedCredential",
    "StatusChecked",
    "TrustSource",
    "VerificationResult",
    "Verifier",
    "VerifierOptions",
    "VpToken",
    "check_presentations",
    "check_registration",
    "status_key_resolver",
    "token_hash",
    "verified_outcome",
]
