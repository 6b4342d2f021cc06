"""The party runtime every service (issuer, wallet, verifier) is built on.

:class:`ProtocolService` sits between the Matrix transport and a party's
handlers. For every inbound event it:

1. unwraps it with :func:`~onceonly.protocol.envelope.from_wire` (chat messages
   and other non-protocol events are ignored);
2. advances the exchange's state machine (opening events create the exchange;
   the sender's role follows from whether *we* are an agency) and persists it;
3. calls the handler registered for the content's type.

Any :class:`~onceonly.errors.OnceOnlyError` on the way is answered with an
``error`` event to the same room (stable code, safe message, exchange id,
offending event id) and closes the exchange; an unexpected exception is logged
with its traceback and answered as ``internal_error`` without details. The
service keeps running either way. Incoming ``error`` events close our exchange
and are never answered, so two parties cannot bounce errors forever.

A party may pass ``on_refused`` to hear about every refused inbound event (e.g.
to audit it); the hook runs after the answer and cannot change it.

Outgoing contents go through :meth:`ProtocolService.send`, which applies the
same state machine to our own events before they are queued.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Collection, Mapping
from pathlib import Path
from typing import Final

from onceonly.errors import ExchangeTimeout
from onceonly.matrix.accounts import Credentials
from onceonly.matrix.devices import DevicePolicy
from onceonly.matrix.rooms import InvitePolicy
from onceonly.protocol.envelope import to_wire
from onceonly.protocol.exchange import TERMINAL, Exchange, State
from onceonly.protocol.fields import Content
from onceonly.service import transitions
from onceonly.service.exchange_store import ExchangeStore
from onceonly.service.inbound import Handler, InboundDispatch
from onceonly.service.periodic import repeat_every
from onceonly.service.refused import RefusalHook
from onceonly.service.transport import (
    Transport,
    TransportFactory,
    party_client_factory,
)
from onceonly.service.waiters import ExchangeWaiters
from onceonly.types import EventId, RoomId, UserId

logger = logging.getLogger(__name__)

EXCHANGE_DB: Final = "exchanges.sqlite"
"""File name of the exchange store inside the data directory."""


class ProtocolService(InboundDispatch):
    """The protocol runtime of one party on one Matrix account.

    Nothing happens in the constructor; :meth:`start` (or ``async with``) opens the
    exchange store and the transport.

    Args:
        data_dir: The party's data directory (account, transport, crypto and exchange stores).
        handlers: Content class to the handler called for inbound events of that class.
            An exchange can only be *opened* by the peer if its opening class has a handler.
        agency: True for an agency (issuer or verifier), False for a citizen's wallet.
        device_policy: Which devices receive room keys for what we send.
        invite_policy: Whose invites to accept (default: nobody's).
        login: The login to use instead of ``data_dir/account.json``.
        clock: Wall clock in epoch seconds (injected for tests).
        require_encryption: Refuse protocol messages that arrived unencrypted (a
            homeserver can inject those in the peer's name).
        sweep_interval: Seconds between expiry sweeps.
        send_timeout: Seconds :meth:`send` waits for the homeserver to accept an event.
        problem_answer_interval: Least seconds between two answers to transport problems
            (e.g. undecryptable events) in one room.
        transport_factory: Builds the transport (default: a ``PartyClient`` in ``data_dir``).
        on_refused: Observes every inbound protocol event the runtime refused, after
            the refusal was answered (see :mod:`onceonly.service.refused`).
    """

    def __init__(
        self,
        *,
        data_dir: Path,
        handlers: Mapping[type[Content], Handler],
        agency: bool,
        device_policy: DevicePolicy,
        invite_policy: InvitePolicy | None = None,
        login: Credentials | None = None,
        clock: Callable[[], float] = time.time,
        require_encryption: bool = True,
        sweep_interval: float = 30.0,
        send_timeout: float = 60.0,
        problem_answer_interval: int = 300,
        transport_factory: TransportFactory | None = None,
        on_refused: RefusalHook | None = None,
    ) -> None:
        self._data_dir = data_dir
        self._handlers = dict(handlers)
        self._on_refused = on_refused
        self._agency = agency
        self._clock = clock
        self._require_encryption = require_encryption
        self._sweep_interval = sweep_interval
        self._send_timeout = send_timeout
        self._problem_answer_interval = problem_answer_interval
        self._problem_answered: dict[str, int] = {}
        self._factory = transport_factory or party_client_factory(
            data_dir, device_policy=device_policy, invite_policy=invite_policy, login=login
        )
        self._store: ExchangeStore | None = None
        self._transport: Transport | None = None
        self._sweeper: asyncio.Task[None] | None = None
        self._waiters = ExchangeWaiters()

    # --- lifecycle ------------------------------------------------------------------

    async def start(self) -> None:
        """Open the exchange store, start the transport and the expiry sweep.

        Raises:
            StoreError: the exchange store cannot be opened.
            AccountError: no stored login.
        """
        store = ExchangeStore.open(self._data_dir / EXCHANGE_DB)
        transport = self._factory(self._on_inbound, store.is_handled)
        try:
            await transport.start()
        except BaseException:
            store.close()
            raise
        self._store, self._transport = store, transport
        self._sweeper = asyncio.create_task(
            repeat_every(self._sweep_interval, self.sweep, what="expiry sweep", log=logger),
            name="onceonly-expiry",
        )

    async def stop(self) -> None:
        """Stop the sweep and the transport, close the store (nothing queued is lost)."""
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
            self._sweeper = None
        if self._transport is not None:
            await self._transport.stop()
            self._transport = None
        if self._store is not None:
            self._store.close()
            self._store = None
        self._waiters.fail_all(ExchangeTimeout("the service stopped while waiting"))

    async def __aenter__(self) -> ProtocolService:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    # --- public API ---------------------------------------------------------------------

    @property
    def exchanges(self) -> ExchangeStore:
        """The persisted exchanges (``.get(exchange_id)``, ``.record(exchange_id)``)."""
        if self._store is None:
            raise RuntimeError("the service is not started")
        return self._store

    @property
    def user_id(self) -> UserId:
        """Our Matrix user id."""
        return self._running().user_id

    @property
    def agency(self) -> bool:
        """Whether this party is an agency (otherwise a citizen)."""
        return self._agency

    def now(self) -> int:
        """The runtime's clock, in whole epoch seconds."""
        return int(self._clock())

    async def room_for(self, peer: UserId) -> RoomId:
        """The one encrypted mailbox room shared with ``peer`` (created on first contact).

        Raises:
            TransportError: the room cannot be created or the peer did not join in time.
        """
        room_id = await self._running().ensure_direct_room(peer)
        self.exchanges.remember_mailbox(peer, room_id)
        return room_id

    async def send(self, room_id: RoomId, content: Content) -> EventId:
        """Send a protocol message in the wire envelope and record our exchange transition.

        The transition is checked and stored *before* the event is queued (the queue is
        durable), so an answer that arrives at once finds the exchange already moved.

        Raises:
            UnexpectedEvent: sending this content is not allowed in the exchange's state.
            UnknownExchange: the exchange runs in another room.
            UnknownEventType: ``content`` is not a protocol message.
            TransportError: the homeserver did not accept the event in time.
        """
        event_type, wire = to_wire(content)
        transport = self._running()
        exchange_id = getattr(content, "exchange_id", None)
        record = self.exchanges.record(exchange_id) if exchange_id else None
        now = self.now()
        moved = transitions.outgoing(
            record, content, room_id=room_id, we_are_agency=self._agency, now=now
        )
        if moved is not None:
            peer = record.peer if record else self.exchanges.peer_of_room(room_id)
            self._put(moved, room_id, peer, now)
        handle = await transport.send(room_id, event_type, wire)
        event_id = await handle.event_id(self._send_timeout)
        if moved is not None:
            self.exchanges.set_last_event_id(moved.exchange_id, event_id)
        return event_id

    async def wait_for(
        self, exchange_id: str, timeout: float, *, states: Collection[State] | None = None
    ) -> Exchange:
        """Wait until an exchange reaches one of ``states`` (default: a terminal state).

        Raises:
            ExchangeTimeout: it did not get there within ``timeout`` seconds, or the
                service stopped first.
        """
        wanted = frozenset(states) if states is not None else TERMINAL
        current = self.exchanges.get(exchange_id)
        if current is not None and current.state in wanted:
            return current
        entry = self._waiters.add(exchange_id, wanted)
        try:
            return await asyncio.wait_for(asyncio.shield(entry[1]), timeout)
        except TimeoutError:
            latest = self.exchanges.get(exchange_id)
            raise ExchangeTimeout(
                f"exchange did not reach {sorted(s.value for s in wanted)} in {timeout} s",
                detail={
                    "exchange_id": exchange_id,
                    "state": latest.state.value if latest else None,
                },
            ) from None
        finally:
            self._waiters.remove(exchange_id, entry)

    def sweep(self) -> list[Exchange]:
        """Expire every exchange whose deadline passed; return the expired ones."""
        now = self.now()
        expired = []
        for record in self.exchanges.due(now):
            exchange = record.exchange.expire_if_due(now)
            self._put(exchange, record.room_id, record.peer, now)
            expired.append(exchange)
            logger.info("exchange %s expired", exchange.exchange_id)
        return expired
