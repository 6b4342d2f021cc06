"""Register records: validation against the credential type schemas and payload assembly."""

from __future__ import annotations

import unicodedata
from datetime import date
from typing import Any

import pytest

from issuer.register import (
    BIRTH_VCT,
    INCOME_VCT,
    PID_VCT,
    RESIDENCE_VCT,
    VEHICLE_VCT,
    age_on,
    issuable_claims,
    parse_person,
)
from onceonly.credential_types import get_type
from onceonly.errors import MalformedInput

ADDRESS = {
    "street_address": "Schönhauser Allee 130",
    "postal_code": "10437",
    "locality": "Berlin",
    "country": "DE",
}


def person(**overrides: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "person_id": "MB-0001",
        "given_name": "Jürgen",
        "family_name": "Weiß",
        "birthdate": "1978-05-12",
        "place_of_birth": {"locality": "Köln", "country": "DE"},
        "claims": {
            RESIDENCE_VCT: {
                "address": ADDRESS,
                "registered_since": "2015-04-01",
                "residence_type": "main",
            }
        },
    }
    record.update(overrides)
    return record


def full_payload(claims: dict[str, Any], vct: str) -> dict[str, Any]:
    return {
        **claims,
        "iss": "https://a.example",
        "iat": 1,
        "exp": 2,
        "vct": vct,
        "cnf": {"jwk": {}},
    }


def test_residence_payload_takes_identity_from_record() -> None:
    claims = issuable_claims(parse_person(person()), RESIDENCE_VCT)
    assert claims == {
        "given_name": "Jürgen",
        "family_name": "Weiß",
        "birthdate": "1978-05-12",
        "address": ADDRESS,
        "registered_since": "2015-04-01",
        "residence_type": "main",
    }
    get_type(RESIDENCE_VCT).validate(full_payload(claims, RESIDENCE_VCT))


def test_payload_is_a_copy() -> None:
    record = parse_person(person())
    issuable_claims(record, RESIDENCE_VCT)["address"]["locality"] = "Köln"
    assert issuable_claims(record, RESIDENCE_VCT)["address"]["locality"] == "Berlin"


def test_income_payload_omits_identity_claims_its_schema_lacks() -> None:
    income = {
        "tax_year": 2025,
        "taxable_income_eur": 41000,
        "assessment_date": "2026-06-01",
        "tax_office": "Finanzamt Köln-West",
    }
    claims = issuable_claims(parse_person(person(claims={INCOME_VCT: income})), INCOME_VCT)
    assert "birthdate" not in claims and "place_of_birth" not in claims
    assert claims["given_name"] == "Jürgen"


def test_birth_certificate_may_state_the_family_name_at_birth() -> None:
    birth = {"family_name": "Schäfer", "register_number": "G 1234/1981", "sex": "female"}
    record = parse_person(person(family_name="Müller", claims={BIRTH_VCT: birth}))
    claims = issuable_claims(record, BIRTH_VCT)
    assert claims["family_name"] == "Schäfer"
    assert claims["place_of_birth"] == {"locality": "Köln", "country": "DE"}


def test_birth_certificate_needs_a_full_place_of_birth() -> None:
    birth = {"register_number": "G 1/2000"}
    with pytest.raises(MalformedInput, match="place_of_birth"):
        parse_person(person(place_of_birth={"locality": "Köln"}, claims={BIRTH_VCT: birth}))


def test_age_over_18_is_derived_only_when_a_date_is_given() -> None:
    pid = {"nationalities": ["DE"]}
    record = parse_person(person(birthdate="2008-11-28", claims={PID_VCT: pid}))
    assert "age_over_18" not in issuable_claims(record, PID_VCT)
    assert issuable_claims(record, PID_VCT, as_of=date(2026, 11, 27))["age_over_18"] is False
    assert issuable_claims(record, PID_VCT, as_of=date(2026, 11, 28))["age_over_18"] is True


@pytest.mark.parametrize(
    ("born", "day", "age"),
    [
        ("2000-02-29", date(2018, 2, 28), 17),
        ("2000-02-29", date(2018, 3, 1), 18),
        ("1990-12-31", date(1991, 12, 30), 0),
        ("1990-12-31", date(1991, 12, 31), 1),
    ],
)
def test_age_on(born: str, day: date, age: int) -> None:
    assert age_on(born, day) == age


def test_names_are_nfc_normalised() -> None:
    decomposed = unicodedata.normalize("NFD", "Jürgen")
    assert decomposed != "Jürgen"
    assert parse_person(person(given_name=decomposed)).given_name == "Jürgen"


@pytest.mark.parametrize(
    ("overrides", "fragment"),
    [
        ({"birthdate": "1978-02-30"}, "birthdate"),
        ({"birthdate": "12.05.1978"}, "birthdate"),
        ({"given_name": " Jürgen"}, "whitespace"),
        ({"given_name": ""}, "given_name"),
        ({"person_id": "has space"}, "person_id"),
        ({"eid_card_number": "l01x00t47"}, "eid_card_number"),
        ({"nickname": "Jürgi"}, "nickname"),
        ({"claims": {"urn:example:unknown": {}}}, "unknown credential type"),
        ({"claims": {RESIDENCE_VCT: {"address": ADDRESS}}}, "registered_since"),
        (
            {
                "claims": {
                    RESIDENCE_VCT: {
                        "address": {**ADDRESS, "postal_code": "1043"},
                        "registered_since": "2015-04-01",
                        "residence_type": "main",
                    }
                }
            },
            "address.postal_code",
        ),
        ({"claims": {VEHICLE_VCT: {"vin": "too short"}}}, "vehicle"),
    ],
)
def test_invalid_records_are_refused_with_the_field(
    overrides: dict[str, Any], fragment: str
) -> None:
    with pytest.raises(MalformedInput, match=fragment):
        parse_person(person(**overrides), where="line 9")


@pytest.mark.parametrize("reserved", ["iss", "exp", "cnf", "status", "vct", "_sd"])
def test_reserved_claims_are_refused(reserved: str) -> None:
    residence = {
        "address": ADDRESS,
        "registered_since": "2015-04-01",
        "residence_type": "main",
        reserved: "x",
    }
    with pytest.raises(MalformedInput, match=f"sets {reserved}"):
        parse_person(person(claims={RESIDENCE_VCT: residence}))


def test_error_names_where_the_record_came_from() -> None:
    with pytest.raises(MalformedInput) as caught:
        parse_person(person(birthdate="x"), where="line 9")
    assert caught.value.message.startswith("line 9: birthdate: ")
