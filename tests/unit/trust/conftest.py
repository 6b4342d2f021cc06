"""Builders for trust lists used by the trust unit tests."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from onceonly import jose
from onceonly.trust import (
    Agency,
    AgencyKey,
    LocalizedText,
    Purpose,
    RequestGrant,
    TrustList,
    TrustListDraft,
    build_trust_list,
)

NOW = 1_800_000_000
DAY = 86_400
PID = "urn:eudi:pid:de:1"
RESIDENCE = "https://onceonly.example/vct/residence"


@dataclass(frozen=True)
class Keys:
    authority: jose.PrivateKey
    registry_old: jose.PrivateKey
    registry_new: jose.PrivateKey
    tax: jose.PrivateKey


@pytest.fixture(scope="session")
def keys() -> Keys:
    return Keys(
        authority=jose.generate_private_key(jose.ES256),
        registry_old=jose.generate_private_key(jose.ES256, kid="reg-2025"),
        registry_new=jose.generate_private_key(jose.EDDSA, kid="reg-2026"),
        tax=jose.generate_private_key(jose.ES256, kid="tax-1"),
    )


def make_draft(keys: Keys, *, sequence: int = 0) -> TrustListDraft:
    """Two agencies: a registry office (rotated key) that issues, a tax office that asks."""
    registry = Agency(
        id="https://registry.example",
        name=LocalizedText(de="Bürgeramt", en="Citizens' office"),
        matrix_user_id="@registry:gov.example",
        dids=("did:web:registry.example",),
        keys=(
            AgencyKey(
                jwk=keys.registry_old.public().to_jwk(),
                valid_from=NOW - 400 * DAY,
                valid_until=NOW - 30 * DAY,
            ),
            AgencyKey(jwk=keys.registry_new.public().to_jwk(), valid_from=NOW - 30 * DAY),
        ),
        may_issue=(PID, RESIDENCE),
    )
    tax = Agency(
        id="https://tax.example",
        name=LocalizedText(de="Finanzamt", en="Tax office"),
        matrix_user_id="@tax:gov.example",
        keys=(AgencyKey(jwk=keys.tax.public().to_jwk(), valid_from=NOW - DAY),),
        purposes=(
            Purpose(
                code="tax_residence",
                text=LocalizedText(de="Steuerlicher Wohnsitz", en="Tax residence"),
            ),
            Purpose(code="tax_id", text=LocalizedText(de="Steuer-ID", en="Tax id")),
        ),
        may_request=(
            RequestGrant(
                vct=RESIDENCE,
                paths=(("address",), ("nationalities", None)),
                purposes=("tax_residence",),
            ),
            RequestGrant(vct=PID, paths=(("family_name",), ("birthdate",)), purposes=("tax_id",)),
        ),
    )
    return TrustListDraft(
        iss="https://trust.example",
        name=LocalizedText(de="Vertrauensstelle", en="Trust authority"),
        sequence=sequence,
        agencies=(registry, tax),
    )


def make_list(keys: Keys, *, seq: int = 1, now: int = NOW, days: int = 30) -> TrustList:
    return build_trust_list(make_draft(keys), sequence=seq, now=now, valid_for_seconds=days * DAY)
