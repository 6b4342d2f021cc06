"""Inbound half of the runtime: from a transport item to state, handler and answers.

A mixin of :class:`~onceonly.service.runtime.ProtocolService`, kept in its own module
because it is the larger half; see that class for the behaviour as a whole.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from onceonly.errors import (
    InternalError,
    OnceOnlyError,
    ReplayDetected,
    RequestExpired,
    UntrustedParty,
)
from onceonly.matrix.inbox import Inbound, InboundEvent, InboundProblem
from onceonly.protocol.envelope import from_wire, protocol_type_of, to_wire
from onceonly.protocol.events import EXCHANGE_EVENTS, ErrorContent
from onceonly.protocol.exchange import Exchange, role_of
from onceonly.protocol.fields import NAMESPACE, Content
from onceonly.service import transitions
from onceonly.service.exchange_store import ExchangeRecord, ExchangeStore
from onceonly.service.refused import RefusalHook, Refused, raw_json, tell_hook
from onceonly.service.transport import Transport
from onceonly.service.waiters import ExchangeWaiters
from onceonly.types import EventId, RoomId, UserId

logger = logging.getLogger("onceonly.service.runtime")

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


@dataclass
class _Progress:
    """How far the processing of one inbound event got (for the refusal hook)."""

    handler_ran: bool = False


class InboundDispatch:
    """Inbound processing of :class:`~onceonly.service.runtime.ProtocolService`."""

    if TYPE_CHECKING:
        # Provided by ProtocolService.
        _handlers: dict[type[Content], Handler]
        _on_refused: RefusalHook | None
        _agency: bool
        _require_encryption: bool
        _problem_answer_interval: int
        _problem_answered: dict[str, int]
        _transport: Transport | None
        _waiters: ExchangeWaiters

        @property
        def exchanges(self) -> ExchangeStore: ...

        def now(self) -> int: ...

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
            self._report_refusal(item, None, exc, exchange_id, _Progress(), now)
            self.exchanges.mark_handled(item.event_id, now)
            return
        if content is None:
            logger.debug("ignoring non-protocol event %s (%s)", item.event_id, item.type)
            return
        exchange_id = getattr(content, "exchange_id", None)
        # Never answer an error with an error: two parties could bounce them forever.
        answer = not isinstance(content, ErrorContent)
        progress = _Progress()
        refusal: OnceOnlyError | None = None
        try:
            if self._require_encryption and not item.encrypted:
                raise UntrustedParty("protocol messages must be end-to-end encrypted")
            await self._process(content, item, now, progress)
        except OnceOnlyError as exc:
            logger.warning("refused %s from %s: %s", item.event_id, item.sender, exc)
            refusal = exc
        except Exception:
            logger.exception("handler failed on %s from %s", item.event_id, item.sender)
            refusal = InternalError("the event could not be processed")
        if refusal is not None:
            # A replay the runtime spotted before any handler ran must not end the
            # exchange it repeats (that one may still be waiting for its verdict).
            close = progress.handler_ran or not isinstance(refusal, ReplayDetected)
            await self._refuse(item, refusal, exchange_id, now, answer=answer, close=close)
            self._report_refusal(item, content, refusal, exchange_id, progress, now)
        self.exchanges.mark_handled(item.event_id, now)

    def _report_refusal(
        self,
        item: InboundEvent,
        content: Content | None,
        error: OnceOnlyError,
        exchange_id: str | None,
        progress: _Progress,
        now: int,
    ) -> None:
        """Tell the party's refusal hook; called only once the answer is queued."""
        if self._on_refused is None:
            return
        refused = Refused(
            event_id=EventId(item.event_id),
            room_id=RoomId(item.room_id),
            sender=UserId(item.sender),
            event_type=item.type,
            protocol_type=protocol_type_of(item.type, item.content),
            raw_content=raw_json(item.content),
            content=content,
            exchange_id=exchange_id,
            code=error.code,
            message=error.message,
            handler_ran=progress.handler_ran,
            now=now,
        )
        tell_hook(self._on_refused, refused)

    async def _process(
        self, content: Content, item: InboundEvent, now: int, progress: _Progress
    ) -> None:
        if isinstance(content, ErrorContent):
            await self._on_error_event(content, item, now, progress)
            return
        if not isinstance(content, EXCHANGE_EVENTS):
            await self._call_handler(content, item, None, now, progress)
            return
        record = self.exchanges.record(getattr(content, "exchange_id"))  # noqa: B009
        if record is not None and self.exchanges.applied(item.event_id):
            await self._resume(content, item, record, now, progress)
            return
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
        self._put(exchange, item.room_id, item.sender, now, item.event_id, applied=True)
        await self._call_handler(content, item, exchange, now, progress)

    async def _resume(
        self,
        content: Content,
        item: InboundEvent,
        record: ExchangeRecord,
        now: int,
        progress: _Progress,
    ) -> None:
        """An event applied before a crash, whose processing did not finish, is back."""
        if record.last_event_id == item.event_id:
            # Nothing happened since: the handler did not get as far as answering.
            logger.info("re-running the handler for %s after a restart", item.event_id)
            await self._call_handler(content, item, record.exchange, now, progress)
        else:
            # Something (our answer) moved the exchange on: the handler got that far.
            logger.warning(
                "not re-running the handler for %s: its exchange moved on", item.event_id
            )

    async def _on_error_event(
        self, content: ErrorContent, item: InboundEvent, now: int, progress: _Progress
    ) -> None:
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
        await self._call_handler(content, item, exchange, now, progress)

    async def _call_handler(
        self,
        content: Content,
        item: InboundEvent,
        exchange: Exchange | None,
        now: int,
        progress: _Progress,
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
        progress.handler_ran = True
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
        close: bool = True,
    ) -> None:
        """Close the sender's exchange (only if it is theirs and ``close``) and answer."""
        record = self.exchanges.record(exchange_id) if exchange_id and close else None
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
        event_type, wire = to_wire(transitions.error_reply(code, message, exchange_id, event_id))
        try:
            # Queued durably; not awaited, so a slow homeserver cannot stall the inbox.
            await self._running().send(room_id, event_type, wire)
        except OnceOnlyError:
            logger.exception("cannot queue the error answer in %s", room_id)

    # --- shared with the outbound half -------------------------------------------

    def _running(self) -> Transport:
        if self._transport is None:
            raise RuntimeError("the service is not started")
        return self._transport

    def _put(
        self,
        exchange: Exchange,
        room_id: str,
        peer: str | None,
        now: int,
        last: str | None = None,
        *,
        applied: bool = False,
    ) -> None:
        """Persist an exchange value (``applied``: ``last`` is the inbound event applied)."""
        self.exchanges.put(
            exchange,
            room_id=room_id,
            peer=peer,
            now=now,
            last_event_id=last,
            applied_event_id=last if applied else None,
        )
        self._waiters.notify(exchange)
