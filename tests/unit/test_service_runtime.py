"""Unit tests of the party runtime's local logic: dispatch, state keeping, error answers.

The Matrix transport is replaced by an in-memory stand-in of the *transport interface*
(:class:`onceonly.service.Transport`): it records what the runtime queues and lets a
test hand the runtime inbound items. Everything involving a homeserver is tested in
tests/integration/test_service_synapse.py against a real Synapse.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from onceonly.errors import ConsentDenied, ExchangeTimeout, UnexpectedEvent
from onceonly.matrix.devices import AllDevicesOf
from onceonly.matrix.inbox import AlreadyHandled, InboundEvent, InboundHandler, InboundProblem
from onceonly.protocol import (
    NAMESPACE,
    CredentialOffer,
    ErrorContent,
    Outcome,
    Signal,
    State,
    to_content,
)
from onceonly.protocol.bodies import build_credential_request, build_exchange_status
from onceonly.protocol.envelope import from_wire, to_wire
from onceonly.protocol.events import CredentialIssue, PresentationRequest, PresentationResponse
from onceonly.protocol.fields import Content
from onceonly.service import ExchangeStore, ProtocolService, Received, RefusalHook
from onceonly.service.runtime import EXCHANGE_DB
from onceonly.types import EventId, RoomId, UserId
from tests.unit.protocol.samples import EXCHANGE_ID, HOLDER_JWK, JWS, NOW, RESIDENCE, samples

AGENCY = "@buergeramt:localhost"
CITIZEN = "@erika:localhost"
STRANGER = "@mallory:localhost"
ROOM = "!mailbox:localhost"
OTHER_ROOM = "!elsewhere:localhost"


class _Sent:
    def __init__(self, event_id: str) -> None:
        self._event_id = EventId(event_id)

    async def event_id(self, timeout: float | None = None) -> EventId:
        return self._event_id


class MemoryTransport:
    """In-memory stand-in for the transport interface (no Matrix involved)."""

    def __init__(self, user_id: str, handler: InboundHandler, hook: AlreadyHandled) -> None:
        self._user_id = UserId(user_id)
        self.handler = handler
        self.already_handled = hook
        self.sent: list[tuple[str, str, dict[str, Any]]] = []
        self.started = False
        self._counter = 0

    @property
    def user_id(self) -> UserId:
        return self._user_id

    async def start(self) -> None:
        self.started = True

    async def stop(self) -> None:
        self.started = False

    async def ensure_direct_room(self, peer: str) -> RoomId:
        return RoomId(ROOM)

    async def send(self, room_id: str, event_type: str, content: dict[str, Any]) -> _Sent:
        self.sent.append((room_id, event_type, content))
        self._counter += 1
        return _Sent(f"$sent{self._counter}")

    def sent_contents(self) -> list[Content]:
        out = []
        for _, event_type, content in self.sent:
            parsed = from_wire(event_type, content)
            assert parsed is not None
            out.append(parsed)
        return out

    def errors(self) -> list[ErrorContent]:
        return [c for c in self.sent_contents() if isinstance(c, ErrorContent)]


class Harness:
    def __init__(self, service: ProtocolService, transport: MemoryTransport) -> None:
        self.service = service
        self.transport = transport
        self.received: list[Received] = []
        self.clock = [float(NOW)]
        self._n = 0

    async def deliver(
        self,
        content: Content | dict[str, Any],
        *,
        sender: str,
        room_id: str = ROOM,
        event_type: str | None = None,
        encrypted: bool = True,
        event_id: str | None = None,
        redelivered: bool = False,
    ) -> str:
        if isinstance(content, dict):
            assert event_type is not None
            wire_type, wire = event_type, content
        else:
            wire_type, wire = to_wire(content)
        self._n += 1
        event_id = event_id or f"$in{self._n}"
        await self.transport.handler(
            InboundEvent(
                event_id=event_id,
                room_id=room_id,
                sender=sender,
                type=wire_type,
                content=wire,
                origin_server_ts=NOW * 1000,
                encrypted=encrypted,
                redelivered=redelivered,
            )
        )
        return event_id


async def _harness(
    tmp_path: Path,
    *,
    agency: bool,
    handlers: dict[type, Any],
    on_refused: RefusalHook | None = None,
) -> Harness:
    box: dict[str, MemoryTransport] = {}
    clock = [float(NOW)]

    def factory(handler: InboundHandler, hook: AlreadyHandled) -> MemoryTransport:
        box["t"] = MemoryTransport(AGENCY if agency else CITIZEN, handler, hook)
        return box["t"]

    service = ProtocolService(
        data_dir=tmp_path,
        handlers=handlers,
        agency=agency,
        device_policy=AllDevicesOf(()),
        clock=lambda: clock[0],
        transport_factory=factory,
        sweep_interval=3600,
        on_refused=on_refused,
    )
    await service.start()
    harness = Harness(service, box["t"])
    harness.clock = clock
    return harness


def _sample(name: str) -> Any:
    return samples()[NAMESPACE + name]


@pytest.fixture
async def wallet(tmp_path: Path) -> AsyncIterator[Harness]:
    received: list[Received] = []

    async def record(item: Received) -> None:
        received.append(item)

    handlers = {
        CredentialOffer: record,
        CredentialIssue: record,
        PresentationRequest: record,
        ErrorContent: record,
    }
    harness = await _harness(tmp_path, agency=False, handlers=handlers)
    harness.received = received
    yield harness
    await harness.service.stop()


def _request(exchange_id: str = EXCHANGE_ID) -> Content:
    return build_credential_request(
        exchange_id=exchange_id,
        vct="urn:onceonly:credential:residence:1",
        holder_jwk=HOLDER_JWK,
        proof=JWS,
        credential_name=RESIDENCE,
    )


# --- dispatch and state ---------------------------------------------------------------


async def test_opening_event_creates_the_exchange_and_reaches_the_handler(
    wallet: Harness, tmp_path: Path
) -> None:
    event_id = await wallet.deliver(_sample("credential.offer"), sender=AGENCY)

    assert len(wallet.received) == 1
    got = wallet.received[0]
    assert got.content == _sample("credential.offer")
    assert (got.sender, got.room_id, got.event_id, got.now) == (AGENCY, ROOM, event_id, NOW)
    assert got.exchange is not None and got.exchange.state is State.OFFERED
    record = wallet.service.exchanges.record(EXCHANGE_ID)
    assert record is not None
    assert (record.peer, record.room_id, record.last_event_id) == (AGENCY, ROOM, event_id)
    assert wallet.transport.sent == []  # nothing to answer
    # Durable: a second connection to the same file sees it.
    other = ExchangeStore.open(tmp_path / EXCHANGE_DB)
    try:
        stored = other.get(EXCHANGE_ID)
        assert stored is not None and stored.state is State.OFFERED
    finally:
        other.close()


async def test_chat_messages_and_foreign_events_are_ignored(wallet: Harness) -> None:
    await wallet.deliver(
        {"msgtype": "m.text", "body": "hello"}, sender=AGENCY, event_type="m.room.message"
    )
    await wallet.deliver({"key": "x"}, sender=AGENCY, event_type="m.reaction")
    assert wallet.received == [] and wallet.transport.sent == []


async def test_bare_custom_event_type_is_dispatched_too(wallet: Harness) -> None:
    offer = _sample("credential.offer")
    await wallet.deliver(
        to_content(offer), sender=AGENCY, event_type=NAMESPACE + "credential.offer"
    )
    assert [r.content for r in wallet.received] == [offer]


async def test_send_wraps_and_records_our_transition(wallet: Harness) -> None:
    await wallet.deliver(_sample("credential.offer"), sender=AGENCY)
    event_id = await wallet.service.send(RoomId(ROOM), _request())

    room_id, event_type, content = wallet.transport.sent[-1]
    assert (room_id, event_type, content["msgtype"]) == (
        ROOM,
        "m.room.message",
        NAMESPACE + "credential.request",
    )
    record = wallet.service.exchanges.record(EXCHANGE_ID)
    assert record is not None
    assert record.exchange.state is State.REQUESTED
    assert record.last_event_id == event_id


async def test_illegal_send_raises_before_anything_is_queued(wallet: Harness) -> None:
    # A citizen cannot send a credential (issuer role only).
    with pytest.raises(UnexpectedEvent):
        await wallet.service.send(RoomId(ROOM), _sample("credential.issue"))
    assert wallet.transport.sent == []
    assert wallet.service.exchanges.get(EXCHANGE_ID) is None


# --- error answers --------------------------------------------------------------------


async def test_invalid_content_is_answered_with_an_error_and_closes_the_exchange(
    wallet: Harness,
) -> None:
    await wallet.deliver(_sample("credential.offer"), sender=AGENCY)
    _, bad = to_wire(_sample("credential.issue"))
    del bad["credential"]
    bad_id = await wallet.deliver(bad, sender=AGENCY, event_type="m.room.message")

    [error] = wallet.transport.errors()
    assert error.code == "malformed"
    assert (error.exchange_id, error.event_id) == (EXCHANGE_ID, bad_id)
    exchange = wallet.service.exchanges.get(EXCHANGE_ID)
    assert exchange is not None and exchange.state is State.REJECTED
    assert len(wallet.received) == 1  # only the offer reached a handler


async def test_event_in_the_wrong_state_gets_unexpected_event(wallet: Harness) -> None:
    # A credential without a request: the issuance machine has no such transition.
    await wallet.deliver(_sample("credential.offer"), sender=AGENCY)
    await wallet.deliver(_sample("credential.issue"), sender=AGENCY)
    [error] = wallet.transport.errors()
    assert error.code == "unexpected_event"
    exchange = wallet.service.exchanges.get(EXCHANGE_ID)
    assert exchange is not None and exchange.state is State.REJECTED


async def test_opening_type_without_a_handler_is_refused(tmp_path: Path) -> None:
    harness = await _harness(tmp_path, agency=True, handlers={})
    try:
        await harness.deliver(_request(), sender=CITIZEN)
        [error] = harness.transport.errors()
        assert error.code == "unexpected_event"
        assert harness.service.exchanges.get(EXCHANGE_ID) is None
    finally:
        await harness.service.stop()


async def test_non_opening_event_for_an_unknown_exchange(wallet: Harness) -> None:
    await wallet.deliver(_sample("credential.issue"), sender=AGENCY)
    [error] = wallet.transport.errors()
    assert error.code == "unknown_exchange"
    assert wallet.service.exchanges.get(EXCHANGE_ID) is None


async def test_another_peer_cannot_touch_an_exchange_by_reusing_its_id(wallet: Harness) -> None:
    await wallet.deliver(_sample("credential.offer"), sender=AGENCY)
    await wallet.deliver(_sample("credential.issue"), sender=STRANGER, room_id=OTHER_ROOM)
    await wallet.deliver(_sample("error"), sender=STRANGER, room_id=OTHER_ROOM)

    [error] = wallet.transport.errors()
    assert error.code == "unknown_exchange"
    assert wallet.transport.sent[-1][0] == OTHER_ROOM
    exchange = wallet.service.exchanges.get(EXCHANGE_ID)
    assert exchange is not None and exchange.state is State.OFFERED
    # The stranger's error is surfaced, but as about no exchange of ours.
    assert [(r.sender, r.exchange) for r in wallet.received[1:]] == [(STRANGER, None)]


async def test_unencrypted_protocol_message_is_refused(wallet: Harness) -> None:
    await wallet.deliver(_sample("credential.offer"), sender=AGENCY, encrypted=False)
    [error] = wallet.transport.errors()
    assert error.code == "untrusted_party"
    assert wallet.received == []


async def test_typed_handler_error_is_answered_with_its_code(tmp_path: Path) -> None:
    async def decline(item: Received) -> None:
        raise ConsentDenied("the citizen declined")

    harness = await _harness(tmp_path, agency=False, handlers={PresentationRequest: decline})
    try:
        event_id = await harness.deliver(_sample("presentation.request"), sender=AGENCY)
        [error] = harness.transport.errors()
        assert (error.code, error.message) == ("consent_denied", "the citizen declined")
        assert (error.exchange_id, error.event_id) == (EXCHANGE_ID, event_id)
        exchange = harness.service.exchanges.get(EXCHANGE_ID)
        # The holder's error in "requested" is a refusal (presentation table).
        assert exchange is not None and exchange.state is State.REFUSED
    finally:
        await harness.service.stop()


async def test_unexpected_handler_exception_is_internal_error_and_service_goes_on(
    tmp_path: Path,
) -> None:
    calls: list[str] = []

    async def flaky(item: Received) -> None:
        calls.append(item.event_id)
        if len(calls) == 1:
            raise RuntimeError("secret detail /var/lib/x")

    harness = await _harness(tmp_path, agency=False, handlers={CredentialOffer: flaky})
    try:
        await harness.deliver(_sample("credential.offer"), sender=AGENCY)
        [error] = harness.transport.errors()
        assert error.code == "internal_error"
        assert "secret" not in error.message and "secret" not in error.body
        second = _sample("credential.offer").model_copy(update={"exchange_id": "x" * 20})
        await harness.deliver(second, sender=AGENCY)
        assert len(calls) == 2
        assert len(harness.transport.errors()) == 1
        second_state = harness.service.exchanges.get("x" * 20)
        assert second_state is not None and second_state.state is State.OFFERED
    finally:
        await harness.service.stop()


async def test_incoming_error_closes_our_exchange_and_is_never_answered(wallet: Harness) -> None:
    await wallet.deliver(_sample("credential.offer"), sender=AGENCY)
    await wallet.service.send(RoomId(ROOM), _request())
    sent_before = len(wallet.transport.sent)
    await wallet.deliver(_sample("error"), sender=AGENCY)

    assert len(wallet.transport.sent) == sent_before
    exchange = wallet.service.exchanges.get(EXCHANGE_ID)
    assert exchange is not None and exchange.state is State.REJECTED
    assert isinstance(wallet.received[-1].content, ErrorContent)
    assert wallet.received[-1].exchange == exchange


async def test_invalid_error_event_is_not_answered(wallet: Harness) -> None:
    _, bad = to_wire(_sample("error"))
    bad["code"] = "NOT A CODE"
    await wallet.deliver(bad, sender=AGENCY, event_type="m.room.message")
    assert wallet.transport.sent == []


async def test_problems_are_answered_once_per_interval_and_only_with_a_sender(
    wallet: Harness,
) -> None:
    problem = InboundProblem(
        event_id="$p1",
        room_id=ROOM,
        sender=AGENCY,
        type="m.room.encrypted",
        code="undecryptable",
        message="cannot decrypt",
    )
    await wallet.transport.handler(problem)
    await wallet.transport.handler(problem.model_copy(update={"event_id": "$p2"}))
    await wallet.transport.handler(
        problem.model_copy(update={"event_id": "$p3", "room_id": "!x:localhost", "sender": ""})
    )
    [error] = wallet.transport.errors()
    assert (error.code, error.event_id) == ("undecryptable", "$p1")
    wallet.clock[0] += 301
    await wallet.transport.handler(problem.model_copy(update={"event_id": "$p4"}))
    assert [e.event_id for e in wallet.transport.errors()] == ["$p1", "$p4"]


# --- duplicates, expiry, waiting ----------------------------------------------------------


async def test_redelivery_of_a_handled_event_is_skipped(wallet: Harness) -> None:
    event_id = await wallet.deliver(_sample("credential.offer"), sender=AGENCY)
    assert wallet.transport.already_handled(event_id) is True
    assert wallet.transport.already_handled("$never") is False
    await wallet.deliver(
        _sample("credential.offer"), sender=AGENCY, event_id=event_id, redelivered=True
    )
    assert len(wallet.received) == 1
    assert wallet.transport.sent == []


async def test_sweep_expires_due_exchanges_and_wakes_waiters(wallet: Harness) -> None:
    await wallet.deliver(_sample("credential.offer"), sender=AGENCY)
    waiter = asyncio.create_task(wallet.service.wait_for(EXCHANGE_ID, timeout=5))
    await asyncio.sleep(0)
    assert wallet.service.sweep() == []
    wallet.clock[0] = NOW + 14 * 86400 + 1
    [expired] = wallet.service.sweep()
    assert expired.state is State.EXPIRED
    assert (await waiter).state is State.EXPIRED


async def test_late_answer_gets_request_expired(tmp_path: Path) -> None:
    harness = await _harness(tmp_path, agency=True, handlers={PresentationResponse: _noop})
    try:
        await harness.service.send(RoomId(ROOM), _sample("presentation.request"))
        harness.clock[0] = NOW + 3601
        await harness.deliver(_sample("presentation.response"), sender=CITIZEN)
        [error] = harness.transport.errors()
        assert error.code == "request_expired"
        exchange = harness.service.exchanges.get(EXCHANGE_ID)
        assert exchange is not None and exchange.state is State.EXPIRED
    finally:
        await harness.service.stop()


async def test_wait_for_a_verified_presentation(tmp_path: Path) -> None:
    harness = await _harness(tmp_path, agency=True, handlers={PresentationResponse: _noop})
    try:
        await harness.service.send(RoomId(ROOM), _sample("presentation.request"))
        waiter = asyncio.create_task(harness.service.wait_for(EXCHANGE_ID, timeout=5))
        await harness.deliver(_sample("presentation.response"), sender=CITIZEN)
        assert not waiter.done()
        status = build_exchange_status(exchange_id=EXCHANGE_ID, outcome=Outcome.VERIFIED)
        await harness.service.send(RoomId(ROOM), status)
        assert (await waiter).state is State.VERIFIED
        # Already there: returns at once.
        done = await harness.service.wait_for(EXCHANGE_ID, timeout=0.01)
        assert done.state is State.VERIFIED
    finally:
        await harness.service.stop()


async def test_wait_for_times_out_with_a_typed_error(wallet: Harness) -> None:
    await wallet.deliver(_sample("credential.offer"), sender=AGENCY)
    with pytest.raises(ExchangeTimeout) as info:
        await wallet.service.wait_for(EXCHANGE_ID, timeout=0.05)
    assert info.value.detail == {"exchange_id": EXCHANGE_ID, "state": "offered"}


async def test_room_for_remembers_the_mailbox_peer(tmp_path: Path) -> None:
    harness = await _harness(tmp_path, agency=True, handlers={})
    try:
        room = await harness.service.room_for(UserId(CITIZEN))
        assert harness.service.exchanges.peer_of_room(room) == CITIZEN
        await harness.service.send(room, _sample("credential.offer"))
        record = harness.service.exchanges.record(EXCHANGE_ID)
        assert record is not None and record.peer == CITIZEN
        assert record.exchange.state is State.OFFERED
    finally:
        await harness.service.stop()


async def _noop(item: Received) -> None:
    return None


class _Crash(BaseException):
    """Stands for the process dying inside a handler (not caught like an Exception)."""


async def test_event_applied_before_a_crash_reruns_the_handler_if_nothing_moved(
    tmp_path: Path,
) -> None:
    calls: list[str] = []

    async def crashes_once(item: Received) -> None:
        calls.append(item.event_id)
        if len(calls) == 1:
            raise _Crash

    harness = await _harness(tmp_path, agency=False, handlers={CredentialOffer: crashes_once})
    try:
        with pytest.raises(_Crash):
            await harness.deliver(_sample("credential.offer"), sender=AGENCY, event_id="$offer")
        assert harness.transport.already_handled("$offer") is False
        await harness.deliver(
            _sample("credential.offer"), sender=AGENCY, event_id="$offer", redelivered=True
        )
        assert calls == ["$offer", "$offer"]
        assert harness.transport.sent == []  # no unexpected_event for the repeated offer
        exchange = harness.service.exchanges.get(EXCHANGE_ID)
        assert exchange is not None and exchange.state is State.OFFERED
        assert exchange.history == (Signal.OFFER,)
        assert harness.transport.already_handled("$offer") is True
    finally:
        await harness.service.stop()


async def test_event_applied_before_a_crash_is_not_rerun_once_we_answered(tmp_path: Path) -> None:
    calls: list[str] = []
    box: dict[str, ProtocolService] = {}

    async def answers_then_crashes(item: Received) -> None:
        calls.append(item.event_id)
        await box["service"].send(item.room_id, _request())
        raise _Crash

    harness = await _harness(
        tmp_path, agency=False, handlers={CredentialOffer: answers_then_crashes}
    )
    box["service"] = harness.service
    try:
        with pytest.raises(_Crash):
            await harness.deliver(_sample("credential.offer"), sender=AGENCY, event_id="$offer")
        await harness.deliver(
            _sample("credential.offer"), sender=AGENCY, event_id="$offer", redelivered=True
        )
        assert calls == ["$offer"]
        assert harness.transport.errors() == []
        exchange = harness.service.exchanges.get(EXCHANGE_ID)
        assert exchange is not None and exchange.state is State.REQUESTED
    finally:
        await harness.service.stop()


async def test_the_periodic_sweep_expires_without_being_asked(tmp_path: Path) -> None:
    box: dict[str, MemoryTransport] = {}
    clock = [float(NOW)]

    def factory(handler: InboundHandler, hook: AlreadyHandled) -> MemoryTransport:
        box["t"] = MemoryTransport(CITIZEN, handler, hook)
        return box["t"]

    service = ProtocolService(
        data_dir=tmp_path,
        handlers={CredentialOffer: _noop},
        agency=False,
        device_policy=AllDevicesOf(()),
        clock=lambda: clock[0],
        transport_factory=factory,
        sweep_interval=0.01,
    )
    async with service:
        harness = Harness(service, box["t"])
        await harness.deliver(_sample("credential.offer"), sender=AGENCY)
        clock[0] = NOW + 14 * 86400 + 1
        expired = await service.wait_for(EXCHANGE_ID, timeout=5)
        assert expired.state is State.EXPIRED
    assert box["t"].started is False


async def test_stopping_ends_waiters_with_a_typed_error(tmp_path: Path) -> None:
    harness = await _harness(tmp_path, agency=False, handlers={CredentialOffer: _noop})
    await harness.deliver(_sample("credential.offer"), sender=AGENCY)
    waiter = asyncio.create_task(harness.service.wait_for(EXCHANGE_ID, timeout=30))
    await asyncio.sleep(0.01)
    await harness.service.stop()
    with pytest.raises(ExchangeTimeout, match="stopped"):
        await waiter
