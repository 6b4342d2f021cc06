"""Shared helpers of the transport integration tests (this module holds no tests)."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
from nio import AsyncClient, AsyncClientConfig, SyncResponse

from onceonly.matrix.accounts import Credentials, save_credentials
from onceonly.matrix.client import PartyClient
from onceonly.matrix.devices import AllDevicesOf, DevicePolicy
from onceonly.matrix.homeserver import Homeserver
from onceonly.matrix.inbox import Inbound, InboundEvent, InboundProblem
from onceonly.matrix.rooms import InvitesFrom

EVENT_TYPE = "org.onceonly.test.ping"


def unique(name: str) -> str:
    """A fresh localpart (the session homeserver is shared by every test)."""
    return f"{name}-{secrets.token_hex(4)}"


class Collector:
    """A handler that keeps what it receives and lets a test wait for it."""

    def __init__(self) -> None:
        self.items: list[Inbound] = []
        self._changed = asyncio.Event()

    async def __call__(self, item: Inbound) -> None:
        self.items.append(item)
        self._changed.set()

    @property
    def events(self) -> list[InboundEvent]:
        return [i for i in self.items if isinstance(i, InboundEvent)]

    @property
    def problems(self) -> list[InboundProblem]:
        return [i for i in self.items if isinstance(i, InboundProblem)]

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"timed out; received so far: {self.items!r}")
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), min(remaining, 1.0))


def register(hs: Homeserver, name: str, tmp_path: Path) -> tuple[Credentials, Path]:
    """Register a fresh user and write its account.json into its own data dir."""
    credentials = hs.register(unique(name), unlimited=True)
    data_dir = tmp_path / name
    save_credentials(data_dir, credentials)
    return credentials, data_dir


def party(
    data_dir: Path,
    handler: Any,
    *,
    peers: list[str],
    device_policy: DevicePolicy | None = None,
    **kwargs: Any,
) -> PartyClient:
    """A party that accepts invites from ``peers`` and shares keys with all their devices."""
    return PartyClient(
        data_dir,
        device_policy=device_policy or AllDevicesOf(peers),
        handler=handler,
        invite_policy=InvitesFrom(peers),
        **kwargs,
    )


async def raw_room_events(hs: Homeserver, access_token: str, room_id: str) -> list[dict[str, Any]]:
    """Read a room's timeline straight from the server, without any decryption."""
    url = f"{hs.base_url}/_matrix/client/v3/rooms/{room_id}/messages"
    async with (
        aiohttp.ClientSession() as session,
        session.get(
            url,
            params={"dir": "b", "limit": "1000"},
            headers={"Authorization": f"Bearer {access_token}"},
        ) as resp,
    ):
        assert resp.status == 200, await resp.text()
        body = await resp.json()
    return list(body["chunk"])


class PlainNioDevice:
    """A citizen device that is nothing but matrix-nio with E2EE (no onceonly code)."""

    def __init__(self, credentials: Credentials, store_dir: Path) -> None:
        store_dir.mkdir(parents=True, exist_ok=True)
        self.client = AsyncClient(
            credentials.homeserver,
            credentials.user_id,
            credentials.device_id,
            str(store_dir),
            AsyncClientConfig(encryption_enabled=True, store_sync_tokens=True),
        )
        self.client.restore_login(
            credentials.user_id, credentials.device_id, credentials.access_token
        )

    async def sync_once(self, timeout_ms: int = 1000) -> SyncResponse:
        client = self.client
        if client.should_upload_keys:
            await client.keys_upload()
        response = await client.sync(timeout=timeout_ms, full_state=True)
        assert isinstance(response, SyncResponse), response
        if client.should_query_keys:
            await client.keys_query()
        await client.send_to_device_messages()
        return response

    async def join_invites(self) -> None:
        response = await self.sync_once()
        for room_id in response.rooms.invite:
            await self.client.join(room_id)

    async def close(self) -> None:
        await self.client.close()
