"""The outbox sends different rooms at the same time and keeps the order within each room."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from onceonly.matrix.client import PartyClient
from onceonly.matrix.homeserver import Homeserver
from tests.integration.test_transport_support import EVENT_TYPE, Collector, party, register

pytestmark = pytest.mark.integration


class InFlight:
    """Counts how many calls of one nio method run at the same time (the calls are real)."""

    def __init__(self, client: Any, method: str, *, linger: float = 0.0) -> None:
        self.current = 0
        self.highest = 0
        self.calls = 0
        real: Callable[..., Awaitable[Any]] = getattr(client, method)

        async def counted(*args: Any, **kwargs: Any) -> Any:
            self.calls += 1
            self.current += 1
            self.highest = max(self.highest, self.current)
            try:
                # A short pause before the real request makes an overlap observable even
                # when the homeserver answers in a few milliseconds.
                await asyncio.sleep(linger)
                return await real(*args, **kwargs)
            finally:
                self.current -= 1

        setattr(client, method, counted)


@contextlib.asynccontextmanager
async def agency_and_citizens(
    synapse: Homeserver, tmp_path: Path, citizens: int, **agency_options: Any
) -> AsyncIterator[tuple[PartyClient, list[str], list[Collector]]]:
    """An agency with a direct room to each of ``citizens`` running citizen parties."""
    agency_creds, agency_dir = register(synapse, "agency", tmp_path)
    registered = [register(synapse, f"citizen{n}", tmp_path) for n in range(citizens)]
    collectors = [Collector() for _ in registered]
    peers = [creds.user_id for creds, _ in registered]
    async with contextlib.AsyncExitStack() as stack:
        agency = await stack.enter_async_context(
            party(agency_dir, Collector(), peers=peers, **agency_options)
        )
        for (_, data_dir), collector in zip(registered, collectors, strict=True):
            await stack.enter_async_context(
                party(data_dir, collector, peers=[agency_creds.user_id])
            )
        room_ids = list(await asyncio.gather(*(agency.ensure_direct_room(p) for p in peers)))
        yield agency, room_ids, collectors


async def test_twenty_rooms_of_ten_events_sent_at_once_arrive_complete_and_in_order(
    synapse: Homeserver, tmp_path: Path
) -> None:
    rooms, per_room, lanes = 20, 10, 8
    async with agency_and_citizens(synapse, tmp_path, rooms, max_parallel_rooms=lanes) as (
        agency,
        room_ids,
        collectors,
    ):
        sends = InFlight(agency.nio, "room_send", linger=0.05)
        key_sharing = InFlight(agency.nio, "share_group_session")
        claims = InFlight(agency.nio, "keys_claim")
        # Interleaved across rooms, as an agency serving many citizens queues them.
        handles = [
            (room, n, await agency.send(room_ids[room], EVENT_TYPE, {"room": room, "n": n}))
            for n in range(per_room)
            for room in range(rooms)
        ]
        event_ids = {(room, n): await handle.event_id(timeout=180) for room, n, handle in handles}
        for collector in collectors:
            await collector.wait_for(lambda c=collector: len(c.events) >= per_room, timeout=180)

    for room, collector in enumerate(collectors):
        assert [e.content for e in collector.events] == [
            {"room": room, "n": n} for n in range(per_room)
        ]
        assert [e.event_id for e in collector.events] == [
            event_ids[(room, n)] for n in range(per_room)
        ]
    assert len(set(event_ids.values())) == rooms * per_room
    # Different rooms were really sent at the same time, never more than the bound allows.
    assert 1 < sends.highest <= lanes, sends.highest
    # One Olm machine serves every room: its key claims and key sharing never interleave.
    assert key_sharing.calls >= rooms and key_sharing.highest == 1
    assert claims.highest <= 1


async def test_one_lane_sends_one_event_at_a_time_and_still_in_order(
    synapse: Homeserver, tmp_path: Path
) -> None:
    rooms, per_room = 3, 4
    async with agency_and_citizens(synapse, tmp_path, rooms, max_parallel_rooms=1) as (
        agency,
        room_ids,
        collectors,
    ):
        sends = InFlight(agency.nio, "room_send", linger=0.05)
        handles = [
            await agency.send(room_ids[room], EVENT_TYPE, {"room": room, "n": n})
            for n in range(per_room)
            for room in range(rooms)
        ]
        for handle in handles:
            await handle.event_id(timeout=120)
        for collector in collectors:
            await collector.wait_for(lambda c=collector: len(c.events) >= per_room)

    assert sends.calls == rooms * per_room
    assert sends.highest == 1
    for room, collector in enumerate(collectors):
        assert [e.content["n"] for e in collector.events] == list(range(per_room))
        assert {e.content["room"] for e in collector.events} == {room}
