"""Contents of the exchange events: offer, request, issue, presentation, status, error.

Each class names its event type in ``EVENT_TYPE`` (without the namespace prefix);
:mod:`onceonly.protocol.parse` maps full Matrix event types to these classes.
Models validate shape and bounds only. Signatures (proofs, SD-JWTs) are checked
by the receiving service with the keys it trusts, never here.
"""

from __future__ import annotations

import enum
from typing import Annotated, ClassVar, Literal, Self

from pydantic import Field, StringConstraints, model_validator

from onceonly.protocol.fields import (
    Attachment,
    Code,
    CompactJwsStr,
    Content,
    EventIdStr,
    ExchangeContent,
    ExchangeIdStr,
    Frozen,
    LocalizedText,
    MessageContent,
    Nonce,
    PartyId,
    SdJwtStr,
    ShortText,
    Timestamp,
    VctStr,
)
from onceonly.query.model import DcqlQuery, Identifier

KEY_PROOF_TYP = "openid4vci-proof+jwt"
"""JOSE ``typ`` of the holder's proof of possession in a credential request (OpenID4VCI 1.0)."""

# --- holder key -----------------------------------------------------------------

B64UrlCoordinate = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{43}$")]


class EcPublicJwk(Frozen):
    """A P-256 public key as a JWK (no private members: ``extra`` is forbidden)."""

    kty: Literal["EC"]
    crv: Literal["P-256"]
    x: B64UrlCoordinate
    y: B64UrlCoordinate
    kid: Annotated[str, StringConstraints(max_length=128)] | None = None
    alg: Literal["ES256", "ESP256"] | None = None


class OkpPublicJwk(Frozen):
    """An Ed25519 public key as a JWK (no private members)."""

    kty: Literal["OKP"]
    crv: Literal["Ed25519"]
    x: B64UrlCoordinate
    kid: Annotated[str, StringConstraints(max_length=128)] | None = None
    alg: Literal["EdDSA", "Ed25519"] | None = None


PublicJwk = Annotated[EcPublicJwk | OkpPublicJwk, Field(discriminator="kty")]
"""A holder public key: P-256 or Ed25519, the two algorithms we accept."""


# --- issuance -------------------------------------------------------------------


class CredentialDisplay(Frozen):
    """How the offered credential is presented to the citizen.

    Attributes:
        name: Credential name, e.g. "Meldebescheinigung" / "Registration certificate".
        issuer_name: The agency's name.
        description: Optional longer explanation.
    """

    name: LocalizedText
    issuer_name: LocalizedText
    description: LocalizedText | None = None


class CredentialOffer(ExchangeContent):
    """Agency to citizen: "we can issue you this credential" (e.g. after a move).

    Attributes:
        issuer_id: The agency's trust-list id; the wallet uses it as ``aud`` of its proof.
        vct: The credential type offered.
        display: Names to show.
        reason_code: Why it is offered now, e.g. ``registered_move``.
        reason: The same reason in words.
        offer_expires_at: After this the offer (and its nonce) is void.
        nonce: The single-use challenge the request's proof must sign.
    """

    EVENT_TYPE: ClassVar[str] = "credential.offer"

    issuer_id: PartyId
    vct: VctStr
    display: CredentialDisplay
    reason_code: Code
    reason: LocalizedText
    offer_expires_at: Timestamp
    nonce: Nonce


class CredentialRequest(ExchangeContent):
    """Citizen to agency: "issue me this credential, bound to this key".

    Attributes:
        vct: The credential type requested.
        offer_event_id: The offer answered, if any (then ``exchange_id`` is the offer's).
        holder_jwk: The key the credential will be bound to (``cnf.jwk``).
        proof: OpenID4VCI 1.0 JWT proof: compact JWS, ``typ`` ``openid4vci-proof+jwt``,
            ``holder_jwk`` repeated as the ``jwk`` header, signed with that key over
            ``{"aud": issuer id, "nonce": ..., "iat": ...}``.
        identity_presentation: Optional SD-JWT+KB of the citizen's PID, so the
            agency can bind the request to a register identity.
    """

    EVENT_TYPE: ClassVar[str] = "credential.request"

    vct: VctStr
    offer_event_id: EventIdStr | None = None
    holder_jwk: PublicJwk
    proof: CompactJwsStr
    identity_presentation: SdJwtStr | None = None


class CredentialIssue(ExchangeContent):
    """Agency to citizen: the signed credential, inline or as an encrypted attachment.

    Exactly one of ``credential`` and ``credential_file`` is present.

    Attributes:
        vct: Type of the credential delivered.
        request_event_id: The request answered, if any.
        credential: The SD-JWT VC (issuer-signed JWT and all disclosures).
        credential_file: The same, as an encrypted file of media type
            ``application/dc+sd-jwt``.
    """

    EVENT_TYPE: ClassVar[str] = "credential.issue"
    ONE_OF_REQUIRED: ClassVar[tuple[str, ...]] = ("credential", "credential_file")

    vct: VctStr
    request_event_id: EventIdStr | None = None
    credential: SdJwtStr | None = None
    credential_file: Attachment | None = None

    @model_validator(mode="after")
    def _one_delivery(self) -> Self:
        if (self.credential is None) == (self.credential_file is None):
            raise ValueError("exactly one of credential and credential_file is required")
        if self.credential_file and self.credential_file.mimetype != "application/dc+sd-jwt":
            raise ValueError("credential_file must have media type application/dc+sd-jwt")
        return self


# --- presentation ---------------------------------------------------------------


class Purpose(Frozen):
    """Why a verifier asks: a code its trust-list registration allows, plus words.

    Attributes:
        code: Registered purpose code, e.g. ``child_benefit_application``.
        text: The purpose in German and English.
    """

    code: Code
    text: LocalizedText


class PresentationRequest(ExchangeContent):
    """Verifier to citizen: "show me these claims, for this purpose".

    Attributes:
        verifier_id: The verifier's trust-list id; presentations use it as KB-JWT ``aud``.
        verifier_name: Name shown to the citizen.
        query: What to present (DCQL).
        purpose: Why.
        nonce: Single-use value the KB-JWT must carry.
        expires_at: Responses after this are refused.
    """

    EVENT_TYPE: ClassVar[str] = "presentation.request"

    verifier_id: PartyId
    verifier_name: LocalizedText
    query: DcqlQuery
    purpose: Purpose
    nonce: Nonce
    expires_at: Timestamp


class RefusalCode(enum.StrEnum):
    """Why a citizen's wallet does not present (each is an error code too).

    ``consent_denied`` is the only code that depends on the citizen's credentials:
    it also stands for "nothing fits", which has no code of its own so that no
    verifier can tell the two apart (OpenID4VP §14.6.1).
    """

    CONSENT_DENIED = "consent_denied"
    NOT_AUTHORIZED_TO_REQUEST = "not_authorized_to_request"
    REQUEST_EXPIRED = "request_expired"
    UNTRUSTED_PARTY = "untrusted_party"


class Refusal(Frozen):
    """A declined presentation request.

    Attributes:
        code: The reason, machine-readable.
        message: Optional words from the citizen or wallet.
    """

    code: RefusalCode
    message: LocalizedText | None = None


PresentationList = tuple[SdJwtStr, ...]


class PresentationResponse(ExchangeContent):
    """Citizen to verifier: presentations keyed by credential query id, or a refusal.

    Exactly one of ``vp_token``, ``vp_token_file`` and ``refusal`` is present.

    Attributes:
        request_event_id: The request answered, if known.
        vp_token: Query id to SD-JWT+KB presentations (OpenID4VP ``vp_token`` shape).
        vp_token_file: The same JSON object as an encrypted file (``application/json``).
        refusal: Why nothing is presented.
    """

    EVENT_TYPE: ClassVar[str] = "presentation.response"
    ONE_OF_REQUIRED: ClassVar[tuple[str, ...]] = ("vp_token", "vp_token_file", "refusal")

    request_event_id: EventIdStr | None = None
    vp_token: (
        dict[Identifier, Annotated[PresentationList, Field(min_length=1, max_length=8)]] | None
    ) = Field(default=None, min_length=1, max_length=16)
    vp_token_file: Attachment | None = None
    refusal: Refusal | None = None

    @model_validator(mode="after")
    def _one_answer(self) -> Self:
        given = [x is not None for x in (self.vp_token, self.vp_token_file, self.refusal)]
        if sum(given) != 1:
            raise ValueError("exactly one of vp_token, vp_token_file and refusal is required")
        if self.vp_token_file and self.vp_token_file.mimetype != "application/json":
            raise ValueError("vp_token_file must have media type application/json")
        return self


# --- outcome and errors -----------------------------------------------------------


class Outcome(enum.StrEnum):
    """Outcomes announced in ``exchange.status``."""

    ACCEPTED = "accepted"
    VERIFIED = "verified"
    REJECTED = "rejected"
    REVOKED = "revoked"
    REFUSED = "refused"
    EXPIRED = "expired"


class ExchangeStatus(ExchangeContent):
    """Either party: how the exchange ended (or that it was acknowledged).

    Attributes:
        outcome: What happened.
        reason_code: For negative outcomes, the error code that explains it.
        related_event_id: The event this status is about.
    """

    EVENT_TYPE: ClassVar[str] = "exchange.status"

    outcome: Outcome
    reason_code: Code | None = None
    related_event_id: EventIdStr | None = None


class ErrorContent(MessageContent):
    """Either party: an event could not be processed.

    Attributes:
        code: A stable code from the error table (unknown codes are kept as-is).
        message: English explanation, safe to show (no claim values, no secrets).
        exchange_id: The exchange, when the offending event carried a readable one.
        event_id: The offending event, when known.
    """

    EVENT_TYPE: ClassVar[str] = "error"

    code: Code
    message: ShortText
    exchange_id: ExchangeIdStr | None = None
    event_id: EventIdStr | None = None


EXCHANGE_EVENTS: tuple[type[Content], ...] = (
    CredentialOffer,
    CredentialRequest,
    CredentialIssue,
    PresentationRequest,
    PresentationResponse,
    ExchangeStatus,
    ErrorContent,
)
"""Every content class that takes part in an exchange, in protocol order."""
