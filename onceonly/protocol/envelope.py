"""The wire envelope: how a protocol content travels as a Matrix room event.

Every protocol *message* (the contents a person may read: offers, requests,
credentials, presentations, statuses, errors, device lists) is sent as an
``m.room.message`` whose ``msgtype`` is the namespaced protocol type, e.g.
``eu.onceonly.v1.credential.offer``. Matrix clients render a message with an
unknown ``msgtype`` by its ``body``, so a citizen on a stock client follows each
step, while a custom event type would stay invisible there.

Receivers also accept the bare form (the protocol type as the event type) so
that an implementation that sends custom event types still interoperates.

Pure: no I/O. ``specs/protocol.md`` ("Wire format") is the normative text.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from onceonly.errors import MalformedInput, UnknownEventType
from onceonly.protocol.fields import Content, MessageContent
from onceonly.protocol.parse import (
    ACCOUNT_DATA_TYPES,
    STATE_EVENT_TYPES,
    ProtocolEvent,
    event_type_of,
    is_protocol_type,
    parse_event,
    to_content,
)

WIRE_EVENT_TYPE: Final = "m.room.message"
"""The Matrix event type every protocol message is sent as."""

MSGTYPE: Final = "msgtype"
"""The content member that carries the protocol type inside ``m.room.message``."""

MENTIONS: Final = "m.mentions"
"""Intentional mentions (Matrix v1.7): protocol messages mention nobody, and say so."""

MATRIX_MEMBER_PREFIX: Final = "m."
"""Members under the Matrix namespace belong to Matrix, not to the protocol content."""

_EDIT_MEMBER: Final = "m.new_content"
_RELATION_MEMBER: Final = "m.relates_to"
_EDIT_RELATION: Final = "m.replace"


def _matrix_members_removed(content: Mapping[str, Any]) -> dict[str, Any]:
    """The content without the ``m.*`` members clients add (mentions, replies, threads).

    An *edit* (``m.new_content``, or a relation of type ``m.replace``) is refused
    rather than stripped: applying it would change a signed exchange after the fact,
    and treating its fallback as a fresh message would surprise the editor.

    Raises:
        MalformedInput: the content is an edit.
    """
    if _EDIT_MEMBER in content:
        raise MalformedInput("edits of protocol messages are not applied")
    relation = content.get(_RELATION_MEMBER)
    if isinstance(relation, Mapping) and relation.get("rel_type") == _EDIT_RELATION:
        raise MalformedInput("edits of protocol messages are not applied")
    return {
        key: value for key, value in content.items() if not key.startswith(MATRIX_MEMBER_PREFIX)
    }


def to_wire(content: Content) -> tuple[str, dict[str, Any]]:
    """Wrap a protocol message for sending.

    Args:
        content: A protocol message content (a model with a ``body``).

    Returns:
        ``("m.room.message", {..., "msgtype": "<namespaced type>", "m.mentions": {}})``.

    Raises:
        UnknownEventType: ``content`` is not a protocol message (state events and
            account data have their own channels and are never wrapped).
    """
    event_type = event_type_of(content)
    if (
        not isinstance(content, MessageContent)
        or event_type in STATE_EVENT_TYPES
        or event_type in ACCOUNT_DATA_TYPES
    ):
        raise UnknownEventType(
            f"{event_type} is not a room message", detail={"event_type": event_type}
        )
    wire = to_content(content)
    wire[MSGTYPE] = event_type
    # Without it, clients that implement intentional mentions fall back to scanning
    # the body for names, and a German/English body may well contain one.
    wire[MENTIONS] = {}
    return WIRE_EVENT_TYPE, wire


def protocol_type_of(event_type: str, content: Mapping[str, Any]) -> str | None:
    """The protocol type an incoming event claims to carry, or None if it is not ours.

    Cheap and total (never raises): used to decide whether a problem report about
    an event deserves an answer.
    """
    if event_type == WIRE_EVENT_TYPE:
        msgtype = content.get(MSGTYPE) if isinstance(content, Mapping) else None
        if isinstance(msgtype, str) and is_protocol_type(msgtype):
            return msgtype
        return None
    return event_type if is_protocol_type(event_type) else None


def from_wire(event_type: str, content: Mapping[str, Any]) -> ProtocolEvent | None:
    """Unwrap and validate an incoming room event.

    Args:
        event_type: The (decrypted) Matrix event type.
        content: The (decrypted) event content.

    Members under ``m.`` (``m.mentions``, a reply's ``m.relates_to``) are Matrix's,
    not the protocol's: they are removed before validation, except that an edit is
    refused.

    Returns:
        The validated content model, or None when the event is not a protocol
        message (an ordinary chat message, a reaction, a membership change, ...).

    Raises:
        UnknownEventType: the ``msgtype`` (or event type) is in the protocol's
            namespace but not one this revision defines, or names a state event.
        MalformedInput: the content is not a valid content of its type (see
            :func:`~onceonly.protocol.parse.parse_event` for the other subclasses).
    """
    protocol_type = protocol_type_of(event_type, content)
    if protocol_type is None:
        return None
    if protocol_type in STATE_EVENT_TYPES or protocol_type in ACCOUNT_DATA_TYPES:
        # State is read from room state, never from the timeline of a mailbox.
        raise UnknownEventType(
            "not a protocol message type", detail={"event_type": protocol_type[:255]}
        )
    if not isinstance(content, Mapping):
        raise MalformedInput("event content must be a JSON object")
    inner = _matrix_members_removed(content)
    msgtype = inner.pop(MSGTYPE, None)
    if msgtype is not None and msgtype != protocol_type:
        # A bare custom event type whose content names another type is ambiguous.
        raise MalformedInput(
            "msgtype does not match the event type", detail={"event_type": protocol_type}
        )
    return parse_event(protocol_type, inner)
