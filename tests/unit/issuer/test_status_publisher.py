"""Status list publication (files, state content) and revocation, without Matrix."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from issuer.issuance import handle_credential_request
from issuer.status_publisher import (
    SignedStatusList,
    revoke_credentials,
    sign_status_lists,
    status_state_content,
    write_status_files,
)
from onceonly import jose
from onceonly.errors import MalformedInput, Revoked, UnknownKey
from onceonly.protocol import parse_state_event, to_content
from onceonly.status_fetch import STATUS_LIST_EVENT_TYPE, agency_status_key, status_room_alias
from onceonly.status_list import (
    INVALID,
    VALID,
    check_status,
    verify_status_list_cwt,
    verify_status_list_jwt,
)
from onceonly.types import UserId
from tests.unit.issuer.issuer_world import (
    NOW,
    REGISTRY_ID,
    RESIDENCE_VCT,
    Citizen,
    World,
    listed,
    make_world,
)
from tests.unit.issuer.test_issuance import get_pid


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    built = make_world(tmp_path)
    yield built
    built.close()


async def issue_residences(world: World, count: int) -> Citizen:
    citizen = Citizen(UserId("@juergen:localhost"))
    await get_pid(world, citizen)
    for _ in range(count):
        request = citizen.request(audience=REGISTRY_ID, vct=RESIDENCE_VCT, identity_for=REGISTRY_ID)
        await handle_credential_request(
            world.registry_office.context, request, sender=citizen.user_id, now=NOW
        )
    return citizen


async def test_lists_are_signed_as_jwt_and_cwt_and_written_as_files(
    world: World, tmp_path: Path
) -> None:
    await issue_residences(world, 1)
    office = world.registry_office
    (signed,) = sign_status_lists(office.registry, office.key, now=NOW)

    paths = write_status_files([signed], tmp_path / "status")

    assert [p.name for p in paths] == ["1.jwt", "1.cwt"]
    public = office.key.public()
    from_jwt = verify_status_list_jwt(paths[0].read_text(), public, uri=signed.uri, now=NOW)
    from_cwt = verify_status_list_cwt(paths[1].read_bytes(), public, uri=signed.uri, now=NOW)
    assert from_jwt.status_list.to_json() == from_cwt.status_list.to_json()
    assert from_jwt.ttl == signed.ttl
    # The state content is a valid status.list envelope keyed by the URI.
    content = to_content(status_state_content(signed))
    envelope = parse_state_event(STATUS_LIST_EVENT_TYPE, signed.uri, content)
    assert envelope == status_state_content(signed)


async def test_revoking_one_credential_shows_in_the_next_token(world: World) -> None:
    await issue_residences(world, 2)
    office = world.registry_office
    first, second = office.log.by_person("MB-0001")

    revoked = revoke_credentials(
        office.registry, office.log, credential_id=first.credential_id, now=NOW + 5
    )

    assert revoked == [first]
    (signed,) = sign_status_lists(office.registry, office.key, now=NOW + 5)
    key = office.key.public()
    with pytest.raises(Revoked):
        check_status(first.status_reference, signed.jwt, issuer_key=key, now=NOW + 5)
    assert check_status(second.status_reference, signed.jwt, issuer_key=key, now=NOW + 5) == VALID
    # Revoking again changes nothing and reports nothing.
    assert revoke_credentials(office.registry, office.log, credential_id=first.credential_id,
                              now=NOW + 6) == []  # fmt: skip
    assert office.registry.entry(first.status_reference).status == INVALID


async def test_revoking_a_person_revokes_each_credential_of_the_type(world: World) -> None:
    await issue_residences(world, 3)
    office = world.registry_office
    revoked = revoke_credentials(
        office.registry, office.log, person_id="MB-0001", vct=RESIDENCE_VCT, now=NOW
    )
    assert len(revoked) == 3
    assert revoke_credentials(office.registry, office.log, person_id="MB-0002", now=NOW) == []
    with pytest.raises(MalformedInput):
        revoke_credentials(office.registry, office.log, now=NOW)
    with pytest.raises(MalformedInput):
        revoke_credentials(office.registry, office.log, credential_id="cred_nope", now=NOW)


async def test_the_status_key_comes_from_the_trust_list_not_the_token(world: World) -> None:
    await issue_residences(world, 1)
    office = world.registry_office
    (signed,) = sign_status_lists(office.registry, office.key, now=NOW)
    entry = listed(office)
    assert agency_status_key(entry, signed.jwt) == office.key.public()
    forged = office.registry.sign_jwt(
        signed.uri, jose.generate_private_key(jose.ES256, kid="forger"), now=NOW
    )
    with pytest.raises(UnknownKey):
        agency_status_key(entry, forged)


def test_status_room_alias_follows_the_agency_account() -> None:
    assert status_room_alias("@meldebehoerde:gov.example") == (
        "#onceonly-status.meldebehoerde:gov.example"
    )
    for bad in ("meldebehoerde", "@:x", "@a", "@a:"):
        with pytest.raises(MalformedInput):
            status_room_alias(bad)


def test_a_uri_without_a_file_name_is_refused() -> None:
    signed = SignedStatusList(uri="https://x.example/status/..", jwt="a.b.c", cwt=b"", issued_at=0,
                              ttl=1)  # fmt: skip
    with pytest.raises(MalformedInput):
        _ = signed.file_stem
