"""Direct rooms survive restarts; invites follow the policy; sends to foreign rooms fail cleanly."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from onceonly.errors import TransportError
from onceonly.matrix.client import TRANSPORT_DB
from onceonly.matrix.homeserver import Homeserver
from tests.integration.test_transport_support import (
    EVENT_TYPE,
    Collector,
    party,
    register,
)

pytestmark = pytest.mark.integration


async def test_direct_room_is_found_again_after_restart_even_without_the_local_map(
    synapse: Homeserver, tmp_path: Path
) -> None:
    agency_creds, agency_dir = register(synapse, "agency", tmp_path)
    citizen_creds, citizen_dir = register(synapse, "citizen", tmp_path)
    at_citizen = Collector()

    async with party(citizen_dir, at_citizen, peers=[agency_creds.user_id]):
        async with party(agency_dir, Collector(), peers=[citizen_creds.user_id]) as agency:
            room_id = await agency.ensure_direct_room(citizen_creds.user_id)
        # Restart with the local map: same room.
        async with party(agency_dir, Collector(), peers=[citizen_creds.user_id]) as agency:
            assert await agency.ensure_direct_room(citizen_creds.user_id) == room_id
        # Restart after losing the transport store: m.direct account data finds it.
        for suffix in ("", "-wal", "-shm"):
            (agency_dir / (TRANSPORT_DB + suffix)).unlink(missing_ok=True)
        async with party(agency_dir, Collector(), peers=[citizen_creds.user_id]) as agency:
            assert await agency.ensure_direct_room(citizen_creds.user_id) == room_id
            # The crypto store survived, so the device keys did too: messages still flow.
            await (await agency.send(room_id, EVENT_TYPE, {"body": "still here"})).event_id(60)
            await at_citizen.wait_for(lambda: len(at_citizen.events) == 1)
    assert at_citizen.events[0].content == {"body": "still here"}
    assert at_citizen.events[0].encrypted


async def test_invites_from_users_outside_the_policy_are_declined(
    synapse: Homeserver, tmp_path: Path
) -> None:
    _, stranger_dir = register(synapse, "stranger", tmp_path)
    agency_creds, _ = register(synapse, "agency", tmp_path)
    citizen_creds, citizen_dir = register(synapse, "citizen", tmp_path)

    async with (
        party(stranger_dir, Collector(), peers=[citizen_creds.user_id]) as stranger,
        party(citizen_dir, Collector(), peers=[agency_creds.user_id]) as citizen,
    ):
        with pytest.raises(TransportError):
            await stranger.ensure_direct_room(citizen_creds.user_id, wait_for_join=5)
        room_id = stranger.store.direct_room(citizen_creds.user_id)
        assert room_id is not None
        for _ in range(50):
            if room_id not in citizen.nio.invited_rooms and room_id not in citizen.nio.rooms:
                break
            await asyncio.sleep(0.1)
        assert room_id not in citizen.nio.rooms, "the citizen joined a stranger's room"
        room = stranger.nio.rooms[room_id]
        for _ in range(50):
            if citizen_creds.user_id not in room.users:
                break
            await asyncio.sleep(0.1)
        assert citizen_creds.user_id not in room.users, "the invite was not declined"


async def test_send_to_a_room_we_are_not_in_fails_and_does_not_block_the_queue(
    synapse: Homeserver, tmp_path: Path
) -> None:
    agency_creds, agency_dir = register(synapse, "agency", tmp_path)
    citizen_creds, citizen_dir = register(synapse, "citizen", tmp_path)
    at_citizen = Collector()

    async with (
        party(agency_dir, Collector(), peers=[citizen_creds.user_id]) as agency,
        party(citizen_dir, at_citizen, peers=[agency_creds.user_id]),
    ):
        room_id = await agency.ensure_direct_room(citizen_creds.user_id)
        foreign = await agency.send("!notours:localhost", EVENT_TYPE, {"body": "lost?"})
        after = await agency.send(room_id, EVENT_TYPE, {"body": "after"})
        with pytest.raises(TransportError):
            await foreign.event_id(timeout=60)
        await after.event_id(timeout=60)
        await at_citizen.wait_for(lambda: len(at_citizen.events) == 1)
        status = agency.store.outbox_status(foreign.txn_id)
        assert status is not None and status[0] == "failed"
    assert at_citizen.events[0].content == {"body": "after"}
