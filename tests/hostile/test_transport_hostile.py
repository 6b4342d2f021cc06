"""A hostile Matrix user against the transport: malformed encrypted events never wedge the
sync loop, and only two-member encrypted direct rooms are joined and kept.

Every test drives a real Synapse; the attacker is plain matrix-nio (no onceonly code).
"""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path

import pytest
from nio import RoomCreateResponse, RoomPreset, RoomVisibility

from onceonly.errors import TransportError
from onceonly.matrix.client import PartyClient
from onceonly.matrix.homeserver import Homeserver
from onceonly.matrix.rooms import MEGOLM
from tests.hostile.hostile_client import HostileClient, nested, nested_text
from tests.integration.test_transport_rooms import membership, wait_until
from tests.integration.test_transport_support import Collector, PlainNioDevice, party, register

pytestmark = pytest.mark.integration

ENCRYPTION = {"type": "m.room.encryption", "state_key": "", "content": {"algorithm": MEGOLM}}


async def mailbox_with(agency: PartyClient, hostile: HostileClient) -> str:
    """The agency opens its mailbox with the hostile user, who joins it."""
    room_id = await agency.ensure_direct_room(hostile.credentials.user_id, wait_for_join=None)
    await hostile.join_invites()
    assert await agency.ensure_direct_room(hostile.credentials.user_id) == room_id
    return room_id


def honest(body: str) -> dict[str, str]:
    return {"msgtype": "m.text", "body": body}


async def test_a_300_deep_encrypted_message_does_not_silence_the_sender_or_anyone_else(
    synapse: Homeserver, tmp_path: Path
) -> None:
    hostile_creds, _ = register(synapse, "hostile", tmp_path)
    _agency_creds, agency_dir = register(synapse, "agency", tmp_path)
    at_agency = Collector()
    hostile = HostileClient(hostile_creds, tmp_path / "hostile-store")
    try:
        async with party(agency_dir, at_agency, peers=[hostile_creds.user_id]) as agency:
            room_id = await mailbox_with(agency, hostile)
            deep = {**honest("deep"), "x": nested(300)}
            deep_id = await hostile.send_content(room_id, "m.room.message", deep)
            honest_id = await hostile.send_content(room_id, "m.room.message", honest("after"))
            await at_agency.wait_for(lambda: honest_id in [e.event_id for e in at_agency.events])
            [problem] = [p for p in at_agency.problems if p.event_id == deep_id]
            assert (problem.code, problem.sender) == ("too_large", hostile_creds.user_id)
            assert agency.store.parked_inbound() == []
    finally:
        await hostile.close()


# Exactly the text the hostile device encrypts (what nio's room_send could never produce).
RAW_PLAINTEXTS: dict[str, str | bytes] = {
    # Deeper than Python's json parser goes: RecursionError inside nio's decryption.
    "recursion_in_nio": '{"type":"m.room.message","content":{"x":' + nested_text(5000) + "}}",
    "not_an_object": "[1, 2, 3]",
    "content_is_a_string": '{"type": "m.room.message", "content": "hello"}',
    "content_is_null": '{"type": "m.room.message", "content": null}',
    "type_is_a_number": '{"type": 7, "content": {}}',
    "not_json": "{not json",
    "invalid_utf8": b'{"type": "m.room.message", "content": {"body": "\xff\xfe"}}',
    "nan": '{"type": "m.room.message", "content": {"msgtype": "m.text", "body": NaN}}',
    "duplicate_keys": (
        '{"type": "m.room.message", "content": {"msgtype": "m.text", "body": "a", "body": "b"}}'
    ),
    "huge_string": json.dumps(
        {"type": "m.room.message", "content": {"msgtype": "m.text", "body": "x" * 40_000}}
    ),
    "wrong_room": json.dumps(
        {"type": "m.room.message", "content": honest("elsewhere"), "room_id": "!other:localhost"}
    ),
}


async def test_raw_hostile_plaintexts_each_become_one_problem_and_delivery_goes_on(
    synapse: Homeserver, tmp_path: Path
) -> None:
    hostile_creds, _ = register(synapse, "hostile", tmp_path)
    _agency_creds, agency_dir = register(synapse, "agency", tmp_path)
    at_agency = Collector()
    hostile = HostileClient(hostile_creds, tmp_path / "hostile-store")
    try:
        async with party(agency_dir, at_agency, peers=[hostile_creds.user_id]) as agency:
            room_id = await mailbox_with(agency, hostile)
            sent = {
                name: await hostile.send_plaintext(room_id, text)
                for name, text in RAW_PLAINTEXTS.items()
            }
            # The same ciphertext (same Megolm message index) once more, as a new event.
            original = await hostile.send_plaintext(
                room_id, json.dumps({"type": "m.room.message", "content": honest("once")})
            )
            replay = await hostile.put_event(room_id, "m.room.encrypted", hostile.last_encrypted)
            honest_id = await hostile.send_content(room_id, "m.room.message", honest("after"))
            await at_agency.wait_for(lambda: honest_id in [e.event_id for e in at_agency.events])
            seen = {item.event_id: item for item in at_agency.items}
            outcome = {name: seen[event_id] for name, event_id in sent.items() if event_id in seen}
            # Every hostile event was recorded once, before the honest one, as a problem
            # unless it is harmless as it stands.
            assert set(outcome) == set(RAW_PLAINTEXTS), sorted(set(RAW_PLAINTEXTS) - set(outcome))
            problems = {name for name, item in outcome.items() if item.kind == "problem"}
            assert problems >= {
                "recursion_in_nio",
                "not_an_object",
                "content_is_a_string",
                "content_is_null",
                "type_is_a_number",
                "not_json",
                "invalid_utf8",
                "nan",
            }
            # nio decodes duplicate keys last-wins; the protocol layer cannot see them.
            assert outcome["duplicate_keys"].kind == "event"
            assert (seen[original].kind, seen[replay].kind) == ("event", "problem")
            assert agency.store.parked_inbound() == []
    finally:
        await hostile.close()


async def test_hostile_to_device_events_are_dropped_and_delivery_goes_on(
    synapse: Homeserver, tmp_path: Path
) -> None:
    hostile_creds, _ = register(synapse, "hostile", tmp_path)
    _, agency_dir = register(synapse, "agency", tmp_path)
    at_agency = Collector()
    hostile = HostileClient(hostile_creds, tmp_path / "hostile-store")
    try:
        async with party(agency_dir, at_agency, peers=[hostile_creds.user_id]) as agency:
            room_id = await mailbox_with(agency, hostile)
            first = await hostile.send_content(room_id, "m.room.message", honest("before"))
            await at_agency.wait_for(lambda: first in [e.event_id for e in at_agency.events])
            olm = agency.nio.olm
            assert olm is not None
            envelope = {
                "sender": hostile_creds.user_id,
                "sender_device": hostile_creds.device_id,
                "keys": {"ed25519": hostile.client.olm.account.identity_keys["ed25519"]},
                "recipient": agency.user_id,
                "recipient_keys": {"ed25519": olm.account.identity_keys["ed25519"]},
                "type": "m.room_key",
            }
            payloads = [
                # Too deep for Python's json: RecursionError inside nio's Olm decryption.
                json.dumps(envelope)[:-1] + ', "content": ' + nested_text(5000) + "}",
                # A room key whose fields have the wrong types.
                json.dumps({**envelope, "content": {"algorithm": MEGOLM, "room_id": 5}}),
                json.dumps({**envelope, "content": {"session_key": nested(300)}}),
            ]
            for payload in payloads:
                await hostile.send_to_device_plaintext(
                    room_id, agency.user_id, agency.device_id, payload
                )
            after = await hostile.send_content(room_id, "m.room.message", honest("after"))
            await at_agency.wait_for(lambda: after in [e.event_id for e in at_agency.events])
            # The one nio raises on is dropped (the others nio itself refuses quietly).
            assert getattr(agency.nio, "dropped_to_device", 0) >= 1
    finally:
        await hostile.close()


async def create_room(
    hostile: HostileClient,
    invite: list[str],
    *,
    direct: bool = True,
    encrypted: bool = True,
    public: bool = False,
) -> str:
    response = await hostile.client.room_create(
        visibility=RoomVisibility.public if public else RoomVisibility.private,
        preset=RoomPreset.public_chat if public else RoomPreset.trusted_private_chat,
        is_direct=direct,
        invite=invite,
        initial_state=[ENCRYPTION] if encrypted else [],
    )
    assert isinstance(response, RoomCreateResponse), response
    return str(response.room_id)


async def test_only_one_two_member_encrypted_direct_room_per_peer_is_joined(
    synapse: Homeserver, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="onceonly.matrix.sync")
    hostile_creds, _ = register(synapse, "hostile", tmp_path)
    bystander_creds, _ = register(synapse, "bystander", tmp_path)
    agency_creds, agency_dir = register(synapse, "agency", tmp_path)
    agency_id = agency_creds.user_id
    hostile = HostileClient(hostile_creds, tmp_path / "hostile-store")
    try:
        async with party(agency_dir, Collector(), peers=[hostile_creds.user_id]) as agency:
            await agency.wait_ready()
            bad = {
                "public": await create_room(hostile, [agency_id], public=True),
                "not_direct": await create_room(hostile, [agency_id], direct=False),
                "not_encrypted": await create_room(hostile, [agency_id], encrypted=False),
                "third_member": await create_room(hostile, [agency_id, bystander_creds.user_id]),
            }
            good = await create_room(hostile, [agency_id])

            async def settled() -> bool:
                states = [
                    await membership(synapse, hostile_creds, r, agency_id) for r in bad.values()
                ]
                mine = await membership(synapse, hostile_creds, good, agency_id)
                return all(s == "leave" for s in states) and mine == "join"

            for _ in range(300):
                if await settled():
                    break
                await asyncio.sleep(0.2)
            for reason, room_id in bad.items():
                assert await membership(synapse, hostile_creds, room_id, agency_id) == "leave", (
                    reason
                )
            assert await membership(synapse, hostile_creds, good, agency_id) == "join"
            assert agency.store.direct_room(hostile_creds.user_id) == good
            # One mailbox per peer: a second valid-looking room is declined too.
            second = await create_room(hostile, [agency_id])
            await wait_until(lambda: agency.refused_rooms.get("second_mailbox") == 1, "decline")
            assert await membership(synapse, hostile_creds, second, agency_id) == "leave"
            refused = agency.refused_rooms
            assert refused.get("not_direct") == 1 and refused.get("third_member") == 1
            # A public room fails on its join rule, a plain one on its missing encryption.
            assert refused.get("not_invite_only", 0) + refused.get("not_encrypted", 0) == 2
            assert sum(refused.values()) == 5
            assert agency.store.direct_room(hostile_creds.user_id) == good
    finally:
        await hostile.close()


async def test_a_mailbox_that_gains_a_third_member_is_left_and_never_used_again(
    synapse: Homeserver, tmp_path: Path
) -> None:
    hostile_creds, _ = register(synapse, "hostile", tmp_path)
    third_creds, _ = register(synapse, "third", tmp_path)
    agency_creds, agency_dir = register(synapse, "agency", tmp_path)
    at_agency = Collector()
    hostile = HostileClient(hostile_creds, tmp_path / "hostile-store")
    third = PlainNioDevice(third_creds, tmp_path / "third-store")
    try:
        async with party(
            agency_dir, at_agency, peers=[hostile_creds.user_id, third_creds.user_id]
        ) as agency:
            room_id = await mailbox_with(agency, hostile)
            # The room works as a mailbox first.
            first = await hostile.send_content(room_id, "m.room.message", honest("hello"))
            await at_agency.wait_for(lambda: first in [e.event_id for e in at_agency.events])

            invited = await hostile.client.room_invite(room_id, third_creds.user_id)
            assert getattr(invited, "status_code", None) is None, invited
            await third.join_invites()
            for _ in range(300):
                if await membership(synapse, hostile_creds, room_id, agency_creds.user_id) == (
                    "leave"
                ):
                    break
                await asyncio.sleep(0.2)
            assert await membership(synapse, hostile_creds, room_id, agency_creds.user_id) == (
                "leave"
            )
            assert agency.refused_rooms.get("third_member") == 1
            assert agency.store.direct_room(hostile_creds.user_id) is None
            # Nothing is sent there any more, so no room key reaches the third member.
            handle = await agency.send(room_id, "m.room.message", honest("secret"))
            with pytest.raises(TransportError):
                await handle.event_id(60)
            await third.sync_once()
            assert third.client.olm is not None
            sessions = [
                s
                for s in third.client.olm.inbound_group_store
                if s.room_id == room_id
                and s.sender_key != third.client.olm.account.identity_keys["curve25519"]
            ]
            agency_key = agency.nio.olm.account.identity_keys["curve25519"]
            assert all(s.sender_key != agency_key for s in sessions)
    finally:
        await hostile.close()
        await third.close()
