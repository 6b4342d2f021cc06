"""wallet.status: the newest credential answers, a known-revoked one never does.

Real credentials, real signed Status List Tokens, the real status cache; only
the transport of the token (the issuer's status room) is a function here - the
Synapse path is in ``tests/integration/test_wallet_revocation.py``.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from onceonly import jose
from onceonly.errors import QueryNotSatisfied, StatusUnavailable, TransportError
from onceonly.protocol.events import PresentationRequest, RefusalCode
from onceonly.status_cache import StatusCache
from onceonly.status_list import INVALID, SUSPENDED, VALID, StatusList, sign_status_list_jwt
from onceonly.trust import Agency
from tests.unit.wallet.agencies import (
    DAY,
    FAMILY_USER,
    IDENTITY_ID,
    NOW,
    PID,
    PID_CLAIMS,
    REGISTRY_ID,
    RESIDENCE,
    RESIDENCE_CLAIMS,
    World,
    issue,
    make_world,
)
from tests.unit.wallet.test_present import credential_query, request
from wallet.answer import Answer, answer_request
from wallet.status import CredentialStatusChecker, StatusOutcome, wallet_status_cache
from wallet.store import WalletStore

STATUS_URI = "https://registry.example/status/1"
PID_STATUS_URI = "https://identity.example/status/1"


class StatusRoom:
    """The registry's published status list: what a fetch returns, and how often it was asked."""

    def __init__(self, world: World, *, ttl: int | None = 600) -> None:
        self.world = world
        self.entries = StatusList(64, 2)
        self.ttl = ttl
        self.signer: jose.PrivateKey = world.registry_key
        self.failure: Exception | None = None
        self.fetched: list[str] = []

    def set(self, idx: int, value: int) -> None:
        self.entries.set(idx, value)

    async def fetch(self, uri: str, agency: Agency) -> str:
        self.fetched.append(uri)
        if self.failure is not None:
            raise self.failure
        if uri != STATUS_URI or agency.id != REGISTRY_ID:
            raise StatusUnavailable("no status list is published for this URI")
        return sign_status_list_jwt(
            self.entries,
            self.signer,
            uri=STATUS_URI,
            issued_at=NOW - 60,
            expires_at=NOW + DAY,
            ttl=self.ttl,
        )


@pytest.fixture
def world() -> World:
    return make_world()


@pytest.fixture
def room(world: World) -> StatusRoom:
    return StatusRoom(world)


def hold(
    store: WalletStore,
    signer: jose.PrivateKey,
    *,
    issuer: str,
    vct: str,
    claims: dict[str, Any],
    status: dict[str, Any] | None,
    issued_at: int = NOW,
) -> str:
    """Store a real credential bound to a fresh holder key."""
    key_id = store.new_holder_key()
    text = issue(
        signer,
        issuer=issuer,
        vct=vct,
        claims=claims,
        holder=store.holder_public_key(key_id),
        now=issued_at,
        status=status,
    )
    return store.add_credential(
        sd_jwt=text, vct=vct, issuer=issuer, holder_key_id=key_id, label="Meldung"
    )


def hold_residence(
    store: WalletStore, world: World, *, idx: int | None, issued_at: int, street: str
) -> str:
    """A residence credential issued at ``issued_at`` with status entry ``idx``."""
    address = {**RESIDENCE_CLAIMS["address"], "street_address": street}
    return hold(
        store,
        world.registry_key,
        issuer=REGISTRY_ID,
        vct=RESIDENCE,
        claims={**RESIDENCE_CLAIMS, "address": address},
        status=None if idx is None else {"status_list": {"idx": idx, "uri": STATUS_URI}},
        issued_at=issued_at,
    )


def address_request(now: int = NOW) -> PresentationRequest:
    return request(credential_query("residence", RESIDENCE, ["address"]), expires_at=now + 600)


async def answer_after_check(
    store: WalletStore, world: World, checker: CredentialStatusChecker, *, now: int = NOW
) -> tuple[Answer, list[StatusOutcome]]:
    req = address_request(now)
    outcomes = await checker.check_for_request(store, req, trust=world.trust, now=now)
    answered = answer_request(
        store, req, sender=FAMILY_USER, trust=world.trust, consent=lambda plan: True, now=now
    )
    return answered, outcomes


def presented_street(answered: Answer) -> Any:
    assert answered.presented, answered.error
    assert answered.plan is not None
    (item,) = answered.plan.presentations
    return item.visible["address"]["street_address"]


def states(outcomes: list[StatusOutcome]) -> dict[str, str]:
    return {outcome.credential_id: outcome.state for outcome in outcomes}


async def test_the_newest_credential_answers_without_any_status(
    store: WalletStore, world: World, room: StatusRoom
) -> None:
    # Stored in arrival order old, new; no status claims at all (nothing to check).
    hold_residence(store, world, idx=None, issued_at=NOW - 30 * DAY, street="Altweg 1")
    hold_residence(store, world, idx=None, issued_at=NOW - DAY, street="Neuweg 2")
    answered, outcomes = await answer_after_check(
        store, world, CredentialStatusChecker(wallet_status_cache(room.fetch))
    )
    assert presented_street(answered) == "Neuweg 2"
    assert set(states(outcomes).values()) == {"unchecked"}
    assert room.fetched == []


async def test_of_two_issued_in_the_same_second_the_later_stored_answers(
    store: WalletStore, world: World, room: StatusRoom
) -> None:
    hold_residence(store, world, idx=1, issued_at=NOW - DAY, street="Altweg 1")
    hold_residence(store, world, idx=2, issued_at=NOW - DAY, street="Neuweg 2")
    checker = CredentialStatusChecker(wallet_status_cache(room.fetch))
    answered, _ = await answer_after_check(store, world, checker)
    assert presented_street(answered) == "Neuweg 2"


async def test_newest_wins_even_when_it_arrived_first(
    store: WalletStore, world: World, room: StatusRoom
) -> None:
    hold_residence(store, world, idx=2, issued_at=NOW - DAY, street="Neuweg 2")
    hold_residence(store, world, idx=1, issued_at=NOW - 30 * DAY, street="Altweg 1")
    checker = CredentialStatusChecker(wallet_status_cache(room.fetch))
    answered, outcomes = await answer_after_check(store, world, checker)
    assert presented_street(answered) == "Neuweg 2"
    assert set(states(outcomes).values()) == {"valid"}
    assert {r.state for r in store.credential_statuses().values()} == {"valid"}


async def test_revoked_old_credential_gives_way_to_the_fresh_one(
    store: WalletStore, world: World, room: StatusRoom
) -> None:
    old = hold_residence(store, world, idx=1, issued_at=NOW - 30 * DAY, street="Altweg 1")
    new = hold_residence(store, world, idx=2, issued_at=NOW - DAY, street="Neuweg 2")
    room.set(1, INVALID)
    answered, outcomes = await answer_after_check(
        store, world, CredentialStatusChecker(wallet_status_cache(room.fetch))
    )
    assert presented_street(answered) == "Neuweg 2"
    assert states(outcomes) == {old: "revoked", new: "valid"}
    assert store.credential_statuses()[old].state == "revoked"
    assert store.credential_statuses()[old].list_uri == STATUS_URI


async def test_a_known_revoked_credential_is_skipped_even_if_newest(
    store: WalletStore, world: World, room: StatusRoom
) -> None:
    hold_residence(store, world, idx=1, issued_at=NOW - 30 * DAY, street="Altweg 1")
    newest = hold_residence(store, world, idx=2, issued_at=NOW - DAY, street="Neuweg 2")
    room.set(2, INVALID)
    checker = CredentialStatusChecker(wallet_status_cache(room.fetch))
    answered, _ = await answer_after_check(store, world, checker)
    assert presented_street(answered) == "Altweg 1"
    # Later the list cannot be read at all: the known verdict still holds, with no fetch
    # for the revoked credential (and answering without any check skips it too).
    room.failure = TransportError("status room unreachable")
    fresh = CredentialStatusChecker(wallet_status_cache(room.fetch))
    answered, outcomes = await answer_after_check(store, world, fresh, now=NOW + 10)
    assert presented_street(answered) == "Altweg 1"
    assert states(outcomes)[newest] == "revoked"
    assert len(room.fetched) == 2  # one per checker, for the other credential only


async def test_revoked_is_final_in_the_store(
    store: WalletStore, world: World, room: StatusRoom
) -> None:
    only = hold_residence(store, world, idx=1, issued_at=NOW - DAY, street="Altweg 1")
    room.set(1, INVALID)
    await answer_after_check(store, world, CredentialStatusChecker(wallet_status_cache(room.fetch)))
    room.set(1, VALID)  # e.g. an older token replayed by the room
    answered, outcomes = await answer_after_check(
        store, world, CredentialStatusChecker(wallet_status_cache(room.fetch))
    )
    assert states(outcomes) == {only: "revoked"}
    assert not answered.presented


async def test_all_revoked_refuses_and_tells_the_citizen_why(
    store: WalletStore, world: World, room: StatusRoom
) -> None:
    first = hold_residence(store, world, idx=1, issued_at=NOW - 30 * DAY, street="Altweg 1")
    second = hold_residence(store, world, idx=2, issued_at=NOW - DAY, street="Neuweg 2")
    room.set(1, INVALID)
    room.set(2, INVALID)
    answered, _ = await answer_after_check(
        store, world, CredentialStatusChecker(wallet_status_cache(room.fetch))
    )
    assert not answered.presented
    assert isinstance(answered.error, QueryNotSatisfied)
    assert "revoked" in answered.error.message
    assert "Meldung" in answered.error.message
    assert answered.error.detail["withdrawn"] == [second]  # the one that would have answered
    refusal = answered.response.refusal
    assert refusal is not None
    assert refusal.code is RefusalCode.CONSENT_DENIED and refusal.message is None
    # The verifier learns nothing about the citizen's credentials from the refusal.
    assert "revoked" not in answered.response.model_dump_json()
    assert first not in answered.response.model_dump_json()
    assert store.disclosure_history()[-1].outcome == "failed"


async def test_nothing_held_stays_the_plain_refusal(store: WalletStore, world: World) -> None:
    answered = answer_request(
        store,
        address_request(),
        sender=FAMILY_USER,
        trust=world.trust,
        consent=lambda plan: True,
        now=NOW,
    )
    assert isinstance(answered.error, QueryNotSatisfied)
    assert "revoked" not in answered.error.message


async def test_suspended_is_skipped_until_valid_again(
    store: WalletStore, world: World, room: StatusRoom
) -> None:
    only = hold_residence(store, world, idx=3, issued_at=NOW - DAY, street="Altweg 1")
    room.set(3, SUSPENDED)
    checker = CredentialStatusChecker(wallet_status_cache(room.fetch))
    answered, outcomes = await answer_after_check(store, world, checker)
    assert states(outcomes) == {only: "suspended"}
    assert not answered.presented
    room.set(3, VALID)
    # Within the token's ttl the cached list still says suspended ...
    answered, _ = await answer_after_check(store, world, checker, now=NOW + 60)
    assert not answered.presented
    # ... after it, the fresh list lifts the suspension.
    answered, outcomes = await answer_after_check(store, world, checker, now=NOW + 601)
    assert states(outcomes) == {only: "valid"}
    assert presented_street(answered) == "Altweg 1"


@pytest.mark.parametrize(
    "failure",
    [TransportError("status room unreachable"), StatusUnavailable("no list published")],
)
async def test_unreadable_status_list_still_presents(
    store: WalletStore, world: World, room: StatusRoom, failure: Exception
) -> None:
    only = hold_residence(store, world, idx=1, issued_at=NOW - DAY, street="Altweg 1")
    room.failure = failure
    answered, outcomes = await answer_after_check(
        store, world, CredentialStatusChecker(wallet_status_cache(room.fetch))
    )
    (outcome,) = outcomes
    assert outcome == StatusOutcome(only, "unknown", outcome.cause)
    assert outcome.cause in ("transport_error", "status_unavailable")
    assert store.credential_statuses() == {}  # nothing learnt, nothing recorded
    assert presented_street(answered) == "Altweg 1"


async def test_a_token_signed_by_another_key_is_not_believed(
    store: WalletStore, world: World, room: StatusRoom
) -> None:
    only = hold_residence(store, world, idx=1, issued_at=NOW - DAY, street="Altweg 1")
    room.set(1, INVALID)
    # Signed by someone not listed for the registry (same kid, other key): not a verdict.
    room.signer = jose.generate_private_key(jose.ES256, kid="reg-1")
    answered, outcomes = await answer_after_check(
        store, world, CredentialStatusChecker(wallet_status_cache(room.fetch))
    )
    assert states(outcomes) == {only: "unknown"}
    assert outcomes[0].cause == "invalid_signature"
    assert store.credential_statuses() == {}
    assert presented_street(answered) == "Altweg 1"


async def test_a_slow_status_room_is_given_up_on(
    store: WalletStore, world: World, room: StatusRoom
) -> None:
    only = hold_residence(store, world, idx=1, issued_at=NOW - DAY, street="Altweg 1")

    async def hang(uri: str, agency: Agency) -> str:
        await asyncio.sleep(30)
        raise AssertionError("not reached")

    checker = CredentialStatusChecker(StatusCache(hang, fetch_timeout=0.05))
    answered, outcomes = await answer_after_check(store, world, checker)
    assert outcomes == [StatusOutcome(only, "unknown", "timeout")]
    assert presented_street(answered) == "Altweg 1"


async def test_one_fetch_per_list_within_its_ttl(
    store: WalletStore, world: World, room: StatusRoom
) -> None:
    hold_residence(store, world, idx=1, issued_at=NOW - 30 * DAY, street="Altweg 1")
    hold_residence(store, world, idx=2, issued_at=NOW - DAY, street="Neuweg 2")
    checker = CredentialStatusChecker(wallet_status_cache(room.fetch))
    for offset in (0, 100, 500):
        await answer_after_check(store, world, checker, now=NOW + offset)
    assert room.fetched == [STATUS_URI]
    await answer_after_check(store, world, checker, now=NOW + 700)
    assert room.fetched == [STATUS_URI, STATUS_URI]


async def test_only_the_requested_types_are_checked(
    store: WalletStore, world: World, room: StatusRoom
) -> None:
    pid_status = {"status_list": {"idx": 0, "uri": PID_STATUS_URI}}
    hold(
        store, world.identity_key, issuer=IDENTITY_ID, vct=PID, claims=PID_CLAIMS, status=pid_status
    )
    hold_residence(store, world, idx=1, issued_at=NOW - DAY, street="Altweg 1")
    checker = CredentialStatusChecker(wallet_status_cache(room.fetch))
    _, outcomes = await answer_after_check(store, world, checker)
    assert len(outcomes) == 1
    assert room.fetched == [STATUS_URI]


async def test_a_rejection_as_revoked_makes_the_wallet_look_again(
    store: WalletStore, world: World, room: StatusRoom
) -> None:
    only = hold_residence(store, world, idx=1, issued_at=NOW - DAY, street="Altweg 1")
    checker = CredentialStatusChecker(wallet_status_cache(room.fetch))
    answered, _ = await answer_after_check(store, world, checker)
    assert presented_street(answered) == "Altweg 1"
    room.set(1, INVALID)
    # Within the ttl the wallet's copy still says valid: it presents again ...
    answered, outcomes = await answer_after_check(store, world, checker, now=NOW + 30)
    assert states(outcomes) == {only: "valid"}
    assert answered.presented
    # ... the verifier rejects it as revoked; the wallet fetches the list again.
    exchange_id = answered.response.exchange_id
    rechecked = await checker.recheck_presented(store, exchange_id, trust=world.trust, now=NOW + 31)
    assert states(rechecked) == {only: "revoked"}
    assert room.fetched == [STATUS_URI, STATUS_URI]
    assert store.credential_statuses()[only].state == "revoked"
    answered, _ = await answer_after_check(store, world, checker, now=NOW + 40)
    assert not answered.presented


async def test_a_rejection_of_an_unknown_exchange_fetches_nothing(
    store: WalletStore, world: World, room: StatusRoom
) -> None:
    hold_residence(store, world, idx=1, issued_at=NOW - DAY, street="Altweg 1")
    checker = CredentialStatusChecker(wallet_status_cache(room.fetch))
    assert await checker.recheck_presented(store, "xch_never", trust=world.trust, now=NOW) == []
    assert room.fetched == []
