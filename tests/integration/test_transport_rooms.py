"""Direct rooms survive restarts; invites follow the policy (ignoring a device never takes
the invite from the account); sends to foreign rooms fail cleanly."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
import pytest

from onceonly.errors import TransportError
from onceonly.matrix.accounts import Credentials, login, save_credentials
from onceonly.matrix.client import TRANSPORT_DB, PartyClient
from onceonly.matrix.devices import AllDevicesOf
from onceonly.matrix.homeserver import Homeserver
from onceonly.matrix.rooms import InviteDecision, InvitePolicy, InvitesFrom
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


class CountingPolicy:
    """An invite policy that records which rooms it was asked about."""

    def __init__(self, inner: InvitesFrom) -> None:
        self._inner = inner
        self.rooms: list[str] = []

    def __call__(self, inviter: str, room_id: str) -> InviteDecision:
        self.rooms.append(room_id)
        return self._inner(inviter, room_id)


def device(data_dir: Path, handler: Any, *, peers: list[str], invites: InvitePolicy) -> PartyClient:
    """A party sharing keys with ``peers``' devices whose invites follow ``invites``."""
    return PartyClient(
        data_dir, device_policy=AllDevicesOf(peers), handler=handler, invite_policy=invites
    )


def second_device(hs: Homeserver, account: Credentials, data_dir: Path) -> Path:
    """Log another device of ``account`` in and keep its login in ``data_dir``."""
    assert account.password is not None
    device = login(hs.base_url, account.user_id, account.password, device_display_name="narrow")
    assert device.device_id != account.device_id
    save_credentials(data_dir, device)
    return data_dir


async def membership(hs: Homeserver, observer: Credentials, room_id: str, user: str) -> str:
    """The membership of ``user`` in ``room_id`` as the server has it (read by a member)."""
    url = (
        f"{hs.base_url}/_matrix/client/v3/rooms/{quote(room_id)}/state/m.room.member/{quote(user)}"
    )
    headers = {"Authorization": f"Bearer {observer.access_token}"}
    async with aiohttp.ClientSession() as session, session.get(url, headers=headers) as resp:
        assert resp.status == 200, await resp.text()
        body = await resp.json()
    return str(body["membership"])


def ignore_logs(caplog: pytest.LogCaptureFixture, room_id: str) -> list[logging.LogRecord]:
    return [
        r
        for r in caplog.records
        if r.name == "onceonly.matrix.sync"
        and r.getMessage().startswith(f"ignoring invite to {room_id}")
    ]


async def wait_until(predicate: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    for _ in range(int(timeout * 10)):
        if predicate():
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


async def test_a_narrow_device_ignores_the_invite_and_another_device_still_joins(
    synapse: Homeserver, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="onceonly.matrix.sync")
    agency_creds, agency_dir = register(synapse, "agency", tmp_path)
    citizen_creds, wallet_dir = register(synapse, "citizen", tmp_path)
    citizen = citizen_creds.user_id
    narrow_dir = second_device(synapse, citizen_creds, tmp_path / "narrow")
    narrow_policy = CountingPolicy(InvitesFrom(()))
    at_wallet = Collector()

    async with (
        party(agency_dir, Collector(), peers=[citizen]) as agency,
        device(
            narrow_dir, Collector(), peers=[agency_creds.user_id], invites=narrow_policy
        ) as narrow,
    ):
        room_id = await agency.ensure_direct_room(citizen, wait_for_join=None)
        await wait_until(lambda: bool(ignore_logs(caplog, room_id)), "the narrow device")
        await asyncio.sleep(1.0)  # a decline would reach the server well within this
        # Still pending for the whole account, on the server and on the narrow device.
        assert await membership(synapse, agency_creds, room_id, citizen) == "invite"
        assert room_id in narrow.nio.invited_rooms
        assert room_id not in narrow.nio.rooms
        assert narrow_policy.rooms == [room_id]

        # The wallet (an ordinary policy that knows the agency) joins the same invite.
        async with party(wallet_dir, at_wallet, peers=[agency_creds.user_id]):
            assert await agency.ensure_direct_room(citizen) == room_id
            assert await membership(synapse, agency_creds, room_id, citizen) == "join"
            handle = await agency.send(room_id, EVENT_TYPE, {"body": "your mailbox"})
            await handle.event_id(60)
            await at_wallet.wait_for(lambda: len(at_wallet.events) == 1)
        # The narrow device was never asked again, whatever the rounds in between.
        assert narrow_policy.rooms == [room_id]
    assert at_wallet.events[0].content == {"body": "your mailbox"}
    assert at_wallet.events[0].encrypted
    assert len(ignore_logs(caplog, room_id)) == 1


async def test_an_ignored_invite_is_not_reprocessed_after_a_restart_and_stays_joinable(
    synapse: Homeserver, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="onceonly.matrix.sync")
    agency_creds, agency_dir = register(synapse, "agency", tmp_path)
    friend_creds, friend_dir = register(synapse, "friend", tmp_path)
    citizen_creds, wallet_dir = register(synapse, "citizen", tmp_path)
    citizen = citizen_creds.user_id
    narrow_dir = second_device(synapse, citizen_creds, tmp_path / "narrow")
    at_narrow, at_wallet = Collector(), Collector()

    def narrow_device(policy: CountingPolicy) -> PartyClient:
        # The narrow device talks to the friend only.
        return device(narrow_dir, at_narrow, peers=[friend_creds.user_id], invites=policy)

    async def drive_rounds(friend: PartyClient, room: str, numbers: range) -> None:
        # Each message is one more sync round of the narrow device, waited for in turn.
        for n in numbers:
            await (await friend.send(room, EVENT_TYPE, {"n": n})).event_id(60)
            await at_narrow.wait_for(lambda n=n: {"n": n} in [e.content for e in at_narrow.events])

    async with party(agency_dir, Collector(), peers=[citizen]) as agency:
        first_run = CountingPolicy(InvitesFrom([friend_creds.user_id]))
        async with narrow_device(first_run):
            room_id = await agency.ensure_direct_room(citizen, wait_for_join=None)
            await wait_until(lambda: bool(ignore_logs(caplog, room_id)), "the narrow device")
        assert first_run.rooms == [room_id]

        async with party(friend_dir, Collector(), peers=[citizen]) as friend:
            caplog.clear()
            second_run = CountingPolicy(InvitesFrom([friend_creds.user_id]))
            async with narrow_device(second_run):
                friend_room = await friend.ensure_direct_room(citizen)
                await drive_rounds(friend, friend_room, range(3))
            # A sync from a stored token (even the full-state one after a restart) does not
            # repeat an invite, so there is nothing to re-process.
            assert room_id not in second_run.rooms
            assert ignore_logs(caplog, room_id) == []

            # Losing the transport store means a sync without a token, which does list the
            # pending invite again: evaluated once with this run's policy, never acted on.
            for suffix in ("", "-wal", "-shm"):
                (narrow_dir / (TRANSPORT_DB + suffix)).unlink(missing_ok=True)
            third_run = CountingPolicy(InvitesFrom([friend_creds.user_id]))
            async with narrow_device(third_run):
                await drive_rounds(friend, friend_room, range(3, 6))
                assert third_run.rooms.count(room_id) == 1
                assert len(ignore_logs(caplog, room_id)) == 1
                assert await membership(synapse, agency_creds, room_id, citizen) == "invite"

                # Still the account's invite: the wallet joins it and reads the agency.
                async with party(wallet_dir, at_wallet, peers=[agency_creds.user_id]):
                    assert await agency.ensure_direct_room(citizen) == room_id
                    await (await agency.send(room_id, EVENT_TYPE, {"body": "hi"})).event_id(60)
                    await at_wallet.wait_for(lambda: len(at_wallet.events) == 1)
                assert third_run.rooms.count(room_id) == 1
    assert at_wallet.events[0].content == {"body": "hi"}
    assert at_wallet.events[0].encrypted


async def test_the_owner_device_declines_an_unwanted_inviter_for_the_account(
    synapse: Homeserver, tmp_path: Path
) -> None:
    stranger_creds, stranger_dir = register(synapse, "stranger", tmp_path)
    agency_creds, _ = register(synapse, "agency", tmp_path)
    citizen_creds, citizen_dir = register(synapse, "citizen", tmp_path)
    citizen = citizen_creds.user_id
    wallet_policy = InvitesFrom([agency_creds.user_id], unwanted=[stranger_creds.user_id])

    async with (
        party(stranger_dir, Collector(), peers=[citizen]) as stranger,
        device(
            citizen_dir, Collector(), peers=[agency_creds.user_id], invites=wallet_policy
        ) as wallet,
    ):
        with pytest.raises(TransportError):
            await stranger.ensure_direct_room(citizen, wait_for_join=5)
        room_id = stranger.store.direct_room(citizen)
        assert room_id is not None
        # Rejected on the server, i.e. for every device of the account.
        for _ in range(100):
            if await membership(synapse, stranger_creds, room_id, citizen) == "leave":
                break
            await asyncio.sleep(0.1)
        assert await membership(synapse, stranger_creds, room_id, citizen) == "leave"
        assert room_id not in wallet.nio.rooms, "the citizen joined a stranger's room"


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
