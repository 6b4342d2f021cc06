"""What a party learns about inbound events the runtime refused (after the answer is out).

The runtime answers a refused event on its own (an ``error`` event with the stable
code) and closes the exchange as section 8 of the protocol says. A party that must
keep a record of everything it received - the verifier's audit log - registers a
:data:`RefusalHook` to hear about these events too, including the ones refused
before any handler saw them (malformed, unencrypted, unknown exchange, a second
answer, a late one).

The hook only observes: it runs after the refusal was decided, stored and
answered, it gets an immutable :class:`Refused` value (the raw content as JSON
text), its return value is ignored, and an exception it raises is logged and
swallowed. It therefore cannot change what the sender is told or the exchange's
state.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from onceonly.protocol.fields import Content
from onceonly.types import EventId, RoomId, UserId

logger = logging.getLogger("onceonly.service.runtime")


@dataclass(frozen=True)
class Refused:
    """One inbound event the runtime refused, as a :data:`RefusalHook` sees it.

    Attributes:
        event_id: Its Matrix event id.
        room_id: The room it arrived in.
        sender: Who sent it.
        event_type: The Matrix event type it arrived with (after decryption).
        protocol_type: The protocol type it claims to be (e.g.
            ``eu.onceonly.v1.presentation.response``), None if unreadable.
        raw_content: The content exactly as received, as compact JSON text (key
            order kept).
        content: The parsed content, None when it did not validate.
        exchange_id: The exchange it names, when readable and well-formed.
        code: The error code the sender was told (or would have been: errors are
            never answered).
        message: The safe message that went with the code.
        handler_ran: Whether a party handler was called for it (False: the runtime
            refused it before any handler saw it).
        now: The runtime's clock when it was processed (epoch seconds).
    """

    event_id: EventId
    room_id: RoomId
    sender: UserId
    event_type: str
    protocol_type: str | None
    raw_content: str
    content: Content | None
    exchange_id: str | None
    code: str
    message: str
    handler_ran: bool
    now: int


RefusalHook = Callable[[Refused], None]
"""Observes a refused inbound event; cannot alter the runtime's answer (see module doc)."""


def raw_json(content: Mapping[str, Any]) -> str:
    """The content as compact JSON text, keys in the order they arrived (total: never raises)."""
    try:
        return json.dumps(content, ensure_ascii=False, separators=(",", ":"), default=str)
    except (TypeError, ValueError):  # pragma: no cover - decoded JSON always re-encodes
        return json.dumps(str(content), ensure_ascii=False)


def tell_hook(hook: RefusalHook | None, refused: Refused) -> None:
    """Call ``hook`` (if any); whatever it raises is logged, never passed on."""
    if hook is None:
        return
    try:
        hook(refused)
    except Exception:
        logger.exception("the refusal hook failed on %s; the answer stands", refused.event_id)
