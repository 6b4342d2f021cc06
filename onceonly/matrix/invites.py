"""Which rooms a party joins and stays in: only two-member encrypted mailboxes.

The invite *policy* (see :mod:`onceonly.matrix.rooms`) says whose invites this device
acts on. On top of it, a room is joined only if it can be a mailbox (specs/protocol.md
section 4), whoever the inviter:

* the invite is flagged direct (``is_direct`` in our membership event);
* its stripped state names Megolm encryption and the ``invite`` join rule (so no
  public room, no room anyone may knock on or join through another room);
* we have no mailbox with the inviter yet that the inviter is still in (at most one
  mailbox per peer);
* after joining, the room's full state confirms it: encrypted, invite-only, and nobody
  but the inviter and us joined or invited. Otherwise we leave at once.

An invite the policy accepts but that fails these checks is *declined* (rejected for
the account: no device of the account could use such a room as a mailbox). An invite the
policy does not accept is still only ignored, and only the policy's explicit ``DECLINE``
rejects one for other reasons (the rule of :mod:`onceonly.matrix.rooms`).

A mailbox that later gains a third member (joined or invited) is left and forgotten
(:class:`MailboxGuard`): nothing more is received from it or answered in it, and the
outbox refuses to send (and so to share room keys) in an encrypted room with a third
member (see :func:`~onceonly.matrix.rooms.has_third_member`).

Every refusal is logged with its reason and counted in :class:`RoomRefusals`.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal

from nio import AsyncClient, RoomGetStateResponse, RoomLeaveResponse

from onceonly.matrix.rooms import (
    MEGOLM,
    DirectRooms,
    InviteDecision,
    InvitePolicy,
    decide,
    has_third_member,
)
from onceonly.matrix.store import TransportStore

logger = logging.getLogger("onceonly.matrix.sync")

InviteOutcome = Literal["done", "ignored", "retry"]
"""Joined or declined; ignored on this device; or to be tried again next round."""


class RoomRefusals:
    """Counts of invites declined and mailboxes left, by reason (for logs and status)."""

    def __init__(self) -> None:
        self._counts: Counter[str] = Counter()

    def count(self, reason: str) -> int:
        """Count one refusal for ``reason``; return the total of all refusals so far."""
        self._counts[reason] += 1
        return self.total

    @property
    def total(self) -> int:
        """All refusals so far."""
        return sum(self._counts.values())

    def by_reason(self) -> dict[str, int]:
        """A copy of the counts by reason."""
        return dict(self._counts)


def _state_content(events: Iterable[Mapping[str, Any]], event_type: str) -> Mapping[str, Any]:
    for event in events:
        if event.get("type") == event_type and event.get("state_key") == "":
            content = event.get("content")
            return content if isinstance(content, Mapping) else {}
    return {}


def _state_problem(events: Sequence[Mapping[str, Any]]) -> str | None:
    """What keeps a room with this (stripped or full) state from being a mailbox."""
    if _state_content(events, "m.room.encryption").get("algorithm") != MEGOLM:
        return "not_encrypted"
    if _state_content(events, "m.room.join_rules").get("join_rule") != "invite":
        return "not_invite_only"
    return None


def _members(events: Iterable[Mapping[str, Any]]) -> dict[str, str]:
    """User id -> membership, for the joined and invited members named in ``events``."""
    members: dict[str, str] = {}
    for event in events:
        content = event.get("content")
        key = event.get("state_key")
        if event.get("type") == "m.room.member" and isinstance(key, str):
            membership = content.get("membership") if isinstance(content, Mapping) else None
            if membership in ("join", "invite"):
                members[key] = str(membership)
    return members


class InviteHandler:
    """Decides on invites: the policy first, then the mailbox checks (module docstring).

    Args:
        client: The nio client (a :class:`~onceonly.matrix.guarded.GuardedClient` keeps
            the raw stripped invite state the checks read).
        store: The transport store (our mailboxes).
        rooms: Records accepted mailboxes.
        policy: The device's invite policy.
        refusals: Where refusals are counted.
    """

    def __init__(
        self,
        client: AsyncClient,
        store: TransportStore,
        rooms: DirectRooms,
        policy: InvitePolicy,
        refusals: RoomRefusals,
    ) -> None:
        self._client = client
        self._store = store
        self._rooms = rooms
        self._policy = policy
        self._refusals = refusals

    async def handle(
        self, room_id: str, inviter: str, is_direct: bool, stripped: list[dict[str, Any]]
    ) -> InviteOutcome:
        """Act on one invite."""
        decision = decide(self._policy, inviter, room_id)
        if decision is InviteDecision.IGNORE:
            logger.info(
                "ignoring invite to %s from %s on this device (left to the account's other "
                "devices)",
                room_id,
                inviter,
            )
            return "ignored"
        if decision is InviteDecision.DECLINE:
            if room_id in self._client.rooms:
                # Another device joined between the invite and now: the account's
                # membership is settled, and leaving would take the room from it.
                logger.info("not declining %s: the account has joined it", room_id)
                return "done"
            return await self._decline(room_id, inviter, "policy")
        problem = self._invite_problem(inviter, is_direct, stripped)
        if problem is not None:
            return await self._decline(room_id, inviter, problem)
        response = await self._client.join(room_id)
        if getattr(response, "room_id", None) is None:
            logger.warning("join %s failed: %s", room_id, response)
            return "retry"
        problem = await self._joined_problem(room_id, inviter)
        if problem is not None:
            await self._leave(room_id, inviter, problem)
            return "done"
        await self._rooms.record_joined_direct(inviter, room_id)
        logger.info("joined %s (invited by %s)", room_id, inviter)
        return "done"

    def _invite_problem(
        self, inviter: str, is_direct: bool, stripped: list[dict[str, Any]]
    ) -> str | None:
        if not is_direct:
            return "not_direct"
        problem = _state_problem(stripped)
        if problem is not None:
            return problem
        current = self._store.direct_room(inviter)
        room = self._client.rooms.get(current) if current else None
        if room is not None and inviter in room.users and inviter not in room.invited_users:
            return "second_mailbox"
        return None

    async def _joined_problem(self, room_id: str, inviter: str) -> str | None:
        response = await self._client.room_get_state(room_id)
        if not isinstance(response, RoomGetStateResponse):
            return "state_unreadable"
        events = [e for e in response.events if isinstance(e, Mapping)]
        problem = _state_problem(events)
        if problem is not None:
            return problem
        members = _members(events)
        if set(members) != {str(self._client.user_id), inviter} or members[inviter] != "join":
            return "third_member"
        return None

    async def _decline(self, room_id: str, inviter: str, reason: str) -> InviteOutcome:
        response = await self._client.room_leave(room_id)
        if not isinstance(response, RoomLeaveResponse):
            logger.warning("declining %s failed: %s", room_id, response)
            return "retry"
        total = self._refusals.count(reason)
        logger.warning(
            "declined invite to %s from %s for the account: %s (%d rooms refused so far)",
            room_id,
            inviter,
            reason,
            total,
        )
        return "done"

    async def _leave(self, room_id: str, peer: str, reason: str) -> None:
        response = await self._client.room_leave(room_id)
        if not isinstance(response, RoomLeaveResponse):
            logger.warning("leaving %s failed: %s", room_id, response)
        total = self._refusals.count(reason)
        logger.warning(
            "left %s (with %s): %s (%d rooms refused so far)", room_id, peer, reason, total
        )


class MailboxGuard:
    """Leaves every mailbox that gained a third member (joined or invited).

    Args:
        client: The nio client (its room state is what the sync loop just applied).
        store: The transport store (which rooms are mailboxes).
        refusals: Where left mailboxes are counted (reason ``third_member``).
    """

    def __init__(self, client: AsyncClient, store: TransportStore, refusals: RoomRefusals) -> None:
        self._client = client
        self._store = store
        self._refusals = refusals
        self._leaving: set[str] = set()

    def compromised(self) -> set[str]:
        """The mailboxes (room ids) that have a third member now; nothing is sent there."""
        own = str(self._client.user_id)
        found = set(self._leaving)
        for room_id in self._store.direct_rooms().values():
            room = self._client.rooms.get(room_id)
            if room is not None and has_third_member(room, own):
                found.add(room_id)
        return found

    async def leave(self, room_ids: set[str]) -> None:
        """Forget and leave ``room_ids`` (retried next round if the homeserver refuses)."""
        for room_id in room_ids:
            if room_id not in self._leaving:
                self._leaving.add(room_id)
                self._store.forget_direct_room(room_id)
                total = self._refusals.count("third_member")
                logger.warning(
                    "mailbox %s gained a third member: leaving it (%d rooms refused so far)",
                    room_id,
                    total,
                )
            response = await self._client.room_leave(room_id)
            if isinstance(response, RoomLeaveResponse):
                self._leaving.discard(room_id)
            else:
                logger.warning("leaving %s failed: %s", room_id, response)
