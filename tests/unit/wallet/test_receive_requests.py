"""The wallet's side of issuance: offers, requests (holder keys, proofs, identity), device lists."""

from __future__ import annotations

import dataclasses
import os
from typing import Any

import pytest

from onceonly import jose
from onceonly.errors import (
    ContextMismatch,
    QueryNotSatisfied,
    RequestExpired,
    UnexpectedEvent,
    UntrustedIssuer,
    UntrustedParty,
)
from onceonly.protocol.bodies import build_credential_issue, build_credential_offer
from onceonly.protocol.events import CredentialDisplay, CredentialOffer, CredentialRequest, Outcome
from onceonly.protocol.fields import LocalizedText
from onceonly.protocol.proofs import (
    IDENTITY_BINDING_CONTEXT,
    verify_device_list,
    verify_key_proof,
)
from onceonly.protocol.rooms import DeviceEntry
from onceonly.sdjwt import VerificationPolicy, verify_presentation
from tests.unit.wallet.agencies import (
    CITIZEN,
    DAY,
    FAMILY_USER,
    IDENTITY_ID,
    IDENTITY_USER,
    NOW,
    PID,
    REGISTRY_ID,
    REGISTRY_USER,
    RESIDENCE,
    RESIDENCE_CLAIMS,
    ROGUE_ID,
    World,
    issue,
    make_world,
)
from tests.unit.wallet.test_present import hold
from wallet.receive import receive_credential
from wallet.requests import (
    approve_offer,
    decline_offer,
    device_list,
    record_offer,
    request_credential,
    request_for_offer,
)
from wallet.store import WalletStore

OFFER_ID = "xch_offer_000000000001"
OFFER_NONCE = "q0p8V0xk3mH2uUe1Yf6r9A"
TEXT = LocalizedText(de="Meldebescheinigung", en="Residence registration")


@pytest.fixture(scope="module")
def world() -> World:
    return make_world()


def offer(
    *, vct: str = RESIDENCE, issuer_id: str = REGISTRY_ID, expires: int = NOW + DAY
) -> CredentialOffer:
    return build_credential_offer(
        exchange_id=OFFER_ID,
        issuer_id=issuer_id,
        vct=vct,
        display=CredentialDisplay(name=TEXT, issuer_name=TEXT),
        reason_code="registered_move",
        reason=LocalizedText(de="Umzug gemeldet", en="registered move"),
        offer_expires_at=expires,
        nonce=OFFER_NONCE,
    )


def ask(store: WalletStore, world: World, issuer_id: str, vct: str) -> CredentialRequest:
    return request_credential(
        store, issuer_id=issuer_id, vct=vct, trust=world.trust, now=NOW, random_bytes=os.urandom
    )


def proof_nonce(request: CredentialRequest) -> str:
    nonce = jose.parse_compact(request.proof).payload["nonce"]
    assert isinstance(nonce, str)
    return nonce


def holder_jwk(request: CredentialRequest) -> dict[str, Any]:
    return request.holder_jwk.model_dump(exclude_none=True)


def test_pid_request_needs_no_identity_presentation(store: WalletStore, world: World) -> None:
    request = request_credential(
        store, issuer_id=IDENTITY_ID, vct=PID, trust=world.trust, now=NOW, random_bytes=os.urandom
    )
    assert request.identity_presentation is None and request.vct == PID
    nonce = proof_nonce(request)
    verify_key_proof(request.proof, holder_jwk(request), audience=IDENTITY_ID, nonce=nonce, now=NOW)
    record = store.offer(request.exchange_id)
    assert record.state == "requested" and record.issuer_user == IDENTITY_USER
    assert record.holder_key_id is not None
    assert store.holder_public_key(record.holder_key_id).to_jwk() == {
        k: v for k, v in holder_jwk(request).items()
    }
    assert "d" not in holder_jwk(request)


def test_every_request_gets_its_own_holder_key(store: WalletStore, world: World) -> None:
    first, second = (ask(store, world, IDENTITY_ID, PID) for _ in range(2))
    assert holder_jwk(first) != holder_jwk(second)
    assert first.exchange_id != second.exchange_id
    assert proof_nonce(first) != proof_nonce(second)


def test_request_to_an_untrusted_issuer_is_not_made(store: WalletStore, world: World) -> None:
    for issuer_id in (ROGUE_ID, "did:web:nobody.example"):
        with pytest.raises(UntrustedIssuer):
            ask(store, world, issuer_id, PID)
    assert store.holder_key_ids() == [] and store.offers() == []


def test_non_pid_request_without_a_pid_leaves_nothing_behind(
    store: WalletStore, world: World
) -> None:
    with pytest.raises(QueryNotSatisfied):
        ask(store, world, REGISTRY_ID, RESIDENCE)
    assert store.holder_key_ids() == [] and store.offers() == []


def test_identity_presentation_discloses_only_identifying_claims(
    store: WalletStore, world: World
) -> None:
    pid_id = hold(store, world, PID)
    request = ask(store, world, REGISTRY_ID, RESIDENCE)
    assert request.identity_presentation is not None
    nonce = proof_nonce(request)
    policy = VerificationPolicy(
        expected_audience=REGISTRY_ID,
        expected_nonce=nonce,
        expected_vct=PID,
        expected_context=IDENTITY_BINDING_CONTEXT,
    )
    # Signed as an identity binding: a verifier taking it for an answer refuses it.
    with pytest.raises(ContextMismatch):
        verify_presentation(
            request.identity_presentation,
            issuer_key=world.trust.issuer_key_resolver(),
            policy=dataclasses.replace(policy, expected_context=None),
            now=NOW,
        )
    verified = verify_presentation(
        request.identity_presentation,
        issuer_key=world.trust.issuer_key_resolver(),
        policy=policy,
        now=NOW,
    )
    shown = set(verified.claims) - {"iss", "iat", "exp", "vct", "cnf"}
    assert shown == {"given_name", "family_name", "birthdate", "place_of_birth"}
    # The PID key is not the new credential's key.
    assert verified.holder_key is not None
    assert verified.holder_key.to_jwk() != holder_jwk(request)
    (entry,) = store.disclosure_history()
    assert entry.purpose == "identity_binding" and entry.credential_id == pid_id
    assert entry.verifier_id == REGISTRY_ID and entry.verifier_user == REGISTRY_USER
    assert entry.exchange_id == request.exchange_id


def test_offer_accept_request_issue_round_trip(store: WalletStore, world: World) -> None:
    hold(store, world, PID)
    pending = record_offer(
        store,
        offer(),
        sender=REGISTRY_USER,
        trust=world.trust,
        now=NOW,
        event_id="$offer:gov.example",
    )
    assert pending.state == "pending" and pending.nonce == OFFER_NONCE
    assert approve_offer(store, OFFER_ID, now=NOW).state == "approved"
    request = request_for_offer(store, OFFER_ID, trust=world.trust, now=NOW)
    assert request.exchange_id == OFFER_ID and request.offer_event_id == "$offer:gov.example"
    verify_key_proof(
        request.proof, holder_jwk(request), audience=REGISTRY_ID, nonce=OFFER_NONCE, now=NOW
    )
    assert store.offer(OFFER_ID).state == "requested"
    # The agency issues to the requested key; the wallet takes it.
    credential = issue(
        world.registry_key,
        issuer=REGISTRY_ID,
        vct=RESIDENCE,
        claims=RESIDENCE_CLAIMS,
        holder=jose.public_key_from_jwk(holder_jwk(request)),
    )
    content = build_credential_issue(
        exchange_id=OFFER_ID,
        vct=RESIDENCE,
        credential_name=TEXT,
        issuer_name=TEXT,
        credential=credential,
    )
    receipt = receive_credential(
        store, content, credential_text=credential, sender=REGISTRY_USER, trust=world.trust, now=NOW
    )
    assert receipt.accepted and receipt.error is None
    assert store.offer(OFFER_ID).state == "accepted"
    with pytest.raises(UnexpectedEvent):
        request_for_offer(store, OFFER_ID, trust=world.trust, now=NOW)


def test_offers_are_checked_before_they_are_kept(store: WalletStore, world: World) -> None:
    with pytest.raises(UntrustedParty):
        record_offer(store, offer(), sender=FAMILY_USER, trust=world.trust, now=NOW)
    with pytest.raises(UntrustedIssuer):
        record_offer(store, offer(vct=PID), sender=REGISTRY_USER, trust=world.trust, now=NOW)
    with pytest.raises(RequestExpired):
        record_offer(store, offer(expires=NOW), sender=REGISTRY_USER, trust=world.trust, now=NOW)
    assert store.offers() == []
    record_offer(store, offer(), sender=REGISTRY_USER, trust=world.trust, now=NOW)
    with pytest.raises(UnexpectedEvent):
        record_offer(store, offer(), sender=REGISTRY_USER, trust=world.trust, now=NOW)
    assert len(store.offers()) == 1


def test_declined_offer_answers_rejected_and_cannot_be_requested(
    store: WalletStore, world: World
) -> None:
    record_offer(store, offer(), sender=REGISTRY_USER, trust=world.trust, now=NOW)
    status = decline_offer(store, OFFER_ID, now=NOW)
    assert status.outcome is Outcome.REJECTED and status.exchange_id == OFFER_ID
    assert store.offer(OFFER_ID).state == "declined"
    with pytest.raises(UnexpectedEvent):
        request_for_offer(store, OFFER_ID, trust=world.trust, now=NOW)
    with pytest.raises(UnexpectedEvent):
        approve_offer(store, OFFER_ID, now=NOW)


def test_expired_offer_cannot_be_requested(store: WalletStore, world: World) -> None:
    hold(store, world, PID)
    record_offer(store, offer(expires=NOW + 60), sender=REGISTRY_USER, trust=world.trust, now=NOW)
    with pytest.raises(RequestExpired):
        request_for_offer(store, OFFER_ID, trust=world.trust, now=NOW + 60)
    assert store.offer(OFFER_ID).state == "expired"


def test_device_list_is_signed_with_the_pid_key(store: WalletStore, world: World) -> None:
    device = DeviceEntry(device_id="WALLETDEV", ed25519="A" * 43, curve25519="B" * 43)
    with pytest.raises(QueryNotSatisfied):
        device_list(store, user_id=CITIZEN, devices=[device], seq=1, trust=world.trust, now=NOW)
    pid_id = hold(store, world, PID)
    hold(store, world, RESIDENCE)
    content = device_list(
        store, user_id=CITIZEN, devices=[device], seq=7, trust=world.trust, now=NOW
    )
    key_id = store.credential(pid_id).holder_key_id
    assert key_id is not None
    payload = verify_device_list(
        content.device_list, store.holder_public_key(key_id), user_id=CITIZEN, newer_than=6, now=NOW
    )
    assert payload.seq == 7 and payload.devices == (device,)
    assert "1" in content.body
