"""Invites and the one encrypted direct room per pair of parties (the "mailbox").

The room of a peer is found again after a restart from the transport store, then from the
account's ``m.direct`` account data (which also survives losing the local store, and which
Element uses to show the room as a direct chat), and is only created when both are empty.

Invites belong to the account, not to a device. Rejecting one (leaving the room while
invited) rejects it for every device of the account: the wallet would lose its mailbox
with an agency because a second device, or a second process, had a narrower policy. So an
:data:`InvitePolicy` answers with one of three :class:`InviteDecision` values:

* ``ACCEPT``: this device joins (for the whole account, which is harmless: joining only
  adds the account to a room it was invited to).
* ``IGNORE``: this device does not act. The invite stays pending for the account, any
  other device may still join it (this device is then in the room too, membership being
  the account's), and this device remembers in memory that it ignored it (logged once at
  info), so a repeat of the invite in a later sync response is not evaluated again. A
  sync from a stored token, even the full-state one after a restart, does not repeat a
  pending invite; only a sync without a token (the transport store was lost) lists it
  again, and then it is evaluated once more, with the policy as it is by then.
* ``DECLINE``: the invite is rejected for the whole account. Only the device that owns the
  account's decisions (the wallet) should ever answer this, and only for inviters that are
  *positively* unwanted (a blocked user), never for inviters it merely does not know yet:
  an agency missing from a stale trust list must not lose its mailbox.

A policy that answers a plain ``bool`` gets the safe reading: ``True`` accepts, anything
else ignores; a policy that raises ignores too. :class:`InvitesFrom` accepts the listed
users, declines only the ones listed as ``unwanted`` and ignores everyone else.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass
from enum import StrEnum
from typing import Any
from urllib.parse import quote

import aiohttp
from nio import AsyncClient, MatrixRoom, RoomCreateResponse, RoomPreset, RoomVisibility

from onceonly.errors import TransportError
from onceonly.matrix.store import TransportStore

logger = logging.getLogger(__name__)

MEGOLM = "m.megolm.v1.aes-sha2"


class InviteDecision(StrEnum):
    """What one device does with an invite (see the module docstring for the rule)."""

    ACCEPT = "accept"
    """Join the room."""
    IGNORE = "ignore"
    """Do nothing on this device; the invite stays pending for the account's other devices."""
    DECLINE = "decline"
    """Reject the invite for the whole account (owner device, positively unwanted inviter)."""


InvitePolicy = Callable[[str, str], InviteDecision | bool]
"""``policy(inviter_user_id, room_id) -> decision``; a ``bool`` means accept or ignore."""


def decide(policy: InvitePolicy, inviter: str, room_id: str) -> InviteDecision:
    """Ask ``policy`` about an invite, reading its answer the safe way.

    Args:
        policy: The device's invite policy.
        inviter: Who sent the invite.
        room_id: The room we are invited to.

    Returns:
        The policy's decision; ``True`` is ``ACCEPT``, and any other answer that is not an
        :class:`InviteDecision` (``False``, ``None``, a truthy non-bool) is ``IGNORE``, so
        only an explicit ``DECLINE`` ever rejects an invite for the account. A policy that
        raises is logged and read as ``IGNORE`` (a bug in it must not stop the sync loop).
    """
    try:
        answer = policy(inviter, room_id)
    except Exception:
        logger.exception(
            "invite policy failed on %s from %s; ignoring the invite", room_id, inviter
        )
        return InviteDecision.IGNORE
    if isinstance(answer, InviteDecision):
        return answer
    return InviteDecision.ACCEPT if answer is True else InviteDecision.IGNORE


@dataclass(frozen=True)
class InvitesFrom:
    """Accept invites from the listed users, decline the unwanted ones, ignore the rest.

    Args:
        users: Inviters whose invites this device joins.
        unwanted: Inviters whose invites are rejected for the whole account. Give these
            only to the device that owns the account's decisions (the wallet), and only
            users that are positively unwanted (blocked); leave it empty on every other
            device. A user in both collections is accepted.
    """

    users: Collection[str]
    unwanted: Collection[str] = ()

    def __call__(self, inviter: str, room_id: str) -> InviteDecision:
        """Return the decision for an invite from ``inviter``."""
        if inviter in self.users:
            return InviteDecision.ACCEPT
        if inviter in self.unwanted:
            return InviteDecision.DECLINE
        return InviteDecision.IGNORE


def inviter_of(invite_state: list[Any], own_user_id: str) -> tuple[str | None, bool]:
    """Find who invited us, and whether they flagged the room as direct.

    Args:
        invite_state: The stripped state events nio parsed from the invite.
        own_user_id: Our user id.
    """
    for event in invite_state:
        # nio's InviteMemberEvent moves "content" out of ``source`` into an attribute.
        source = getattr(event, "source", None) or {}
        state_key = getattr(event, "state_key", source.get("state_key"))
        content = getattr(event, "content", source.get("content"))
        sender = getattr(event, "sender", source.get("sender"))
        if source.get("type") == "m.room.member" and state_key == own_user_id:
            is_direct = isinstance(content, dict) and content.get("is_direct") is True
            return (sender if isinstance(sender, str) else None, is_direct)
    return None, False


def has_third_member(room: MatrixRoom, own_user_id: str) -> bool:
    """Whether more than one user besides us is joined or invited in ``room``.

    Such a room is no mailbox (specs/protocol.md section 4): nothing is sent in it.
    """
    return len(set(room.users) - {own_user_id}) > 1


class DirectRooms:
    """Finds or creates the direct room with each peer.

    Args:
        client: The logged-in nio client (its room state is kept fresh by the sync loop).
        store: The transport store (the local peer -> room map).
    """

    def __init__(self, client: AsyncClient, store: TransportStore) -> None:
        self._client = client
        self._store = store
        self._lock = asyncio.Lock()

    async def ensure(self, peer: str, *, wait_for_join: float | None = 30.0) -> str:
        """Return the direct room with ``peer``, creating it on first contact.

        Args:
            peer: The other party's user id.
            wait_for_join: Seconds to wait for the peer to join a room we just created or
                that it has not joined yet; None to return as soon as it is invited. Keys
                are shared with invited members' allowed devices too, so sending early is
                safe; waiting makes the first exchange less racy.

        Raises:
            TransportError: The room cannot be created, or the peer did not join in time.
        """
        async with self._lock:
            room_id = self._store.direct_room(peer) or await self._from_account_data(peer)
            if room_id is None:
                room_id = await self._create(peer)
            self._store.set_direct_room(peer, room_id)
        if wait_for_join:
            await self._wait_for_join(room_id, peer, wait_for_join)
        return room_id

    def remember(self, peer: str, room_id: str) -> None:
        """Record a room a peer invited us to as its direct room."""
        self._store.set_direct_room(peer, room_id)

    async def _from_account_data(self, peer: str) -> str | None:
        direct = await self._get_m_direct()
        for room_id in reversed(direct.get(peer, [])):
            room = self._client.rooms.get(room_id)
            # Only reuse an encrypted room we are still in, with nobody but the peer.
            own = str(self._client.user_id)
            if (
                room is not None
                and room.encrypted
                and own in room.users
                and not has_third_member(room, own)
            ):
                return str(room_id)
        return None

    async def _create(self, peer: str) -> str:
        response = await self._client.room_create(
            visibility=RoomVisibility.private,
            preset=RoomPreset.trusted_private_chat,
            is_direct=True,
            invite=[peer],
            initial_state=[
                {"type": "m.room.encryption", "state_key": "", "content": {"algorithm": MEGOLM}},
                {
                    "type": "m.room.history_visibility",
                    "state_key": "",
                    "content": {"history_visibility": "invited"},
                },
            ],
        )
        if not isinstance(response, RoomCreateResponse):
            raise TransportError(
                f"cannot create a direct room with {peer}: {getattr(response, 'message', '')}"
            )
        room_id = str(response.room_id)
        self._store.set_direct_room(peer, room_id)
        direct = await self._get_m_direct()
        direct.setdefault(peer, [])
        if room_id not in direct[peer]:
            direct[peer].append(room_id)
        await self._put_m_direct(direct)
        return room_id

    async def _wait_for_join(self, room_id: str, peer: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            room = self._client.rooms.get(room_id)
            if (
                room is not None
                and room.encrypted
                and peer in room.users
                and peer not in room.invited_users
            ):
                return
            if time.monotonic() > deadline:
                raise TransportError(
                    f"{peer} has not joined the direct room yet", detail={"room_id": room_id}
                )
            await asyncio.sleep(0.2)

    def _account_data_url(self) -> str:
        user = quote(str(self._client.user_id), safe="")
        return (
            f"{self._client.homeserver.rstrip('/')}/_matrix/client/v3/user/{user}"
            "/account_data/m.direct"
        )

    async def _get_m_direct(self) -> dict[str, list[str]]:
        headers = {"Authorization": f"Bearer {self._client.access_token}"}
        try:
            async with (
                aiohttp.ClientSession() as session,
                session.get(self._account_data_url(), headers=headers) as resp,
            ):
                if resp.status == 404:
                    return {}
                if resp.status != 200:
                    raise TransportError(f"cannot read m.direct: HTTP {resp.status}")
                data = await resp.json()
        except aiohttp.ClientError as exc:
            raise TransportError(f"cannot read m.direct: {exc}") from exc
        if not isinstance(data, dict):
            return {}
        return {
            str(user): [str(r) for r in rooms if isinstance(r, str)]
            for user, rooms in data.items()
            if isinstance(rooms, list)
        }

    async def _put_m_direct(self, direct: dict[str, list[str]]) -> None:
        headers = {"Authorization": f"Bearer {self._client.access_token}"}
        try:
            async with (
                aiohttp.ClientSession() as session,
                session.put(self._account_data_url(), headers=headers, json=direct) as resp,
            ):
                if resp.status != 200:
                    raise TransportError(f"cannot write m.direct: HTTP {resp.status}")
        except aiohttp.ClientError as exc:
            raise TransportError(f"cannot write m.direct: {exc}") from exc

    async def record_joined_direct(self, peer: str, room_id: str) -> None:
        """After accepting a direct invite, remember the room locally and in ``m.direct``."""
        self._store.set_direct_room(peer, room_id)
        try:
            direct = await self._get_m_direct()
            if room_id not in direct.get(peer, []):
                direct.setdefault(peer, []).append(room_id)
                await self._put_m_direct(direct)
        except TransportError as exc:
            # The local map already has it; m.direct is a convenience for other clients.
            logger.warning("could not update m.direct: %s", exc)
