"""The sync loop: receive, decrypt, record durably, keep keys flowing, accept invites.

One round:

1. Key housekeeping (nio's manual ``sync`` does none of it): upload our device and
   one-time keys when needed, query changed device lists, claim one-time keys for
   wedged sessions, send queued to-device messages (room key shares, key requests).
2. ``/sync`` from the stored token (with ``full_state`` on the first round after a
   restart, because nio keeps room state only in memory).
3. If a room's timeline is ``limited`` (more events than the filter's limit arrived while
   we were away), fetch the gap with ``/messages`` back to the stored token.
4. In ONE SQLite transaction: record every new event (decrypted) or problem in the inbox,
   keep still-undecryptable Megolm events, and store the new sync token. Events of a
   mailbox that gained a third member are not recorded; the mailbox is left
   (:class:`~onceonly.matrix.invites.MailboxGuard`).
5. Handle invites through the :data:`~onceonly.matrix.rooms.InvitePolicy`: join,
   ignore (leave pending for the account's other devices; remembered so it is not
   evaluated every round) or, on an explicit ``DECLINE`` only, reject for the account
   (the rule is in :mod:`onceonly.matrix.rooms`). An accepted invite is joined only if
   the room can be a mailbox, else declined (:mod:`onceonly.matrix.invites`).
6. Retry the kept Megolm events (keys may have arrived); request keys for those that still
   fail; give up on them after ``undecryptable_after`` seconds with a problem.
7. Wake the dispatcher.

No single event can fail a round: nio's per-event steps are isolated by
:class:`~onceonly.matrix.guarded.GuardedClient`, and turning an event into an inbox row
(conversion, bounds, serialisation) is guarded per event here. Whatever a sender put
into an event (any depth, size or JSON type, or a payload nio cannot parse) becomes an
:class:`~onceonly.matrix.inbox.InboundProblem` for that event, and the token moves on.
Only the store itself failing fails a round (and nothing is recorded then).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from typing import Any

from aiohttp import ClientError
from nio import (
    AsyncClient,
    BadEvent,
    MegolmEvent,
    MessageDirection,
    RoomMessagesResponse,
    SyncResponse,
    UnknownBadEvent,
    UnknownEncryptedEvent,
)
from nio.exceptions import EncryptionError, LocalProtocolError

from onceonly.errors import (
    MalformedInput,
    OnceOnlyError,
    TransportError,
    UndecryptableEvent,
)
from onceonly.matrix.content_bounds import out_of_bounds
from onceonly.matrix.devices import DevicePolicy, apply_policy_to_own_devices
from onceonly.matrix.guarded import UnreadableEvent
from onceonly.matrix.inbox import Dispatcher, Inbound, InboundEvent, InboundProblem
from onceonly.matrix.invites import InviteHandler, MailboxGuard, RoomRefusals
from onceonly.matrix.rooms import DirectRooms, InvitePolicy, inviter_of
from onceonly.matrix.store import TransportStore

logger = logging.getLogger(__name__)


class SyncLoop:
    """Runs sync rounds until cancelled.

    Args:
        client: The logged-in nio client with its crypto store loaded.
        store: The transport store.
        dispatcher: Woken after each round.
        rooms: Records accepted direct rooms.
        invite_policy: Decides on invites.
        device_policy: Decides which of our own other devices we trust (key forwarding).
        timeline_limit: Events per room per sync before the timeline is ``limited``.
        poll_timeout_ms: Long-poll duration of ``/sync``.
        undecryptable_after: Seconds after which a kept Megolm event becomes a problem.
        max_backoff: Cap (seconds) of the backoff while the homeserver is unreachable.
    """

    def __init__(
        self,
        client: AsyncClient,
        store: TransportStore,
        dispatcher: Dispatcher,
        rooms: DirectRooms,
        invite_policy: InvitePolicy,
        device_policy: DevicePolicy,
        *,
        timeline_limit: int = 100,
        poll_timeout_ms: int = 10_000,
        undecryptable_after: float = 3600.0,
        max_backoff: float = 10.0,
    ) -> None:
        self._client = client
        self._store = store
        self._dispatcher = dispatcher
        self._rooms = rooms
        self._invite_policy = invite_policy
        self._device_policy = device_policy
        self._filter = {"room": {"timeline": {"limit": timeline_limit}}}
        self._poll_timeout_ms = poll_timeout_ms
        self._undecryptable_after = undecryptable_after
        self._max_backoff = max_backoff
        self.refusals = RoomRefusals()
        """Invites declined and mailboxes left, by reason."""
        self._invites = InviteHandler(client, store, rooms, invite_policy, self.refusals)
        self._guard = MailboxGuard(client, store, self.refusals)
        self._pending_invites: dict[str, tuple[str, bool, list[dict[str, Any]]]] = {}
        # Invites this device decided to leave alone, room id -> inviter. In memory only:
        # a sync from a stored token never repeats them, and a tokenless sync (lost store)
        # should re-evaluate them with the policy as it is then.
        self._ignored_invites: dict[str, str] = {}
        self.ready = asyncio.Event()
        """Set once the first round completed (room state is loaded)."""

    async def run(self) -> None:
        """Sync forever; connection failures back off and retry, nothing escapes."""
        failures = 0
        while True:
            try:
                await self.round(first=not self.ready.is_set())
            except asyncio.CancelledError:
                raise
            except (OnceOnlyError, ClientError, TimeoutError, OSError) as exc:
                failures += 1
                delay = min(self._max_backoff, 0.25 * 2 ** min(failures, 10))
                logger.warning("sync round failed (%s); retrying in %.1fs", exc, delay)
                await asyncio.sleep(delay)
                continue
            except Exception:
                # A bug in event handling must not stop the party from receiving.
                failures += 1
                logger.exception("unexpected error in sync round")
                await asyncio.sleep(min(self._max_backoff, 1.0 * failures))
                continue
            failures = 0
            self.ready.set()

    async def round(self, *, first: bool) -> None:
        """Run one sync round (see the module docstring)."""
        client = self._client
        await self._maintain_keys()
        since = self._store.sync_token()
        response = await client.sync(
            timeout=0 if first else self._poll_timeout_ms,
            since=since,
            full_state=bool(first and since),
            sync_filter=self._filter,
        )
        if not isinstance(response, SyncResponse):
            raise TransportError(f"sync failed: {getattr(response, 'message', response)}")
        batches: list[tuple[str, list[Any]]] = []
        for room_id, info in response.rooms.join.items():
            events = list(info.timeline.events)
            if info.timeline.limited and since:
                events = await self._backfill(room_id, info.timeline.prev_batch, since) + events
            batches.append((room_id, events))
        compromised = self._guard.compromised()
        with self._store.transaction():
            for room_id, events in batches:
                if room_id in compromised:
                    logger.warning("not recording %d events of %s", len(events), room_id)
                    continue
                for event in events:
                    self._record(event, room_id)
            self._store.set_sync_token(response.next_batch)
        await self._guard.leave(compromised)
        self._note_invites(response)
        await self._handle_invites()
        await self._maintain_keys()
        await self._retry_undecrypted()
        self._dispatcher.wake()

    async def _maintain_keys(self) -> None:
        client = self._client
        if client.should_upload_keys:
            await client.keys_upload()
        if client.should_query_keys:
            await client.keys_query()
        apply_policy_to_own_devices(client, self._device_policy)
        try:
            claims = client.get_users_for_key_claiming()
        except LocalProtocolError:
            claims = {}
        if claims:
            await client.keys_claim(claims)
        # Key requests from our own devices that were waiting for an Olm session (just
        # claimed above) are otherwise only answered after the next /sync returns.
        client.olm.collect_key_requests()
        await client.send_to_device_messages()

    async def _backfill(self, room_id: str, prev_batch: str | None, since: str) -> list[Any]:
        """Fetch the events between ``since`` and the start of a limited timeline."""
        collected: list[Any] = []
        start = prev_batch
        while start:
            response = await self._client.room_messages(
                room_id, start=start, end=since, direction=MessageDirection.back, limit=100
            )
            if not isinstance(response, RoomMessagesResponse):
                raise TransportError(f"backfill failed: {getattr(response, 'message', '')}")
            if not response.chunk:
                break
            collected.extend(response.chunk)
            if not response.end or response.end == start:
                break
            start = response.end
        collected.reverse()
        logger.info("backfilled %d events in %s", len(collected), room_id)
        return collected

    def _record(self, event: Any, room_id: str) -> None:
        """Record one timeline event (inside the caller's transaction)."""
        source = getattr(event, "source", None) or {}
        event_id = source.get("event_id") or getattr(event, "event_id", None)
        if not isinstance(event_id, str) or "state_key" in source:
            return  # state changes are room bookkeeping, not messages
        if getattr(event, "sender", source.get("sender")) == self._client.user_id:
            return  # our own echo
        if self._store.seen(event_id):
            return
        if isinstance(event, MegolmEvent):
            self._store.keep_undecrypted(event_id, room_id, source)
            return
        self._store.record_inbound(event_id, self._inbox_payload(event, event_id, room_id))

    def _inbox_payload(self, event: Any, event_id: str, room_id: str) -> dict[str, Any]:
        """The inbox row of one event: the event, or a problem if anything about it fails.

        Guarded as a whole (conversion, bounds, serialisation), so whatever the sender put
        into the event becomes a problem for that one event and never fails the round.
        """
        try:
            item = self._to_inbound(event, room_id)
            payload = item.model_dump(mode="json")
            # What the store will write must be plain JSON (no NaN, no surprises).
            json.dumps(payload, allow_nan=False)
        except Exception as exc:
            logger.warning("cannot record event %s: %s", event_id, type(exc).__name__)
            item = InboundProblem.from_error(
                MalformedInput(f"unreadable event: {type(exc).__name__}"),
                event_id=event_id,
                room_id=room_id,
                **_sender_of(event),
            )
            payload = item.model_dump(mode="json")
        if isinstance(item, InboundProblem):
            logger.warning("problem with %s from %s: %s", event_id, item.sender, item.message)
        return payload

    def _to_inbound(self, event: Any, room_id: str) -> Inbound:
        source = getattr(event, "source", None) or {}
        event_id = str(source.get("event_id", ""))
        raw_sender = source.get("sender")
        sender = raw_sender if isinstance(raw_sender, str) else ""
        ts = source.get("origin_server_ts")
        common: dict[str, Any] = {
            "event_id": event_id,
            "room_id": room_id,
            "sender": sender,
            "origin_server_ts": ts if isinstance(ts, int) else 0,
        }
        problem: OnceOnlyError
        if isinstance(event, UnknownEncryptedEvent):
            problem = UndecryptableEvent(f"unsupported encryption algorithm {event.algorithm!r}")
            return InboundProblem.from_error(problem, **common)
        if isinstance(event, UnreadableEvent):
            problem = MalformedInput(f"the event cannot be read ({event.reason})")
            return InboundProblem.from_error(problem, **common, type="m.room.encrypted")
        event_type = source.get("type")
        content = source.get("content")
        if isinstance(event, BadEvent | UnknownBadEvent) or not isinstance(event_type, str):
            problem = MalformedInput("event does not have a valid structure")
            return InboundProblem.from_error(
                problem, **common, type=event_type if isinstance(event_type, str) else ""
            )
        if not isinstance(content, dict):
            problem = MalformedInput("event content is not an object")
            return InboundProblem.from_error(problem, **common, type=event_type)
        bounds = out_of_bounds(content)
        if bounds is not None:
            return InboundProblem.from_error(bounds, **common, type=event_type)
        decrypted = bool(getattr(event, "decrypted", False))
        return InboundEvent(
            **common,
            type=event_type,
            content=content,
            encrypted=decrypted,
            sender_device=self._device_of(sender, event.sender_key) if decrypted else None,
        )

    def _device_of(self, user_id: str, sender_key: str | None) -> str | None:
        if not sender_key:
            return None
        for device in self._client.device_store.active_user_devices(user_id):
            if device.curve25519 == sender_key:
                return str(device.id)
        return None

    async def _retry_undecrypted(self) -> None:
        client = self._client
        for row in self._store.undecrypted():
            try:
                megolm = MegolmEvent.from_dict(row.source)
            except Exception:
                megolm = None
            if not isinstance(megolm, MegolmEvent):
                self._give_up(row.event_id, row.room_id, row.source, "malformed encrypted event")
                continue
            megolm.room_id = row.room_id
            try:
                decrypted = client.decrypt_event(megolm)
            except EncryptionError as exc:
                if time.time() - row.first_seen > self._undecryptable_after:
                    self._give_up(row.event_id, row.room_id, row.source, str(exc))
                elif megolm.session_id not in client.outgoing_key_requests:
                    with contextlib.suppress(LocalProtocolError):  # already requested
                        await client.request_room_key(megolm)
                continue
            payload = self._inbox_payload(decrypted, row.event_id, row.room_id)
            with self._store.transaction():
                self._store.record_inbound(row.event_id, payload)
                self._store.drop_undecrypted(row.event_id)

    def _give_up(self, event_id: str, room_id: str, source: dict[str, Any], why: str) -> None:
        sender = source.get("sender")
        problem = InboundProblem.from_error(
            UndecryptableEvent(f"cannot decrypt: {why}"),
            event_id=event_id,
            room_id=room_id,
            sender=sender if isinstance(sender, str) else "",
            type="m.room.encrypted",
        )
        with self._store.transaction():
            self._store.record_inbound(event_id, problem.model_dump(mode="json"))
            self._store.drop_undecrypted(event_id)

    def _note_invites(self, response: SyncResponse) -> None:
        own = str(self._client.user_id)
        # Joined or left elsewhere (another device of the account, or the inviter withdrew
        # the invite): nothing left to decide, and a pending decline must not leave a room
        # the account has joined meanwhile.
        for room_id in (*response.rooms.join, *response.rooms.leave):
            self._pending_invites.pop(room_id, None)
            self._ignored_invites.pop(room_id, None)
        raw_states = getattr(self._client, "invite_states", {})
        for room_id, info in response.rooms.invite.items():
            if room_id in self._ignored_invites:
                continue  # decided already (a full-state sync repeats pending invites)
            inviter, is_direct = inviter_of(list(info.invite_state), own)
            if inviter is not None:
                stripped = list(raw_states.get(room_id, []))
                self._pending_invites[room_id] = (inviter, is_direct, stripped)

    async def _handle_invites(self) -> None:
        # Invites appear in one incremental sync only, so a failed join (or decline) is kept
        # and retried on the next round.
        for room_id, (inviter, is_direct, stripped) in list(self._pending_invites.items()):
            try:
                outcome = await self._invites.handle(room_id, inviter, is_direct, stripped)
            except (OnceOnlyError, ClientError, TimeoutError, OSError) as exc:
                logger.warning("invite to %s not handled yet: %s", room_id, exc)
                continue
            if outcome == "retry":
                continue
            if outcome == "ignored":
                self._ignored_invites[room_id] = inviter
            del self._pending_invites[room_id]


def _sender_of(event: Any) -> dict[str, Any]:
    source = getattr(event, "source", None)
    sender = source.get("sender") if isinstance(source, dict) else None
    return {"sender": sender} if isinstance(sender, str) else {}
