"""What the transport hands a party: decrypted events and typed problems.

Delivery contract ("exactly once", precisely):

1. A received event is first written to the inbox table, in the same SQLite transaction
   that advances the sync token. Event ids are unique there, so an event the homeserver
   hands out again (after a crash, in a backfill, as a late decryption) is recorded once.
2. Before the handler is called, the attempt is counted durably.
3. The handler is awaited. If it returns, the item is marked *handled* and never delivered
   again. If it raises, the error is logged and the item stays pending (retried later);
   after ``max_attempts`` failures it is *parked* (never lost; see
   :meth:`~onceonly.matrix.store.TransportStore.parked_inbound`).

"Handled" therefore means: the handler returned and the ack was committed. A process
killed between the two sees the item again with ``redelivered=True``. To make that window
harmless, a party either makes its work idempotent on ``event_id`` or passes an
``already_handled(event_id)`` hook: the party records the event id in its own database in
the same transaction as its work, and the dispatcher asks the hook before re-delivering an
item whose earlier attempt may have completed. Both give exactly-once *effects*.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from onceonly.errors import MalformedInput, OnceOnlyError
from onceonly.matrix.store import TransportStore

logger = logging.getLogger(__name__)


class InboundEvent(BaseModel):
    """A (decrypted) room event from another party.

    Attributes:
        event_id: The Matrix event id (the de-duplication key).
        room_id: The room it arrived in.
        sender: The sending user.
        sender_device: The sending device when the event was encrypted and the device is
            known to us; None otherwise.
        type: The event type after decryption (e.g. a protocol event type).
        content: The event content; an attachment has already been fetched, verified and
            put back in place.
        origin_server_ts: The sender homeserver's timestamp (ms).
        encrypted: True if the event arrived Megolm-encrypted.
        redelivered: True if an earlier delivery may have reached the handler.
    """

    model_config = ConfigDict(frozen=True)

    kind: Literal["event"] = "event"
    event_id: str
    room_id: str
    sender: str
    sender_device: str | None = None
    type: str
    content: dict[str, Any]
    origin_server_ts: int
    encrypted: bool
    redelivered: bool = False


class InboundProblem(BaseModel):
    """An event that reached us but cannot be handed over as content.

    The party may answer the sender with an error event carrying ``code``.

    Attributes:
        event_id: The event id (may be empty when the event had none).
        room_id: The room it arrived in.
        sender: The sender if known, else "".
        type: The event type if known, else "".
        code: A stable code from :mod:`onceonly.errors`.
        message: What went wrong, for logs and the error event.
        origin_server_ts: The sender homeserver's timestamp (ms), 0 if unknown.
        redelivered: True if an earlier delivery may have reached the handler.
    """

    model_config = ConfigDict(frozen=True)

    kind: Literal["problem"] = "problem"
    event_id: str
    room_id: str
    sender: str = ""
    type: str = ""
    code: str
    message: str
    origin_server_ts: int = 0
    redelivered: bool = False

    @classmethod
    def from_error(
        cls, error: OnceOnlyError, *, event_id: str, room_id: str, **fields: Any
    ) -> InboundProblem:
        """Build a problem from a typed error."""
        return cls(
            event_id=event_id, room_id=room_id, code=error.code, message=error.message, **fields
        )


Inbound = InboundEvent | InboundProblem
"""What a handler receives."""

InboundHandler = Callable[[Inbound], Awaitable[None]]
"""The party's callback. Returning means "handled"; raising means "try again later"."""

AlreadyHandled = Callable[[str], bool]
"""Optional hook: did the party durably finish its work for this event id already?"""

Resolver = Callable[[InboundEvent], Awaitable[Inbound]]
"""Turns a recorded event into what the handler sees (e.g. fetches its attachment)."""


class InboundStream:
    """Use as the handler to consume items with ``async for`` instead of a callback.

    An item counts as handled when the loop body that received it finishes, i.e. when the
    loop asks for the next item. If the body raises (leaving the loop), the item is not
    acknowledged: the dispatcher treats it as a handler failure and delivers it again.

    Example::

        stream = InboundStream()
        party = PartyClient(data_dir, handler=stream, device_policy=...)
        async for item in stream:
            await process(item)   # acked when the next iteration starts
    """

    def __init__(self) -> None:
        self._items: asyncio.Queue[tuple[Inbound, asyncio.Future[None]]] = asyncio.Queue()
        self._current: asyncio.Future[None] | None = None

    async def __call__(self, item: Inbound) -> None:
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        await self._items.put((item, done))
        await done

    def __aiter__(self) -> InboundStream:
        return self

    async def __anext__(self) -> Inbound:
        if self._current is not None and not self._current.done():
            self._current.set_result(None)
        item, self._current = await self._items.get()
        return item

    def abandon(self, reason: str = "consumer stopped") -> None:
        """Fail the item being processed (it will be delivered again)."""
        if self._current is not None and not self._current.done():
            self._current.set_exception(RuntimeError(reason))


class _Inbound(BaseModel):
    """Parses the stored JSON back into the right model."""

    item: Inbound = Field(discriminator="kind")


def parse_stored(payload: dict[str, Any]) -> Inbound:
    """Rebuild an inbox item from its stored JSON form."""
    return _Inbound.model_validate({"item": payload}).item


class Dispatcher:
    """Delivers pending inbox items to the handler, in order, one at a time.

    Args:
        store: The transport store holding the inbox.
        handler: The party's callback.
        resolve: Prepares an event for delivery (attachments). It raises
            :class:`~onceonly.errors.TransportError` for transient failures (the item is
            retried) and returns an :class:`InboundProblem` for permanent ones.
        already_handled: The optional idempotency hook (see the module docstring).
        max_attempts: Handler failures before an item is parked.
        retry_delay: Seconds to wait before retrying after a failure.
    """

    def __init__(
        self,
        store: TransportStore,
        handler: InboundHandler,
        resolve: Resolver,
        *,
        already_handled: AlreadyHandled | None = None,
        max_attempts: int = 5,
        retry_delay: float = 1.0,
    ) -> None:
        self._store = store
        self._handler = handler
        self._resolve = resolve
        self._already_handled = already_handled
        self._max_attempts = max_attempts
        self._retry_delay = retry_delay
        self._wake = asyncio.Event()

    def wake(self) -> None:
        """Signal that new items may be pending."""
        self._wake.set()

    async def run(self) -> None:
        """Deliver forever (until cancelled)."""
        while True:
            await self._wake.wait()
            self._wake.clear()
            try:
                retry_soon = await self.deliver_pending()
            except asyncio.CancelledError:
                raise
            except Exception:
                # E.g. the store is momentarily locked: nothing is lost, try again.
                logger.exception("delivery round failed")
                retry_soon = True
            if retry_soon:
                await asyncio.sleep(self._retry_delay)
                self._wake.set()

    async def deliver_pending(self) -> bool:
        """Deliver every pending item once; return True if some must be retried."""
        for row in self._store.pending_inbound():
            redelivered = row.attempts > 0
            if redelivered and self._already_handled and self._already_handled(row.event_id):
                self._store.mark_handled(row.event_id)
                continue
            try:
                item = parse_stored(row.payload)
            except Exception:
                # Not what the sync loop writes; parked for an operator, never a stuck queue.
                logger.exception("cannot read inbox item %s; parked", row.event_id)
                self._store.mark_failed(row.event_id, "unreadable inbox item", park=True)
                continue
            try:
                if isinstance(item, InboundEvent):
                    item = await self._resolve(item)
            except OnceOnlyError as exc:
                # Transient (e.g. media download while the homeserver is down): keep order,
                # stop here and retry the same item later.
                logger.warning("cannot prepare %s yet: %s", row.event_id, exc)
                return True
            except Exception as exc:
                # A bug or a sender's input the resolver did not expect: a retry would fail
                # the same way, so it becomes a problem for this item only.
                logger.exception("cannot prepare %s", row.event_id)
                item = _unreadable(item, exc)
            item = item.model_copy(update={"redelivered": redelivered})
            self._store.note_delivery_attempt(row.event_id)
            try:
                await self._handler(item)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                park = row.attempts + 1 >= self._max_attempts
                logger.exception("handler failed for %s (parked=%s)", row.event_id, park)
                self._store.mark_failed(row.event_id, f"{type(exc).__name__}: {exc}", park=park)
                # Keep order: later items wait until this one is handled or parked.
                return True
            self._store.mark_handled(row.event_id)
        return False


def _unreadable(item: Inbound, exc: Exception) -> InboundProblem:
    return InboundProblem.from_error(
        MalformedInput(f"unreadable event: {type(exc).__name__}"),
        event_id=item.event_id,
        room_id=item.room_id,
        sender=item.sender,
        type=item.type,
        origin_server_ts=item.origin_server_ts,
    )
