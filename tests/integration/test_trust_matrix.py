"""The trust list travels through a real Synapse: publish, fetch, verify, cache, reject."""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest

from onceonly import errors, jose
from onceonly.matrix.accounts import Credentials
from onceonly.matrix.homeserver import Homeserver
from onceonly.matrix.homeserver_process import free_loopback_port
from onceonly.matrix.state_rooms import (
    TRUST_LIST_EVENT_TYPE,
    ensure_public_room,
    publish_trust_list,
    put_state,
    read_trust_list,
    state_client,
    trust_room_alias,
)
from onceonly.trust import (
    Agency,
    AgencyKey,
    LocalizedText,
    TrustList,
    TrustListDraft,
    build_trust_list,
    sign_trust_list,
)
from onceonly.trust_cache import TrustCache

pytestmark = pytest.mark.integration

NOW = 1_800_000_000
AUTHORITY_KEY = jose.generate_private_key(jose.ES256)


def unique(name: str) -> str:
    return f"{name}-{secrets.token_hex(4)}"


def trust_list(seq: int, server_name: str, *, issuer_name: str = "Bürgeramt") -> TrustList:
    agency_key = jose.generate_private_key(jose.EDDSA, kid="reg-1")
    draft = TrustListDraft(
        iss="https://trust.example",
        name=LocalizedText(de="Vertrauensstelle", en="Trust authority"),
        agencies=(
            Agency(
                id="https://registry.example",
                name=LocalizedText(de=issuer_name, en="Citizens' office"),
                matrix_user_id=f"@registry:{server_name}",
                keys=(AgencyKey(jwk=agency_key.public().to_jwk(), valid_from=NOW - 10),),
                may_issue=("urn:eudi:pid:de:1",),
            ),
        ),
    )
    return build_trust_list(draft, sequence=seq, now=NOW, valid_for_seconds=86_400)


async def publish(authority: Credentials, alias: str, token: str, listed: TrustList) -> str:
    async with state_client(authority) as client:
        room_id, _ = await ensure_public_room(client, alias, name="Trust list", topic="test")
        await publish_trust_list(client, room_id, token, listed)
        return room_id


async def test_published_list_reaches_a_second_party(synapse: Homeserver, tmp_path: Path) -> None:
    authority = synapse.register(unique("authority"))
    party = synapse.register(unique("verifier"))
    alias = trust_room_alias(authority.user_id)
    cache = TrustCache.in_data_dir(tmp_path / "verifier", [AUTHORITY_KEY.public()])

    first = trust_list(1, synapse.server_name)
    room_id = await publish(authority, alias, sign_trust_list(first, AUTHORITY_KEY), first)

    async with state_client(party) as client:

        async def fetch() -> str | None:
            return await read_trust_list(client, alias)

        outcome = await cache.refresh(fetch, now=NOW)
        assert outcome.error is None and outcome.updated
        assert outcome.current is not None and outcome.current.trust_list == first

        # The room is found again by alias (no second room), and a newer list wins.
        second = trust_list(2, synapse.server_name)
        assert await publish(authority, alias, sign_trust_list(second, AUTHORITY_KEY), second) == (
            room_id
        )
        outcome = await cache.refresh(fetch, now=NOW)
        assert outcome.updated and outcome.current is not None
        assert outcome.current.trust_list.seq == 2
        kept = cache.path.read_text()

        # Tampered: the payload of a list is changed after signing (a new agency name).
        third = trust_list(3, synapse.server_name)
        header, _payload, signature = sign_trust_list(third, AUTHORITY_KEY).split(".")
        forged = trust_list(3, synapse.server_name, issuer_name="Mallory GmbH")
        tampered = f"{header}.{jose.json_object_b64(forged.model_dump(mode='json'))}.{signature}"
        await publish(authority, alias, tampered, forged)
        assert await read_trust_list(client, alias) == tampered  # it did reach the party
        outcome = await cache.refresh(fetch, now=NOW)
        assert isinstance(outcome.error, errors.InvalidSignature)
        assert not outcome.updated
        assert outcome.current is not None and outcome.current.trust_list.seq == 2
        assert cache.path.read_text() == kept

        # Rollback: the authority account republishes an old, validly signed list.
        await publish(authority, alias, sign_trust_list(first, AUTHORITY_KEY), first)
        outcome = await cache.refresh(fetch, now=NOW)
        assert isinstance(outcome.error, errors.TrustListRollback)
        assert cache.path.read_text() == kept

        # Signed by someone else's key: rejected too.
        impostor = jose.generate_private_key(jose.ES256)
        fourth = trust_list(4, synapse.server_name)
        await publish(authority, alias, sign_trust_list(fourth, impostor), fourth)
        outcome = await cache.refresh(fetch, now=NOW)
        assert isinstance(outcome.error, errors.InvalidSignature)
        assert cache.path.read_text() == kept

        # Another user may not touch the room's state (power levels).
        with pytest.raises(errors.TransportError) as caught:
            await put_state(client, room_id, TRUST_LIST_EVENT_TYPE, {"jwt": "a.b.c"}, "x")
        assert caught.value.detail.get("errcode") == "M_FORBIDDEN"


async def test_offline_party_keeps_working_from_cache(synapse: Homeserver, tmp_path: Path) -> None:
    authority = synapse.register(unique("authority"))
    party = synapse.register(unique("wallet"))
    alias = trust_room_alias(authority.user_id)
    listed = trust_list(7, synapse.server_name)
    await publish(authority, alias, sign_trust_list(listed, AUTHORITY_KEY), listed)
    cache = TrustCache.in_data_dir(tmp_path / "wallet", [AUTHORITY_KEY.public()])
    async with state_client(party) as client:
        assert (await cache.refresh(lambda: read_trust_list(client, alias), now=NOW)).updated

    # Nothing listens on this loopback port: the homeserver is "down".
    offline = party.model_copy(update={"homeserver": f"http://127.0.0.1:{free_loopback_port()}"})
    async with state_client(offline) as client:
        outcome = await cache.refresh(lambda: read_trust_list(client, alias), now=NOW)
    assert isinstance(outcome.error, errors.TransportError)
    assert outcome.current is not None and outcome.current.trust_list == listed
    current = cache.current(now=NOW)
    assert current is not None and current.trust_list.may_issue(
        "https://registry.example", "urn:eudi:pid:de:1", NOW
    )


async def test_unknown_room_and_room_without_list(synapse: Homeserver) -> None:
    authority = synapse.register(unique("authority"))
    alias = trust_room_alias(authority.user_id)
    async with state_client(authority) as client:
        nobody = f"@{unique('nobody')}:{synapse.server_name}"
        assert await read_trust_list(client, trust_room_alias(nobody)) is None
        await ensure_public_room(client, alias, name="empty", topic="nothing yet")
        assert await read_trust_list(client, alias) is None
        # Malformed envelope (wrong members) is refused with a typed error.
        room_id, created = await ensure_public_room(client, alias, name="empty", topic="t")
        assert not created
        await put_state(client, room_id, TRUST_LIST_EVENT_TYPE, {"jwt": 5}, "https://trust.example")
        with pytest.raises(errors.MalformedInput):
            await read_trust_list(client, alias)


async def test_oversize_state_refused_before_sending(synapse: Homeserver) -> None:
    authority = synapse.register(unique("authority"))
    alias = trust_room_alias(authority.user_id)
    async with state_client(authority) as client:
        room_id, _ = await ensure_public_room(client, alias, name="big", topic="t")
        with pytest.raises(errors.InputTooLarge):
            await put_state(client, room_id, TRUST_LIST_EVENT_TYPE, {"jwt": "a" * 70_000}, "x")
        assert await read_trust_list(client, alias) is None
