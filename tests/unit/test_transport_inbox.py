"""The dispatcher's delivery contract and the sync loop's classification of events."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from nio import AsyncClient, Event, MegolmEvent

from onceonly.errors import InputTooLarge, TransportError
from onceonly.matrix.devices import AllDevicesOf
from onceonly.matrix.inbox import (
    Dispatcher,
    Inbound,
    InboundEvent,
    InboundProblem,
    InboundStream,
    parse_stored,
)
from onceonly.matrix.rooms import DirectRooms, InvitesFrom
from onceonly.matrix.store import TransportStore
from onceonly.matrix.sync import SyncLoop


@pytest.fixture
def store(tmp_path: Path) -> Iterator[TransportStore]:
    s = TransportStore.open(tmp_path / "t.sqlite")
    yield s
    s.close()


def _event(n: int) -> dict[str, Any]:
    return InboundEvent(
        event_id=f"$e{n}",
        room_id="!r:hs",
        sender="@a:hs",
        type="t.x",
        content={"n": n},
        origin_server_ts=n,
        encrypted=True,
    ).model_dump(mode="json")


async def _identity(event: InboundEvent) -> Inbound:
    return event


def test_stored_items_round_trip_to_the_right_model() -> None:
    problem = InboundProblem.from_error(
        InputTooLarge("big"), event_id="$p", room_id="!r", sender="@s:hs"
    )
    assert parse_stored(problem.model_dump(mode="json")) == problem
    assert isinstance(parse_stored(_event(1)), InboundEvent)
    assert problem.code == "too_large"


async def test_items_are_delivered_in_order_and_acknowledged_once(
    store: TransportStore,
) -> None:
    got: list[Inbound] = []

    async def handler(item: Inbound) -> None:
        got.append(item)

    for n in (1, 2, 3):
        store.record_inbound(f"$e{n}", _event(n))
    dispatcher = Dispatcher(store, handler, _identity)
    assert await dispatcher.deliver_pending() is False
    assert await dispatcher.deliver_pending() is False
    assert [i.event_id for i in got] == ["$e1", "$e2", "$e3"]
    assert not any(i.redelivered for i in got)
    assert store.pending_inbound() == []


async def test_failure_keeps_order_then_parks_after_max_attempts(store: TransportStore) -> None:
    calls: list[str] = []

    async def handler(item: Inbound) -> None:
        calls.append(item.event_id)
        if item.event_id == "$e1":
            raise ValueError("handler bug")

    store.record_inbound("$e1", _event(1))
    store.record_inbound("$e2", _event(2))
    dispatcher = Dispatcher(store, handler, _identity, max_attempts=3)
    assert await dispatcher.deliver_pending() is True
    assert calls == ["$e1"]  # $e2 waits behind the failing item
    assert await dispatcher.deliver_pending() is True
    assert await dispatcher.deliver_pending() is True
    assert [r.event_id for r in store.parked_inbound()] == ["$e1"]
    assert await dispatcher.deliver_pending() is False
    assert calls == ["$e1", "$e1", "$e1", "$e2"]


async def test_interrupted_delivery_is_redelivered_unless_the_party_recorded_it(
    store: TransportStore,
) -> None:
    got: list[Inbound] = []

    async def handler(item: Inbound) -> None:
        got.append(item)

    for n in (1, 2):
        store.record_inbound(f"$e{n}", _event(n))
        store.note_delivery_attempt(f"$e{n}")  # as if killed while the handler ran
    party_record = {"$e1"}
    dispatcher = Dispatcher(store, handler, _identity, already_handled=party_record.__contains__)
    await dispatcher.deliver_pending()
    assert [(i.event_id, i.redelivered) for i in got] == [("$e2", True)]
    assert store.pending_inbound() == []


async def test_transient_resolve_failure_retries_later_permanent_becomes_problem(
    store: TransportStore,
) -> None:
    got: list[Inbound] = []
    outcomes: list[Exception | None] = [TransportError("media down"), None]

    async def handler(item: Inbound) -> None:
        got.append(item)

    async def resolve(event: InboundEvent) -> Inbound:
        outcome = outcomes.pop(0)
        if outcome is not None:
            raise outcome
        return InboundProblem.from_error(
            InputTooLarge("attachment too big"), event_id=event.event_id, room_id=event.room_id
        )

    store.record_inbound("$e1", _event(1))
    dispatcher = Dispatcher(store, handler, resolve)
    assert await dispatcher.deliver_pending() is True
    assert got == [] and store.pending_inbound()[0].attempts == 0
    assert await dispatcher.deliver_pending() is False
    assert isinstance(got[0], InboundProblem) and got[0].code == "too_large"


# --- classification in the sync loop -------------------------------------------------


def _loop(store: TransportStore) -> SyncLoop:
    # Constructing nio's client does no I/O; these tests never let it talk to a server.
    client = AsyncClient("http://127.0.0.1:9", "@me:hs", "DEV")
    client.user_id = "@me:hs"  # what restore_login sets

    async def handler(item: Inbound) -> None:
        raise AssertionError("not used")

    dispatcher = Dispatcher(store, handler, _identity)
    return SyncLoop(
        client, store, dispatcher, DirectRooms(client, store), InvitesFrom(()), AllDevicesOf(())
    )


def _raw(**overrides: Any) -> dict[str, Any]:
    event: dict[str, Any] = {
        "event_id": "$1",
        "sender": "@other:hs",
        "origin_server_ts": 5,
        "type": "org.onceonly.test",
        "content": {"body": "hi"},
    }
    event.update(overrides)
    return event


def test_plain_custom_event_is_recorded_unencrypted(store: TransportStore) -> None:
    loop = _loop(store)
    loop._record(Event.parse_event(_raw()), "!r")
    (row,) = store.pending_inbound()
    item = parse_stored(row.payload)
    assert isinstance(item, InboundEvent)
    assert (item.type, item.content, item.encrypted, item.sender_device) == (
        "org.onceonly.test",
        {"body": "hi"},
        False,
        None,
    )


def test_own_echoes_state_events_and_duplicates_are_not_recorded(store: TransportStore) -> None:
    loop = _loop(store)
    loop._record(Event.parse_event(_raw(sender="@me:hs")), "!r")
    loop._record(
        Event.parse_event(
            _raw(event_id="$2", type="m.room.topic", state_key="", content={"topic": "t"})
        ),
        "!r",
    )
    loop._record(Event.parse_event(_raw(event_id="$3")), "!r")
    loop._record(Event.parse_event(_raw(event_id="$3")), "!r")
    assert [r.event_id for r in store.pending_inbound()] == ["$3"]


def test_malformed_and_unknown_algorithm_events_become_problems(store: TransportStore) -> None:
    loop = _loop(store)
    bad = Event.parse_event(_raw(type="m.room.message", content={"msgtype": 5}))
    loop._record(bad, "!r")
    odd_algorithm = Event.parse_event(
        _raw(
            event_id="$2",
            type="m.room.encrypted",
            content={"algorithm": "rot13", "sender_key": "k"},
        )
    )
    loop._record(odd_algorithm, "!r")
    codes = [parse_stored(r.payload) for r in store.pending_inbound()]
    assert [(type(c).__name__, getattr(c, "code", "")) for c in codes] == [
        ("InboundProblem", "malformed"),
        ("InboundProblem", "undecryptable"),
    ]
    assert all(c.sender == "@other:hs" for c in codes)


def test_megolm_event_without_key_is_kept_not_delivered(store: TransportStore) -> None:
    loop = _loop(store)
    megolm = Event.parse_event(
        _raw(
            type="m.room.encrypted",
            content={
                "algorithm": "m.megolm.v1.aes-sha2",
                "ciphertext": "AwgA",
                "sender_key": "k",
                "session_id": "s",
                "device_id": "D",
            },
        )
    )
    assert isinstance(megolm, MegolmEvent)
    loop._record(megolm, "!r")
    assert store.pending_inbound() == []
    assert [r.event_id for r in store.undecrypted()] == ["$1"]


async def test_stream_acknowledges_an_item_when_the_next_is_requested(
    store: TransportStore,
) -> None:
    stream = InboundStream()
    for n in (1, 2):
        store.record_inbound(f"$e{n}", _event(n))
    dispatcher = Dispatcher(store, stream, _identity, max_attempts=5)
    delivery = asyncio.create_task(dispatcher.deliver_pending())
    iterator = aiter(stream)
    first = await anext(iterator)
    assert first.event_id == "$e1"
    await asyncio.sleep(0.05)
    assert [r.event_id for r in store.pending_inbound()] == ["$e1", "$e2"]  # not acked yet
    second = await anext(iterator)  # acks $e1
    assert second.event_id == "$e2"
    await asyncio.sleep(0.05)
    assert [r.event_id for r in store.pending_inbound()] == ["$e2"]
    stream.abandon()  # the consumer failed on $e2: it stays pending for redelivery
    assert await delivery is True
    rows = store.pending_inbound()
    assert [(r.event_id, r.attempts) for r in rows] == [("$e2", 1)]


def test_an_event_that_breaks_conversion_becomes_a_problem_not_a_stuck_loop(
    store: TransportStore,
) -> None:
    class Strange:
        source = _raw(event_id="$odd")
        decrypted = True  # but no sender_key: conversion fails

    loop = _loop(store)
    loop._record(Strange(), "!r")
    loop._record(Event.parse_event(_raw(event_id="$next")), "!r")
    items = [parse_stored(r.payload) for r in store.pending_inbound()]
    assert isinstance(items[0], InboundProblem) and items[0].code == "malformed"
    assert items[0].event_id == "$odd"
    assert isinstance(items[1], InboundEvent)
