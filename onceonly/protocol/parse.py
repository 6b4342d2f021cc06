"""Turn a received (already decrypted) Matrix event into a validated content model.

This is the protocol's boundary: services call :func:`parse_event` on every event
in the namespace before looking at it. Bounds are enforced before pydantic runs
(size of the serialized content, nesting depth), validation is strict (no type
coercion), and failures become typed errors whose messages name the offending
fields but never echo their values, because values may be personal data.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Final

from pydantic import ValidationError

from onceonly.errors import InputTooLarge, MalformedInput, UnknownEventType, UnsupportedVersion
from onceonly.protocol.events import (
    EXCHANGE_EVENTS,
    CredentialIssue,
    CredentialOffer,
    CredentialRequest,
    ErrorContent,
    ExchangeStatus,
    PresentationRequest,
    PresentationResponse,
)
from onceonly.protocol.fields import (
    MAX_CONTENT_BYTES,
    MAX_CONTENT_DEPTH,
    NAMESPACE,
    PROTOCOL_REVISION,
    Content,
)
from onceonly.protocol.rooms import (
    DeviceList,
    MailboxIndex,
    MailboxMarker,
    StatusListState,
    TrustListState,
)

ProtocolEvent = (
    CredentialOffer
    | CredentialRequest
    | CredentialIssue
    | PresentationRequest
    | PresentationResponse
    | ExchangeStatus
    | ErrorContent
    | DeviceList
    | MailboxMarker
    | MailboxIndex
    | TrustListState
    | StatusListState
)
"""Any content :func:`parse_event` can return."""

_CLASSES: Final[tuple[type[Content], ...]] = (
    *EXCHANGE_EVENTS,
    DeviceList,
    MailboxMarker,
    MailboxIndex,
    TrustListState,
    StatusListState,
)

EVENT_TYPES: Final[dict[str, type[Content]]] = {NAMESPACE + cls.EVENT_TYPE: cls for cls in _CLASSES}
"""Full Matrix event type to content class."""

STATE_EVENT_TYPES: Final[frozenset[str]] = frozenset(
    NAMESPACE + cls.EVENT_TYPE for cls in (MailboxMarker, TrustListState, StatusListState)
)
"""Types sent as state events (with a state key)."""

ACCOUNT_DATA_TYPES: Final[frozenset[str]] = frozenset({NAMESPACE + MailboxIndex.EVENT_TYPE})
"""Types stored as account data, never sent into a room."""

_MAX_REPORTED_ERRORS: Final = 5


def event_type_of(content: Content) -> str:
    """Return the full Matrix event type for a content model instance.

    Raises:
        UnknownEventType: ``content`` is not one of the protocol's content classes.
    """
    for event_type, cls in EVENT_TYPES.items():
        if type(content) is cls:
            return event_type
    raise UnknownEventType(f"{type(content).__name__} is not a protocol content")


def to_content(model: Content) -> dict[str, Any]:
    """Serialize a content model to the JSON object to send (``None`` fields omitted)."""
    return model.model_dump(mode="json", exclude_none=True)


def serialized_size(model: Content) -> int:
    """Bytes of the content as sent (compact JSON, UTF-8), for the attachment decision.

    A sender compares this with :data:`~onceonly.protocol.fields.INLINE_CONTENT_LIMIT`
    and, when it is larger, rebuilds the content with ``credential_file`` or
    ``vp_token_file`` instead of the inline value.
    """
    return len(_serialize(to_content(model)).encode("utf-8"))


def is_protocol_type(event_type: str) -> bool:
    """Whether ``event_type`` lies in this protocol's namespace (known or not)."""
    return event_type.startswith(NAMESPACE)


def _check_depth(value: Any, limit: int) -> None:
    # Iterative: a hostile, deeply nested content must not exhaust the stack.
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, Mapping | list | tuple):
            if level > limit:
                raise InputTooLarge(f"event content nested deeper than {limit} levels")
            children = item.values() if isinstance(item, Mapping) else item
            stack.extend((child, level + 1) for child in children)


def _serialize(content: Mapping[str, Any]) -> str:
    try:
        text = json.dumps(content, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as exc:
        # Non-JSON values (NaN, bytes, objects) cannot have come from a real event.
        raise MalformedInput("event content is not a JSON object") from exc
    return text


def _summarise(error: ValidationError) -> tuple[str, list[dict[str, str]]]:
    # Only locations and error kinds: pydantic's messages may embed the input value.
    # The exception is our own model validators (value_error), whose fixed texts
    # explain cross-field rules and never contain input.
    items: list[dict[str, str]] = []
    for item in error.errors(include_url=False, include_input=False, include_context=False):
        entry = {
            "loc": ".".join(str(part) for part in item["loc"]) or "(content)",
            "type": item["type"],
        }
        if item["type"] == "value_error":
            entry["msg"] = item["msg"].removeprefix("Value error, ")
        items.append(entry)
    shown = items[:_MAX_REPORTED_ERRORS]
    text = "; ".join(f"{item['loc']}: {item.get('msg', item['type'])}" for item in shown)
    if len(items) > len(shown):
        text += f"; and {len(items) - len(shown)} more"
    return text, shown


def parse_event(event_type: str, content: Mapping[str, Any]) -> ProtocolEvent:
    """Validate a decrypted event content of a protocol event type.

    Args:
        event_type: The Matrix event type, e.g. ``eu.onceonly.v1.credential.offer``.
        content: The event's (decrypted) ``content`` object.

    Returns:
        The frozen content model for that type.

    Raises:
        UnknownEventType: ``event_type`` is not a type this protocol revision defines.
        InputTooLarge: content larger than 64 KiB serialized or nested too deep.
        UnsupportedVersion: content ``v`` is a revision this implementation does not know.
        MalformedInput: any other shape, type or bound violation; ``detail['errors']``
            lists field locations and error kinds (never values).
    """
    cls = EVENT_TYPES.get(event_type)
    if cls is None:
        raise UnknownEventType(
            "unknown protocol event type", detail={"event_type": event_type[:255]}
        )
    if not isinstance(content, Mapping):
        raise MalformedInput("event content must be a JSON object")
    _check_depth(content, MAX_CONTENT_DEPTH)
    text = _serialize(content)
    size = len(text.encode("utf-8"))
    if size > MAX_CONTENT_BYTES:
        raise InputTooLarge(
            f"event content of {size} bytes exceeds {MAX_CONTENT_BYTES}",
            detail={"event_type": event_type, "size": size},
        )
    if "v" not in content:
        raise MalformedInput(
            f"invalid {event_type} content: v: missing",
            detail={"event_type": event_type, "errors": [{"loc": "v", "type": "missing"}]},
        )
    version = content["v"]
    if type(version) is int and version != PROTOCOL_REVISION:
        raise UnsupportedVersion(
            f"content revision {version} is not supported (this side speaks {PROTOCOL_REVISION})",
            detail={"event_type": event_type, "v": version},
        )
    try:
        # Strict JSON-mode validation: "1" is not 1, true is not 1, arrays become tuples.
        model = cls.model_validate_json(text, strict=True)
    except ValidationError as exc:
        summary, errors = _summarise(exc)
        raise MalformedInput(
            f"invalid {event_type} content: {summary}",
            detail={"event_type": event_type, "errors": errors},
        ) from None
    return model  # type: ignore[return-value]


def parse_state_event(event_type: str, state_key: str, content: Mapping[str, Any]) -> ProtocolEvent:
    """Validate a protocol state event, including its ``state_key``.

    Rules: ``mailbox`` uses the empty state key; ``trust.list`` uses the trust
    authority's id (non-empty); ``status.list`` uses the list's ``uri``.

    Raises:
        UnknownEventType: not a protocol state event type.
        MalformedInput: bad content (see :func:`parse_event`) or a state key that
            breaks the rule for its type.
    """
    if event_type not in STATE_EVENT_TYPES:
        raise UnknownEventType(
            "not a protocol state event type", detail={"event_type": event_type[:255]}
        )
    if not isinstance(state_key, str) or len(state_key) > 512:
        raise MalformedInput("state_key must be a string of at most 512 characters")
    model = parse_event(event_type, content)
    if isinstance(model, MailboxMarker) and state_key != "":
        raise MalformedInput("mailbox state must use the empty state_key")
    if isinstance(model, TrustListState) and not state_key:
        raise MalformedInput("trust.list state_key must name the trust authority")
    if isinstance(model, StatusListState) and state_key != model.uri:
        raise MalformedInput("status.list state_key must equal the list's uri")
    return model
