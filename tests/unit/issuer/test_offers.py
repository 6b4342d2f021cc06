"""Proactive offers after a registered move, answered (or misanswered) by the citizen."""

from __future__ import annotations

import secrets
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from issuer.issuance import handle_credential_request
from issuer.nonce_ledger import NonceLedger, OfferRecord
from issuer.offers import make_offer, offers_for_life_events
from issuer.register import BindingMethod
from onceonly.errors import (
    IdentityNotBound,
    NonceMismatch,
    OnceOnlyError,
    ReplayDetected,
    RequestExpired,
    UnexpectedEvent,
    UnknownExchange,
    UnsupportedCredentialType,
)
from onceonly.protocol import LocalizedText, parse_event, to_content
from onceonly.sdjwt import parse_sd_jwt
from onceonly.types import UserId, Vct
from tests.unit.issuer.issuer_world import (
    NOW,
    PID_VCT,
    REGISTRY_ID,
    RESIDENCE_VCT,
    Citizen,
    World,
    make_world,
)
from tests.unit.issuer.test_issuance import get_pid, issued_count

JUERGEN = UserId("@juergen:localhost")


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    built = make_world(tmp_path)
    yield built
    built.close()


def bind_in_person(world: World, person_id: str, user: UserId) -> None:
    world.registry_office.register.bind_matrix_user(person_id, user, BindingMethod.IN_PERSON, NOW)


def pending(world: World) -> list[object]:
    office = world.registry_office
    offers, _waiting = offers_for_life_events(
        office.config, office.register, office.ledger, now=NOW, random_bytes=secrets.token_bytes
    )
    return list(offers)


def test_a_registered_move_becomes_an_offer_for_each_bound_account(world: World) -> None:
    office = world.registry_office
    bind_in_person(world, "MB-0001", JUERGEN)
    bind_in_person(world, "MB-0001", UserId("@juergen-web:localhost"))

    offers, waiting = offers_for_life_events(
        office.config, office.register, office.ledger, now=NOW, random_bytes=secrets.token_bytes
    )

    # The sample register records moves of MB-0001..3; only MB-0001 has accounts.
    assert sorted(event.person_id for event in waiting) == ["MB-0002", "MB-0003"]
    assert sorted(offer.matrix_user_id for offer in offers) == [
        "@juergen-web:localhost",
        "@juergen:localhost",
    ]
    first = offers[0]
    content = parse_event("eu.onceonly.v1.credential.offer", to_content(first.content))
    assert content == first.content
    assert first.content.issuer_id == REGISTRY_ID
    assert first.content.vct == RESIDENCE_VCT
    assert first.content.reason_code == "registered_move"
    assert first.content.display.issuer_name.de == "Meldebehörde Berlin"
    assert "Karl-Marx" not in first.content.body  # offers carry no claim values
    assert first.content.nonce != offers[1].content.nonce
    assert office.ledger.offer(first.content.exchange_id) == first.record
    assert first.life_event_id is not None


async def offered(world: World, citizen: Citizen) -> OfferRecord:
    bind_in_person(world, "MB-0001", citizen.user_id)
    await get_pid(world, citizen)
    (offer,) = pending(world)
    return offer.record  # type: ignore[attr-defined,no-any-return]


async def test_the_citizen_accepts_the_offer_and_gets_the_new_address(world: World) -> None:
    citizen = Citizen(JUERGEN)
    offer = await offered(world, citizen)
    request = citizen.request(
        audience=REGISTRY_ID,
        vct=RESIDENCE_VCT,
        nonce=offer.nonce,
        exchange_id=offer.exchange_id,
        offer_event_id="$offer:localhost",
        identity_for=REGISTRY_ID,
    )

    issued = await handle_credential_request(
        world.registry_office.context, request, sender=JUERGEN, now=NOW + 60
    )

    claims = parse_sd_jwt(issued.sd_jwt).claims
    assert claims["address"]["street_address"] == "Karl-Marx-Allee 140"
    assert claims["registered_since"] == "2026-12-01"
    assert issued.content.exchange_id == offer.exchange_id
    # The offer is used up.
    with pytest.raises(ReplayDetected):
        await handle_credential_request(
            world.registry_office.context, request, sender=JUERGEN, now=NOW + 61
        )


async def misanswer(world: World, request: object, sender: UserId, now: int = NOW) -> Exception:
    before = issued_count(world)
    with pytest.raises(OnceOnlyError) as caught:
        await handle_credential_request(
            world.registry_office.context,
            request,  # type: ignore[arg-type]
            sender=sender,
            now=now,
        )
    assert issued_count(world) == before
    return caught.value


async def test_a_wrong_nonce_fails_and_uses_up_the_offer(world: World) -> None:
    citizen = Citizen(JUERGEN)
    offer = await offered(world, citizen)
    guess = citizen.request(
        audience=REGISTRY_ID,
        vct=RESIDENCE_VCT,
        exchange_id=offer.exchange_id,
        identity_for=REGISTRY_ID,
    )
    assert isinstance(await misanswer(world, guess, JUERGEN), NonceMismatch)
    right = citizen.request(
        audience=REGISTRY_ID,
        vct=RESIDENCE_VCT,
        nonce=offer.nonce,
        exchange_id=offer.exchange_id,
        identity_for=REGISTRY_ID,
    )
    assert isinstance(await misanswer(world, right, JUERGEN), ReplayDetected)


async def test_an_expired_offer_is_refused(world: World) -> None:
    citizen = Citizen(JUERGEN)
    offer = await offered(world, citizen)
    late = offer.expires_at + 1
    request = citizen.request(
        audience=REGISTRY_ID,
        vct=RESIDENCE_VCT,
        nonce=offer.nonce,
        exchange_id=offer.exchange_id,
        iat=late,
    )
    assert isinstance(await misanswer(world, request, JUERGEN, now=late), RequestExpired)


async def test_only_the_addressee_may_answer(world: World) -> None:
    citizen = Citizen(JUERGEN)
    offer = await offered(world, citizen)
    request = citizen.request(
        audience=REGISTRY_ID, vct=RESIDENCE_VCT, nonce=offer.nonce, exchange_id=offer.exchange_id
    )
    other = UserId("@mallory:localhost")
    assert isinstance(await misanswer(world, request, other), UnknownExchange)
    # An answer to an offer that never existed is unknown too.
    ghost = citizen.request(
        audience=REGISTRY_ID, vct=RESIDENCE_VCT, offer_event_id="$ghost:localhost"
    )
    assert isinstance(await misanswer(world, ghost, JUERGEN), UnknownExchange)


def record_and_answer(
    world: World, citizen: Citizen, *, person_id: str, vct: Vct, expires_at: int
) -> object:
    """Record an offer to the citizen's account by hand; return a residence request for it."""
    nonce = "hand-made-offer-nonce-" + secrets.token_hex(4)
    exchange_id = "xch_hand_made_" + secrets.token_hex(4)
    world.registry_office.ledger.record_offer(
        OfferRecord(nonce=nonce, exchange_id=exchange_id, matrix_user_id=citizen.user_id,
                    person_id=person_id, vct=vct, issued_at=NOW, expires_at=expires_at)
    )  # fmt: skip
    return citizen.request(audience=REGISTRY_ID, vct=RESIDENCE_VCT, nonce=nonce,
                           exchange_id=exchange_id, identity_for=REGISTRY_ID)  # fmt: skip


async def test_the_request_must_ask_for_the_offered_type(world: World) -> None:
    citizen = Citizen(JUERGEN)
    offer = await offered(world, citizen)
    request = record_and_answer(world, citizen, person_id="MB-0001", vct=Vct(PID_VCT),
                                expires_at=offer.expires_at)  # fmt: skip
    assert isinstance(await misanswer(world, request, JUERGEN), UnexpectedEvent)


async def test_the_offer_is_for_its_person_only(world: World) -> None:
    citizen = Citizen(JUERGEN)
    await get_pid(world, citizen)  # Jürgen's PID ...
    bind_in_person(world, "MB-0002", UserId("@anna:localhost"))
    (offer,) = pending(world)  # ... but the offer is Anna's, forwarded to Jürgen's account
    record = offer.record  # type: ignore[attr-defined]
    world.registry_office.register.unbind_matrix_user("@anna:localhost")
    request = record_and_answer(world, citizen, person_id=record.person_id, vct=record.vct,
                                expires_at=record.expires_at)  # fmt: skip
    assert isinstance(await misanswer(world, request, JUERGEN), IdentityNotBound)


def test_offers_only_for_types_the_agency_issues(world: World) -> None:
    office = world.registry_office
    with pytest.raises(UnsupportedCredentialType):
        make_offer(
            office.config,
            office.ledger,
            person_id="MB-0001",
            matrix_user_id=JUERGEN,
            vct=Vct(PID_VCT),
            reason_code="registered_move",
            reason=LocalizedText(de="Umzug", en="move"),
            now=NOW,
            random_bytes=secrets.token_bytes,
        )


def test_offer_nonce_is_consumed_once_across_processes_on_postgres(postgres_dsn: str) -> None:
    ledgers = [NonceLedger.open(postgres_dsn) for _ in range(4)]
    record = OfferRecord(
        nonce="concurrent-offer-nonce-000",
        exchange_id="xch_concurrent_00000",
        matrix_user_id=JUERGEN,
        person_id="MB-0001",
        vct=Vct(RESIDENCE_VCT),
        issued_at=NOW,
        expires_at=NOW + 600,
    )
    ledgers[0].record_offer(record)
    outcomes: list[str] = []
    barrier = threading.Barrier(len(ledgers))

    def attempt(ledger: NonceLedger) -> None:
        barrier.wait()
        try:
            ledger.consume_offer(
                record.exchange_id, nonce=record.nonce, matrix_user_id=JUERGEN, now=NOW
            )
            outcomes.append("ok")
        except ReplayDetected:
            outcomes.append("replay")

    threads = [threading.Thread(target=attempt, args=(ledger,)) for ledger in ledgers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["ok", "replay", "replay", "replay"]
    # Wallet nonces: the second sighting is a replay, also from another connection.
    ledgers[1].consume_wallet_nonce(
        "wallet-nonce-000000000000", matrix_user_id=JUERGEN, now=NOW, window=360
    )
    with pytest.raises(ReplayDetected):
        ledgers[2].consume_wallet_nonce(
            "wallet-nonce-000000000000", matrix_user_id=JUERGEN, now=NOW, window=360
        )
    assert ledgers[3].purge(now=NOW + 10_000) == 2
    for ledger in ledgers:
        ledger.close()
