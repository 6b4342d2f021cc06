"""Answering credential requests: the eID-bound PID, PID-bound residence, and every refusal."""

from __future__ import annotations

import dataclasses
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from issuer.eid_check import complete_eid_check, start_eid_check
from issuer.issuance import disclosable_paths, handle_credential_request, proof_nonce
from issuer.register import BindingMethod
from onceonly import jose
from onceonly.credential_types import get_type
from onceonly.errors import (
    AmbiguousSubject,
    AudienceMismatch,
    Expired,
    IdentityBindingConflict,
    IdentityNotBound,
    InvalidSignature,
    IssuanceError,
    MalformedInput,
    NonceMismatch,
    OnceOnlyError,
    ReplayDetected,
    Revoked,
    UnknownSubject,
    UnsupportedCredentialType,
    UntrustedIssuer,
)
from onceonly.protocol import parse_event, to_content
from onceonly.sdjwt import VerificationPolicy, parse_sd_jwt, present, verify_presentation
from onceonly.status_list import INVALID, check_status, status_reference_from_claims
from onceonly.types import UserId
from tests.unit.issuer.issuer_world import (
    IDENTITY_ID,
    NOW,
    PID_VCT,
    REGISTRY_ID,
    RESIDENCE_VCT,
    VEHICLE_VCT,
    Citizen,
    World,
    listed,
    make_world,
    trust_list,
)

JUERGEN_CARD = "LXH67HC3V"  # ID-0001 Jürgen Müller; MB-0001 at the registry office
SOEREN_CARD = "LVVNP3M5M"  # ID-0007 Sören Groß: not registered in Berlin
THOMAS_CARD = "LLF9LMGGG"  # ID-0009 Thomas Schmidt: two namesakes at the registry office


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    built = make_world(tmp_path)
    yield built
    built.close()


def eid_bind(world: World, citizen: Citizen, card: str) -> str:
    identity = world.identity
    code = start_eid_check(
        identity.register, identity.ledger, card, now=NOW, random_bytes=secrets.token_bytes
    )
    return complete_eid_check(
        identity.register,
        identity.ledger,
        card_number=card,
        code=code,
        matrix_user_id=citizen.user_id,
        now=NOW,
    )


async def get_pid(world: World, citizen: Citizen, card: str = JUERGEN_CARD) -> None:
    eid_bind(world, citizen, card)
    request = citizen.request(audience=IDENTITY_ID, vct=PID_VCT)
    issued = await handle_credential_request(
        world.identity.context, request, sender=citizen.user_id, now=NOW
    )
    citizen.pid = issued.sd_jwt


def issued_count(world: World) -> int:
    return sum(world.registry_office.log.count_by_vct().values()) + sum(
        world.identity.log.count_by_vct().values()
    )


# --- the successful paths ------------------------------------------------------------


async def test_identity_agency_issues_a_pid_after_the_simulated_eid_check(world: World) -> None:
    erika = Citizen(UserId("@juergen:localhost"))
    assert eid_bind(world, erika, JUERGEN_CARD) == "ID-0001"
    request = erika.request(audience=IDENTITY_ID, vct=PID_VCT)

    issued = await handle_credential_request(
        world.identity.context, request, sender=erika.user_id, now=NOW, event_id="$req:localhost"
    )

    # The content is a valid credential.issue, ready to send.
    content = parse_event("eu.onceonly.v1.credential.issue", to_content(issued.content))
    assert content == issued.content
    assert issued.content.request_event_id == "$req:localhost"
    assert issued.content.exchange_id == request.exchange_id
    # What the wallet will check: full verification with key binding under the trust list.
    presentation = present(
        parse_sd_jwt(issued.sd_jwt),
        disclose=[("given_name",), ("birthdate",), ("address", "locality")],
        holder_key=erika.key,
        aud="https://verifier.example",
        nonce="n" * 22,
        now=NOW,
    )
    verified = verify_presentation(
        presentation,
        issuer_key=world.trust.issuer_key_resolver(),
        policy=VerificationPolicy(
            expected_audience="https://verifier.example", expected_nonce="n" * 22
        ),
        now=NOW,
    )
    assert verified.vct == PID_VCT
    assert verified.issuer == IDENTITY_ID
    assert verified.claims["given_name"] == "Jürgen"
    assert verified.claims["address"] == {"locality": "Berlin"}
    assert "family_name" not in verified.claims  # selectively disclosable, not disclosed
    assert verified.holder_key == erika.key.public()
    assert verified.expires_at == NOW + 3650 * 86_400
    # Everything is disclosable and the full payload satisfies the schema.
    full = parse_sd_jwt(issued.sd_jwt).claims
    full.pop("_sd_alg", None)
    get_type(PID_VCT).validate(full)
    assert full["age_over_18"] is True
    # The status entry is live and valid; the log holds no claim values.
    reference = status_reference_from_claims(verified.claims)
    token = world.identity.registry.sign_jwt(reference.uri, world.identity.key, now=NOW)
    assert check_status(reference, token, issuer_key=world.identity.key.public(), now=NOW) == 0
    (record,) = world.identity.log.by_person("ID-0001")
    assert record == issued.record
    assert record.status_reference == reference
    assert record.matrix_user_id == erika.user_id
    assert "Jürgen" not in record.model_dump_json()
    assert issued.identity.method is BindingMethod.EID_CHECK
    assert issued.identity.pid_holder_key == erika.key.public()


async def test_registry_office_binds_by_pid_presentation_and_issues_residence(world: World) -> None:
    citizen = Citizen(UserId("@juergen:localhost"))
    await get_pid(world, citizen)
    request = citizen.request(audience=REGISTRY_ID, vct=RESIDENCE_VCT, identity_for=REGISTRY_ID)

    issued = await handle_credential_request(
        world.registry_office.context, request, sender=citizen.user_id, now=NOW
    )

    claims = parse_sd_jwt(issued.sd_jwt).claims
    assert claims["iss"] == REGISTRY_ID
    assert claims["address"]["street_address"] == "Karl-Marx-Allee 140"  # after his move
    assert claims["cnf"]["jwk"] == citizen.key.public().to_jwk()
    assert issued.identity.person_id == "MB-0001"
    assert issued.identity.method is BindingMethod.PID_PRESENTATION
    assert world.registry_office.register.person_for_matrix_user(citizen.user_id) == "MB-0001"
    # The credential is signed with the office's EdDSA key, which the trust list lists.
    assert parse_sd_jwt(issued.sd_jwt).header["alg"] == "EdDSA"


async def test_every_issuance_gets_its_own_status_entry(world: World) -> None:
    citizen = Citizen(UserId("@juergen:localhost"))
    await get_pid(world, citizen)
    references = set()
    for _ in range(5):
        request = citizen.request(audience=REGISTRY_ID, vct=RESIDENCE_VCT, identity_for=REGISTRY_ID)
        issued = await handle_credential_request(
            world.registry_office.context, request, sender=citizen.user_id, now=NOW
        )
        references.add(issued.record.status_reference)
    assert len(references) == 5


def test_disclosable_paths_skip_claims_a_person_does_not_have() -> None:
    paths = get_type(PID_VCT).disclosable_paths
    claims = {"given_name": "Lea", "nationalities": ["DE"], "place_of_birth": {"country": "DE"}}
    kept = disclosable_paths(claims, paths)
    assert ("given_name",) in kept
    assert ("nationalities", None) in kept
    assert ("place_of_birth",) in kept
    assert ("place_of_birth", "locality") not in kept
    assert ("birth_family_name",) not in kept
    assert disclosable_paths({"nationalities": []}, [("nationalities", None)]) == []


# --- refusals: each is a typed error and nothing is issued ------------------------------


async def refused(world: World, agency: str, request: object, sender: UserId) -> OnceOnlyError:
    ctx = world.identity.context if agency == "identity" else world.registry_office.context
    before = issued_count(world)
    with pytest.raises(OnceOnlyError) as caught:
        await handle_credential_request(ctx, request, sender=sender, now=NOW)  # type: ignore[arg-type]
    assert issued_count(world) == before
    return caught.value


async def test_pid_request_without_eid_check_is_identity_not_bound(world: World) -> None:
    citizen = Citizen(UserId("@stranger:localhost"))
    error = await refused(
        world, "identity", citizen.request(audience=IDENTITY_ID, vct=PID_VCT), citizen.user_id
    )
    assert isinstance(error, IdentityNotBound)


def test_eid_check_codes_are_single_use_and_card_specific(world: World) -> None:
    identity = world.identity

    def start(card: str) -> str:
        return start_eid_check(
            identity.register, identity.ledger, card, now=NOW, random_bytes=secrets.token_bytes
        )

    def complete(card: str, code: str, user: str, now: int = NOW) -> str:
        return complete_eid_check(
            identity.register,
            identity.ledger,
            card_number=card,
            code=code,
            matrix_user_id=user,
            now=now,
        )

    with pytest.raises(UnknownSubject):
        start("XXXXXXXXX")
    code = start(JUERGEN_CARD)
    with pytest.raises(IdentityNotBound):  # the right code for another card
        complete(SOEREN_CARD, code, "@a:x")
    with pytest.raises(MalformedInput):
        complete(JUERGEN_CARD, "12ab", "@a:x")
    assert complete(JUERGEN_CARD, code, "@a:x") == "ID-0001"
    assert identity.register.person_for_matrix_user("@a:x") == "ID-0001"
    with pytest.raises(IdentityNotBound):  # used
        complete(JUERGEN_CARD, code, "@b:x")
    late = start(JUERGEN_CARD)
    with pytest.raises(IdentityNotBound):  # expired
        complete(JUERGEN_CARD, late, "@b:x", now=NOW + 601)
    # One guess per code: a wrong code burns the card's outstanding one.
    guessed = start(JUERGEN_CARD)
    wrong = "000000" if guessed != "000000" else "111111"
    with pytest.raises(IdentityNotBound):
        complete(JUERGEN_CARD, wrong, "@b:x")
    with pytest.raises(IdentityNotBound):
        complete(JUERGEN_CARD, guessed, "@b:x")
    with pytest.raises(IdentityNotBound):
        identity.register.person_for_matrix_user("@b:x")


async def test_residence_request_without_pid_presentation_is_identity_not_bound(
    world: World,
) -> None:
    citizen = Citizen(UserId("@juergen:localhost"))
    request = citizen.request(audience=REGISTRY_ID, vct=RESIDENCE_VCT)
    error = await refused(world, "registry", request, citizen.user_id)
    assert isinstance(error, IdentityNotBound)


async def test_unknown_citizen_is_unknown_subject(world: World) -> None:
    soeren = Citizen(UserId("@soeren:localhost"))
    await get_pid(world, soeren, SOEREN_CARD)
    request = soeren.request(audience=REGISTRY_ID, vct=RESIDENCE_VCT, identity_for=REGISTRY_ID)
    error = await refused(world, "registry", request, soeren.user_id)
    assert isinstance(error, UnknownSubject)
    with pytest.raises(IdentityNotBound):
        world.registry_office.register.person_for_matrix_user(soeren.user_id)


async def test_namesakes_are_told_apart_by_place_of_birth_or_refused(world: World) -> None:
    thomas = Citizen(UserId("@thomas:localhost"))
    await get_pid(world, thomas, THOMAS_CARD)
    without_birthplace = thomas.request(
        audience=REGISTRY_ID, vct=RESIDENCE_VCT, identity_for=REGISTRY_ID,
        identity_paths=(("given_name",), ("family_name",), ("birthdate",)),
    )  # fmt: skip
    error = await refused(world, "registry", without_birthplace, thomas.user_id)
    assert isinstance(error, AmbiguousSubject)
    with_birthplace = thomas.request(
        audience=REGISTRY_ID, vct=RESIDENCE_VCT, identity_for=REGISTRY_ID
    )
    issued = await handle_credential_request(
        world.registry_office.context, with_birthplace, sender=thomas.user_id, now=NOW
    )
    assert issued.identity.person_id == "MB-0007"  # born in Berlin, like the PID says


async def test_account_bound_to_another_person_is_a_conflict(world: World) -> None:
    shared = UserId("@shared:localhost")
    juergen = Citizen(shared)
    await get_pid(world, juergen)
    world.registry_office.register.bind_matrix_user("MB-0002", shared, BindingMethod.IN_PERSON, NOW)
    request = juergen.request(audience=REGISTRY_ID, vct=RESIDENCE_VCT, identity_for=REGISTRY_ID)
    error = await refused(world, "registry", request, shared)
    assert isinstance(error, IdentityBindingConflict)


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"proof_key": jose.generate_private_key(jose.ES256)}, InvalidSignature),
        ({"proof_audience": "https://elsewhere.example"}, AudienceMismatch),
        ({"iat": NOW - 301}, Expired),
    ],
)
async def test_bad_key_proofs_are_refused(
    world: World, change: dict[str, object], expected: type[OnceOnlyError]
) -> None:
    citizen = Citizen(UserId("@juergen:localhost"))
    eid_bind(world, citizen, JUERGEN_CARD)
    request = citizen.request(audience=IDENTITY_ID, vct=PID_VCT, **change)  # type: ignore[arg-type]
    error = await refused(world, "identity", request, citizen.user_id)
    assert type(error) is expected


async def test_a_proof_that_is_not_a_jws_is_malformed(world: World) -> None:
    citizen = Citizen(UserId("@juergen:localhost"))
    request = citizen.request(audience=IDENTITY_ID, vct=PID_VCT)
    broken = request.model_copy(update={"proof": "eyJub3QiOiJqc29uIn0.e30.c2ln"})
    assert proof_nonce(request.proof)
    error = await refused(world, "identity", broken, citizen.user_id)
    assert isinstance(error, MalformedInput)


async def test_a_wallet_nonce_is_accepted_once(world: World) -> None:
    citizen = Citizen(UserId("@juergen:localhost"))
    eid_bind(world, citizen, JUERGEN_CARD)
    request = citizen.request(audience=IDENTITY_ID, vct=PID_VCT)
    await handle_credential_request(
        world.identity.context, request, sender=citizen.user_id, now=NOW
    )
    error = await refused(world, "identity", request, citizen.user_id)
    assert isinstance(error, ReplayDetected)


async def test_a_wallet_nonce_is_recorded_only_once_the_signatures_verify(world: World) -> None:
    citizen = Citizen(UserId("@juergen:localhost"))
    eid_bind(world, citizen, JUERGEN_CARD)
    stored = world.identity.ledger.count()
    nonce = "fixed-wallet-nonce-0000000"
    bad = citizen.request(
        audience=IDENTITY_ID, vct=PID_VCT, nonce=nonce,
        proof_key=jose.generate_private_key(jose.ES256),
    )  # fmt: skip
    assert isinstance(await refused(world, "identity", bad, citizen.user_id), InvalidSignature)
    assert world.identity.ledger.count() == stored  # a forged request stores nothing
    good = citizen.request(audience=IDENTITY_ID, vct=PID_VCT, nonce=nonce)
    await handle_credential_request(world.identity.context, good, sender=citizen.user_id, now=NOW)
    assert world.identity.ledger.count() == stored + 1
    assert isinstance(await refused(world, "identity", good, citizen.user_id), ReplayDetected)


async def test_unknown_and_unauthorised_types_are_refused(world: World) -> None:
    citizen = Citizen(UserId("@juergen:localhost"))
    await get_pid(world, citizen)
    vehicle = citizen.request(audience=REGISTRY_ID, vct=VEHICLE_VCT, identity_for=REGISTRY_ID)
    error = await refused(world, "registry", vehicle, citizen.user_id)
    assert isinstance(error, UnsupportedCredentialType)
    # Configured, but the trust list no longer lets the office issue residence credentials.
    world.set_trust(trust_list(listed(world.identity), listed(world.registry_office, may_issue=())))
    residence = citizen.request(audience=REGISTRY_ID, vct=RESIDENCE_VCT, identity_for=REGISTRY_ID)
    error = await refused(world, "registry", residence, citizen.user_id)
    assert isinstance(error, UnsupportedCredentialType)


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"kb_nonce": "another-nonce-abcdefghijkl"}, NonceMismatch),
        ({"kb_audience": IDENTITY_ID}, AudienceMismatch),
    ],
)
async def test_pid_presentation_must_be_made_for_this_request(
    world: World, change: dict[str, str], expected: type[OnceOnlyError]
) -> None:
    citizen = Citizen(UserId("@juergen:localhost"))
    await get_pid(world, citizen)
    request = citizen.request(
        audience=REGISTRY_ID, vct=RESIDENCE_VCT, identity_for=REGISTRY_ID, **change
    )
    assert type(await refused(world, "registry", request, citizen.user_id)) is expected


async def test_pid_from_an_untrusted_issuer_is_refused(world: World) -> None:
    citizen = Citizen(UserId("@juergen:localhost"))
    await get_pid(world, citizen)
    world.set_trust(trust_list(listed(world.registry_office)))  # identity agency delisted
    request = citizen.request(audience=REGISTRY_ID, vct=RESIDENCE_VCT, identity_for=REGISTRY_ID)
    assert isinstance(await refused(world, "registry", request, citizen.user_id), UntrustedIssuer)


async def test_a_revoked_pid_binds_nobody(world: World) -> None:
    citizen = Citizen(UserId("@juergen:localhost"))
    await get_pid(world, citizen)
    (record,) = world.identity.log.by_person("ID-0001")
    world.identity.registry.revoke(record.status_reference, now=NOW)
    request = citizen.request(audience=REGISTRY_ID, vct=RESIDENCE_VCT, identity_for=REGISTRY_ID)
    assert isinstance(await refused(world, "registry", request, citizen.user_id), Revoked)
    with pytest.raises(IdentityNotBound):
        world.registry_office.register.person_for_matrix_user(citizen.user_id)


class _TamperedRegister:
    """The office's register, except that one stored record no longer fits the schema."""

    def __init__(self, real: Any) -> None:
        self.real = real

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)

    def claims_for(self, person_id: str, vct: str, *, as_of: Any = None) -> dict[str, Any]:
        claims = self.real.claims_for(person_id, vct, as_of=as_of)
        claims["registered_since"] = "secret-value-not-a-date"
        return claims


async def test_a_credential_failing_its_schema_is_not_issued_and_its_entry_is_revoked(
    world: World,
) -> None:
    citizen = Citizen(UserId("@juergen:localhost"))
    await get_pid(world, citizen)
    office = world.registry_office
    ctx = dataclasses.replace(office.context, register=_TamperedRegister(office.register))
    request = citizen.request(audience=REGISTRY_ID, vct=RESIDENCE_VCT, identity_for=REGISTRY_ID)
    with pytest.raises(IssuanceError) as caught:
        await handle_credential_request(ctx, request, sender=citizen.user_id, now=NOW)
    assert "secret-value" not in caught.value.message
    assert office.log.by_person("MB-0001") == []
    (uri,) = office.registry.list_uris()
    statuses = office.registry.build_status_list(uri)
    # Exactly one entry was allocated for the refused credential, and it is revoked.
    assert [statuses.get(i) for i in range(len(statuses)) if statuses.get(i) != 0] == [INVALID]
