"""Receiving credentials: nothing is stored before it has passed every check.

A ``credential.issue`` answers a request the wallet made, so the wallet knows
what to expect: the agency it asked, the type it asked for and the holder key
it created for that request. :func:`verify_issued_credential` checks

* the issuer's signature, with a key the trust list gives for the credential's
  ``iss`` and ``iat`` (never a key from the token itself), and that this agency
  may issue this ``vct`` - and that it is the agency the request went to;
* key binding: ``cnf.jwk`` is the public half of the holder key created for the
  request (not merely "some key": a credential bound to another key could not be
  presented, or would be someone else's);
* validity (``exp``/``nbf``/``iat`` against ``now``) and every RFC 9901 rule;
* the credential type's JSON Schema.

:func:`receive_credential` runs the checks for one event, stores the credential
on success and always returns the reply for the issuer: ``exchange.status``
``accepted``, or an ``error`` whose message names the failed check but never a
claim value (the typed error, with its full message, is kept for the citizen).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from onceonly import jose
from onceonly.credential_types import all_types, type_metadata
from onceonly.errors import (
    InvalidClaim,
    KeyBindingError,
    MalformedInput,
    OnceOnlyError,
    StoreCorrupt,
    StoreError,
    UnexpectedEvent,
    UnknownExchange,
    UntrustedIssuer,
    UntrustedParty,
)
from onceonly.protocol.bodies import build_error, build_exchange_status
from onceonly.protocol.events import CredentialIssue, ErrorContent, ExchangeStatus, Outcome
from onceonly.sdjwt import VerificationPolicy, VerifiedCredential, verify_presentation
from onceonly.trust import TrustList
from onceonly.types import Vct
from wallet.records import PendingOffer, StatusReference
from wallet.store import WalletStore

_SAFE_MESSAGES: Final[dict[str, str]] = {
    "untrusted_issuer": "the credential's issuer may not issue this type",
    "unknown_key": "the credential is not signed with a key on the trust list",
    "invalid_signature": "the credential's signature does not verify",
    "key_binding": "the credential is not bound to the key of the request",
    "expired": "the credential has already expired",
    "not_yet_valid": "the credential is not valid yet",
    "invalid_claim": "the credential's claims do not match its type",
    "invalid_disclosure": "a disclosure of the credential is invalid",
    "unexpected_event": "no credential was expected in this exchange",
    "unknown_exchange": "the wallet made no request in this exchange",
    "untrusted_party": "the sender is not the agency the request went to",
}
"""Messages sent to the issuer, per error code: fixed texts, so no value can leak."""


@dataclass(frozen=True)
class AwaitedCredential:
    """What the wallet expects in an issuance exchange it opened or answered.

    Attributes:
        exchange_id: The exchange.
        issuer_id: The agency's trust-list id the request went to.
        vct: The credential type requested.
        holder_key_id: The holder key created for the request.
        issuer_user: The agency's Matrix account, if known.
    """

    exchange_id: str
    issuer_id: str
    vct: str
    holder_key_id: str
    issuer_user: str | None = None

    @classmethod
    def from_record(cls, record: PendingOffer) -> AwaitedCredential:
        """The expectation a ``requested`` exchange record describes.

        Raises:
            UnexpectedEvent: the exchange is not waiting for a credential.
        """
        if record.state != "requested" or record.holder_key_id is None:
            raise UnexpectedEvent(
                f"exchange {record.offer_id} is {record.state}, not waiting for a credential",
                detail={"exchange_id": record.offer_id, "state": record.state},
            )
        return cls(
            exchange_id=record.offer_id,
            issuer_id=record.issuer,
            vct=record.vct,
            holder_key_id=record.holder_key_id,
            issuer_user=record.issuer_user,
        )


def verify_issued_credential(
    text: str,
    *,
    trust: TrustList,
    awaited: AwaitedCredential,
    holder_key: jose.PublicKey,
    now: int,
) -> VerifiedCredential:
    """Verify a received SD-JWT VC completely, before the wallet keeps it.

    Args:
        text: The credential as delivered (issuer JWT and every disclosure, ending ``~``).
        trust: The current, verified trust list.
        awaited: What the request asked for.
        holder_key: The public half of ``awaited.holder_key_id``.
        now: Current Unix time.

    Raises:
        MalformedInput, InputTooLarge: not an SD-JWT, or it carries a KB-JWT.
        UntrustedIssuer, UnknownKey, InvalidSignature, UnsupportedAlgorithm,
            InvalidTokenType: the signature is not by an agency allowed to issue it,
            or not by the agency asked.
        InvalidDisclosure, InvalidClaim, Expired, NotYetValid: RFC 9901 / SD-JWT VC
            checks, the wrong ``vct``, or the type's JSON Schema.
        KeyBindingError: ``cnf.jwk`` is not ``holder_key``.
    """
    if not text.endswith("~"):
        raise MalformedInput("an issued credential must end with '~' and carry no KB-JWT")
    # type_metadata: the claim sd rules and vct#integrity checked against our copy.
    policy = VerificationPolicy(
        require_key_binding=False, expected_vct=awaited.vct, type_metadata=type_metadata
    )
    verified = verify_presentation(
        text, issuer_key=trust.issuer_key_resolver(), policy=policy, now=now
    )
    asked = trust.agency(awaited.issuer_id)
    signer = trust.agency(verified.issuer)
    if asked is None or signer is None or signer.id != asked.id:
        raise UntrustedIssuer(
            "the credential was signed by another agency than the one asked",
            detail={"iss": verified.issuer, "asked": awaited.issuer_id},
        )
    if not trust.may_issue(verified.issuer, verified.vct, at=int(verified.issued_at)):
        raise UntrustedIssuer(
            f"{verified.issuer} may not issue {verified.vct}",
            detail={"iss": verified.issuer, "vct": verified.vct},
        )
    bound = verified.holder_key
    if bound is None or bound.thumbprint() != holder_key.thumbprint():
        raise KeyBindingError("the credential is not bound to the key created for this request")
    credential_type = all_types().get(Vct(verified.vct))
    if credential_type is None:
        raise InvalidClaim(
            f"credential type {verified.vct!r} is unknown to this wallet",
            detail={"claim": "vct"},
        )
    credential_type.validate(verified.claims)
    return verified


def status_reference(verified: VerifiedCredential) -> StatusReference | None:
    """The credential's status list entry, if it names one (shape already schema-checked).

    Raises:
        InvalidClaim: ``status`` is present without a usable ``status_list`` entry.
    """
    if verified.status is None:
        return None
    entry: Any = verified.status.get("status_list")
    if not isinstance(entry, dict):
        raise InvalidClaim("'status' has no 'status_list' object", detail={"claim": "status"})
    idx, uri = entry.get("idx"), entry.get("uri")
    if type(idx) is not int or idx < 0 or not isinstance(uri, str) or not uri:
        raise InvalidClaim("'status.status_list' needs 'idx' and 'uri'", detail={"claim": "status"})
    return StatusReference(idx=idx, uri=uri)


@dataclass(frozen=True)
class Receipt:
    """What happened to one ``credential.issue``.

    Attributes:
        reply: What to send the issuer (``exchange.status`` accepted, or ``error``).
        credential_id: The stored credential, when accepted.
        error: Why it was rejected (full message, for the citizen only).
    """

    reply: ExchangeStatus | ErrorContent
    credential_id: str | None = None
    error: OnceOnlyError | None = None

    @property
    def accepted(self) -> bool:
        """Whether the credential was stored."""
        return self.credential_id is not None


def rejection(
    error: OnceOnlyError, *, exchange_id: str | None, event_id: str | None
) -> ErrorContent:
    """The ``error`` content telling an issuer why its credential was refused.

    The message is a fixed text per code: exception messages may quote claim values
    (a schema violation names the offending value) and must not leave the wallet.
    """
    message = _SAFE_MESSAGES.get(error.code, "the credential failed the wallet's checks")
    return build_error(code=error.code, message=message, exchange_id=exchange_id, event_id=event_id)


def receive_credential(
    store: WalletStore,
    issue: CredentialIssue,
    *,
    credential_text: str,
    sender: str,
    trust: TrustList,
    now: int,
    event_id: str | None = None,
) -> Receipt:
    """Check and store the credential of one ``credential.issue``; never raises for bad input.

    Args:
        store: The open wallet.
        issue: The parsed event content.
        credential_text: The SD-JWT (``issue.credential``, or the downloaded attachment).
        sender: The Matrix user who sent the event.
        trust: The current, verified trust list.
        now: Current Unix time.
        event_id: The event's id (named in the reply).

    Returns:
        A :class:`Receipt`; on rejection nothing was stored and the exchange is ``failed``
        (unless it was not the wallet's exchange at all, which stays untouched).
    """
    try:
        record = _exchange_record(store, issue.exchange_id)
        awaited = AwaitedCredential.from_record(record)
    except OnceOnlyError as error:
        return Receipt(
            reply=rejection(error, exchange_id=issue.exchange_id, event_id=event_id), error=error
        )
    try:
        credential_id = _verify_and_store(
            store, issue, credential_text, awaited, sender=sender, trust=trust, now=now
        )
    except OnceOnlyError as error:
        store.put_offer(record.model_copy(update={"state": "failed"}))
        return Receipt(
            reply=rejection(error, exchange_id=issue.exchange_id, event_id=event_id), error=error
        )
    store.put_offer(record.model_copy(update={"state": "accepted", "credential_id": credential_id}))
    reply = build_exchange_status(
        exchange_id=issue.exchange_id, outcome=Outcome.ACCEPTED, related_event_id=event_id
    )
    return Receipt(reply=reply, credential_id=credential_id)


def _exchange_record(store: WalletStore, exchange_id: str) -> PendingOffer:
    try:
        return store.offer(exchange_id)
    except StoreCorrupt:
        raise
    except StoreError:
        raise UnknownExchange(
            "no request of this wallet has this exchange id", detail={"exchange_id": exchange_id}
        ) from None


def _verify_and_store(
    store: WalletStore,
    issue: CredentialIssue,
    text: str,
    awaited: AwaitedCredential,
    *,
    sender: str,
    trust: TrustList,
    now: int,
) -> str:
    # The Matrix sender must be the agency asked: a credential is signed, but a
    # third party replaying someone's credential into this exchange is still wrong.
    trust.require_agency(sender, awaited.issuer_id)
    if awaited.issuer_user is not None and sender != awaited.issuer_user:
        raise UntrustedParty("the credential came from another account than the offer")
    if issue.vct != awaited.vct:
        raise InvalidClaim(
            f"delivered type {issue.vct!r} is not the requested {awaited.vct!r}",
            detail={"claim": "vct"},
        )
    holder_key = store.holder_public_key(awaited.holder_key_id)
    verified = verify_issued_credential(
        text, trust=trust, awaited=awaited, holder_key=holder_key, now=now
    )
    credential_type = all_types()[Vct(verified.vct)]
    return store.add_credential(
        sd_jwt=text,
        vct=verified.vct,
        issuer=verified.issuer,
        holder_key_id=awaited.holder_key_id,
        status=status_reference(verified),
        label=credential_type.name_de,
        received_at=now,
    )
