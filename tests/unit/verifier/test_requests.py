"""verifier.requests: building presentation requests, refusing over-asking, the request store."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from onceonly import errors
from onceonly.protocol import PresentationRequest, from_wire, to_wire
from onceonly.query import DcqlQuery, parse_query
from onceonly.types import ExchangeId
from verifier.nonce_store import NonceStore
from verifier.requests import (
    PreparedRequest,
    RequestStore,
    claim_labels,
    new_exchange_id,
    prepare_request,
)

from .verification_world import CITIZEN, NOW, PURPOSE, RESIDENCE, VERIFIER_ID, World, address_query


@pytest.fixture
def nonces(tmp_path: Path) -> Iterator[NonceStore]:
    with NonceStore.open(tmp_path / "nonces.sqlite3") as store:
        yield store


def prepare(nonces: NonceStore, **overrides: Any) -> PreparedRequest:
    """A request from the world's verifier, with any argument overridden."""
    arguments: dict[str, Any] = {
        "trust_list": World().verified_trust().trust_list,
        "verifier_id": VERIFIER_ID,
        "citizen": CITIZEN,
        "query": address_query(),
        "purpose": PURPOSE,
        "nonces": nonces,
        "now": NOW,
    } | overrides
    return prepare_request(**arguments)


def residence_query(*paths: list[object]) -> DcqlQuery:
    return parse_query(
        {
            "credentials": [
                {
                    "id": "residence",
                    "format": "dc+sd-jwt",
                    "meta": {"vct_values": [RESIDENCE]},
                    "claims": [{"path": path} for path in paths],
                }
            ]
        }
    )


def test_request_carries_query_purpose_nonce_and_a_bilingual_body(nonces: NonceStore) -> None:
    prepared = prepare(nonces, query=address_query(with_birthdate=True), ttl=900)
    content = prepared.content
    assert content.verifier_id == VERIFIER_ID
    assert content.purpose.code == PURPOSE
    assert content.expires_at == NOW + 900 == prepared.pending.expires_at
    assert content.nonce == prepared.pending.nonce
    assert content.query == address_query(with_birthdate=True)
    assert content.body.startswith("Familienkasse fragt nach: Ort, Geburtsdatum — Zweck: Kinder")
    assert "Family benefits office asks for: Locality, Date of birth — purpose: child" in (
        content.body
    )
    # The content survives the wire (what the wallet will parse).
    event_type, wire = to_wire(content)
    assert isinstance(from_wire(event_type, wire), PresentationRequest)
    # The nonce is ours, bound to this exchange and audience, and single-use.
    issued = nonces.consume(
        content.nonce, now=NOW + 1, exchange_id=prepared.pending.exchange_id, audience=VERIFIER_ID
    )
    assert issued.expires_at == NOW + 900


@pytest.mark.parametrize(
    ("query_paths", "purpose"),
    [
        ((["given_name"],), PURPOSE),  # a claim outside the registration
        ((["address"],), "marketing"),  # an unregistered purpose
    ],
)
def test_over_asking_is_refused_before_a_nonce_is_issued(
    nonces: NonceStore, query_paths: tuple[list[object], ...], purpose: str
) -> None:
    with pytest.raises(errors.NotAuthorizedToRequest):
        prepare(nonces, query=residence_query(*query_paths), purpose=purpose)
    assert nonces.purge(now=NOW + 10**9) == 0


def test_an_agency_not_on_the_list_may_not_ask(nonces: NonceStore) -> None:
    with pytest.raises(errors.NotAuthorizedToRequest):
        prepare(nonces, verifier_id="https://unknown.example")


def test_ttl_bounds(nonces: NonceStore) -> None:
    for ttl in (0, 8 * 24 * 3600):
        with pytest.raises(ValueError, match="ttl"):
            prepare(nonces, ttl=ttl)


def test_labels_for_unknown_types_and_claimless_queries() -> None:
    query = parse_query(
        {
            "credentials": [
                {"id": "a", "format": "dc+sd-jwt", "meta": {"vct_values": ["urn:x:other"]}},
                {
                    "id": "b",
                    "format": "dc+sd-jwt",
                    "meta": {"vct_values": ["urn:x:other"]},
                    "claims": [{"path": ["items", None, "name"]}],
                },
                {"id": "c", "format": "dc+sd-jwt", "meta": {"vct_values": [RESIDENCE]}},
            ]
        }
    )
    labels = [(label.de, label.en) for label in claim_labels(query)]
    assert labels == [
        ("urn:x:other", "urn:x:other"),
        ("items[*].name", "items[*].name"),
        ("Meldebescheinigung", "Residence registration"),
    ]


def test_exchange_ids_are_random_and_valid() -> None:
    ids = {new_exchange_id() for _ in range(100)}
    assert len(ids) == 100
    assert all(16 <= len(i) <= 128 for i in ids)


def test_store_keeps_requests_across_restarts_and_settles_once(
    store_location: str, nonces: NonceStore
) -> None:
    prepared = prepare(nonces)
    exchange = prepared.pending.exchange_id
    with RequestStore.open(store_location) as store:
        store.add(prepared.pending)
        store.mark_sent(exchange, room_id="!mailbox:localhost", event_id="$request")
        with pytest.raises(errors.StoreError):
            store.add(prepared.pending)  # one request per exchange id
    with RequestStore.open(store_location) as store:
        stored = store.get(exchange)
        assert stored.pending == prepared.pending
        assert (stored.room_id, stored.event_id, stored.outcome) == (
            "!mailbox:localhost",
            "$request",
            None,
        )
        assert [r.pending.exchange_id for r in store.open_requests()] == [exchange]
        assert store.settle(exchange, outcome="verified", result={"ok": True}, now=NOW + 5)
        assert not store.settle(exchange, outcome="rejected", result={}, now=NOW + 6)
        settled = store.get(exchange)
        assert (settled.outcome, settled.result, settled.settled_at) == (
            "verified",
            {"ok": True},
            NOW + 5,
        )
        assert store.open_requests() == []
        with pytest.raises(errors.UnknownExchange):
            store.get(ExchangeId("no-such-exchange-id"))
        with pytest.raises(errors.UnknownExchange):
            store.get("x" * 500)
