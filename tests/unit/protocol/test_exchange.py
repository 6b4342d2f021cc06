"""Exchange state machines: legal paths, illegal transitions, roles, expiry, correlation."""

from __future__ import annotations

import itertools

import pytest

from onceonly.errors import RequestExpired, UnexpectedEvent, UnknownExchange
from onceonly.protocol import NAMESPACE, Outcome
from onceonly.protocol.bodies import build_error, build_exchange_status
from onceonly.protocol.exchange import (
    ISSUANCE_TABLE,
    PRESENTATION_TABLE,
    TABLES,
    TERMINAL,
    Exchange,
    Kind,
    Role,
    Signal,
    State,
    kind_of_opening,
    role_of,
    signal_of,
)
from onceonly.protocol.fields import Content
from tests.unit.protocol.samples import EXCHANGE_ID, NOW, refusal_response, samples

S = samples()
OFFER = S[NAMESPACE + "credential.offer"]
CRED_REQUEST = S[NAMESPACE + "credential.request"]
ISSUE = S[NAMESPACE + "credential.issue"]
PRES_REQUEST = S[NAMESPACE + "presentation.request"]
PRESENTATION = S[NAMESPACE + "presentation.response"]
REFUSAL = refusal_response()
ERROR = build_error(code="invalid_signature", message="bad", exchange_id=EXCHANGE_ID)
OFFER_DEADLINE = NOW + 14 * 86400
REQUEST_DEADLINE = NOW + 3600


def status(outcome: Outcome) -> Content:
    return build_exchange_status(exchange_id=EXCHANGE_ID, outcome=outcome)


def run(steps: list[tuple[Content, Role]], now: int = NOW) -> Exchange:
    first, sender = steps[0]
    exchange = Exchange.open(EXCHANGE_ID, first, sender, now)
    for content, role in steps[1:]:
        exchange = exchange.apply(content, role, now)
    return exchange


ISS, H, V = Role.ISSUER, Role.HOLDER, Role.VERIFIER


@pytest.mark.parametrize(
    ("steps", "final"),
    [
        ([(OFFER, ISS), (CRED_REQUEST, H), (ISSUE, ISS)], State.ISSUED),
        (
            [(OFFER, ISS), (CRED_REQUEST, H), (ISSUE, ISS), (status(Outcome.ACCEPTED), H)],
            State.ISSUED,
        ),
        ([(CRED_REQUEST, H), (ISSUE, ISS), (status(Outcome.REVOKED), ISS)], State.REVOKED),
        ([(CRED_REQUEST, H), (status(Outcome.REJECTED), ISS)], State.REJECTED),
        ([(CRED_REQUEST, H), (ERROR, ISS)], State.REJECTED),
        ([(OFFER, ISS), (status(Outcome.REJECTED), H)], State.REJECTED),
        ([(OFFER, ISS), (status(Outcome.EXPIRED), ISS)], State.EXPIRED),
        ([(CRED_REQUEST, H), (ISSUE, ISS), (ERROR, H)], State.REJECTED),
        ([(PRES_REQUEST, V), (PRESENTATION, H), (status(Outcome.VERIFIED), V)], State.VERIFIED),
        ([(PRES_REQUEST, V), (PRESENTATION, H), (status(Outcome.REJECTED), V)], State.REJECTED),
        ([(PRES_REQUEST, V), (PRESENTATION, H), (ERROR, V)], State.REJECTED),
        ([(PRES_REQUEST, V), (REFUSAL, H)], State.REFUSED),
        ([(PRES_REQUEST, V), (status(Outcome.REFUSED), H)], State.REFUSED),
        ([(PRES_REQUEST, V), (status(Outcome.EXPIRED), V)], State.EXPIRED),
    ],
)
def test_legal_paths(steps: list[tuple[Content, Role]], final: State) -> None:
    exchange = run(steps)
    assert exchange.state is final
    assert exchange.history == tuple(signal_of(content) for content, _ in steps)


def test_opening_sets_kind_and_deadline() -> None:
    issuance = Exchange.open(EXCHANGE_ID, OFFER, ISS, NOW)
    assert (issuance.kind, issuance.state, issuance.expires_at) == (
        Kind.ISSUANCE,
        State.OFFERED,
        OFFER_DEADLINE,
    )
    presentation = Exchange.open(EXCHANGE_ID, PRES_REQUEST, V, NOW)
    assert (presentation.kind, presentation.expires_at) == (Kind.PRESENTATION, REQUEST_DEADLINE)
    on_request = Exchange.open(EXCHANGE_ID, CRED_REQUEST, H, NOW)
    assert on_request.expires_at is None  # no deadline unless an offer set one


def test_exchange_is_immutable() -> None:
    offered = Exchange.open(EXCHANGE_ID, OFFER, ISS, NOW)
    requested = offered.apply(CRED_REQUEST, H, NOW)
    assert offered.state is State.OFFERED
    assert requested.state is State.REQUESTED


@pytest.mark.parametrize(
    ("steps", "bad", "sender"),
    [
        ([(OFFER, ISS)], ISSUE, ISS),  # issuing before any request
        ([(OFFER, ISS)], OFFER, ISS),  # offering twice
        ([(CRED_REQUEST, H), (ISSUE, ISS)], ISSUE, ISS),  # issuing twice
        ([(CRED_REQUEST, H)], PRESENTATION, H),  # wrong kind of exchange
        ([(PRES_REQUEST, V), (PRESENTATION, H)], PRESENTATION, H),  # replayed response
        ([(PRES_REQUEST, V), (REFUSAL, H)], PRESENTATION, H),  # after a terminal state
        ([(PRES_REQUEST, V)], status(Outcome.VERIFIED), V),  # verified before any response
        ([(PRES_REQUEST, V), (PRESENTATION, H)], status(Outcome.REVOKED), V),
    ],
)
def test_illegal_transitions(steps: list[tuple[Content, Role]], bad: Content, sender: Role) -> None:
    exchange = run(steps)
    with pytest.raises(UnexpectedEvent) as caught:
        exchange.apply(bad, sender, NOW)
    assert caught.value.detail["state"] == exchange.state.value


@pytest.mark.parametrize(
    ("steps", "bad", "sender"),
    [
        ([(OFFER, ISS)], CRED_REQUEST, ISS),  # the agency cannot request for the citizen
        ([(CRED_REQUEST, H)], ISSUE, H),  # the citizen cannot issue
        ([(CRED_REQUEST, H)], ISSUE, V),  # a verifier has no part in issuance
        ([(PRES_REQUEST, V)], PRESENTATION, V),  # the verifier cannot answer itself
        ([(PRES_REQUEST, V), (PRESENTATION, H)], status(Outcome.VERIFIED), H),
        ([(CRED_REQUEST, H), (ISSUE, ISS)], status(Outcome.REVOKED), H),
    ],
)
def test_roles_are_enforced(steps: list[tuple[Content, Role]], bad: Content, sender: Role) -> None:
    with pytest.raises(UnexpectedEvent, match=f"from {sender.value}"):
        run(steps).apply(bad, sender, NOW)


@pytest.mark.parametrize(
    ("content", "sender"),
    [(OFFER, H), (CRED_REQUEST, ISS), (PRES_REQUEST, H), (ISSUE, ISS), (PRESENTATION, H)],
)
def test_opening_needs_the_right_event_and_role(content: Content, sender: Role) -> None:
    with pytest.raises(UnexpectedEvent):
        Exchange.open(EXCHANGE_ID, content, sender, NOW)


def test_non_exchange_content_is_unexpected() -> None:
    with pytest.raises(UnexpectedEvent, match="not part of an exchange"):
        signal_of(S[NAMESPACE + "device.list"])


def test_other_exchange_id_is_unknown_exchange() -> None:
    exchange = Exchange.open(
        "another_exchange_0001",
        OFFER.model_copy(update={"exchange_id": "another_exchange_0001"}),
        ISS,
        NOW,
    )
    with pytest.raises(UnknownExchange):
        exchange.apply(CRED_REQUEST, H, NOW)


def test_answer_after_deadline_expires() -> None:
    offered = Exchange.open(EXCHANGE_ID, OFFER, ISS, NOW)
    assert not offered.is_due(OFFER_DEADLINE)  # the deadline second itself is still valid
    assert offered.apply(CRED_REQUEST, H, OFFER_DEADLINE).state is State.REQUESTED
    with pytest.raises(RequestExpired):
        offered.apply(CRED_REQUEST, H, OFFER_DEADLINE + 1)
    assert offered.expire_if_due(OFFER_DEADLINE + 1).state is State.EXPIRED
    assert offered.expire_if_due(OFFER_DEADLINE) is offered


def test_presentation_response_after_deadline() -> None:
    requested = Exchange.open(EXCHANGE_ID, PRES_REQUEST, V, NOW)
    with pytest.raises(RequestExpired):
        requested.apply(PRESENTATION, H, REQUEST_DEADLINE + 1)
    # An explicit expiry notice is still accepted after the deadline.
    late = requested.apply(status(Outcome.EXPIRED), V, REQUEST_DEADLINE + 1)
    assert late.state is State.EXPIRED


def test_responded_exchange_does_not_expire() -> None:
    responded = run([(PRES_REQUEST, V), (PRESENTATION, H)])
    later = REQUEST_DEADLINE + 10
    assert responded.expire_if_due(later) is responded
    assert responded.apply(status(Outcome.VERIFIED), V, later).state is State.VERIFIED


def test_request_already_expired_on_arrival() -> None:
    with pytest.raises(RequestExpired, match="already past"):
        Exchange.open(EXCHANGE_ID, PRES_REQUEST, V, REQUEST_DEADLINE + 1)


def test_terminal_states_have_no_exits() -> None:
    for kind, table in TABLES.items():
        for state, _signal, _role in table:
            assert state not in TERMINAL, (kind, state)
    for state, signal, role in itertools.product(TERMINAL, Signal, Role):
        assert (state, signal, role) not in ISSUANCE_TABLE
        assert (state, signal, role) not in PRESENTATION_TABLE


def test_every_non_terminal_state_is_reachable() -> None:
    for kind, table in TABLES.items():
        reached = {State.START}
        frontier = [State.START]
        while frontier:
            state = frontier.pop()
            for (source, _signal, _role), target in table.items():
                if source is state and target not in reached:
                    reached.add(target)
                    frontier.append(target)
        used = {source for source, _, _ in table} | set(table.values())
        assert used <= reached, (kind, used - reached)


@pytest.mark.parametrize(
    ("kind", "agency", "role"),
    [
        (Kind.ISSUANCE, True, Role.ISSUER),
        (Kind.PRESENTATION, True, Role.VERIFIER),
        (Kind.ISSUANCE, False, Role.HOLDER),
        (Kind.PRESENTATION, False, Role.HOLDER),
    ],
)
def test_role_of(kind: Kind, agency: bool, role: Role) -> None:
    assert role_of(kind, sender_is_agency=agency) is role


def test_kind_of_opening() -> None:
    assert kind_of_opening(OFFER) is Kind.ISSUANCE
    assert kind_of_opening(CRED_REQUEST) is Kind.ISSUANCE
    assert kind_of_opening(PRES_REQUEST) is Kind.PRESENTATION
    with pytest.raises(UnexpectedEvent, match="cannot open"):
        kind_of_opening(ISSUE)
