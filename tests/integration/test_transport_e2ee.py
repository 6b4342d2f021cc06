"""The E2EE transport between two parties on a real Synapse."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path

import pytest
from nio import MegolmEvent, UnknownEvent
from nio.exceptions import EncryptionError

from onceonly.matrix.accounts import login, save_credentials
from onceonly.matrix.devices import AllowListedDevices, DeviceInfo
from onceonly.matrix.homeserver import Homeserver
from onceonly.matrix.inbox import InboundEvent
from tests.integration.test_transport_support import (
    EVENT_TYPE,
    Collector,
    PlainNioDevice,
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


@pytest.mark.parametrize("intruder_listed", [False, True], ids=["unlisted", "control-listed"])
async def test_device_policy_plain_nio_device_reads_body_unlisted_device_cannot(
    synapse: Homeserver, tmp_path: Path, intruder_listed: bool
) -> None:
    agency_creds, agency_dir = register(synapse, "agency", tmp_path)
    citizen_creds, citizen_dir = register(synapse, "citizen", tmp_path)
    assert citizen_creds.password is not None
    # Two more devices of the same citizen, each a bare matrix-nio client: one the citizen
    # approved (e.g. Element on the web), one the policy does not list (e.g. added by an admin).
    approved = PlainNioDevice(
        login(synapse.base_url, citizen_creds.user_id, citizen_creds.password),
        tmp_path / "approved",
    )
    intruder = PlainNioDevice(
        login(synapse.base_url, citizen_creds.user_id, citizen_creds.password),
        tmp_path / "intruder",
    )
    listed = [citizen_creds.device_id, str(approved.client.device_id)]
    if intruder_listed:  # control: the same setup decrypts when the device is listed
        listed.append(str(intruder.client.device_id))
    policy = AllowListedDevices({citizen_creds.user_id: listed})
    at_citizen = Collector()
    try:
        await approved.sync_once(0)
        await intruder.sync_once(0)
        async with (
            party(
                agency_dir, Collector(), peers=[citizen_creds.user_id], device_policy=policy
            ) as agency,
            party(citizen_dir, at_citizen, peers=[agency_creds.user_id]),
        ):
            room_id = await agency.ensure_direct_room(citizen_creds.user_id)
            body = "Your residence certificate is ready"
            sent = await (
                await agency.send(room_id, EVENT_TYPE, {"body": body, "exchange_id": "x1"})
            ).event_id(timeout=60)
            await at_citizen.wait_for(lambda: len(at_citizen.events) == 1)

            # The agency's trust store reflects the policy.
            olm = agency.nio.olm
            devices = {
                d.id: d for d in agency.nio.device_store.active_user_devices(citizen_creds.user_id)
            }
            assert olm.is_device_verified(devices[str(approved.client.device_id)])
            assert olm.is_device_blacklisted(devices[str(intruder.client.device_id)]) is (
                not intruder_listed
            )

            approved_event = await _sync_until_event(approved, room_id, sent)
            assert isinstance(approved_event, UnknownEvent), approved_event
            assert approved_event.type == EVENT_TYPE
            assert approved_event.source["content"]["body"] == body

            intruder_event = await _sync_until_event(intruder, room_id, sent)
            if intruder_listed:
                assert isinstance(intruder_event, UnknownEvent), intruder_event
                assert intruder_event.source["content"]["body"] == body
            else:
                assert isinstance(intruder_event, MegolmEvent), intruder_event
                with pytest.raises(EncryptionError):
                    intruder.client.decrypt_event(intruder_event)
    finally:
        await approved.close()
        await intruder.close()


async def _sync_until_event(device: PlainNioDevice, room_id: str, event_id: str) -> object:
    """Sync a bare nio device until ``event_id`` shows up in ``room_id``; return it."""
    for _ in range(30):
        response = await device.sync_once(1000)
        room = response.rooms.join.get(room_id)
        for event in room.timeline.events if room else []:
            if getattr(event, "event_id", None) == event_id:
                return event
    raise AssertionError(f"{event_id} never reached device {device.client.device_id}")


@dataclass(frozen=True)
class _CitizenPolicy:
    """The citizen trusts every agency device, and its own approved devices."""

    agency: str
    own: tuple[str, str]
    own_devices: tuple[str, ...]

    def allows(self, device: DeviceInfo) -> bool:
        if device.user_id == self.agency:
            return True
        return device.user_id == self.own[0] and device.device_id in self.own_devices


async def test_event_whose_key_arrives_later_is_kept_then_delivered_once(
    synapse: Homeserver, tmp_path: Path
) -> None:
    """A second approved citizen device the agency did not share with gets the key later.

    The agency shares the room key with the wallet device only. The second device keeps the
    undecryptable event, sends a room key request to its own devices, and the wallet (which
    trusts it by the citizen's policy) forwards the key; the event is then delivered.
    """
    agency_creds, agency_dir = register(synapse, "agency", tmp_path)
    citizen_creds, citizen_dir = register(synapse, "citizen", tmp_path)
    assert citizen_creds.password is not None
    second_creds = login(synapse.base_url, citizen_creds.user_id, citizen_creds.password)
    second_dir = tmp_path / "citizen-second"
    save_credentials(second_dir, second_creds)
    citizen_policy = _CitizenPolicy(
        agency_creds.user_id,
        (citizen_creds.user_id, ""),
        (citizen_creds.device_id, second_creds.device_id),
    )
    agency_policy = AllowListedDevices({citizen_creds.user_id: [citizen_creds.device_id]})
    at_wallet, at_second = Collector(), Collector()

    async with (
        party(
            agency_dir, Collector(), peers=[citizen_creds.user_id], device_policy=agency_policy
        ) as agency,
        party(citizen_dir, at_wallet, peers=[agency_creds.user_id], device_policy=citizen_policy),
        party(
            second_dir, at_second, peers=[agency_creds.user_id], device_policy=citizen_policy
        ) as second,
    ):
        room_id = await agency.ensure_direct_room(citizen_creds.user_id)
        sent = await (
            await agency.send(room_id, EVENT_TYPE, {"body": "late key", "n": 7})
        ).event_id(timeout=60)
        await at_wallet.wait_for(lambda: len(at_wallet.events) == 1)
        await at_second.wait_for(lambda: len(at_second.items) == 1, timeout=90)
        await asyncio.sleep(1)
        assert second.store.undecrypted() == []

    (late,) = at_second.items
    assert isinstance(late, InboundEvent)
    assert (late.event_id, late.content, late.encrypted) == (
        sent,
        {"body": "late key", "n": 7},
        True,
    )
    assert at_wallet.events[0].event_id == sent
