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

from onceonly.errors import OnceOnlyError, UnexpectedEvent, UnknownExchange
from onceonly.protocol.bodies import build_error
from onceonly.protocol.events import EXCHANGE_EVENTS, ErrorContent
from onceonly.protocol.exchange import Exchange, Role, Signal, State, kind_of_opening, role_of
from onceonly.protocol.fields import Content
from onceonly.service.exchange_store import ExchangeRecord

_MAX_MESSAGE: Final = 200  # ErrorContent.message bound
_EXCHANGE_ID: Final = re.compile(r"^[A-Za-z0-9_-]{16,128}$")
_EVENT_ID: Final = re.compile(r"^\$[^\s]{1,254}$")
_CODE: Final = re.compile(r"^[a-z][a-z0-9_]{0,63}$")


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
