"""Public status and trust rooms are bound to their owners (real Synapse).

The attack: readers find an agency's status room (and the authority's trust room)
by alias. A hostile local user takes the alias first, invites the agency, and puts
the agency's own *old* token (or an old signed trust list) in its room: a reader
that follows the alias would see a revoked credential as valid until that token
expires. Defences tested here: the homeserver lets only the owner create an
``#onceonly-*`` alias; readers take state only from a room the owner created
and only when the owner sent it; a publisher never writes into a room it did not
create; and a status cache never goes back to an older token than one it saw.
"""

from __future__ import annotations

import secrets
import time
from pathlib import Path
from urllib.parse import quote

import pytest

from onceonly import errors
from onceonly.matrix.accounts import Credentials
from onceonly.matrix.homeserver import Homeserver
from onceonly.matrix.homeserver_http import request_json
from onceonly.matrix.state_rooms import (
    ensure_public_room,
    publish_trust_list,
    put_state,
    read_trust_list,
    state_client,
    trust_room_alias,
)
from onceonly.protocol import StatusListState, to_content
from onceonly.status_cache import StatusCache, status_key_resolver
from onceonly.status_fetch import (
    STATUS_LIST_EVENT_TYPE,
    check_status_via_matrix,
    matrix_status_fetch,
    status_room_alias,
)
from onceonly.status_list import INVALID, VALID, StatusList, StatusReference
from onceonly.status_list.token import sign_status_list_jwt
from onceonly.trust import Agency, TrustList, verify_trust_list_signature
from onceonly.trust_cache import TrustCache
from tests.unit.verifier.verification_world import ISSUER_ID, STATUS_URI, World

pytestmark = pytest.mark.integration

IDX = 5
DAY = 86_400


def unique(name: str) -> str:
    return f"{name}-{secrets.token_hex(4)}"


def create_room(creds: Credentials, **body: object) -> tuple[int, dict[str, object]]:
    answer = request_json(
        "POST",
        f"{creds.homeserver}/_matrix/client/v3/createRoom",
        body={"preset": "public_chat", **body},
        access_token=creds.access_token,
    )
    return answer.status, answer.body


def resolve(creds: Credentials, alias: str) -> str | None:
    answer = request_json(
        "GET",
        f"{creds.homeserver}/_matrix/client/v3/directory/room/{quote(alias, safe='')}",
        access_token=creds.access_token,
    )
    room_id = answer.body.get("room_id")
    return room_id if isinstance(room_id, str) else None


def squat(hostile: Credentials, alias: str, invite: str) -> str:
    """The attack's first step: take ``alias`` and invite its owner; return the room id.

    The homeserver refuses the alias (both ways of creating one); the room itself
    is made without it, and the invitation is sent.
    """
    localpart = alias[1:].split(":", 1)[0]
    status, body = create_room(hostile, room_alias_name=localpart, invite=[invite])
    assert status == 403, body  # "Not allowed to create alias"
    assert resolve(hostile, alias) is None
    # Like the owner's room: public and world-readable, so readers need not join.
    world_readable = {
        "type": "m.room.history_visibility",
        "state_key": "",
        "content": {"history_visibility": "world_readable"},
    }
    status, body = create_room(hostile, invite=[invite], initial_state=[world_readable])
    assert status == 200, body
    room_id = str(body["room_id"])
    put = request_json(
        "PUT",
        f"{hostile.homeserver}/_matrix/client/v3/directory/room/{quote(alias, safe='')}",
        body={"room_id": room_id},
        access_token=hostile.access_token,
    )
    assert put.status == 403, put.body
    assert resolve(hostile, alias) is None
    return room_id


def status_token(world: World, *, revoked: bool, issued_at: int) -> str:
    status = StatusList(64, 1)
    if revoked:
        status.set(IDX, INVALID)
    return sign_status_list_jwt(
        status,
        world.issuer,
        uri=STATUS_URI,
        issued_at=issued_at,
        expires_at=world.now + DAY,
        ttl=600,
    )


async def set_status(creds: Credentials, room_id: str, token: str, issued_at: int) -> None:
    state = StatusListState(uri=STATUS_URI, token=token, issued_at=issued_at, ttl=600)
    async with state_client(creds) as client:
        await put_state(client, room_id, STATUS_LIST_EVENT_TYPE, to_content(state), STATUS_URI)


def listed_issuer(world: World) -> tuple[TrustList, Agency]:
    trust = world.verified_trust().trust_list
    agency = trust.agency(ISSUER_ID)
    assert agency is not None
    return trust, agency


async def test_squatted_status_alias_does_not_hide_a_revocation(synapse: Homeserver) -> None:
    agency = synapse.register(unique("agency"), unlimited=True)
    hostile = synapse.register(unique("hostile"))
    reader = synapse.register(unique("verifier"))
    world = World(now=int(time.time()), issuer_matrix_id=agency.user_id)
    trust, issuer = listed_issuer(world)
    reference = StatusReference(idx=IDX, uri=STATUS_URI)
    alias = status_room_alias(agency.user_id)

    hostile_room = squat(hostile, alias, invite=agency.user_id)

    # The agency publishes in its own room: a valid list, then the revocation.
    old = status_token(world, revoked=False, issued_at=world.now - 120)
    new = status_token(world, revoked=True, issued_at=world.now - 60)
    async with state_client(agency) as client:
        room_id, created = await ensure_public_room(
            client, alias, name="Status", topic="t", state_event_types=(STATUS_LIST_EVENT_TYPE,)
        )
    assert created and room_id != hostile_room
    await set_status(agency, room_id, old, world.now - 120)
    await set_status(agency, room_id, new, world.now - 60)

    # The squatter replays the agency's own pre-revocation token in its room.
    await set_status(hostile, hostile_room, old, world.now - 120)

    with pytest.raises(errors.Revoked):
        await check_status_via_matrix(reader, reference, agency=issuer, now=world.now)
    # Even pointed at the squatter's room, a reader does not take the replayed token.
    with pytest.raises(errors.StatusUnavailable) as caught:
        await check_status_via_matrix(
            reader, reference, agency=issuer, now=world.now, room=hostile_room
        )
    assert isinstance(caught.value.__cause__, errors.RoomNotOwned)

    # A status cache that saw the revocation never goes back to the older token, even
    # when the agency's own room is made to hold it again and the cache is told to refetch.
    cache = StatusCache(matrix_status_fetch(reader))
    resolver = status_key_resolver(trust, ISSUER_ID)
    seen = await cache.get(
        STATUS_URI, signer=issuer, key=resolver, trust_version="1", now=world.now
    )
    assert seen.verified.status_list.get(IDX) == INVALID
    await set_status(agency, room_id, old, world.now - 120)
    cache.forget(STATUS_URI)
    again = await cache.get(
        STATUS_URI, signer=issuer, key=resolver, trust_version="2", now=world.now
    )
    assert cache.fetches == 2  # it did fetch the older token ...
    assert again.verified.issued_at == world.now - 60  # ... and kept the newer one
    assert again.verified.status_list.get(IDX) == INVALID
    assert again.token == new


async def test_state_sent_by_another_account_is_refused(synapse: Homeserver) -> None:
    """A co-admin of the agency's room (not the agency) cannot speak for the agency."""
    agency = synapse.register(unique("agency"), unlimited=True)
    helper = synapse.register(unique("helper"))
    reader = synapse.register(unique("verifier"))
    world = World(now=int(time.time()), issuer_matrix_id=agency.user_id)
    _trust, issuer = listed_issuer(world)
    reference = StatusReference(idx=IDX, uri=STATUS_URI)
    async with state_client(agency) as client:
        room_id, _ = await ensure_public_room(
            client,
            status_room_alias(agency.user_id),
            name="Status",
            topic="t",
            state_event_types=(STATUS_LIST_EVENT_TYPE,),
        )
        levels = await client.room_get_state_event(room_id, "m.room.power_levels")
        content = dict(levels.content)  # type: ignore[union-attr]
        content["users"] = {**content.get("users", {}), helper.user_id: 100}
        await put_state(client, room_id, "m.room.power_levels", content)
    # Nothing published yet: unavailable because absent (the room itself is fine).
    with pytest.raises(errors.StatusUnavailable) as missing:
        await check_status_via_matrix(reader, reference, agency=issuer, now=world.now)
    assert missing.value.__cause__ is None and "no status list" in missing.value.message
    await set_status(
        agency, room_id, status_token(world, revoked=False, issued_at=world.now - 60), 0
    )
    assert await check_status_via_matrix(reader, reference, agency=issuer, now=world.now) == VALID

    async with state_client(helper) as client:
        await client.join(room_id)
    await set_status(helper, room_id, status_token(world, revoked=False, issued_at=world.now), 0)
    with pytest.raises(errors.StatusUnavailable) as caught:
        await check_status_via_matrix(reader, reference, agency=issuer, now=world.now)
    assert isinstance(caught.value.__cause__, errors.RoomNotOwned)


async def test_publisher_never_writes_into_a_room_it_did_not_create(synapse: Homeserver) -> None:
    agency = synapse.register(unique("agency"), unlimited=True)
    hostile = synapse.register(unique("hostile"))
    # A plain alias the hostile user made, to a room the agency was invited to and joined.
    plain = f"#{unique('status')}:{synapse.server_name}"
    status, body = create_room(hostile, room_alias_name=plain[1:].split(":")[0])
    assert status == 200, body
    async with state_client(agency) as client:
        joined = await client.join(str(body["room_id"]))
        assert getattr(joined, "room_id", None) == body["room_id"]
        with pytest.raises(errors.RoomNotOwned):
            await ensure_public_room(client, plain, name="Status", topic="t")
        # Nor into another account's reserved alias.
        with pytest.raises(errors.RoomNotOwned):
            await ensure_public_room(
                client, status_room_alias(hostile.user_id), name="Status", topic="t"
            )


async def test_squatted_trust_room_is_refused(synapse: Homeserver, tmp_path: Path) -> None:
    authority = synapse.register(unique("authority"), unlimited=True)
    hostile = synapse.register(unique("hostile"))
    wallet = synapse.register(unique("wallet"))
    world = World(now=int(time.time()))
    alias = trust_room_alias(authority.user_id)
    hostile_room = squat(hostile, alias, invite=authority.user_id)

    # The squatter puts a genuine but old list (seq 1) in its room; the authority
    # publishes seq 2 in its own room.
    old = world.trust_token(seq=1)
    old_list = world.verified_trust().trust_list
    async with state_client(hostile) as client:
        await publish_trust_list(client, hostile_room, old, old_list)
    newer = world.trust_token(seq=2)
    async with state_client(authority) as client:
        room_id, _ = await ensure_public_room(client, alias, name="Trust", topic="t")
        newer_list = verify_trust_list_signature(newer, [world.authority.public()]).trust_list
        await publish_trust_list(client, room_id, newer, newer_list)

    cache = TrustCache.in_data_dir(tmp_path / "wallet", [world.authority.public()])
    async with state_client(wallet) as client:
        # The squatter's room, named by id with the authority as publisher: refused.
        outcome = await cache.refresh(
            lambda: read_trust_list(client, hostile_room, publisher=authority.user_id),
            now=world.now,
        )
        assert isinstance(outcome.error, errors.RoomNotOwned)
        assert outcome.current is None and not cache.path.exists()
        # An alias that does not name its owner is not followed at all.
        plain = f"#{unique('trust')}:{synapse.server_name}"
        put = request_json(
            "PUT",
            f"{hostile.homeserver}/_matrix/client/v3/directory/room/{quote(plain, safe='')}",
            body={"room_id": hostile_room},
            access_token=hostile.access_token,
        )
        assert put.status == 200, put.body
        with pytest.raises(errors.ConfigError):
            await read_trust_list(client, plain)
        # The authority's alias leads to the authority's list.
        outcome = await cache.refresh(lambda: read_trust_list(client, alias), now=world.now)
        assert outcome.error is None and outcome.current is not None
        assert outcome.current.trust_list.seq == 2
