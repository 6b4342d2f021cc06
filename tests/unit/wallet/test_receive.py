"""Receiving credentials: verified before stored; every rejection is typed and reported safely."""

from __future__ import annotations

from typing import Any

import pytest

from onceonly import jose
from onceonly.protocol.bodies import build_credential_issue
from onceonly.protocol.events import CredentialIssue, ErrorContent, ExchangeStatus, Outcome
from onceonly.protocol.fields import LocalizedText
from onceonly.sdjwt import parse_sd_jwt, present
from tests.unit.wallet.agencies import (
    DAY,
    IDENTITY_USER,
    NOW,
    PID,
    PID_CLAIMS,
    REGISTRY_ID,
    REGISTRY_USER,
    RESIDENCE,
    RESIDENCE_CLAIMS,
    ROGUE_ID,
    World,
    issue,
    make_world,
)
from wallet.receive import Receipt, receive_credential
from wallet.records import PendingOffer
from wallet.store import WalletStore

EXCHANGE = "xch_receive_0000000001"
NAME = LocalizedText(de="Meldebescheinigung", en="Residence registration")


@pytest.fixture(scope="module")
def world() -> World:
    return make_world()


def _await(store: WalletStore, *, vct: str = RESIDENCE, exchange_id: str = EXCHANGE) -> str:
    key_id = store.new_holder_key()
    store.put_offer(
        PendingOffer(
            offer_id=exchange_id,
            issuer=REGISTRY_ID,
            vct=vct,
            received_at=NOW,
            state="requested",
            holder_key_id=key_id,
            issuer_user=REGISTRY_USER,
        )
    )
    return key_id


def _event(text: str, *, vct: str = RESIDENCE, exchange_id: str = EXCHANGE) -> CredentialIssue:
    return build_credential_issue(
        exchange_id=exchange_id, vct=vct, credential_name=NAME, issuer_name=NAME, credential=text
    )


def _receive(
    store: WalletStore,
    world: World,
    text: str,
    *,
    sender: str = REGISTRY_USER,
    vct: str = RESIDENCE,
    now: int = NOW,
) -> Receipt:
    return receive_credential(
        store,
        _event(text, vct=vct),
        credential_text=text,
        sender=sender,
        trust=world.trust,
        now=now,
        event_id="$issue:gov.example",
    )


def _residence(world: World, store: WalletStore, key_id: str, **overrides: Any) -> str:
    args: dict[str, Any] = {
        "issuer": REGISTRY_ID,
        "vct": RESIDENCE,
        "claims": RESIDENCE_CLAIMS,
        "holder": store.holder_public_key(key_id),
    }
    args.update(overrides)
    signing_key = args.pop("signing_key", world.registry_key)
    return issue(signing_key, **args)


def _assert_rejected(store: WalletStore, receipt: Receipt, code: str) -> ErrorContent:
    assert not receipt.accepted
    assert receipt.error is not None and receipt.error.code == code
    assert isinstance(receipt.reply, ErrorContent)
    assert receipt.reply.code == code
    assert receipt.reply.exchange_id == EXCHANGE
    assert receipt.reply.event_id == "$issue:gov.example"
    assert store.credentials() == []
    return receipt.reply


def test_valid_credential_is_verified_stored_and_acknowledged(
    store: WalletStore, world: World
) -> None:
    key_id = _await(store)
    status = {"status_list": {"idx": 42, "uri": "https://registry.example/status/1"}}
    text = _residence(world, store, key_id, status=status)

    receipt = _receive(store, world, text)

    assert receipt.accepted and receipt.error is None
    assert isinstance(receipt.reply, ExchangeStatus)
    assert receipt.reply.outcome is Outcome.ACCEPTED
    assert receipt.reply.related_event_id == "$issue:gov.example"
    (stored,) = store.credentials()
    assert stored.credential_id == receipt.credential_id
    assert stored.sd_jwt == text
    assert (stored.vct, stored.issuer, stored.holder_key_id) == (RESIDENCE, REGISTRY_ID, key_id)
    assert stored.status is not None and stored.status.idx == 42
    assert stored.label == "Meldebescheinigung"
    record = store.offer(EXCHANGE)
    assert record.state == "accepted" and record.credential_id == stored.credential_id


def test_tampered_signature_is_rejected_and_not_stored(store: WalletStore, world: World) -> None:
    key_id = _await(store)
    text = _residence(world, store, key_id)
    jwt, rest = text.split("~", 1)
    head, payload, signature = jwt.split(".")
    flipped = ("B" if signature[5] == "A" else "A").join((signature[:5], signature[6:]))
    receipt = _receive(store, world, f"{head}.{payload}.{flipped}~{rest}")
    _assert_rejected(store, receipt, "invalid_signature")
    assert store.offer(EXCHANGE).state == "failed"


def test_tampered_disclosure_is_rejected(store: WalletStore, world: World) -> None:
    key_id = _await(store)
    text = _residence(world, store, key_id)
    parsed = parse_sd_jwt(text)
    victim = parsed.disclosures[0].disclosure.encoded
    forged = jose.b64url_encode(b'["c2FsdHNhbHRzYWx0", "family_name", "Musterfrau"]')
    _assert_rejected(
        store, _receive(store, world, text.replace(victim, forged)), "invalid_disclosure"
    )


def test_issuer_not_allowed_for_the_type_is_rejected(store: WalletStore, world: World) -> None:
    key_id = _await(store)
    text = _residence(world, store, key_id, issuer=ROGUE_ID, signing_key=world.rogue_key)
    _assert_rejected(store, _receive(store, world, text), "untrusted_issuer")


def test_issuer_off_the_trust_list_is_rejected(store: WalletStore, world: World) -> None:
    key_id = _await(store)
    stranger = jose.generate_private_key(kid="reg-1")
    text = _residence(world, store, key_id, issuer="did:web:stranger.example", signing_key=stranger)
    _assert_rejected(store, _receive(store, world, text), "untrusted_issuer")


def test_key_listed_for_the_issuer_is_required(store: WalletStore, world: World) -> None:
    # Right iss and kid, wrong key: the signature cannot verify under the listed key.
    key_id = _await(store)
    impostor = jose.generate_private_key(kid="reg-1")
    text = _residence(world, store, key_id, signing_key=impostor)
    _assert_rejected(store, _receive(store, world, text), "invalid_signature")


def test_credential_from_another_account_is_rejected(store: WalletStore, world: World) -> None:
    key_id = _await(store)
    text = _residence(world, store, key_id)
    receipt = _receive(store, world, text, sender=IDENTITY_USER)
    _assert_rejected(store, receipt, "untrusted_party")


def test_credential_bound_to_another_key_is_rejected(store: WalletStore, world: World) -> None:
    _await(store)
    other = jose.generate_private_key().public()
    text = _residence(world, store, store.new_holder_key(), holder=other)
    _assert_rejected(store, _receive(store, world, text), "key_binding")


def test_credential_bound_to_another_wallet_key_is_rejected(
    store: WalletStore, world: World
) -> None:
    # Even one of the wallet's own keys is wrong if it is not the one made for this request.
    _await(store)
    text = _residence(world, store, store.new_holder_key())
    _assert_rejected(store, _receive(store, world, text), "key_binding")


def test_expired_credential_is_rejected(store: WalletStore, world: World) -> None:
    key_id = _await(store)
    text = _residence(world, store, key_id, now=NOW - 10 * DAY, expires_at=NOW - DAY)
    _assert_rejected(store, _receive(store, world, text), "expired")


def test_not_yet_valid_credential_is_rejected(store: WalletStore, world: World) -> None:
    key_id = _await(store)
    text = _residence(world, store, key_id, not_before=NOW + DAY)
    _assert_rejected(store, _receive(store, world, text), "not_yet_valid")


def test_schema_violation_is_rejected_without_leaking_the_value(
    store: WalletStore, world: World
) -> None:
    key_id = _await(store)
    claims = {**RESIDENCE_CLAIMS, "address": {**RESIDENCE_CLAIMS["address"], "postal_code": "X9"}}
    receipt = _receive(store, world, _residence(world, store, key_id, claims=claims))
    reply = _assert_rejected(store, receipt, "invalid_claim")
    assert receipt.error is not None and "postal_code" in receipt.error.message
    assert "X9" not in reply.message and "X9" not in reply.body


def test_missing_required_claim_is_rejected(store: WalletStore, world: World) -> None:
    key_id = _await(store)
    claims = {k: v for k, v in RESIDENCE_CLAIMS.items() if k != "residence_type"}
    receipt = _receive(store, world, _residence(world, store, key_id, claims=claims))
    _assert_rejected(store, receipt, "invalid_claim")


def test_other_type_than_requested_is_rejected(store: WalletStore, world: World) -> None:
    key_id = _await(store)
    text = _residence(world, store, key_id)
    receipt = _receive(store, world, text, vct=PID)
    _assert_rejected(store, receipt, "invalid_claim")


def test_signed_type_must_be_the_requested_one(store: WalletStore, world: World) -> None:
    # The event says residence, the signed vct says PID: the signed value decides.
    key_id = _await(store)
    text = issue(
        world.identity_key,
        issuer="did:web:identity.example",
        vct=PID,
        claims=PID_CLAIMS,
        holder=store.holder_public_key(key_id),
    )
    _assert_rejected(store, _receive(store, world, text), "invalid_claim")


def test_a_presentation_with_key_binding_is_not_an_issued_credential(
    store: WalletStore, world: World
) -> None:
    key_id = _await(store)
    text = _residence(world, store, key_id)
    with_kb = present(
        parse_sd_jwt(text),
        disclose=[("address",)],
        holder_key=store.holder_key(key_id),
        aud="x",
        nonce="n" * 22,
        now=NOW,
    )
    _assert_rejected(store, _receive(store, world, with_kb), "malformed")


def test_unknown_exchange_changes_nothing(store: WalletStore, world: World) -> None:
    key_id = store.new_holder_key()
    text = _residence(world, store, key_id)
    receipt = _receive(store, world, text)
    _assert_rejected(store, receipt, "unknown_exchange")
    assert store.offers() == []


def test_second_delivery_is_unexpected(store: WalletStore, world: World) -> None:
    key_id = _await(store)
    text = _residence(world, store, key_id)
    assert _receive(store, world, text).accepted
    again = _receive(store, world, text)
    assert again.error is not None and again.error.code == "unexpected_event"
    assert isinstance(again.reply, ErrorContent) and again.reply.code == "unexpected_event"
    assert len(store.credentials()) == 1
    assert store.offer(EXCHANGE).state == "accepted"


def test_offer_not_yet_requested_does_not_take_a_credential(
    store: WalletStore, world: World
) -> None:
    store.add_offer(offer_id=EXCHANGE, issuer=REGISTRY_ID, vct=RESIDENCE, received_at=NOW)
    text = _residence(world, store, store.new_holder_key())
    receipt = _receive(store, world, text)
    _assert_rejected(store, receipt, "unexpected_event")
    assert store.offer(EXCHANGE).state == "pending"
