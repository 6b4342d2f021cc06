"""A hostile Matrix client: plain matrix-nio with E2EE and hand-built payloads.

It is what any Matrix user can run: it joins the rooms it is invited to, shares its
Megolm session with the room like every client does, and then encrypts whatever it
likes. :meth:`HostileClient.send_plaintext` encrypts the exact plaintext *text* (or bytes)
given, so duplicate JSON keys, invalid UTF-8, absurd nesting and non-object payloads are
all reachable; nio's own ``room_send`` would re-serialise a dict (no duplicate keys, no
invalid UTF-8) and is used for the ordinary hostile contents.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
from nio import RoomSendResponse, SyncResponse, ToDeviceMessage, ToDeviceResponse
from unpaddedbase64 import encode_base64

from onceonly.matrix.accounts import Credentials
from onceonly.matrix.rooms import MEGOLM
from tests.integration.test_transport_support import PlainNioDevice


class HostileClient(PlainNioDevice):
    """A plain nio device that sends whatever it is told to, encrypted."""

    def __init__(self, credentials: Credentials, store_dir: Path) -> None:
        super().__init__(credentials, store_dir)
        self.credentials = credentials
        self._prepared: set[str] = set()
        self.last_encrypted: dict[str, Any] = {}
        """The ``m.room.encrypted`` content last sent (to replay it)."""

    async def sync_once(self, timeout_ms: int = 1000) -> SyncResponse:
        """Sync room state, invites and keys, but no timeline.

        Its own echoes would make the attacker's plain nio crash on what it sent (nio
        decrypts them too); the attacker has no need to read the rooms.
        """
        client = self.client
        if client.should_upload_keys:
            await client.keys_upload()
        response = await client.sync(
            timeout=timeout_ms, full_state=True, sync_filter={"room": {"timeline": {"limit": 0}}}
        )
        assert isinstance(response, SyncResponse), response
        if client.should_query_keys:
            await client.keys_query()
        await client.send_to_device_messages()
        return response

    async def prepare(self, room_id: str, *, again: bool = False) -> None:
        """Sync, learn the room's devices and share our Megolm session with all of them.

        Done once per room (``again`` to repeat it): a later sync would make nio decrypt
        the attacker's own hostile echoes, which plain nio does not survive.
        """
        if room_id in self._prepared and not again:
            return
        self._prepared.add(room_id)
        client = self.client
        await self.sync_once(timeout_ms=0)
        await client.joined_members(room_id)
        if client.should_query_keys:
            await client.keys_query()
        missing = client.get_missing_sessions(room_id)
        if missing:
            await client.keys_claim(missing)
        assert client.olm is not None
        if client.olm.should_share_group_session(room_id):
            await client.share_group_session(room_id, ignore_unverified_devices=True)

    async def send_content(self, room_id: str, event_type: str, content: dict[str, Any]) -> str:
        """Send ``content`` as an encrypted event of ``event_type`` (nio serialises it)."""
        await self.prepare(room_id)
        response = await self.client.room_send(
            room_id, event_type, content, ignore_unverified_devices=True
        )
        assert isinstance(response, RoomSendResponse), response
        return str(response.event_id)

    async def send_plaintext(self, room_id: str, plaintext: str | bytes) -> str:
        """Megolm-encrypt exactly ``plaintext`` and send it as ``m.room.encrypted``."""
        await self.prepare(room_id)
        olm = self.client.olm
        assert olm is not None
        session = olm.outbound_group_sessions[room_id]
        raw = plaintext if isinstance(plaintext, bytes) else plaintext.encode()
        session.message_count += 1
        ciphertext = session._session.encrypt(raw).to_base64()
        content = {
            "algorithm": MEGOLM,
            "sender_key": olm.account.identity_keys["curve25519"],
            "ciphertext": ciphertext,
            "session_id": session.id,
            "device_id": self.client.device_id,
        }
        self.last_encrypted = content
        return await self.put_event(room_id, "m.room.encrypted", content)

    async def send_to_device_plaintext(
        self, room_id: str, user_id: str, device_id: str, plaintext: str
    ) -> None:
        """Olm-encrypt exactly ``plaintext`` to one device (as an ``m.room.encrypted``)."""
        await self.prepare(room_id)
        olm = self.client.olm
        assert olm is not None
        device = self.client.device_store[user_id][device_id]
        session = olm.session_store.get(device.curve25519)
        assert session is not None, "no Olm session with the device (prepare claims one)"
        message_type, ciphertext = session.encrypt(plaintext).to_parts()
        content = {
            "algorithm": "m.olm.v1.curve25519-aes-sha2",
            "sender_key": olm.account.identity_keys["curve25519"],
            "ciphertext": {
                device.curve25519: {"type": message_type, "body": encode_base64(ciphertext)}
            },
        }
        message = ToDeviceMessage("m.room.encrypted", user_id, device_id, content)
        response = await self.client.to_device(message)
        assert isinstance(response, ToDeviceResponse), response

    async def put_event(self, room_id: str, event_type: str, content: dict[str, Any]) -> str:
        """Send an event as is (no encryption by us), straight through the client API."""
        url = (
            f"{self.credentials.homeserver}/_matrix/client/v3/rooms/{quote(room_id)}"
            f"/send/{quote(event_type)}/{uuid.uuid4().hex}"
        )
        headers = {"Authorization": f"Bearer {self.credentials.access_token}"}
        async with (
            aiohttp.ClientSession() as session,
            session.put(url, headers=headers, data=json.dumps(content)) as resp,
        ):
            body = await resp.json()
            assert resp.status == 200, body
        return str(body["event_id"])

    async def put_state(
        self, room_id: str, event_type: str, content: dict[str, Any], state_key: str = ""
    ) -> str:
        """Set a room state event (unencrypted, as state always is)."""
        url = (
            f"{self.credentials.homeserver}/_matrix/client/v3/rooms/{quote(room_id)}"
            f"/state/{quote(event_type)}/{quote(state_key)}"
        )
        headers = {"Authorization": f"Bearer {self.credentials.access_token}"}
        async with (
            aiohttp.ClientSession() as session,
            session.put(url, headers=headers, json=content) as resp,
        ):
            body = await resp.json()
            assert resp.status == 200, body
        return str(body["event_id"])


def nested(depth: int, leaf: Any = 1) -> Any:
    """A JSON value ``depth`` objects deep (built without recursion)."""
    value = leaf
    for _ in range(depth):
        value = {"a": value}
    return value


def nested_text(depth: int) -> str:
    """The JSON text of an array nested ``depth`` levels (too deep for Python's json)."""
    return "[" * depth + "]" * depth
