"""The E2EE transport between two parties on a real Synapse."""

from __future__ import annotations

from pathlib import Path

import pytest

from onceonly.matrix.homeserver import Homeserver
from tests.integration.test_transport_support import (
    EVENT_TYPE,
    Collector,
    party,
    raw_room_events,
    register,
)

pytestmark = pytest.mark.integration


async def test_two_parties_exchange_encrypted_custom_events(
    synapse: Homeserver, tmp_path: Path
) -> None:
    agency_creds, agency_dir = register(synapse, "agency", tmp_path)
    citizen_creds, citizen_dir = register(synapse, "citizen", tmp_path)
    at_agency, at_citizen = Collector(), Collector()

    async with (
        party(agency_dir, at_agency, peers=[citizen_creds.user_id]) as agency,
        party(citizen_dir, at_citizen, peers=[agency_creds.user_id]) as citizen,
    ):
        room_id = await agency.ensure_direct_room(citizen_creds.user_id)
        handle = await agency.send(room_id, EVENT_TYPE, {"body": "hello citizen", "n": 1})
        sent_id = await handle.event_id(timeout=60)
        await at_citizen.wait_for(lambda: len(at_citizen.events) == 1)

        received = at_citizen.events[0]
        assert received.event_id == sent_id
        assert received.type == EVENT_TYPE
        assert received.content["body"] == "hello citizen"
        assert received.content["n"] == 1
        assert received.encrypted is True
        assert received.sender == agency_creds.user_id
        assert received.sender_device == agency_creds.device_id
        assert received.room_id == room_id

        # The citizen answers in the same room, found again through its own map.
        assert await citizen.ensure_direct_room(agency_creds.user_id) == room_id
        await (await citizen.send(room_id, EVENT_TYPE, {"body": "hello agency", "n": 2})).event_id(
            timeout=60
        )
        await at_agency.wait_for(lambda: len(at_agency.events) == 1)
        assert at_agency.events[0].content == {"body": "hello agency", "n": 2}
        assert at_agency.events[0].encrypted is True

        # What the homeserver holds: only ciphertext for our messages.
        raw = await raw_room_events(synapse, agency_creds.access_token, room_id)
        messages = [e for e in raw if "state_key" not in e]
        assert len(messages) == 2
        assert {e["type"] for e in messages} == {"m.room.encrypted"}
        for event in messages:
            assert "hello" not in str(event["content"])
            assert event["content"]["algorithm"] == "m.megolm.v1.aes-sha2"
        assert not at_agency.problems and not at_citizen.problems
