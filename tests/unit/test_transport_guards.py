"""One hostile event never fails a sync round or a delivery round (unit level; the same
with a real Synapse and a hostile client is tests/hostile/test_transport_hostile.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from nio import AsyncClient, Event

from onceonly.matrix.content_bounds import MAX_CONTENT_DEPTH
from onceonly.matrix.devices import AllDevicesOf
from onceonly.matrix.inbox import Dispatcher, Inbound, InboundEvent, InboundProblem, parse_stored
from onceonly.matrix.rooms import DirectRooms, InvitesFrom
from onceonly.matrix.store import TransportStore
from onceonly.matrix.sync import SyncLoop
from tests.hostile.hostile_client import nested


@pytest.fixture
def store(tmp_path: Path) -> Iterator[TransportStore]:
    s = TransportStore.open(tmp_path / "t.sqlite")
    yield s
    s.close()


async def _identity(event: InboundEvent) -> Inbound:
    return event


def _loop(store: TransportStore) -> SyncLoop:
    client = AsyncClient("http://127.0.0.1:9", "@me:hs", "DEV")
    client.user_id = "@me:hs"

    async def handler(item: Inbound) -> None:
        raise AssertionError("not used")

    return SyncLoop(
        client,
        store,
        Dispatcher(store, handler, _identity),
        DirectRooms(client, store),
        InvitesFrom(()),
        AllDevicesOf(()),
    )


def _raw(event_id: str, content: Any) -> dict[str, Any]:
    return {
        "event_id": event_id,
        "sender": "@other:hs",
        "origin_server_ts": 5,
        "type": "m.room.message",
        "content": content,
    }


class _Decrypted:
    """What nio hands over for a decrypted event: any content the sender chose."""

    def __init__(self, event_id: str, content: Any) -> None:
        self.source = _raw(event_id, content)
        self.decrypted = False


@pytest.mark.parametrize(
    ("content", "code"),
    [
        (nested(300), "too_large"),  # pydantic refuses to serialise this deep
        (nested(MAX_CONTENT_DEPTH + 1), "too_large"),
        ({"body": float("nan")}, "malformed"),
        ({"body": "x" * 300_000}, "too_large"),
        ({"body": {1, 2}}, "malformed"),  # not JSON at all: the serialisation guard
    ],
    ids=["300_deep", "just_too_deep", "nan", "huge_string", "not_json"],
)
def test_a_hostile_content_becomes_a_problem_and_the_next_event_is_recorded(
    store: TransportStore, content: Any, code: str
) -> None:
    loop = _loop(store)
    with store.transaction():
        loop._record(_Decrypted("$bad", content), "!r")
        loop._record(Event.parse_event(_raw("$next", {"msgtype": "m.text", "body": "hi"})), "!r")
        store.set_sync_token("s2")
    items = [parse_stored(r.payload) for r in store.pending_inbound()]
    assert [i.event_id for i in items] == ["$bad", "$next"]
    assert isinstance(items[0], InboundProblem) and items[0].code == code
    assert items[0].sender == "@other:hs"
    assert isinstance(items[1], InboundEvent)
    assert store.sync_token() == "s2"


def test_content_within_the_bounds_is_handed_over(store: TransportStore) -> None:
    loop = _loop(store)
    loop._record(_Decrypted("$ok", nested(MAX_CONTENT_DEPTH)), "!r")
    [item] = [parse_stored(r.payload) for r in store.pending_inbound()]
    assert isinstance(item, InboundEvent)


def _event(event_id: str) -> dict[str, Any]:
    return InboundEvent(
        event_id=event_id,
        room_id="!r:hs",
        sender="@a:hs",
        type="t.x",
        content={"n": 1},
        origin_server_ts=1,
        encrypted=True,
    ).model_dump(mode="json")


async def test_a_resolver_bug_on_one_item_becomes_its_problem_and_delivery_goes_on(
    store: TransportStore,
) -> None:
    got: list[Inbound] = []

    async def handler(item: Inbound) -> None:
        got.append(item)

    async def resolve(event: InboundEvent) -> Inbound:
        if event.event_id == "$bad":
            raise ValueError("a sender's input the resolver did not expect")
        return event

    store.record_inbound("$bad", _event("$bad"))
    store.record_inbound("$good", _event("$good"))
    assert await Dispatcher(store, handler, resolve).deliver_pending() is False
    assert [(i.event_id, i.kind) for i in got] == [("$bad", "problem"), ("$good", "event")]
    assert isinstance(got[0], InboundProblem) and got[0].code == "malformed"


async def test_an_unreadable_inbox_row_is_parked_and_delivery_goes_on(
    store: TransportStore,
) -> None:
    got: list[Inbound] = []

    async def handler(item: Inbound) -> None:
        got.append(item)

    store.record_inbound("$odd", {"kind": "neither"})
    store.record_inbound("$good", _event("$good"))
    assert await Dispatcher(store, handler, _identity).deliver_pending() is False
    assert [i.event_id for i in got] == ["$good"]
    assert [r.event_id for r in store.parked_inbound()] == ["$odd"]
