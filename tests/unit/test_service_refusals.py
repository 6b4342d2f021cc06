"""The runtime's refusal hook: every refused inbound event is reported, after its answer.

Uses the in-memory transport stand-in of :mod:`tests.unit.test_service_runtime`
(no Matrix involved); the verifier's use of the hook on a real Synapse is in
tests/integration/test_verifier_synapse.py.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from onceonly.errors import ConsentDenied
from onceonly.protocol import NAMESPACE, Outcome, Refusal, State
from onceonly.protocol.bodies import build_exchange_status, build_presentation_response
from onceonly.protocol.envelope import to_wire
from onceonly.protocol.events import (
    CredentialOffer,
    CredentialRequest,
    PresentationRequest,
    PresentationResponse,
)
from onceonly.service import Received, Refused
from onceonly.types import RoomId
from tests.unit.protocol.samples import EXCHANGE_ID, NOW, RESIDENCE
from tests.unit.test_service_runtime import (
    AGENCY,
    CITIZEN,
    ROOM,
    STRANGER,
    Harness,
    _harness,
    _noop,
    _request,
    _sample,
)


class Recorder:
    """A refusal hook that notes each report and what had been answered by then."""

    def __init__(self) -> None:
        self.reports: list[Refused] = []
        self.answers_before: list[int] = []
        self.harness: Harness | None = None

    def __call__(self, refused: Refused) -> None:
        assert self.harness is not None
        self.reports.append(refused)
        self.answers_before.append(len(self.harness.transport.errors()))


def _state(harness: Harness) -> State | None:
    exchange = harness.service.exchanges.get(EXCHANGE_ID)
    return exchange.state if exchange is not None else None


def _refusal() -> PresentationResponse:
    return build_presentation_response(
        exchange_id=EXCHANGE_ID, verifier_name=RESIDENCE, refusal=Refusal(code="consent_denied")
    )


@pytest.fixture
async def verifier(tmp_path: Path) -> AsyncIterator[tuple[Harness, Recorder]]:
    recorder = Recorder()
    harness = await _harness(
        tmp_path, agency=True, handlers={PresentationResponse: _noop}, on_refused=recorder
    )
    recorder.harness = harness
    await harness.service.send(RoomId(ROOM), _sample("presentation.request"))
    yield harness, recorder
    await harness.service.stop()


async def test_malformed_content_is_reported_raw_after_its_answer(
    verifier: tuple[Harness, Recorder],
) -> None:
    harness, recorder = verifier
    _, bad = to_wire(_sample("presentation.response"))
    bad["vp_token"] = "not an object"
    event_id = await harness.deliver(bad, sender=CITIZEN, event_type="m.room.message")

    [refused] = recorder.reports
    assert recorder.answers_before == [1]  # the error was queued before the hook ran
    assert (refused.code, refused.event_id, refused.sender) == ("malformed", event_id, CITIZEN)
    assert refused.protocol_type == NAMESPACE + "presentation.response"
    assert refused.content is None and refused.handler_ran is False
    assert refused.exchange_id == EXCHANGE_ID
    assert json.loads(refused.raw_content) == bad
    assert list(json.loads(refused.raw_content)) == list(bad)  # key order as received
    assert refused.now == NOW


async def test_refusals_before_any_handler_are_reported_with_their_code(
    verifier: tuple[Harness, Recorder],
) -> None:
    harness, recorder = verifier
    response = _sample("presentation.response")
    await harness.deliver(response, sender=CITIZEN, encrypted=False)
    await harness.deliver(response, sender=STRANGER, room_id="!elsewhere:localhost")
    other = response.model_copy(update={"exchange_id": "y" * 20})
    await harness.deliver(other, sender=CITIZEN)

    codes = [(r.code, r.handler_ran, r.exchange_id) for r in recorder.reports]
    assert codes == [
        ("untrusted_party", False, EXCHANGE_ID),
        ("unknown_exchange", False, EXCHANGE_ID),
        ("unknown_exchange", False, "y" * 20),
    ]
    assert all(r.content is not None for r in recorder.reports)
    assert [e.code for e in harness.transport.errors()] == [c for c, _, _ in codes]


async def test_late_answer_is_reported_as_request_expired(
    verifier: tuple[Harness, Recorder],
) -> None:
    harness, recorder = verifier
    harness.clock[0] = NOW + 3601
    await harness.deliver(_sample("presentation.response"), sender=CITIZEN)
    [refused] = recorder.reports
    assert refused.code == "request_expired"
    assert _state(harness) is State.EXPIRED


async def test_chat_messages_and_accepted_events_are_not_reported(
    verifier: tuple[Harness, Recorder],
) -> None:
    harness, recorder = verifier
    await harness.deliver(
        {"msgtype": "m.text", "body": "hello"}, sender=CITIZEN, event_type="m.room.message"
    )
    await harness.deliver(_sample("presentation.response"), sender=CITIZEN)
    assert recorder.reports == []
    assert harness.transport.errors() == []


async def test_handler_refusals_are_reported_as_such(tmp_path: Path) -> None:
    async def decline(item: Received) -> None:
        raise ConsentDenied("the citizen declined")

    recorder = Recorder()
    harness = await _harness(
        tmp_path, agency=False, handlers={PresentationRequest: decline}, on_refused=recorder
    )
    recorder.harness = harness
    try:
        await harness.deliver(_sample("presentation.request"), sender=AGENCY)
        [refused] = recorder.reports
        assert (refused.code, refused.handler_ran) == ("consent_denied", True)
        assert refused.message == "the citizen declined"
    finally:
        await harness.service.stop()


async def test_a_failing_hook_changes_nothing(tmp_path: Path) -> None:
    calls: list[str] = []

    def broken(refused: Refused) -> None:
        calls.append(refused.code)
        raise RuntimeError("the audit store is gone")

    harness = await _harness(
        tmp_path, agency=False, handlers={CredentialOffer: _noop}, on_refused=broken
    )
    try:
        await harness.deliver(_sample("credential.offer"), sender=AGENCY)
        bad_id = await harness.deliver(_sample("credential.issue"), sender=AGENCY)
        [error] = harness.transport.errors()
        assert (error.code, error.event_id) == ("unexpected_event", bad_id)
        assert calls == ["unexpected_event"]
        assert harness.transport.already_handled(bad_id) is True
        # The service goes on.
        second = _sample("credential.offer").model_copy(update={"exchange_id": "z" * 20})
        await harness.deliver(second, sender=AGENCY)
        later = harness.service.exchanges.get("z" * 20)
        assert later is not None and later.state is State.OFFERED
    finally:
        await harness.service.stop()


# --- repeated and late answers (issue 7: a replayed response is refused as a replay) ----


async def test_second_answer_after_the_verdict_is_a_replay(
    verifier: tuple[Harness, Recorder],
) -> None:
    harness, recorder = verifier
    await harness.deliver(_sample("presentation.response"), sender=CITIZEN)
    status = build_exchange_status(exchange_id=EXCHANGE_ID, outcome=Outcome.VERIFIED)
    await harness.service.send(RoomId(ROOM), status)
    again = await harness.deliver(_sample("presentation.response"), sender=CITIZEN)

    [error] = harness.transport.errors()
    assert (error.code, error.event_id, error.exchange_id) == ("replay", again, EXCHANGE_ID)
    assert [(r.code, r.handler_ran) for r in recorder.reports] == [("replay", False)]
    assert _state(harness) is State.VERIFIED


async def test_second_answer_while_the_first_is_judged_leaves_the_exchange_alone(
    verifier: tuple[Harness, Recorder],
) -> None:
    harness, _ = verifier
    await harness.deliver(_sample("presentation.response"), sender=CITIZEN)
    await harness.deliver(_refusal(), sender=CITIZEN)

    assert [e.code for e in harness.transport.errors()] == ["replay"]
    assert _state(harness) is State.RESPONDED
    # The first answer's verdict still goes out.
    status = build_exchange_status(exchange_id=EXCHANGE_ID, outcome=Outcome.VERIFIED)
    await harness.service.send(RoomId(ROOM), status)
    assert _state(harness) is State.VERIFIED


async def test_answer_after_a_refusal_is_a_replay(verifier: tuple[Harness, Recorder]) -> None:
    harness, _ = verifier
    await harness.deliver(_refusal(), sender=CITIZEN)
    await harness.deliver(_sample("presentation.response"), sender=CITIZEN)
    assert [e.code for e in harness.transport.errors()] == ["replay"]
    assert _state(harness) is State.REFUSED


async def test_answer_after_the_sweep_expired_the_request_is_late_not_unexpected(
    verifier: tuple[Harness, Recorder],
) -> None:
    harness, recorder = verifier
    harness.clock[0] = NOW + 3601
    [expired] = harness.service.sweep()
    assert expired.state is State.EXPIRED
    await harness.deliver(_sample("presentation.response"), sender=CITIZEN)
    assert [e.code for e in harness.transport.errors()] == ["request_expired"]
    assert [r.code for r in recorder.reports] == ["request_expired"]


async def test_after_the_sweep_only_the_awaited_answer_is_late(tmp_path: Path) -> None:
    harness = await _harness(tmp_path, agency=False, handlers={CredentialOffer: _noop})
    try:
        await harness.deliver(_sample("credential.offer"), sender=AGENCY)
        harness.clock[0] = NOW + 14 * 86400 + 1
        harness.service.sweep()
        # Neither was ever allowed after an offer the citizen did not take up.
        expired = build_exchange_status(exchange_id=EXCHANGE_ID, outcome=Outcome.EXPIRED)
        await harness.deliver(expired, sender=AGENCY)
        await harness.deliver(_sample("credential.issue"), sender=AGENCY)
        errors = [e.code for e in harness.transport.errors()]
        assert errors == ["unexpected_event", "unexpected_event"]
    finally:
        await harness.service.stop()


async def test_late_credential_request_after_the_offer_expired(tmp_path: Path) -> None:
    harness = await _harness(tmp_path, agency=True, handlers={CredentialRequest: _noop})
    try:
        await harness.service.send(RoomId(ROOM), _sample("credential.offer"))
        harness.clock[0] = NOW + 14 * 86400 + 1
        harness.service.sweep()
        await harness.deliver(_request(), sender=CITIZEN)
        assert [e.code for e in harness.transport.errors()] == ["request_expired"]
    finally:
        await harness.service.stop()
