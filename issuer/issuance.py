"""Answering a ``credential.request``: check it, bind it to a register person, sign, record.

The steps (spec sections 6.2, 11 and 13), each failing with a typed error the
service returns as an ``error`` event, so that nothing is issued:

1. **Offer, once.** An answer to an offer consumes the offer first, valid request
   or not (:class:`~issuer.nonce_ledger.NonceLedger`): a retry would be a new
   guess at its nonce. The offer row was written when the agency made the offer.
2. **Type.** The agency issues the ``vct`` (configuration) and the trust list
   lets it (``may_issue``); an answer to an offer asks for the offered type.
3. **Proof of possession** of ``holder_jwk``: ``typ``, ``aud`` (this agency),
   ``nonce``, ``iat`` freshness (:func:`~onceonly.protocol.verify_key_proof`).
4. **Identity evidence** (:func:`~issuer.identity_binding.check_identity_evidence`):
   an account bound by the identity agency's eID check, or a PID presentation that
   verifies (KB-JWT ``aud`` = this agency, ``nonce`` = the key proof's nonce,
   ``onceonly_context`` = ``identity_binding``).
5. **Wallet nonce, once.** A request without an offer records its wallet-chosen
   nonce only now: a stranger's requests fail the checks above and store nothing,
   and the ledger's expired rows are purged on a schedule.
6. **Identity binding** (:func:`~issuer.identity_binding.bind_identity`): the PID's
   status, exactly one register person, the offer's person, the account binding.
7. **Claims** from the register, signed as an SD-JWT VC bound to ``holder_jwk``
   (disclosable paths from the type metadata, a fresh status list entry, validity
   from the configuration), checked against the type's JSON Schema.
8. **Record** the issuance (who, type, status entry, digest; no claim values).
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from pydantic import ValidationError

from issuer.config import AgencyConfig
from issuer.identity_binding import BoundIdentity, bind_identity, check_identity_evidence
from issuer.issuance_log import IssuanceLog, IssuanceRecord, credential_digest
from issuer.nonce_ledger import NonceLedger, OfferRecord
from issuer.offers import credential_display, require_issued_type
from issuer.register import PID_VCT, Register
from issuer.status_registry import StatusRegistry
from onceonly import jose
from onceonly.credential_types import ClaimPath, get_type
from onceonly.errors import (
    InvalidClaim,
    IssuanceError,
    MalformedInput,
    UnexpectedEvent,
    UnsupportedCredentialType,
)
from onceonly.jose import b64url_encode
from onceonly.protocol import CredentialIssue, CredentialRequest, verify_key_proof
from onceonly.protocol.bodies import build_credential_issue
from onceonly.protocol.proofs import CLOCK_LEEWAY, KEY_PROOF_MAX_AGE
from onceonly.sdjwt import issue_sd_jwt_vc, parse_sd_jwt
from onceonly.status_list import StatusReference
from onceonly.trust import TrustList
from onceonly.types import UserId, Vct

logger = logging.getLogger(__name__)

PidStatusCheck = Callable[[StatusReference, str], Awaitable[None]]
"""``(reference, status issuer id)``: raise unless the PID's status entry is valid."""

_CREDENTIAL_ID_BYTES: Final = 16
_PROOF_NONCE_MAX_CHARS: Final = 128


@dataclass(frozen=True)
class IssuerContext:
    """Everything one agency needs to answer requests (built by the service or the API).

    Attributes:
        config: The agency configuration (``agency_id`` is ``iss`` and proof ``aud``).
        register: The agency's register.
        status_registry: Allocates status list entries.
        issuance_log: Records issuances.
        ledger: Single-use nonces and offers.
        signing_key: The active signing key.
        trust_list: The verified trust list (may the agency issue? whose PIDs count?).
        pid_status_check: Checks a presented PID's status list entry.
        random_bytes: Randomness for salts, decoys and ids.
    """

    config: AgencyConfig
    register: Register
    status_registry: StatusRegistry
    issuance_log: IssuanceLog
    ledger: NonceLedger
    signing_key: jose.PrivateKey
    trust_list: TrustList
    pid_status_check: PidStatusCheck
    random_bytes: Callable[[int], bytes] = secrets.token_bytes

    @property
    def is_identity_agency(self) -> bool:
        """Whether this agency issues PIDs (and so binds identities by eID check)."""
        return PID_VCT in self.config.issues()


@dataclass(frozen=True)
class IssuedCredential:
    """The result of a successful request.

    Attributes:
        content: The ``credential.issue`` content to send.
        sd_jwt: The credential (issuer JWT and every disclosure).
        record: What the issuance log recorded.
        identity: The binding that justified it.
    """

    content: CredentialIssue
    sd_jwt: str
    record: IssuanceRecord
    identity: BoundIdentity


def proof_nonce(proof: str) -> str:
    """The ``nonce`` a key proof claims, read *before* its signature is checked.

    Only used to find which nonce to consume; :func:`verify_key_proof` then checks
    the signature over exactly this nonce.

    Raises:
        MalformedInput: not a compact JWS with a string ``nonce`` of a sane length.
    """
    jws = jose.parse_compact(proof, max_bytes=16 * 1024)
    nonce = jws.payload.get("nonce")
    if not isinstance(nonce, str) or not 0 < len(nonce) <= _PROOF_NONCE_MAX_CHARS:
        raise MalformedInput("key proof has no usable nonce")
    return nonce


def consume_answered_offer(
    ctx: IssuerContext, request: CredentialRequest, *, nonce: str, sender: UserId, now: int
) -> OfferRecord | None:
    """Step 1: use up the offer ``request`` answers, if it answers one.

    Raises:
        UnknownExchange: ``offer_event_id`` is set but this agency made no such offer
            to ``sender``.
        ReplayDetected, RequestExpired, NonceMismatch: see :class:`NonceLedger`.
    """
    offer = ctx.ledger.offer(request.exchange_id)
    if offer is None and request.offer_event_id is None:
        return None
    # consume_offer raises UnknownExchange when there is no offer for sender.
    return ctx.ledger.consume_offer(
        request.exchange_id, nonce=nonce, matrix_user_id=sender, now=now
    )


def consume_wallet_nonce(ctx: IssuerContext, nonce: str, *, sender: UserId, now: int) -> None:
    """Step 5: record a wallet-chosen nonce, once (call only after the signatures verified).

    Raises:
        ReplayDetected: the nonce was used before.
    """
    ctx.ledger.consume_wallet_nonce(
        nonce, matrix_user_id=sender, now=now, window=KEY_PROOF_MAX_AGE + 2 * CLOCK_LEEWAY
    )


def check_requested_type(ctx: IssuerContext, vct: str, offer: OfferRecord | None, now: int) -> None:
    """Step 2: the agency issues ``vct``, the trust list agrees, and it is the offered type.

    Raises:
        UnsupportedCredentialType: not configured or not allowed by the trust list.
        UnexpectedEvent: an answer to an offer asks for another type.
    """
    require_issued_type(ctx.config, vct)
    if not ctx.trust_list.may_issue(ctx.config.agency_id, vct, now):
        raise UnsupportedCredentialType(
            "the trust list does not allow this agency to issue the requested type",
            detail={"vct": vct},
        )
    if offer is not None and offer.vct != vct:
        raise UnexpectedEvent("the request asks for another type than the offer")


def disclosable_paths(claims: Mapping[str, Any], paths: Iterable[ClaimPath]) -> list[ClaimPath]:
    """The type's disclosable paths that name at least one claim of ``claims``.

    Optional claims (a birth name, a place of birth) are absent for some people;
    the SD-JWT builder refuses a disclosable path that names nothing.
    """

    def present(value: Any, path: ClaimPath) -> bool:
        if not path:
            return True
        head, rest = path[0], path[1:]
        if head is None:
            return isinstance(value, list) and any(present(item, rest) for item in value)
        if isinstance(head, int):
            return isinstance(value, list) and 0 <= head < len(value) and present(value[head], rest)
        return isinstance(value, Mapping) and head in value and present(value[head], rest)

    return [path for path in paths if present(claims, path)]


def sign_credential(
    ctx: IssuerContext,
    *,
    person_id: str,
    vct: Vct,
    holder_key: jose.PublicKey,
    now: int,
) -> tuple[str, StatusReference, int]:
    """Step 5: build, sign and schema-check the credential.

    Returns:
        The serialized SD-JWT VC, its status reference, and its ``exp``.

    Raises:
        UnknownSubject: the register holds no values of ``vct`` for the person.
        IssuanceError: the signed credential does not satisfy the type's schema.
    """
    as_of = datetime.fromtimestamp(now, UTC).date()
    claims = ctx.register.claims_for(person_id, vct, as_of=as_of)
    credential_type = get_type(vct)
    expires_at = now + ctx.config.issued_type(vct).validity_seconds
    reference = ctx.status_registry.allocate(vct=vct, issued_at=now)
    issued = issue_sd_jwt_vc(
        issuer=ctx.config.agency_id,
        vct=vct,
        claims=claims,
        disclosable=disclosable_paths(claims, credential_type.disclosable_paths),
        holder_key=holder_key,
        signing_key=ctx.signing_key,
        now=now,
        expires_at=expires_at,
        status=reference.to_claim(),
        random_bytes=ctx.random_bytes,
        type_metadata=credential_type.type_metadata,
    )
    sd_jwt = issued.serialize()
    processed = dict(parse_sd_jwt(sd_jwt).claims)
    processed.pop("_sd_alg", None)
    try:
        credential_type.validate(processed)
    except InvalidClaim as exc:
        # The entry stays allocated but no credential carries it; revoke it so the
        # index can never vouch for anything. The schema message may quote a claim
        # value: it goes to our log only, never into the error the citizen receives.
        ctx.status_registry.revoke(reference, now=now)
        logger.error("register data for %s fails the %s schema: %s", person_id, vct, exc)
        raise IssuanceError("the register's data for this credential is not valid") from None
    return sd_jwt, reference, expires_at


async def handle_credential_request(
    ctx: IssuerContext,
    request: CredentialRequest,
    *,
    sender: UserId,
    now: int,
    event_id: str | None = None,
    before_signing: Callable[[BoundIdentity], None] | None = None,
) -> IssuedCredential:
    """Answer a parsed ``credential.request`` from Matrix user ``sender``.

    Args:
        ctx: The agency.
        request: The parsed request content.
        sender: The Matrix account that sent it (authenticated by the homeserver).
        now: Current Unix time.
        event_id: The request's event id (echoed as ``request_event_id``).
        before_signing: Called once the identity is bound and before anything is
            signed; raising there refuses the request (the service checks that the
            citizen's devices are known, spec section 12).

    Returns:
        The ``credential.issue`` content and what was recorded.

    Raises:
        OnceOnlyError: a subclass naming the first failed step (see the module
            docstring); nothing is issued or recorded then.
    """
    nonce = proof_nonce(request.proof)
    offer = consume_answered_offer(ctx, request, nonce=nonce, sender=sender, now=now)
    check_requested_type(ctx, request.vct, offer, now)
    verify_key_proof(
        request.proof,
        request.holder_jwk.model_dump(exclude_none=True),
        audience=ctx.config.agency_id,
        nonce=nonce,
        now=now,
    )
    evidence = check_identity_evidence(ctx, request, sender=sender, nonce=nonce, now=now)
    if offer is None:
        consume_wallet_nonce(ctx, nonce, sender=sender, now=now)
    identity = await bind_identity(ctx, request, evidence, sender=sender, offer=offer, now=now)
    if before_signing is not None:
        before_signing(identity)
    holder_key = jose.public_key_from_jwk(request.holder_jwk.model_dump(exclude_none=True))
    vct = Vct(request.vct)
    sd_jwt, reference, expires_at = sign_credential(
        ctx, person_id=identity.person_id, vct=vct, holder_key=holder_key, now=now
    )
    display = credential_display(ctx.config, vct)
    try:
        content = build_credential_issue(
            exchange_id=request.exchange_id,
            vct=vct,
            credential_name=display.name,
            issuer_name=display.issuer_name,
            credential=sd_jwt,
            request_event_id=event_id,
        )
    except ValidationError as exc:
        raise IssuanceError("the credential does not fit a credential.issue content") from exc
    record = IssuanceRecord(
        credential_id="cred_" + b64url_encode(ctx.random_bytes(_CREDENTIAL_ID_BYTES)),
        person_id=identity.person_id,
        matrix_user_id=sender,
        vct=vct,
        status_list_uri=reference.uri,
        status_index=reference.idx,
        issued_at=now,
        expires_at=expires_at,
        credential_digest=credential_digest(sd_jwt),
        signing_kid=ctx.signing_key.kid,
    )
    ctx.issuance_log.record(record)
    return IssuedCredential(content=content, sd_jwt=sd_jwt, record=record, identity=identity)
