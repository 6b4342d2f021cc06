"""Asking for credentials: offers, credential requests, identity proofs and the device list.

Issuance from the wallet's side (``specs/protocol.md`` 6.1, 6.2, 11, 12):

* an incoming ``credential.offer`` is checked (the sender is the agency it names,
  the trust list lets that agency issue the type, the offer is still open) and
  kept as a ``pending`` exchange record until the citizen (or a policy) decides;
* a request - answering an offer or opened by the wallet - gets a **fresh holder
  key** (one per credential, so two verifiers cannot link presentations by key),
  a key proof over the offer's nonce (or a fresh wallet nonce) with ``aud`` = the
  agency, and, for every credential other than the PID, an **identity
  presentation**: the PID's identifying claims, KB-JWT bound to the same nonce and
  agency. The PID itself is requested without one: its issuer binds the account
  through the (simulated) eID check done out of band (``issuer.eid_check``);
* the device list the agencies use to decide who may receive room keys is signed
  with the holder key bound in the citizen's PID.

Randomness and time are arguments; the store is the only side effect.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Final

from onceonly.credential_types import all_types
from onceonly.errors import (
    MalformedInput,
    QueryNotSatisfied,
    RequestExpired,
    StoreError,
    UnexpectedEvent,
    UntrustedIssuer,
)
from onceonly.jose import b64url_encode
from onceonly.protocol.bodies import (
    build_credential_request,
    build_device_list,
    build_exchange_status,
)
from onceonly.protocol.events import (
    CredentialOffer,
    CredentialRequest,
    EcPublicJwk,
    ExchangeStatus,
    OkpPublicJwk,
    Outcome,
)
from onceonly.protocol.fields import LocalizedText
from onceonly.protocol.proofs import IDENTITY_BINDING_CONTEXT, make_key_proof, sign_device_list
from onceonly.protocol.rooms import DeviceEntry, DeviceList, DeviceListPayload
from onceonly.query import find_candidates, parse_query, select_presentation
from onceonly.sdjwt import present_disclosures
from onceonly.trust import TrustList
from onceonly.types import Vct
from wallet.holdings import exact_disclosures
from wallet.present import Holding, usable_holdings
from wallet.records import PendingOffer
from wallet.store import WalletStore

PID_VCT: Final = "urn:onceonly:credential:pid:1"
IDENTITY_PURPOSE: Final = "identity_binding"
"""Purpose recorded in the history for a PID shown to an issuer."""

_IDENTITY_QUERY: Final = {
    "credentials": [
        {
            "id": "pid",
            "format": "dc+sd-jwt",
            "meta": {"vct_values": [PID_VCT]},
            "claims": [
                {"id": "given_name", "path": ["given_name"]},
                {"id": "family_name", "path": ["family_name"]},
                {"id": "birthdate", "path": ["birthdate"]},
                {"id": "place_of_birth", "path": ["place_of_birth"]},
            ],
            # The place of birth disambiguates namesakes born the same day; issuers
            # match without it when the PID has none.
            "claim_sets": [
                ["given_name", "family_name", "birthdate", "place_of_birth"],
                ["given_name", "family_name", "birthdate"],
            ],
        }
    ]
}
"""What an issuer needs to find the citizen's register record (spec section 11)."""

RandomBytes = Callable[[int], bytes]


def new_exchange_id(random_bytes: RandomBytes) -> str:
    """A fresh exchange id (128 random bits)."""
    return "xch_" + b64url_encode(random_bytes(16))


def new_nonce(random_bytes: RandomBytes) -> str:
    """A fresh nonce for a request the wallet opens itself (128 random bits)."""
    return b64url_encode(random_bytes(16))


def _credential_name(vct: str) -> LocalizedText:
    kind = all_types().get(Vct(vct))
    if kind is None:
        return LocalizedText(de=vct[:1000], en=vct[:1000])
    return LocalizedText(de=kind.name_de, en=kind.name_en)


# --- offers -------------------------------------------------------------------------


def record_offer(
    store: WalletStore,
    offer: CredentialOffer,
    *,
    sender: str,
    trust: TrustList,
    now: int,
    event_id: str | None = None,
) -> PendingOffer:
    """Check an incoming offer and keep it as ``pending``.

    Raises:
        UntrustedParty: ``sender`` is not the account of ``offer.issuer_id``.
        UntrustedIssuer: that agency may not issue ``offer.vct``.
        RequestExpired: the offer is already past ``offer_expires_at``.
        UnexpectedEvent: the exchange id is already known to the wallet.
    """
    trust.require_agency(sender, offer.issuer_id)
    if not trust.may_issue(offer.issuer_id, offer.vct, now):
        raise UntrustedIssuer(f"{offer.issuer_id} may not issue {offer.vct}")
    if offer.offer_expires_at <= now:
        raise RequestExpired("the offer has already expired")
    record = PendingOffer(
        offer_id=offer.exchange_id,
        issuer=offer.issuer_id,
        vct=offer.vct,
        received_at=now,
        issuer_user=sender,
        nonce=offer.nonce,
        expires_at=offer.offer_expires_at,
        offer_event_id=event_id,
        reason=f"{offer.reason.de} / {offer.reason.en}"[:1024],
    )
    try:
        store.add_offer(
            offer_id=record.offer_id, issuer=record.issuer, vct=record.vct, received_at=now
        )
    except StoreError:
        raise UnexpectedEvent(
            "an exchange with this id is already known", detail={"exchange_id": offer.exchange_id}
        ) from None
    store.put_offer(record)
    return record


def approve_offer(store: WalletStore, offer_id: str, *, now: int) -> PendingOffer:
    """The citizen accepts a pending offer; the request is sent by the running wallet.

    Raises:
        StoreError: no such offer.
        UnexpectedEvent: the offer is not pending.
        RequestExpired: the offer has expired (it is marked so).
    """
    record = _pending(store, offer_id, now=now)
    updated = record.model_copy(update={"state": "approved"})
    store.put_offer(updated)
    return updated


def decline_offer(store: WalletStore, offer_id: str, *, now: int) -> ExchangeStatus:
    """The citizen declines a pending offer; returns the ``exchange.status`` to send.

    Raises:
        StoreError, UnexpectedEvent, RequestExpired: as :func:`approve_offer`.
    """
    _pending(store, offer_id, now=now)
    store.set_offer_state(offer_id, "declined")
    return build_exchange_status(
        exchange_id=offer_id, outcome=Outcome.REJECTED, reason_code="consent_denied"
    )


def _pending(store: WalletStore, offer_id: str, *, now: int) -> PendingOffer:
    record = store.offer(offer_id)
    if record.state != "pending":
        raise UnexpectedEvent(f"offer {offer_id} is {record.state}, not pending")
    if record.expires_at is not None and record.expires_at <= now:
        store.set_offer_state(offer_id, "expired")
        raise RequestExpired(f"offer {offer_id} has expired")
    return record


# --- requests -----------------------------------------------------------------------


def request_for_offer(
    store: WalletStore, offer_id: str, *, trust: TrustList, now: int
) -> CredentialRequest:
    """Build the ``credential.request`` answering an approved (or pending) offer.

    Creates the holder key and moves the exchange to ``requested``.

    Raises:
        StoreError: no such offer.
        UnexpectedEvent: the offer was declined or already answered.
        RequestExpired: the offer has expired.
        UntrustedIssuer: the trust list no longer lets the agency issue the type.
        QueryNotSatisfied: a PID is needed to prove the citizen's identity but none is held.
    """
    record = store.offer(offer_id)
    if record.state not in ("pending", "approved") or record.nonce is None:
        raise UnexpectedEvent(f"offer {offer_id} is {record.state}; it cannot be requested")
    if record.expires_at is not None and record.expires_at <= now:
        store.set_offer_state(offer_id, "expired")
        raise RequestExpired(f"offer {offer_id} has expired")
    return _request(store, record, nonce=record.nonce, trust=trust, now=now)


def request_credential(
    store: WalletStore,
    *,
    issuer_id: str,
    vct: str,
    trust: TrustList,
    now: int,
    random_bytes: RandomBytes,
) -> CredentialRequest:
    """Open an issuance exchange: a ``credential.request`` without an offer.

    Raises:
        UntrustedIssuer: the agency is unknown or may not issue ``vct``.
        QueryNotSatisfied: a PID is needed to prove the citizen's identity but none is held.
    """
    agency = trust.agency(issuer_id)
    if agency is None or not trust.may_issue(issuer_id, vct, now):
        raise UntrustedIssuer(f"{issuer_id} is not on the trust list for {vct}")
    nonce = new_nonce(random_bytes)
    record = PendingOffer(
        offer_id=new_exchange_id(random_bytes),
        issuer=agency.id,
        vct=vct,
        received_at=now,
        state="approved",
        issuer_user=agency.matrix_user_id,
        nonce=nonce,
    )
    return _request(store, record, nonce=nonce, trust=trust, now=now)


def _request(
    store: WalletStore, record: PendingOffer, *, nonce: str, trust: TrustList, now: int
) -> CredentialRequest:
    if not trust.may_issue(record.issuer, record.vct, now):
        raise UntrustedIssuer(f"{record.issuer} may not issue {record.vct}")
    # The identity proof comes first: without a PID there is nothing to request,
    # and no holder key should be left behind for a request never sent.
    identity = None
    if record.vct != PID_VCT:
        identity = identity_presentation(
            store,
            audience=record.issuer,
            nonce=nonce,
            trust=trust,
            now=now,
            exchange_id=record.offer_id,
            issuer_user=record.issuer_user or "",
        )
    key_id = store.new_holder_key(created_at=now)
    holder_key = store.holder_key(key_id)
    jwk = holder_key.public().to_jwk()
    holder_jwk = (EcPublicJwk if jwk.get("kty") == "EC" else OkpPublicJwk).model_validate(
        {name: value for name, value in jwk.items() if name in ("kty", "crv", "x", "y")}
    )
    content = build_credential_request(
        exchange_id=record.offer_id,
        vct=record.vct,
        holder_jwk=holder_jwk,
        proof=make_key_proof(holder_key, audience=record.issuer, nonce=nonce, now=now),
        credential_name=_credential_name(record.vct),
        offer_event_id=record.offer_event_id,
        identity_presentation=identity,
    )
    store.put_offer(record.model_copy(update={"state": "requested", "holder_key_id": key_id}))
    return content


def identity_presentation(
    store: WalletStore,
    *,
    audience: str,
    nonce: str,
    trust: TrustList,
    now: int,
    exchange_id: str | None = None,
    issuer_user: str = "",
) -> str:
    """Present the PID's identifying claims to an issuer (KB-JWT ``aud``/``nonce`` bound).

    The KB-JWT carries ``onceonly_context`` = ``identity_binding``.

    The disclosure is recorded in the citizen's history (purpose ``identity_binding``).

    Raises:
        QueryNotSatisfied: no usable PID is held.
    """
    newest = pid_holding(store, trust=trust, now=now)
    query = parse_query(_IDENTITY_QUERY)
    (candidate,) = select_presentation(find_candidates(query, [newest.held]))["pid"]
    key_id = newest.stored.holder_key_id
    if key_id is None:
        raise QueryNotSatisfied("the held PID is not bound to a wallet key")
    presentation = present_disclosures(
        newest.sd_jwt,
        disclosures=exact_disclosures(newest.sd_jwt, candidate.disclosures),
        holder_key=store.holder_key(key_id),
        aud=audience,
        nonce=nonce,
        now=now,
        # Signed as an identity binding: no verifier may take it for an answer to
        # a presentation request, whatever nonce the agency chose.
        context=IDENTITY_BINDING_CONTEXT,
    )
    store.record_disclosure(
        verifier_id=audience,
        verifier_user=issuer_user,
        credential_id=newest.stored.credential_id,
        claim_paths=candidate.revealed,
        purpose=IDENTITY_PURPOSE,
        outcome="disclosed",
        exchange_id=exchange_id,
        at=now,
    )
    return presentation


# --- device list --------------------------------------------------------------------


def pid_holding(store: WalletStore, *, trust: TrustList, now: int) -> Holding:
    """The newest usable PID (its holder key signs device lists).

    Raises:
        QueryNotSatisfied: no usable PID is held.
    """
    holdings = [h for h in usable_holdings(store, trust=trust, now=now) if h.stored.vct == PID_VCT]
    if not holdings:
        raise QueryNotSatisfied("no usable PID is held; request one from the identity agency first")
    return sorted(holdings, key=lambda h: h.stored.received_at)[-1]


def device_list(
    store: WalletStore,
    *,
    user_id: str,
    devices: Sequence[DeviceEntry],
    seq: int,
    trust: TrustList,
    now: int,
    exchange_id: str | None = None,
) -> DeviceList:
    """Sign the citizen's approved devices with the PID's holder key (``device.list``).

    Args:
        seq: Strictly higher than any list sent before (agencies ignore older ones).

    Raises:
        QueryNotSatisfied: no usable PID is held.
        MalformedInput: no devices, or more than the protocol allows.
    """
    if not devices:
        raise MalformedInput("a device list needs at least one device")
    holding = pid_holding(store, trust=trust, now=now)
    key_id = holding.stored.holder_key_id
    if key_id is None:
        raise QueryNotSatisfied("the held PID is not bound to a wallet key")
    try:
        payload = DeviceListPayload(sub=user_id, seq=seq, iat=now, devices=tuple(devices))
    except ValueError as exc:
        raise MalformedInput("the device list is invalid") from exc
    signed = sign_device_list(payload, store.holder_key(key_id))
    return build_device_list(device_list=signed, device_count=len(devices), exchange_id=exchange_id)
