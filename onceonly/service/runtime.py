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

Outgoing contents go through :meth:`ProtocolService.send`, which applies the
same state machine to our own events before they are queued.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from onceonly.errors import (
    ExchangeTimeout,
    InternalError,
    OnceOnlyError,
    RequestExpired,
    UntrustedParty,
)
from onceonly.matrix.accounts import Credentials
from onceonly.matrix.devices import DevicePolicy
from onceonly.matrix.inbox import Inbound, InboundEvent, InboundProblem
from onceonly.matrix.rooms import InvitePolicy
from onceonly.protocol.envelope import from_wire, protocol_type_of
from onceonly.protocol.events import EXCHANGE_EVENTS, ErrorContent
from onceonly.protocol.exchange import TERMINAL, Exchange, State, role_of
from onceonly.protocol.fields import NAMESPACE, Content
from onceonly.service import transitions
from onceonly.service.exchange_store import ExchangeStore
from onceonly.service.transport import (
    Transport,
    TransportFactory,
    party_client_factory,
    wire_form,
)
from onceonly.service.waiters import ExchangeWaiters
from onceonly.types import EventId, RoomId, UserId

logger = logging.getLogger(__name__)

EXCHANGE_DB: Final = "exchanges.sqlite"
"""File name of the exchange store inside the data directory."""

_ERROR_TYPE: Final = NAMESPACE + ErrorContent.EVENT_TYPE


@dataclass(frozen=True)
class Received:
    """One validated inbound protocol message, as a handler sees it.

    Attributes:
        content: The parsed content model.
        sender: The peer that sent it.
        room_id: The mailbox room it arrived in.
        event_id: Its Matrix event id.
        exchange: The exchange after this event was applied; None for contents outside
            any exchange (``device.list``) and for an ``error`` about no exchange open here.
        now: The runtime's clock when the event was processed (epoch seconds).
    """

    content: Content
    sender: UserId
    room_id: RoomId
    event_id: EventId
    exchange: Exchange | None
    now: int


Handler = Callable[[Received], Awaitable[None]]
"""A party's reaction to one content type. Raise an ``OnceOnlyError`` to refuse it."""


class ProtocolService:
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
    ) -> None:
        self._data_dir = data_dir
        self._handlers = dict(handlers)
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
        self._sweeper = asyncio.create_task(self._sweep_forever(), name="onceonly-expiry")

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
        self._waiters.cancel_all()

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
        event_type, wire = wire_form(content)
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
            ExchangeTimeout: it did not get there within ``timeout`` seconds.
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

    # --- inbound --------------------------------------------------------------------

    async def _on_inbound(self, item: Inbound) -> None:
        if isinstance(item, InboundProblem):
            await self._on_problem(item)
            return
        if item.redelivered and self.exchanges.is_handled(item.event_id):
            return
        now = self.now()
        try:
            content = from_wire(item.type, item.content)
        except OnceOnlyError as exc:
            logger.warning("invalid event %s from %s: %s", item.event_id, item.sender, exc)
            exchange_id = transitions.readable_exchange_id(item.content)
            await self._refuse(item, exc, exchange_id, now, answer=True)
            self.exchanges.mark_handled(item.event_id, now)
            return
        if content is None:
            logger.debug("ignoring non-protocol event %s (%s)", item.event_id, item.type)
            return
        exchange_id = getattr(content, "exchange_id", None)
        # Never answer an error with an error: two parties could bounce them forever.
        answer = not isinstance(content, ErrorContent)
        try:
            if self._require_encryption and not item.encrypted:
                raise UntrustedParty("protocol messages must be end-to-end encrypted")
            await self._process(content, item, now)
        except OnceOnlyError as exc:
            logger.warning("refused %s from %s: %s", item.event_id, item.sender, exc)
            await self._refuse(item, exc, exchange_id, now, answer=answer)
        except Exception:
            logger.exception("handler failed on %s from %s", item.event_id, item.sender)
            internal = InternalError("the event could not be processed")
            await self._refuse(item, internal, exchange_id, now, answer=answer)
        self.exchanges.mark_handled(item.event_id, now)

    async def _process(self, content: Content, item: InboundEvent, now: int) -> None:
        if isinstance(content, ErrorContent):
            await self._on_error_event(content, item, now)
            return
        if not isinstance(content, EXCHANGE_EVENTS):
            await self._call_handler(content, item, None, now)
            return
        record = self.exchanges.record(getattr(content, "exchange_id"))  # noqa: B009
        exchange = transitions.incoming(
            record,
            content,
            room_id=item.room_id,
            sender=item.sender,
            we_are_agency=self._agency,
            accepted_openings=self._handlers.keys(),
            now=now,
        )
        # Stored before the handler runs: the handler's own replies move it further.
        self._put(exchange, item.room_id, item.sender, now, item.event_id)
        await self._call_handler(content, item, exchange, now)

    async def _on_error_event(self, content: ErrorContent, item: InboundEvent, now: int) -> None:
        record = self.exchanges.record(content.exchange_id) if content.exchange_id else None
        if record is not None and not transitions.same_place(record, item.room_id, item.sender):
            record = None  # another peer's exchange: not this sender's to close
        logger.warning(
            "error %s from %s (exchange %s): %s",
            content.code,
            item.sender,
            content.exchange_id if record is not None else "not open here",
            content.message,
        )
        exchange = None
        if record is not None:
            role = role_of(record.exchange.kind, sender_is_agency=not self._agency)
            exchange = transitions.closed_by_error(record.exchange, content, role, now)
            if exchange != record.exchange:
                self._put(exchange, item.room_id, item.sender, now, item.event_id)
        # Surfaced even when no exchange is open (e.g. an answer to a malformed event).
        await self._call_handler(content, item, exchange, now)

    async def _call_handler(
        self, content: Content, item: InboundEvent, exchange: Exchange | None, now: int
    ) -> None:
        handler = self._handlers.get(type(content))
        if handler is None:
            logger.debug("no handler for %s; state recorded only", content.EVENT_TYPE)
            return
        received = Received(
            content=content,
            sender=UserId(item.sender),
            room_id=RoomId(item.room_id),
            event_id=EventId(item.event_id),
            exchange=exchange,
            now=now,
        )
        await handler(received)

    async def _on_problem(self, item: InboundProblem) -> None:
        logger.warning(
            "problem with event %s from %s in %s: %s %s",
            item.event_id,
            item.sender or "?",
            item.room_id,
            item.code,
            item.message,
        )
        if not item.room_id or not item.sender or item.type == _ERROR_TYPE:
            return
        if item.redelivered and self.exchanges.is_handled(item.event_id):
            return
        now = self.now()
        last = self._problem_answered.get(item.room_id)
        if last is not None and now - last < self._problem_answer_interval:
            # Two parties that cannot decrypt each other would otherwise trade
            # undecryptable error answers forever.
            return
        self._problem_answered[item.room_id] = now
        await self._send_error(item.room_id, item.code, item.message, None, item.event_id)
        self.exchanges.mark_handled(item.event_id, now)

    async def _refuse(
        self,
        item: InboundEvent,
        exc: OnceOnlyError,
        exchange_id: str | None,
        now: int,
        *,
        answer: bool,
    ) -> None:
        """Close the sender's exchange (only if it is theirs) and answer with an error."""
        record = self.exchanges.record(exchange_id) if exchange_id else None
        if (
            record is not None
            and transitions.same_place(record, item.room_id, item.sender)
            and not record.exchange.is_terminal
        ):
            if isinstance(exc, RequestExpired):
                closed = record.exchange.expire_if_due(now)
            else:
                reply = transitions.error_reply(exc.code, exc.message, exchange_id, item.event_id)
                role = role_of(record.exchange.kind, sender_is_agency=self._agency)
                closed = transitions.closed_by_error(record.exchange, reply, role, now)
            self._put(closed, record.room_id, record.peer, now)
        if answer and protocol_type_of(item.type, item.content) != _ERROR_TYPE:
            await self._send_error(item.room_id, exc.code, exc.message, exchange_id, item.event_id)

    async def _send_error(
        self, room_id: str, code: str, message: str, exchange_id: str | None, event_id: str
    ) -> None:
        event_type, wire = wire_form(transitions.error_reply(code, message, exchange_id, event_id))
        try:
            # Queued durably; not awaited, so a slow homeserver cannot stall the inbox.
            await self._running().send(room_id, event_type, wire)
        except OnceOnlyError:
            logger.exception("cannot queue the error answer in %s", room_id)

    # --- internals ------------------------------------------------------------------

    def _running(self) -> Transport:
        if self._transport is None:
            raise RuntimeError("the service is not started")
        return self._transport

    def _put(
        self, exchange: Exchange, room_id: str, peer: str | None, now: int, last: str | None = None
    ) -> None:
        """Persist an exchange value, then wake whoever waits for it."""
        self.exchanges.put(exchange, room_id=room_id, peer=peer, now=now, last_event_id=last)
        self._waiters.notify(exchange)

    async def _sweep_forever(self) -> None:
        while True:
            await asyncio.sleep(self._sweep_interval)
            try:
                self.sweep()
            except Exception:
                logger.exception("expiry sweep failed; retrying at the next interval")
