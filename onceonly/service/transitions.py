"""Pure decisions of the runtime: how an event moves an exchange, and the error answer.

No I/O: the runtime passes the stored record (or None), the content, which side
we are, and ``now``; these functions return the next exchange or raise the typed
error the peer is told about.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from dataclasses import replace
from typing import Any, Final

from onceonly.errors import (
    OnceOnlyError,
    ReplayDetected,
    RequestExpired,
    UnexpectedEvent,
    UnknownExchange,
)
from onceonly.protocol.bodies import build_error
from onceonly.protocol.events import EXCHANGE_EVENTS, ErrorContent
from onceonly.protocol.exchange import (
    TABLES,
    Exchange,
    Kind,
    Role,
    Signal,
    State,
    kind_of_opening,
    role_of,
    signal_of,
)
from onceonly.protocol.fields import Content
from onceonly.service.exchange_store import ExchangeRecord

_MAX_MESSAGE: Final = 200  # ErrorContent.message bound
_EXCHANGE_ID: Final = re.compile(r"^[A-Za-z0-9_-]{16,128}$")
_EVENT_ID: Final = re.compile(r"^\$[^\s]{1,254}$")
_CODE: Final = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
_AWAITING_ANSWER: Final = (State.OFFERED, State.REQUESTED)
"""States with a deadline: the exchange waits for the peer's answer (see Exchange.is_due)."""
_ANSWERED: Final = frozenset({State.RESPONDED, State.VERIFIED, State.REJECTED, State.REFUSED})
"""Presentation states reached only once the holder answered (or the exchange ended so)."""


def same_place(record: ExchangeRecord, room_id: str, sender: str) -> bool:
    """Whether an event in ``room_id`` from ``sender`` may touch this exchange.

    Exchange ids are chosen by whoever opens an exchange, so another peer (or the
    same id in another room) must neither see nor disturb it.
    """
    return record.room_id == room_id and record.peer in (None, sender)


def incoming(
    record: ExchangeRecord | None,
    content: Content,
    *,
    room_id: str,
    sender: str,
    we_are_agency: bool,
    accepted_openings: Collection[type[Content]],
    now: int,
) -> Exchange:
    """The exchange after the peer's exchange event ``content`` (not an ``error``).

    Raises:
        UnknownExchange: no such exchange for this peer and room, and ``content``
            cannot open one.
        UnexpectedEvent: the state machine forbids it, or we do not accept exchanges
            opened by this content type.
        RequestExpired: it arrived after the exchange's deadline.
        ReplayDetected: a second answer to a presentation request (see
            :func:`refuse_repeated_or_late`).
    """
    exchange_id: str = getattr(content, "exchange_id")  # noqa: B009 - every exchange event has one
    peer_is_agency = not we_are_agency
    if record is not None:
        if not same_place(record, room_id, sender):
            raise UnknownExchange(
                "event refers to an exchange this party does not know",
                detail={"exchange_id": exchange_id},
            )
        role = role_of(record.exchange.kind, sender_is_agency=peer_is_agency)
        refuse_repeated_or_late(record.exchange, content, role)
        return record.exchange.apply(content, role, now)
    try:
        kind = kind_of_opening(content)
    except UnexpectedEvent:
        raise UnknownExchange(
            "event refers to an exchange this party does not know",
            detail={"exchange_id": exchange_id},
        ) from None
    if type(content) not in accepted_openings:
        raise UnexpectedEvent(
            f"this party does not accept {content.EVENT_TYPE}",
            detail={"exchange_id": exchange_id, "event": content.EVENT_TYPE},
        )
    return Exchange.open(exchange_id, content, role_of(kind, sender_is_agency=peer_is_agency), now)


def refuse_repeated_or_late(exchange: Exchange, content: Content, sender: Role) -> None:
    """Name the refusal of an answer that comes after the exchange moved past waiting for it.

    The state table alone would call both cases ``unexpected_event``; the codes below
    tell the sender what actually happened, whether or not an expiry sweep ran first:

    * a ``presentation.response`` (presentation or refusal) in a presentation exchange
      that already has its answer - responded, or ended as verified, rejected or
      refused - is a second use of a single-use request: ``replay``. This is the only
      place the runtime raises :class:`~onceonly.errors.ReplayDetected`, which is how
      the runtime knows not to close the exchange the replay repeats;
    * an event the table accepts in the state the exchange waited in when its
      deadline passed (offered or requested), arriving after the exchange expired,
      is late: ``request_expired``, as it would have been before the sweep.

    Raises:
        ReplayDetected: a repeated presentation answer.
        RequestExpired: a late answer.
    """
    signal = signal_of(content)
    detail = {"exchange_id": exchange.exchange_id, "state": exchange.state.value}
    if exchange.state is State.EXPIRED:
        table = TABLES[exchange.kind]
        # The peer's own "expired" notice agrees with us: it is no late answer.
        waited = _waited_in(exchange) if signal is not Signal.EXPIRED else set()
        if any((state, signal, sender) in table for state in waited):
            raise RequestExpired(
                f"{signal.value} arrived after the exchange expired", detail=detail
            )
        return
    if (
        exchange.kind is Kind.PRESENTATION
        and signal in (Signal.PRESENTATION, Signal.REFUSAL)
        and exchange.state in _ANSWERED
    ):
        raise ReplayDetected("this presentation request was answered already", detail=detail)


def _waited_in(exchange: Exchange) -> set[State]:
    """The waiting state an expired exchange was in (expiry itself adds no history).

    It is the state the last applied signal led to; an exchange the other side
    declared expired (its last signal is ``exchange.status expired``) waited for nothing.
    """
    last = exchange.history[-1] if exchange.history else None
    return {
        target
        for (_, signal, _), target in TABLES[exchange.kind].items()
        if signal is last and target in _AWAITING_ANSWER
    }


def outgoing(
    record: ExchangeRecord | None,
    content: Content,
    *,
    room_id: str,
    we_are_agency: bool,
    now: int,
) -> Exchange | None:
    """The exchange after we send ``content``, or None if it moves no exchange.

    Raises:
        UnexpectedEvent: the state machine forbids sending it now.
        UnknownExchange: the exchange runs in another room.
        RequestExpired: the exchange's deadline passed.
    """
    exchange_id = getattr(content, "exchange_id", None)
    if not isinstance(content, EXCHANGE_EVENTS) or exchange_id is None:
        return None
    if record is None:
        if isinstance(content, ErrorContent):
            return None  # an error about an event that never opened an exchange here
        kind = kind_of_opening(content)
        return Exchange.open(
            exchange_id, content, role_of(kind, sender_is_agency=we_are_agency), now
        )
    if record.room_id != room_id:
        raise UnknownExchange("exchange runs in another room", detail={"exchange_id": exchange_id})
    role = role_of(record.exchange.kind, sender_is_agency=we_are_agency)
    if isinstance(content, ErrorContent):
        return closed_by_error(record.exchange, content, role, now)
    return record.exchange.apply(content, role, now)


def closed_by_error(exchange: Exchange, error: ErrorContent, sender: Role, now: int) -> Exchange:
    """The exchange after an ``error`` from ``sender``: the table's target, else rejected."""
    if exchange.is_terminal:
        return exchange
    try:
        return exchange.apply(error, sender, now)
    except OnceOnlyError:
        # An error ends the exchange whatever the table says about who may send one when.
        return replace(exchange, state=State.REJECTED, history=(*exchange.history, Signal.ERROR))


def error_reply(code: str, message: str, exchange_id: str | None, event_id: str) -> ErrorContent:
    """The ``error`` content answering an event; fields that would not validate are left out."""
    text = message.strip() or code
    if len(text) > _MAX_MESSAGE:
        text = text[: _MAX_MESSAGE - 3] + "..."
    return build_error(
        code=code if _CODE.match(code) else "malformed",
        message=text,
        exchange_id=exchange_id if exchange_id and _EXCHANGE_ID.match(exchange_id) else None,
        event_id=event_id if _EVENT_ID.match(event_id) else None,
    )


def readable_exchange_id(content: Mapping[str, Any]) -> str | None:
    """The ``exchange_id`` of a raw content that failed validation, if it is well-formed."""
    value = content.get("exchange_id") if isinstance(content, Mapping) else None
    if isinstance(value, str) and _EXCHANGE_ID.match(value):
        return str(value)
    return None
