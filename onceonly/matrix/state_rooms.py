"""Public information as state events in public Matrix rooms (no E2EE: nothing is secret).

The trust authority publishes the signed trust list as a state event in a
public room it creates (with an alias so parties can find it). Only the
authority may change state or post there: the room's power levels require
level 100 for every event. Readers do not need to join: the room's history is
``world_readable``, so Synapse serves its state to any logged-in user (we join
as a fallback for servers that refuse peeking).

Authenticity comes from the list's own signature, never from the room: a
reader verifies what it reads against its configured trust anchors. The room
is still bound to its owner, because a signed but *old* document replayed in a
squatted room would otherwise pass: every public room of onceonly has an
alias that names its owner (``#onceonly-<kind>.<localpart>:<server>`` belongs
to ``@<localpart>:<server>``, :func:`owned_room_alias`), and a reader takes
state only from a room that owner created and only when the owner sent it
(:func:`read_owned_state`). A publisher never writes into a room it did not
create (:func:`ensure_public_room`), and the generated Synapse config lets only
the owner create such an alias (:mod:`onceonly.matrix.alias_guard`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import asynccontextmanager
from typing import Any, Final, cast

import aiohttp
from nio import (
    Api,
    AsyncClient,
    AsyncClientConfig,
    JoinError,
    RoomCreateError,
    RoomGetStateEventError,
    RoomGetStateEventResponse,
    RoomGetStateResponse,
    RoomPreset,
    RoomPutStateError,
    RoomResolveAliasResponse,
    RoomVisibility,
)
from nio.client.async_client import client_session

from onceonly.errors import ConfigError, InputTooLarge, MalformedInput, RoomNotOwned, TransportError
from onceonly.jose import json_dumps_compact
from onceonly.matrix.accounts import Credentials
from onceonly.matrix.alias_guard import alias_owner, is_reserved_alias, owned_room_alias
from onceonly.protocol import NAMESPACE, TrustListState, parse_state_event
from onceonly.trust import TrustList
from onceonly.types import EventId, RoomId

TRUST_LIST_EVENT_TYPE: Final = NAMESPACE + TrustListState.EVENT_TYPE
"""State event type carrying the signed trust list (state key: the authority's id)."""

MAX_STATE_CONTENT_BYTES: Final = 60 * 1024
"""Matrix caps a whole event at 64 KiB; leave room for the envelope."""

_ADMIN_LEVEL: Final = 100

TRUST_ROOM_KIND: Final = "trust"
"""``#onceonly-trust.<localpart>:<server>`` is the trust room of ``@<localpart>:<server>``."""


def trust_room_alias(authority_user_id: str) -> str:
    """The alias of the trust room the authority speaking as ``authority_user_id`` publishes in.

    Raises:
        MalformedInput: not a Matrix user id.
    """
    return owned_room_alias(TRUST_ROOM_KIND, authority_user_id)


@asynccontextmanager
async def state_client(credentials: Credentials) -> AsyncIterator[AsyncClient]:
    """A plain (unencrypted, storeless) nio client for public room state.

    Connection failures are retried twice, then raised, so an offline
    homeserver becomes an error quickly instead of an endless retry loop.
    """
    config = AsyncClientConfig(
        encryption_enabled=False,
        store_sync_tokens=False,
        max_timeouts=2,
        max_timeout_retry_wait_time=1,
        request_timeout=15,
    )
    client = AsyncClient(credentials.homeserver, credentials.user_id, config=config)
    client.restore_login(credentials.user_id, credentials.device_id, credentials.access_token)
    try:
        yield client
    finally:
        await client.close()


def room_alias(room: str, server_name: str) -> str:
    """Turn ``trust`` or ``#trust`` into ``#trust:server_name``; keep full aliases as they are."""
    if room.startswith("!") or (room.startswith("#") and ":" in room):
        return room
    localpart = room.removeprefix("#")
    if not localpart or ":" in localpart:
        raise MalformedInput(f"invalid room alias {room!r}")
    return f"#{localpart}:{server_name}"


def server_name_of(user_id: str) -> str:
    """The server part of a Matrix user id."""
    return user_id.split(":", 1)[1]


async def _call(request: Awaitable[Any]) -> Any:
    # nio raises aiohttp/OS errors once its retries are spent; callers get one typed error.
    try:
        return await request
    except (aiohttp.ClientError, OSError, TimeoutError) as exc:
        raise TransportError(f"homeserver unreachable: {exc}") from exc


async def resolve_room(client: AsyncClient, room: str) -> RoomId | None:
    """Return the room id of a room id or alias, or ``None`` when the alias is unknown.

    Raises:
        TransportError: the homeserver is unreachable.
    """
    if room.startswith("!"):
        return RoomId(room)
    answer = await _call(client.room_resolve_alias(room))
    if isinstance(answer, RoomResolveAliasResponse):
        return RoomId(answer.room_id)
    if getattr(answer, "status_code", None) == "M_NOT_FOUND":
        return None
    raise TransportError(f"cannot resolve {room}: {getattr(answer, 'message', answer)}")


async def ensure_public_room(
    client: AsyncClient,
    alias: str,
    *,
    name: str,
    topic: str,
    state_event_types: Iterable[str] = (TRUST_LIST_EVENT_TYPE,),
) -> tuple[RoomId, bool]:
    """Find the room with ``alias`` or create it as a read-only public room.

    Args:
        client: Logged-in client of the publisher (becomes the room's only admin).
        alias: Full alias, ``#localpart:server``.
        name: Room name.
        topic: Room topic.
        state_event_types: State types only the publisher may set.

    Returns:
        The room id and whether it was created now.

    Raises:
        RoomNotOwned: the alias belongs to another account, or points to a room the
            publisher did not create (someone took the alias first): nothing is
            published there.
        TransportError: the homeserver refused or is unreachable.
    """
    if is_reserved_alias(alias) and alias_owner(alias) != client.user_id:
        raise RoomNotOwned(
            f"{alias} is not an alias of {client.user_id}",
            detail={"alias": alias, "owner": alias_owner(alias)},
        )
    existing = await resolve_room(client, alias)
    if existing is not None:
        await check_room_creator(client, existing, client.user_id)
        return existing, False
    localpart = alias.removeprefix("#").split(":", 1)[0]
    answer = await _call(
        client.room_create(
            visibility=RoomVisibility.public,
            alias=localpart,
            name=name,
            topic=topic,
            preset=RoomPreset.public_chat,
            initial_state=[
                {
                    "type": "m.room.history_visibility",
                    "state_key": "",
                    "content": {"history_visibility": "world_readable"},
                }
            ],
            # Read-only for everyone but the creator (who has full power by default;
            # room version 12 forbids naming it in "users"): no posts, no state changes.
            power_level_override={
                "events_default": _ADMIN_LEVEL,
                "state_default": _ADMIN_LEVEL,
                "events": {event_type: _ADMIN_LEVEL for event_type in state_event_types},
            },
        )
    )
    if isinstance(answer, RoomCreateError):
        raise TransportError(f"cannot create room {alias}: {answer.message}")
    return RoomId(answer.room_id), True


async def state_event(
    client: AsyncClient, room_id: str, event_type: str, state_key: str = ""
) -> dict[str, Any] | None:
    """A whole state event (``sender``, ``content``, ...), joining the public room if asked to.

    Returns:
        The event, or ``None`` when the room has no such state.

    Raises:
        TransportError: unreadable room or unreachable homeserver.
    """
    for attempt in range(2):
        answer = await _call(_get_state_event(client, room_id, event_type, state_key))
        # nio does not tell errors from events here: an error answer arrives as a
        # "response" whose content is the error body, so look at its errcode.
        body = answer.content if isinstance(answer, RoomGetStateEventResponse) else None
        errcode = (
            answer.status_code
            if isinstance(answer, RoomGetStateEventError)
            else body.get("errcode")
            if isinstance(body, dict)
            else None
        )
        if isinstance(body, dict) and errcode is None:
            return body  # with format=event nio's "content" is the whole event
        if errcode == "M_NOT_FOUND":
            return None
        if errcode == "M_FORBIDDEN" and attempt == 0:
            joined = await _call(client.join(room_id))
            if isinstance(joined, JoinError):
                raise TransportError(f"cannot join {room_id}: {joined.message}")
            continue
        raise TransportError(
            f"cannot read {event_type} in {room_id}: {errcode or answer}",
            detail={"errcode": errcode} if isinstance(errcode, str) else None,
        )
    raise TransportError(f"cannot read {event_type} in {room_id}")  # pragma: no cover


async def _raw_get_state_event(
    client: AsyncClient, room_id: str, event_type: str, state_key: str
) -> RoomGetStateEventResponse | RoomGetStateEventError:
    # nio's room_get_state_event asks for the content only; the binding checks need the
    # sender, which the client API gives with format=event.
    path = Api._build_path(
        ["rooms", room_id, "state", event_type, state_key],
        {"access_token": client.access_token, "format": "event"},
    )
    answer: RoomGetStateEventResponse | RoomGetStateEventError = await client._send(
        RoomGetStateEventResponse, "GET", path, response_data=(event_type, state_key, room_id)
    )
    return answer


# nio's decorator opens the client's HTTP session on first use, as for its own requests.
_get_state_event = cast(
    Callable[
        [AsyncClient, str, str, str],
        Awaitable[RoomGetStateEventResponse | RoomGetStateEventError],
    ],
    client_session(_raw_get_state_event),
)


async def room_creator(client: AsyncClient, room_id: str) -> str | None:
    """The account that created the room: the sender of its ``m.room.create`` event."""
    create = await state_event(client, room_id, "m.room.create")
    sender = None if create is None else create.get("sender")
    return sender if isinstance(sender, str) else None


async def check_room_creator(client: AsyncClient, room_id: str, owner: str) -> None:
    """Refuse a room that ``owner`` did not create.

    Raises:
        RoomNotOwned: someone else created it.
        TransportError: unreadable room or unreachable homeserver.
    """
    creator = await room_creator(client, room_id)
    if creator != owner:
        raise RoomNotOwned(
            f"room {room_id} was created by {creator}, not by its owner {owner}",
            detail={"room_id": room_id, "creator": creator, "owner": owner},
        )


def _check_sender(event: dict[str, Any], room_id: str, owner: str) -> None:
    sender = event.get("sender")
    if sender != owner:
        raise RoomNotOwned(
            f"{event.get('type')} in {room_id} was set by {sender}, not by its owner {owner}",
            detail={"room_id": room_id, "sender": sender if isinstance(sender, str) else None},
        )


async def read_owned_state(
    client: AsyncClient, room: str, owner: str, event_type: str, state_key: str = ""
) -> dict[str, Any] | None:
    """Read a state event's content from ``owner``'s public room (room id or alias).

    The room must have been created by ``owner`` and the state set by ``owner``:
    a room someone else created under the alias, or state someone else (with
    power in it) put there, is refused instead of read.

    Returns:
        The content, or ``None`` when the room or the state does not exist (or is emptied).

    Raises:
        RoomNotOwned: the room or the state is not ``owner``'s.
        TransportError: unreadable room or unreachable homeserver.
    """
    room_id = await resolve_room(client, room)
    if room_id is None:
        return None
    await check_room_creator(client, room_id, owner)
    event = await state_event(client, room_id, event_type, state_key)
    content = None if event is None else event.get("content")
    if not content or not isinstance(content, dict):
        return None  # a redacted or emptied state event counts as absent
    assert event is not None
    _check_sender(event, room_id, owner)
    return content


def _check_content_size(content: dict[str, Any]) -> None:
    size = len(json_dumps_compact(content).encode("utf-8"))
    if size > MAX_STATE_CONTENT_BYTES:
        raise InputTooLarge(f"state content of {size} bytes exceeds {MAX_STATE_CONTENT_BYTES}")


async def put_state(
    client: AsyncClient,
    room_id: str,
    event_type: str,
    content: dict[str, Any],
    state_key: str = "",
) -> EventId:
    """Set a state event; return its event id.

    Raises:
        InputTooLarge: the content would not fit in a Matrix event.
        TransportError: refused (e.g. not allowed by power levels) or unreachable.
    """
    _check_content_size(content)
    answer = await _call(client.room_put_state(room_id, event_type, content, state_key))
    if isinstance(answer, RoomPutStateError):
        raise TransportError(
            f"cannot set {event_type} in {room_id}: {answer.message}",
            detail={"errcode": answer.status_code},
        )
    return EventId(answer.event_id)


async def room_state_events(client: AsyncClient, room_id: str) -> list[dict[str, Any]]:
    """Every current state event of a room (joining the public room if asked to).

    Raises:
        TransportError: unreadable room or unreachable homeserver.
    """
    for attempt in range(2):
        answer = await _call(client.room_get_state(room_id))
        if isinstance(answer, RoomGetStateResponse):
            return [event for event in answer.events if isinstance(event, dict)]
        if getattr(answer, "status_code", None) == "M_FORBIDDEN" and attempt == 0:
            joined = await _call(client.join(room_id))
            if isinstance(joined, JoinError):
                raise TransportError(f"cannot join {room_id}: {joined.message}")
            continue
        raise TransportError(f"cannot read the state of {room_id}: {answer}")
    raise TransportError(f"cannot read the state of {room_id}")  # pragma: no cover


async def publish_trust_list(
    client: AsyncClient, room_id: str, token: str, trust_list: TrustList
) -> EventId:
    """Publish a signed trust list; the state key is the authority's id (its ``iss``).

    Args:
        client: The authority's client (the room's admin).
        room_id: The public trust-list room.
        token: The signed list, exactly as signed.
        trust_list: Its payload (for the envelope's cheap hints; the JWT is authoritative).
    """
    content = TrustListState(
        jwt=token,
        sequence=trust_list.seq,
        issued_at=trust_list.iat,
        expires_at=trust_list.exp,
    )
    return await put_state(
        client,
        room_id,
        TRUST_LIST_EVENT_TYPE,
        content.model_dump(mode="json", exclude_none=True),
        trust_list.iss,
    )


async def read_trust_list(
    client: AsyncClient,
    room: str,
    authority_id: str | None = None,
    *,
    publisher: str | None = None,
) -> str | None:
    """Read the published trust list token from the authority's room (unverified!).

    The room must be the publisher's: created by it, and the list set by it (see
    :func:`read_owned_state`). The publisher is ``publisher`` if given, else the
    owner the room's ``#onceonly-trust.<localpart>`` alias names, else (a room id)
    the room's creator. Any other alias could have been taken by anyone first, so
    it is refused.

    Args:
        client: Any logged-in client.
        room: Room id or full alias.
        authority_id: The authority whose list to read (the state key). ``None``
            reads the room's only trust list.
        publisher: The Matrix account that publishes the list.

    Returns:
        The compact JWS, or ``None`` when the room or the list does not exist.

    Raises:
        ConfigError: an alias that names no owner and no ``publisher``.
        RoomNotOwned: the room or the list is not the publisher's.
        MalformedInput: the state content is not a valid trust-list envelope, or the
            room holds lists of several authorities and ``authority_id`` is not given.
        TransportError: the homeserver refused or is unreachable.
    """
    owner = publisher or alias_owner(room)
    if owner is None and not room.startswith("!"):
        raise ConfigError(
            f"{room} does not name its owner: use the authority's #onceonly-trust.<account>"
            " alias, the room id, or name the publishing account",
            detail={"room": room},
        )
    room_id = await resolve_room(client, room)
    if room_id is None:
        return None
    owner = owner or await room_creator(client, room_id)
    if owner is None:
        raise RoomNotOwned(f"room {room_id} has no creator", detail={"room_id": room_id})
    await check_room_creator(client, room_id, owner)
    if authority_id is not None:
        event = await state_event(client, room_id, TRUST_LIST_EVENT_TYPE, authority_id)
        events = [] if event is None else [event]
    else:
        events = [
            event
            for event in await room_state_events(client, room_id)
            if event.get("type") == TRUST_LIST_EVENT_TYPE
        ]
    # A redacted or emptied state event has an empty content: treat it as absent.
    events = [event for event in events if event.get("content")]
    if not events:
        return None
    if len(events) > 1:
        raise MalformedInput(
            f"{room} holds trust lists of several authorities; name the authority",
            detail={"authorities": sorted(str(e.get("state_key")) for e in events)[:16]},
        )
    event = events[0]
    _check_sender(event, room_id, owner)
    state_key, content = event.get("state_key"), event.get("content")
    if not isinstance(state_key, str) or not isinstance(content, dict):
        raise MalformedInput("trust list state event without state_key or content")
    envelope = parse_state_event(TRUST_LIST_EVENT_TYPE, state_key, content)
    if not isinstance(envelope, TrustListState):  # pragma: no cover - guaranteed by the type
        raise MalformedInput("not a trust list state event")
    return envelope.jwt
