"""Identity binding on the shipped samples: namesakes, withheld attributes, signing context.

Two men named Thomas Schmidt were born on 1975-08-08, one in Berlin (ID-0009), one
in Köln (ID-0010). The vehicle register knows only the one from Berlin (KFZ-0009).
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from issuer.eid_check import complete_eid_check, start_eid_check
from issuer.issuance import handle_credential_request
from onceonly.errors import (
    AmbiguousSubject,
    ContextMismatch,
    IdentityNotBound,
    OnceOnlyError,
    UnknownSubject,
)
from onceonly.protocol import CredentialRequest
from onceonly.types import UserId
from tests.unit.issuer.issuer_world import (
    IDENTITY_ID,
    NOW,
    PID_VCT,
    REGISTRY_ID,
    RESIDENCE_VCT,
    VEHICLE_VCT,
    AgencyUnderTest,
    Citizen,
    World,
    listed,
    local_status_check,
    make_agency,
    make_world,
    trust_list,
)

VEHICLE_ID = "https://zulassung.berlin.example"
THOMAS_BERLIN_CARD = "LLF9LMGGG"  # ID-0009
THOMAS_COLOGNE_CARD = "L7H2TH6CV"  # ID-0010
WITHOUT_BIRTHPLACE = (("given_name",), ("family_name",), ("birthdate",))


@pytest.fixture
def world(tmp_path: Path) -> Iterator[tuple[World, AgencyUnderTest]]:
    built = make_world(tmp_path)
    vehicle = make_agency(
        tmp_path / "vehicle",
        agency_id=VEHICLE_ID,
        user_id="@zulassung:localhost",
        name=("Zulassungsbehörde Berlin", "Berlin Vehicle Registration Office"),
        credentials=[VEHICLE_VCT],
        register_file="vehicle_register.csv",
    )
    built.set_trust(
        trust_list(listed(built.identity), listed(built.registry_office), listed(vehicle))
    )
    vehicle.ctx = vehicle.make_context(built.trust, local_status_check(built.identity))
    yield built, vehicle
    vehicle.close()
    built.close()


async def citizen_with_pid(world: World, user: str, card: str) -> Citizen:
    citizen = Citizen(UserId(user))
    identity = world.identity
    code = start_eid_check(
        identity.register, identity.ledger, card, now=NOW, random_bytes=secrets.token_bytes
    )
    complete_eid_check(
        identity.register,
        identity.ledger,
        card_number=card,
        code=code,
        matrix_user_id=citizen.user_id,
        now=NOW,
    )
    issued = await handle_credential_request(
        identity.context,
        citizen.request(audience=IDENTITY_ID, vct=PID_VCT),
        sender=citizen.user_id,
        now=NOW,
    )
    citizen.pid = issued.sd_jwt
    return citizen


async def refused_by(
    agency: AgencyUnderTest, request: CredentialRequest, sender: UserId
) -> OnceOnlyError:
    before = sum(agency.log.count_by_vct().values())
    with pytest.raises(OnceOnlyError) as caught:
        await handle_credential_request(agency.context, request, sender=sender, now=NOW)
    assert sum(agency.log.count_by_vct().values()) == before
    with pytest.raises(IdentityNotBound):
        agency.register.person_for_matrix_user(sender)  # nobody was bound
    return caught.value


async def test_thomas_from_cologne_never_gets_the_berlin_namesakes_vehicle(
    world: tuple[World, AgencyUnderTest],
) -> None:
    government, vehicle = world
    cologne = await citizen_with_pid(government, "@thomas.koeln:localhost", THOMAS_COLOGNE_CARD)
    withheld = cologne.request(
        audience=VEHICLE_ID, vct=VEHICLE_VCT, identity_for=VEHICLE_ID,
        identity_paths=WITHOUT_BIRTHPLACE,
    )  # fmt: skip
    error = await refused_by(vehicle, withheld, cologne.user_id)
    assert isinstance(error, AmbiguousSubject)
    assert error.code == "ambiguous_subject"
    # With his full identity he is simply not in this register.
    full = cologne.request(audience=VEHICLE_ID, vct=VEHICLE_VCT, identity_for=VEHICLE_ID)
    assert isinstance(await refused_by(vehicle, full, cologne.user_id), UnknownSubject)

    # The Berlin Thomas withholding his birthplace is refused too; in full he gets his own.
    berlin = await citizen_with_pid(government, "@thomas.berlin:localhost", THOMAS_BERLIN_CARD)
    withheld = berlin.request(
        audience=VEHICLE_ID, vct=VEHICLE_VCT, identity_for=VEHICLE_ID,
        identity_paths=WITHOUT_BIRTHPLACE,
    )  # fmt: skip
    assert isinstance(await refused_by(vehicle, withheld, berlin.user_id), AmbiguousSubject)
    full = berlin.request(audience=VEHICLE_ID, vct=VEHICLE_VCT, identity_for=VEHICLE_ID)
    issued = await handle_credential_request(vehicle.context, full, sender=berlin.user_id, now=NOW)
    assert issued.identity.person_id == "KFZ-0009"
    assert vehicle.register.person_for_matrix_user(berlin.user_id) == "KFZ-0009"


async def test_each_thomas_gets_exactly_his_own_residence(
    world: tuple[World, AgencyUnderTest],
) -> None:
    government, _ = world
    office = government.registry_office
    for user, card, expected in (
        ("@thomas.koeln:localhost", THOMAS_COLOGNE_CARD, "MB-0008"),
        ("@thomas.berlin:localhost", THOMAS_BERLIN_CARD, "MB-0007"),
    ):
        thomas = await citizen_with_pid(government, user, card)
        withheld = thomas.request(
            audience=REGISTRY_ID, vct=RESIDENCE_VCT, identity_for=REGISTRY_ID,
            identity_paths=WITHOUT_BIRTHPLACE,
        )  # fmt: skip
        assert isinstance(await refused_by(office, withheld, thomas.user_id), AmbiguousSubject)
        full = thomas.request(audience=REGISTRY_ID, vct=RESIDENCE_VCT, identity_for=REGISTRY_ID)
        issued = await handle_credential_request(
            office.context, full, sender=thomas.user_id, now=NOW
        )
        assert issued.identity.person_id == expected


async def test_an_identity_presentation_must_be_signed_as_an_identity_binding(
    world: tuple[World, AgencyUnderTest],
) -> None:
    """A presentation made to answer a presentation request does not bind an identity."""
    government, vehicle = world
    berlin = await citizen_with_pid(government, "@thomas.berlin:localhost", THOMAS_BERLIN_CARD)
    as_answer = berlin.request(
        audience=VEHICLE_ID, vct=VEHICLE_VCT, identity_for=VEHICLE_ID, kb_context=None
    )
    error = await refused_by(vehicle, as_answer, berlin.user_id)
    assert isinstance(error, ContextMismatch)
    assert error.code == "context_mismatch"
