"""Durable, ordered, idempotent sending.

``send`` only writes the event to the outbox table (so it survives a crash) and wakes the
worker. The worker sends each room's queued events strictly in order (rooms in parallel, a bounded
number at a time: order only matters within a room), each with the transaction id it
was queued with: if a request reached the homeserver but the answer was lost, the retry
with the same id returns the same event id instead of creating a duplicate (Matrix
``PUT /rooms/{roomId}/send/{eventType}/{txnId}`` semantics, per access token).

While the homeserver is unreachable the worker backs off exponentially (capped) and keeps
the queue; nothing is dropped and the process keeps running. Errors the homeserver will
repeat (forbidden, unknown room) fail the event after a few attempts so that one bad event
cannot block the queue forever.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import ClientError
from nio import AsyncClient, RoomSendResponse
from nio.exceptions import LocalProtocolError, OlmUnverifiedDeviceError

from onceonly.errors import ConfigError, TransportError
from onceonly.matrix import attachments
from onceonly.matrix.devices import DevicePolicy, apply_device_policy
from onceonly.matrix.rooms import has_third_member
from onceonly.matrix.store import OutboxRow, TransportStore
from onceonly.types import EventId

logger = logging.getLogger(__name__)

DEFAULT_PARALLEL_ROOMS = 8
"""Rooms an outbox sends to at the same time unless told otherwise."""

_PERMANENT_ERRCODES = {"M_FORBIDDEN", "M_NOT_FOUND", "M_BAD_JSON", "M_NOT_JSON", "M_TOO_LARGE"}


class SendHandle:
    """A queued event; await :meth:`event_id` for the id the homeserver gave it."""

    def __init__(self, txn_id: str, future: asyncio.Future[EventId]) -> None:
        self.txn_id = txn_id
        self._future = future

    async def event_id(self, timeout: float | None = None) -> EventId:
        """Wait until the event is sent.

        Raises:
            TransportError: The event failed permanently, or ``timeout`` passed.
        """
        try:
            return await asyncio.wait_for(asyncio.shield(self._future), timeout)
        except TimeoutError as exc:
            raise TransportError("event not sent yet", detail={"txn_id": self.txn_id}) from exc


class Outbox:
    """The sending half of a party's transport.

    Args:
        client: The logged-in nio client (shared with the sync loop).
        store: The transport store.
        device_policy: Who may receive room keys.
        ready: Awaited before the first send (the first sync must have filled room state).
        max_backoff: Cap (seconds) of the exponential backoff while unreachable.
        max_permanent_attempts: Attempts before an event the server refuses is failed.
        max_parallel_rooms: How many rooms send at the same time (order is kept per room).

    Raises:
        ConfigError: ``max_parallel_rooms`` is below 1.
    """

    def __init__(
        self,
        client: AsyncClient,
        store: TransportStore,
        device_policy: DevicePolicy,
        ready: Callable[[], Awaitable[None]],
        *,
        max_backoff: float = 10.0,
        max_permanent_attempts: int = 3,
        max_parallel_rooms: int = DEFAULT_PARALLEL_ROOMS,
    ) -> None:
        if max_parallel_rooms < 1:
            raise ConfigError("max_parallel_rooms must be at least 1")
        self._client = client
        self._store = store
        self._policy = device_policy
        self._ready = ready
        self._max_backoff = max_backoff
        self._max_permanent_attempts = max_permanent_attempts
        self._max_parallel_rooms = max_parallel_rooms
        # One Olm machine serves every room: key queries, one-time key claims and room
        # key sharing of concurrent lanes must not interleave (see _prepare_keys).
        self._olm_lock = asyncio.Lock()
        self._wake = asyncio.Event()
        self._waiters: dict[str, asyncio.Future[EventId]] = {}

    def enqueue(self, room_id: str, event_type: str, content: dict[str, Any]) -> SendHandle:
        """Queue an event durably and return a handle to await its event id."""
        txn_id = f"oo{uuid.uuid4().hex}"
        self._store.enqueue(txn_id, room_id, event_type, content)
        future: asyncio.Future[EventId] = asyncio.get_running_loop().create_future()
        self._waiters[txn_id] = future
        self._wake.set()
        return SendHandle(txn_id, future)

    async def run(self) -> None:
        """Send forever (until cancelled); also sends what a previous run left queued.

        Each room with queued events gets a lane: a task that sends that room's events in
        queue order. At most ``max_parallel_rooms`` lanes run at once; a lane sends the
        events it found and ends, so a busy room cannot keep a waiting room out for long.
        """
        await self._ready()
        lanes: dict[str, asyncio.Task[None]] = {}
        self._wake.set()
        try:
            while True:
                await self._wake.wait()
                self._wake.clear()
                try:
                    self._start_lanes(lanes)
                except Exception:
                    # A store hiccup must not stop sending for good; the queue is durable.
                    logger.exception("outbox round failed")
                    await asyncio.sleep(self._max_backoff)
                    self._wake.set()
        finally:
            for lane in lanes.values():
                lane.cancel()
            await asyncio.gather(*lanes.values(), return_exceptions=True)

    def _start_lanes(self, lanes: dict[str, asyncio.Task[None]]) -> None:
        for room_id in self._store.queued_rooms():
            if len(lanes) >= self._max_parallel_rooms:
                return
            if room_id not in lanes:
                lane = asyncio.create_task(self._run_lane(room_id), name=f"outbox {room_id}")
                lanes[room_id] = lane
                lane.add_done_callback(functools.partial(self._lane_done, lanes, room_id))

    def _lane_done(
        self, lanes: dict[str, asyncio.Task[None]], room_id: str, _lane: asyncio.Task[None]
    ) -> None:
        lanes.pop(room_id, None)
        # A slot is free, and the room may have got new events meanwhile.
        self._wake.set()

    async def _run_lane(self, room_id: str) -> None:
        """Send the queued events of one room, strictly in order."""
        try:
            for row in self._store.queued_in(room_id):
                await self._send_with_retries(row)
        except asyncio.CancelledError:
            raise
        except Exception:
            # A bug or a store hiccup stops this lane only; its events stay queued and the
            # lane is started again after a pause.
            logger.exception("outbox lane for %s failed", room_id)
            await asyncio.sleep(self._max_backoff)

    async def _send_with_retries(self, row: OutboxRow) -> None:
        attempt = 0
        while True:
            try:
                event_id = await self._send_once(row)
            except _PermanentFailure as exc:
                attempt += 1
                final = attempt >= self._max_permanent_attempts
                self._store.mark_send_failed(row.txn_id, str(exc), final=final)
                if final:
                    logger.error("giving up on %s: %s", row.txn_id, exc)
                    self._resolve(row.txn_id, error=TransportError(str(exc)))
                    return
            except (TransportError, ClientError, TimeoutError, OSError) as exc:
                attempt += 1
                self._store.mark_send_failed(row.txn_id, str(exc), final=False)
                delay = min(self._max_backoff, 0.25 * 2 ** min(attempt, 10))
                logger.warning("send %s failed (%s); retrying in %.1fs", row.txn_id, exc, delay)
                await asyncio.sleep(delay)
                continue
            else:
                self._store.mark_sent(row.txn_id, event_id)
                self._resolve(row.txn_id, event_id=EventId(event_id))
                return
            await asyncio.sleep(min(self._max_backoff, 2.0**attempt))

    def _resolve(
        self, txn_id: str, *, event_id: EventId | None = None, error: Exception | None = None
    ) -> None:
        future = self._waiters.pop(txn_id, None)
        if future is None or future.done():
            return
        if error is not None:
            future.set_exception(error)
        else:
            assert event_id is not None
            future.set_result(event_id)

    async def _send_once(self, row: OutboxRow) -> str:
        room = self._client.rooms.get(row.room_id)
        if room is None:
            # After the first sync every joined room is known; give the sync loop a few
            # seconds for a room just created or joined, then fail the event.
            raise _PermanentFailure(f"not a member of room {row.room_id}")
        encrypted = room.encrypted
        self._refuse_third_member(room)
        content = row.content
        if attachments.needs_attachment(row.event_type, content, encrypted=encrypted):
            content = await attachments.pack(self._client, content)
        if encrypted:
            async with self._olm_lock:
                await self._prepare_keys(row.room_id)
                # The member list may just have been refreshed: check again before any
                # room key leaves this device.
                self._refuse_third_member(room)
                if self._client.olm is not None and self._client.olm.should_share_group_session(
                    row.room_id
                ):
                    # Shared here, under the lock, so room_send finds nothing left to share.
                    await self._client.share_group_session(row.room_id)
        try:
            response = await self._client.room_send(
                row.room_id, row.event_type, content, tx_id=row.txn_id
            )
        except OlmUnverifiedDeviceError as exc:
            # A device appeared between applying the policy and sharing: apply it again.
            raise TransportError(f"device list changed: {exc}") from exc
        except LocalProtocolError as exc:
            raise TransportError(str(exc)) from exc
        if isinstance(response, RoomSendResponse):
            return str(response.event_id)
        errcode = getattr(response, "status_code", None)
        message = getattr(response, "message", str(response))
        if errcode in _PERMANENT_ERRCODES:
            raise _PermanentFailure(f"{errcode}: {message}")
        raise TransportError(f"send failed: {errcode}: {message}")

    def _refuse_third_member(self, room: Any) -> None:
        """Never send (nor share a room key) in an encrypted room with a third member."""
        if room.encrypted and has_third_member(room, str(self._client.user_id)):
            raise _PermanentFailure(f"room {room.room_id} has a third member; not sending")

    async def _prepare_keys(self, room_id: str) -> None:
        """Know the members' devices, reach the allowed ones, and apply the policy."""
        client = self._client
        room = client.rooms[room_id]
        if not room.members_synced:
            await client.joined_members(room_id)
        if client.should_query_keys:
            await client.keys_query()
        allowed = apply_device_policy(client, room_id, self._policy)
        # Only reach the devices that will get the key: claiming one-time keys of refused
        # devices on every send would drain theirs for nothing.
        missing = {
            user_id: wanted
            for user_id, devices in client.get_missing_sessions(room_id).items()
            if (wanted := [d for d in devices if f"{user_id}|{d}" in allowed])
        }
        if missing:
            await client.keys_claim(missing)
            allowed = apply_device_policy(client, room_id, self._policy)
        if not any(not entry.startswith(f"{client.user_id}|") for entry in allowed):
            # Not an error (a device may be approved later), but nobody can read this yet.
            logger.warning("no device in %s is allowed to read what we send", room_id)


class _PermanentFailure(Exception):
    """The homeserver refused the event in a way a retry will not fix."""
