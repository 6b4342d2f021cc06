"""Resolve a credential's status through Matrix: the issuer's public status room.

Every issuing agency publishes its Token Status Lists as ``status.list`` state
events (state key: the list URI) in a public, read-only room whose alias is
derived from the agency's Matrix account (:func:`status_room_alias`), so a
verifier that knows the issuer from the trust list finds the room without any
other configuration. The room must be the agency's: created by the account the
trust list names for it, and the state sent by that account
(:func:`~onceonly.matrix.state_rooms.read_owned_state`); a room someone else
made under the alias is refused, so an old token replayed there is never read.
The room only transports the token: the token's signature
is checked with the issuer's key from the trust list, its ``sub`` against the
credential's URI, its ``exp``/``iat``; a missing or unusable list fails with
:class:`~onceonly.errors.StatusUnavailable`, never passes.

Used by verifiers (presentation checks), by issuers (a presented PID's status)
and by wallets (their own credentials, before presenting one).
"""

from __future__ import annotations

from typing import Final

from onceonly import jose
from onceonly.errors import (
    MalformedInput,
    OnceOnlyError,
    Revoked,
    StatusUnavailable,
    UnknownKey,
    UnrecognisedStatus,
)
from onceonly.matrix.accounts import Credentials
from onceonly.matrix.alias_guard import owned_room_alias
from onceonly.matrix.state_rooms import read_owned_state, state_client
from onceonly.protocol import NAMESPACE, StatusListState, parse_state_event
from onceonly.status_cache import StatusFetcher
from onceonly.status_list import StatusReference, check_status
from onceonly.trust import Agency

STATUS_LIST_EVENT_TYPE: Final = NAMESPACE + StatusListState.EVENT_TYPE
"""State event type of a published status list (state key: the list's URI)."""

STATUS_ROOM_KIND: Final = "status"


def status_room_alias(agency_user_id: str) -> str:
    """The alias of the public status room of the agency speaking as ``agency_user_id``.

    ``@meldebehoerde:gov.example`` publishes in ``#onceonly-status.meldebehoerde:gov.example``.

    Raises:
        MalformedInput: not a Matrix user id.
    """
    return owned_room_alias(STATUS_ROOM_KIND, agency_user_id)


async def fetch_status_state(
    credentials: Credentials, *, room: str, uri: str, owner: str
) -> StatusListState | None:
    """Read the ``status.list`` state for ``uri`` from ``owner``'s ``room`` (unverified token).

    Args:
        credentials: Any logged-in account (the room is world-readable).
        room: Room id or full alias of the issuer's status room.
        uri: The status list URI (the state key).
        owner: The issuing agency's Matrix account (from the trust list): it must have
            created the room and set the state.

    Returns:
        The envelope, or ``None`` when the room or the list does not exist.

    Raises:
        RoomNotOwned: the room or the state is not ``owner``'s.
        MalformedInput: the state content is not a valid envelope or names another URI.
        TransportError: the homeserver is unreachable or refuses.
    """
    async with state_client(credentials) as client:
        content = await read_owned_state(client, room, owner, STATUS_LIST_EVENT_TYPE, uri)
    if not content:
        return None
    envelope = parse_state_event(STATUS_LIST_EVENT_TYPE, uri, content)
    if not isinstance(envelope, StatusListState) or envelope.uri != uri:
        raise MalformedInput("status list state names another URI than its state key")
    return envelope


def matrix_status_fetch(credentials: Credentials) -> StatusFetcher:
    """A :data:`~onceonly.status_cache.StatusFetcher` reading the issuer's public status room.

    The token it returns is unverified: :class:`~onceonly.status_cache.StatusCache`
    verifies it with the issuer's key from the trust list.

    Args:
        credentials: Any logged-in account (the status rooms are world-readable).
    """

    async def fetch(uri: str, agency: Agency) -> str:
        room = status_room_alias(agency.matrix_user_id)
        envelope = await fetch_status_state(
            credentials, room=room, uri=uri, owner=agency.matrix_user_id
        )
        if envelope is None:
            raise StatusUnavailable("no status list is published for this URI")
        return envelope.token

    return fetch


def agency_status_key(agency: Agency, token: str) -> jose.PublicKey:
    """The key of ``agency`` (from the trust list) that the token's header ``kid`` names.

    Status list tokens carry no ``iss``, so the verifier picks the key among the
    keys the trust list gives the credential's issuer, never from the token alone.

    Raises:
        MalformedInput: the token is not a compact JWS.
        UnknownKey: no key of the agency has this ``kid`` (or the token has none
            and the agency has several keys).
    """
    header = jose.parse_compact(token, max_bytes=64 * 1024).header
    kid = header.get("kid")
    keys = [k for k in agency.keys if kid is None or k.kid == kid]
    if len(keys) != 1:
        raise UnknownKey(
            "the status list token's key is not one of the issuer's listed keys",
            detail={"kid": kid if isinstance(kid, str) else None},
        )
    return keys[0].public_key()


async def check_status_via_matrix(
    credentials: Credentials,
    reference: StatusReference,
    *,
    agency: Agency,
    now: int,
    room: str | None = None,
    max_age: int | None = None,
) -> int:
    """Fetch the issuer's status list through Matrix and check ``reference`` against it.

    Args:
        credentials: Any logged-in account.
        reference: The credential's ``status.status_list``.
        agency: The credential's issuer as listed in the verified trust list.
        now: Current Unix time.
        room: The status room; :func:`status_room_alias` of the agency's account by default.
        max_age: Optional freshness bound on the token's ``iat``.

    Returns:
        The status value (``VALID``).

    Raises:
        StatusUnavailable: no list published for the URI, or it cannot be read or verified.
        Revoked, Suspended, UnrecognisedStatus, StatusIndexOutOfRange: the entry's verdict.
    """
    where = room or status_room_alias(agency.matrix_user_id)
    try:
        envelope = await fetch_status_state(
            credentials, room=where, uri=reference.uri, owner=agency.matrix_user_id
        )
    except OnceOnlyError as exc:
        raise StatusUnavailable(f"status list cannot be read: {exc.message}") from exc
    if envelope is None:
        raise StatusUnavailable("no status list is published for this URI")
    try:
        key = agency_status_key(agency, envelope.token)
        return check_status(reference, envelope.token, issuer_key=key, now=now, max_age=max_age)
    except (StatusUnavailable, Revoked, UnrecognisedStatus):
        raise  # the list was usable and gave its verdict (or is already unavailable)
    except OnceOnlyError as exc:
        raise StatusUnavailable(f"status list token is unusable: {exc.message}") from exc
