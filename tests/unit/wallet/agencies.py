"""A small world for wallet tests: a trust list with real keys and credentials its agencies sign.

Shared by the receive, request, present, policy and consent tests.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from onceonly import jose
from onceonly.credential_types import get_type
from onceonly.sdjwt import issue_sd_jwt_vc
from onceonly.sdjwt.serialization import compact_without_kb
from onceonly.trust import Agency, AgencyKey, LocalizedText, Purpose, RequestGrant, TrustList

NOW = 1_800_000_000
DAY = 86_400
PID = "urn:onceonly:credential:pid:1"
RESIDENCE = "urn:onceonly:credential:residence:1"

IDENTITY_ID = "did:web:identity.example"
REGISTRY_ID = "did:web:registry.example"
FAMILY_ID = "did:web:familienkasse.example"
ROGUE_ID = "did:web:rogue.example"
IDENTITY_USER = "@identity:gov.example"
REGISTRY_USER = "@registry:gov.example"
FAMILY_USER = "@familienkasse:gov.example"
ROGUE_USER = "@rogue:gov.example"
CITIZEN = "@erika:citizens.example"
CHILD_BENEFIT = "child_benefit_application"

PID_CLAIMS: dict[str, Any] = {
    "given_name": "Erika",
    "family_name": "Mustermann",
    "birthdate": "1984-01-26",
    "place_of_birth": {"locality": "Köln", "country": "DE"},
    "nationalities": ["DE", "FR"],
    "address": {
        "street_address": "Heidestraße 17",
        "postal_code": "51147",
        "locality": "Köln",
        "country": "DE",
    },
    "age_over_18": True,
}
RESIDENCE_CLAIMS: dict[str, Any] = {
    "given_name": "Erika",
    "family_name": "Mustermann",
    "birthdate": "1984-01-26",
    "address": {
        "street_address": "Kastanienallee 12",
        "postal_code": "10435",
        "locality": "Berlin",
        "country": "DE",
    },
    "registered_since": "2025-03-01",
    "residence_type": "main",
}


@dataclass(frozen=True)
class World:
    """Keys of every agency and the (already verified) trust list naming them."""

    identity_key: jose.PrivateKey
    registry_key: jose.PrivateKey
    family_key: jose.PrivateKey
    rogue_key: jose.PrivateKey
    trust: TrustList


def _text(de: str, en: str) -> LocalizedText:
    return LocalizedText(de=de, en=en)


def make_world(
    *,
    identity_user: str = IDENTITY_USER,
    registry_user: str = REGISTRY_USER,
    family_user: str = FAMILY_USER,
    rogue_user: str = ROGUE_USER,
    now: int = NOW,
) -> World:
    """Fresh agency keys and a trust list naming the given Matrix accounts, valid at ``now``."""
    identity_key = jose.generate_private_key(jose.ES256, kid="id-1")
    registry_key = jose.generate_private_key(jose.ES256, kid="reg-1")
    family_key = jose.generate_private_key(jose.ES256, kid="fam-1")
    rogue_key = jose.generate_private_key(jose.ES256, kid="rogue-1")

    def agency(
        agency_id: str, name: LocalizedText, user: str, key: jose.PrivateKey, **policy: Any
    ) -> Agency:
        listed = AgencyKey(jwk=key.public().to_jwk(), valid_from=now - 365 * DAY)
        return Agency(id=agency_id, name=name, matrix_user_id=user, keys=(listed,), **policy)

    child_benefit = Purpose(
        code=CHILD_BENEFIT, text=_text("Kindergeldantrag", "child benefit application")
    )
    agencies = (
        agency(
            IDENTITY_ID,
            _text("Personalausweisbehörde", "Identity agency"),
            identity_user,
            identity_key,
            may_issue=(PID,),
        ),
        agency(
            REGISTRY_ID,
            _text("Bürgeramt Berlin-Mitte", "Citizens' Office Berlin-Mitte"),
            registry_user,
            registry_key,
            may_issue=(RESIDENCE,),
        ),
        agency(
            FAMILY_ID,
            _text("Familienkasse Berlin", "Family Benefits Office Berlin"),
            family_user,
            family_key,
            purposes=(child_benefit,),
            may_request=(
                RequestGrant(
                    vct=RESIDENCE, paths=(("address",), ("birthdate",)), purposes=(CHILD_BENEFIT,)
                ),
                RequestGrant(
                    vct=PID,
                    paths=(("address", "locality"), ("nationalities",), ("age_over_18",)),
                    purposes=(CHILD_BENEFIT,),
                ),
            ),
        ),
        agency(ROGUE_ID, _text("Unbekannt", "Unknown"), rogue_user, rogue_key),
    )
    trust = TrustList(
        iss="did:web:trust.example",
        name=_text("Vertrauensstelle", "Trust authority"),
        seq=1,
        iat=now - DAY,
        nbf=now - DAY,
        exp=now + 30 * DAY,
        agencies=agencies,
    )
    return World(identity_key, registry_key, family_key, rogue_key, trust)


def with_family_pid_paths(world: World, *paths: tuple[str | int | None, ...]) -> World:
    """The same world, but the family office registered for exactly ``paths`` of the PID."""
    family = world.trust.agency(FAMILY_ID)
    assert family is not None
    grants = tuple(
        grant.model_copy(update={"paths": paths}) if grant.vct == PID else grant
        for grant in family.may_request
    )
    agencies = tuple(
        agency.model_copy(update={"may_request": grants}) if agency.id == FAMILY_ID else agency
        for agency in world.trust.agencies
    )
    trust = world.trust.model_copy(update={"agencies": agencies})
    return World(world.identity_key, world.registry_key, world.family_key, world.rogue_key, trust)


def _present_paths(claims: dict[str, Any], vct: str) -> list[tuple[str | int | None, ...]]:
    # Only the type's disclosable paths that name a claim this credential has.
    out = []
    for path in get_type(vct).disclosable_paths:
        node: Any = claims
        for part in path:
            if part is None:
                node = node if isinstance(node, list) and node else None
            elif isinstance(node, dict) and part in node:
                node = node[part]
            else:
                node = None
            if node is None:
                break
        if node is not None:
            out.append(path)
    return out


def issue(
    signing_key: jose.PrivateKey,
    *,
    issuer: str,
    vct: str,
    claims: dict[str, Any],
    holder: jose.PublicKey,
    now: int = NOW,
    expires_at: int = NOW + 365 * DAY,
    not_before: int | None = None,
    status: dict[str, Any] | None = None,
) -> str:
    """A real SD-JWT VC with every disclosure, as a ``credential.issue`` carries it."""
    issued = issue_sd_jwt_vc(
        issuer=issuer,
        vct=vct,
        claims=claims,
        disclosable=_present_paths(claims, vct),
        holder_key=holder,
        signing_key=signing_key,
        now=now,
        expires_at=expires_at,
        not_before=not_before,
        status=status,
        random_bytes=os.urandom,
    )
    return compact_without_kb(issued.issuer_jwt, [d.disclosure.encoded for d in issued.disclosures])
