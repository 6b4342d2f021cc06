"""One party's end-to-end encrypted Matrix transport.

:class:`PartyClient` ties the pieces together: a nio client with a persistent crypto
store (device keys survive restarts), the transport store (sync token, inbox, outbox,
rooms), the sync loop, the dispatcher that calls the party's handler, and the outbox
worker. Everything the party sends and receives is a raw ``(event type, content)`` pair;
the protocol layer gives it meaning.

Usage (an agency; ``account.json`` in ``data_dir`` holds the stored login)::

    async def on_inbound(item: Inbound) -> None:
        ...  # InboundEvent or InboundProblem; returning acknowledges it

    party = PartyClient(
        data_dir,
        device_policy=AllowListedDevices({"@citizen:hs": ["WALLETDEVICE"]}),
        handler=on_inbound,
        invite_policy=InvitesFrom({"@citizen:hs"}),
    )
    async with party:
        room_id = await party.ensure_direct_room("@citizen:hs")
        handle = await party.send(room_id, "org.example.ping", {"body": "hi"})
        event_id = await handle.event_id()

The transport is safe to stop at any moment (including SIGKILL): queued sends stay in
the outbox, received events in the inbox, and both resume on the next start.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path
from types import TracebackType
from typing import Any

from nio import AsyncClient, AsyncClientConfig

from onceonly.errors import ConfigError, OnceOnlyError, TransportError
from onceonly.matrix import attachments
from onceonly.matrix.accounts import Credentials, load_credentials
from onceonly.matrix.devices import DevicePolicy
from onceonly.matrix.guarded import GuardedClient
from onceonly.matrix.inbox import (
    AlreadyHandled,
    Dispatcher,
    Inbound,
    InboundEvent,
    InboundHandler,
    InboundProblem,
)
from onceonly.matrix.outbox import DEFAULT_PARALLEL_ROOMS, Outbox, SendHandle
from onceonly.matrix.own_devices import DeviceKeys, own_device_keys
from onceonly.matrix.rooms import DirectRooms, InvitePolicy, InvitesFrom
from onceonly.matrix.store import TransportStore
from onceonly.matrix.sync import SyncLoop
from onceonly.types import RoomId, UserId

logger = logging.getLogger(__name__)

TRANSPORT_DB = "transport.sqlite"
CRYPTO_DIR = "crypto"


class PartyClient:
    """The encrypted Matrix transport of one party (agency service or wallet).

    Nothing happens in the constructor; :meth:`start` (or ``async with``) opens the stores,
    restores the login and starts the background tasks.

    Args:
        data_dir: The party's data directory (crypto store and transport store live here).
        login: The login to restore; defaults to ``data_dir/account.json`` (see
            :mod:`onceonly.matrix.accounts`). The device id is reused, so the Olm keys
            in the crypto store stay valid across restarts.
        device_policy: Which devices receive room keys for what we send.
        handler: Called with every :class:`InboundEvent` / :class:`InboundProblem`, one at
            a time, in order. See :mod:`onceonly.matrix.inbox` for the exactly-once contract.
        invite_policy: Accept or decline invites; defaults to accepting nobody's.
        already_handled: Optional idempotency hook (party-side record of handled ids).
        max_download: Largest attachment accepted, in bytes.
        sync_timeline_limit: Events per room per sync before a gap is backfilled.
        max_parallel_rooms: Rooms the outbox sends to at the same time (order is kept per
            room; at least 1, checked on :meth:`start`).
    """

    def __init__(
        self,
        data_dir: Path,
        *,
        device_policy: DevicePolicy,
        handler: InboundHandler,
        login: Credentials | None = None,
        invite_policy: InvitePolicy | None = None,
        already_handled: AlreadyHandled | None = None,
        max_download: int = attachments.DEFAULT_MAX_DOWNLOAD,
        sync_timeline_limit: int = 100,
        max_parallel_rooms: int = DEFAULT_PARALLEL_ROOMS,
    ) -> None:
        self._data_dir = data_dir
        self._login = login
        self._device_policy = device_policy
        self._handler = handler
        self._invite_policy: InvitePolicy = invite_policy or InvitesFrom(())
        self._already_handled = already_handled
        self._max_download = max_download
        self._timeline_limit = sync_timeline_limit
        self._max_parallel_rooms = max_parallel_rooms
        self._client: AsyncClient | None = None
        self._store: TransportStore | None = None
        self._sync: SyncLoop | None = None
        self._outbox: Outbox | None = None
        self._rooms: DirectRooms | None = None
        self._tasks: list[asyncio.Task[None]] = []

    # --- lifecycle ------------------------------------------------------------------

    async def start(self) -> None:
        """Restore the login, open the stores and start syncing, delivering and sending.

        Raises:
            ConfigError: ``max_parallel_rooms`` is below 1.
            AccountError: ``account.json`` is missing.
            MalformedInput: ``account.json`` is invalid.
            StoreError: A store cannot be opened.
        """
        if self._max_parallel_rooms < 1:
            raise ConfigError("max_parallel_rooms must be at least 1")
        login = self._login or load_credentials(self._data_dir)
        crypto_dir = self._data_dir / CRYPTO_DIR
        crypto_dir.mkdir(parents=True, exist_ok=True)
        config = AsyncClientConfig(
            encryption_enabled=True,
            store_sync_tokens=False,  # the transport store owns the token (see sync.py)
            max_timeouts=2,
            request_timeout=30,
            max_timeout_retry_wait_time=2,
        )
        client = GuardedClient(
            login.homeserver, login.user_id, login.device_id, str(crypto_dir), config
        )
        client.restore_login(login.user_id, login.device_id, login.access_token)
        if client.olm is None:
            raise ConfigError("end-to-end encryption is not available (vodozemac missing?)")
        store = TransportStore.open(self._data_dir / TRANSPORT_DB)
        rooms = DirectRooms(client, store)
        dispatcher = Dispatcher(
            store, self._handler, self._resolve, already_handled=self._already_handled
        )
        sync = SyncLoop(
            client,
            store,
            dispatcher,
            rooms,
            self._invite_policy,
            self._device_policy,
            timeline_limit=self._timeline_limit,
        )

        async def first_sync_done() -> None:
            await sync.ready.wait()

        outbox = Outbox(
            client,
            store,
            self._device_policy,
            first_sync_done,
            max_parallel_rooms=self._max_parallel_rooms,
        )
        self._client, self._store, self._rooms = client, store, rooms
        self._sync, self._outbox = sync, outbox
        self._tasks = [
            asyncio.create_task(sync.run(), name="onceonly-sync"),
            asyncio.create_task(dispatcher.run(), name="onceonly-dispatch"),
            asyncio.create_task(outbox.run(), name="onceonly-outbox"),
        ]
        # Re-deliver what a previous run recorded but did not get acknowledged.
        dispatcher.wake()

    async def stop(self) -> None:
        """Stop the background tasks and close the stores (queued sends stay queued)."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        if self._client is not None:
            await self._client.close()
        if self._store is not None:
            self._store.close()
        self._client = self._store = None
        self._sync = self._outbox = None
        self._rooms = None

    async def __aenter__(self) -> PartyClient:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    # --- public API ---------------------------------------------------------------------

    @property
    def user_id(self) -> UserId:
        """Our Matrix user id."""
        return UserId(str(self._running()[0].user_id))

    @property
    def device_id(self) -> str:
        """Our device id."""
        return str(self._running()[0].device_id)

    def own_device_keys(self) -> DeviceKeys:
        """This device's id and identity keys (what the citizen's device list names).

        Raises:
            TransportError: The client is not started.
        """
        return own_device_keys(self._running()[0])

    @property
    def store(self) -> TransportStore:
        """The transport store (inbox, outbox, parked items) for inspection."""
        return self._running()[1]

    @property
    def refused_rooms(self) -> dict[str, int]:
        """Invites declined and mailboxes left since start, by reason (for status)."""
        if self._sync is None:
            raise TransportError("the party client is not started")
        return self._sync.refusals.by_reason()

    @property
    def nio(self) -> AsyncClient:
        """The underlying nio client (for the homeserver runner and tests; handle with care)."""
        return self._running()[0]

    async def wait_ready(self, timeout: float = 30.0) -> None:
        """Wait until the first sync completed (room state loaded).

        Raises:
            TransportError: It did not complete in ``timeout`` seconds.
        """
        if self._sync is None:
            raise TransportError("the party client is not started")
        try:
            await asyncio.wait_for(self._sync.ready.wait(), timeout)
        except TimeoutError as exc:
            raise TransportError("first sync did not complete") from exc

    async def ensure_direct_room(self, peer: str, *, wait_for_join: float | None = 30.0) -> RoomId:
        """Return the encrypted direct room with ``peer``, creating it on first contact.

        Raises:
            TransportError: The room cannot be created, or the peer did not join in time.
        """
        await self.wait_ready()
        if self._rooms is None:
            raise TransportError("the party client is not started")
        return RoomId(await self._rooms.ensure(peer, wait_for_join=wait_for_join))

    async def send(self, room_id: str, event_type: str, content: dict[str, Any]) -> SendHandle:
        """Queue an event durably; it is encrypted if the room is, and sent in order.

        Large contents go as an encrypted attachment transparently.

        Returns:
            A handle; ``await handle.event_id()`` for the homeserver's event id.

        Raises:
            TransportError: The client is not started.
        """
        if self._outbox is None:
            raise TransportError("the party client is not started")
        return self._outbox.enqueue(room_id, event_type, content)

    # --- internals -------------------------------------------------------------------

    def _running(self) -> tuple[AsyncClient, TransportStore]:
        if self._client is None or self._store is None:
            raise TransportError("the party client is not started")
        return self._client, self._store

    async def _resolve(self, event: InboundEvent) -> Inbound:
        """Replace an attachment reference by the content it carries."""
        ref = attachments.attachment_reference(event.content)
        if ref is None:
            return event
        client, _ = self._running()
        try:
            content = await attachments.fetch(
                client.homeserver, str(client.access_token), ref, max_bytes=self._max_download
            )
        except TransportError:
            raise  # transient: the dispatcher retries
        except OnceOnlyError as exc:
            return InboundProblem.from_error(
                exc,
                event_id=event.event_id,
                room_id=event.room_id,
                sender=event.sender,
                type=event.type,
                origin_server_ts=event.origin_server_ts,
            )
        return event.model_copy(update={"content": content})
