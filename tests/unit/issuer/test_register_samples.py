"""The shipped sample registers: they load, and every record yields a schema-valid payload."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest

from issuer.register import (
    BIRTH_VCT,
    INCOME_VCT,
    PID_VCT,
    RESIDENCE_VCT,
    VEHICLE_VCT,
    Register,
    read_register_file,
)
from onceonly.credential_types import get_type
from onceonly.errors import AmbiguousSubject, UnknownSubject

SAMPLES = Path(__file__).resolve().parents[3] / "issuer" / "sample_data"
SAMPLE_FILES = sorted(p.name for p in SAMPLES.iterdir() if p.suffix in (".json", ".csv"))
ISSUANCE_DAY = date(2026, 11, 28)


@pytest.fixture
def register(target: str) -> Iterator[Register]:
    with Register.open(target) as opened:
        yield opened


def test_the_expected_samples_ship() -> None:
    assert SAMPLE_FILES == [
        "birth_registry.json",
        "identity_agency.json",
        "registry_office.json",
        "tax_office.csv",
        "vehicle_register.csv",
    ]


@pytest.mark.parametrize("name", SAMPLE_FILES)
def test_every_sample_record_issues_a_schema_valid_credential(
    register: Register, name: str
) -> None:
    persons, _ = register.import_file(SAMPLES / name)
    assert persons == len(register.person_ids()) > 0
    issued = 0
    for person_id in register.person_ids():
        for vct in register.vcts_for(person_id):
            claims = register.claims_for(person_id, vct, as_of=ISSUANCE_DAY)
            signed_view = {
                **claims,
                "iss": "https://agency.example",
                "iat": 1_795_000_000,
                "exp": 1_826_536_000,
                "vct": vct,
                "cnf": {"jwk": {"kty": "EC", "crv": "P-256", "x": "x", "y": "y"}},
                "status": {"status_list": {"idx": 7, "uri": "https://agency.example/status/1"}},
            }
            get_type(vct).validate(signed_view)
            issued += 1
    assert issued >= persons


def test_identity_register_covers_at_least_twenty_persons_with_eid_cards() -> None:
    content = read_register_file(SAMPLES / "identity_agency.json")
    assert len(content.persons) >= 20
    cards = [p.eid_card_number for p in content.persons]
    assert None not in cards and len(set(cards)) == len(cards)
    assert all(PID_VCT in p.claims for p in content.persons)
    names = "".join(p.given_name + p.family_name for p in content.persons)
    assert all(char in names for char in "äöüß")


def test_each_sample_holds_its_type() -> None:
    expected = {
        "birth_registry.json": BIRTH_VCT,
        "identity_agency.json": PID_VCT,
        "registry_office.json": RESIDENCE_VCT,
        "tax_office.csv": INCOME_VCT,
        "vehicle_register.csv": VEHICLE_VCT,
    }
    for name, vct in expected.items():
        persons = read_register_file(SAMPLES / name).persons
        assert all(set(p.claims) == {vct} for p in persons), name


def test_registry_office_has_a_family_with_a_child_and_a_pending_move(register: Register) -> None:
    register.import_file(SAMPLES / "registry_office.json")
    pending = register.pending_life_events()
    movers = {e.person_id for e in pending}
    assert len(movers) >= 3 and {e.kind for e in pending} == {"move"}
    ages = sorted((ISSUANCE_DAY.year - int(register.person(p).birthdate[:4]), p) for p in movers)
    assert ages[0][0] < 18 <= ages[-1][0]  # a child moving with adults
    addresses = {str(register.claims_for(p, RESIDENCE_VCT)["address"]) for p in movers}
    assert len(addresses) == 1  # the family moves together


def test_birth_registry_knows_the_child_and_its_parents(register: Register) -> None:
    register.import_file(SAMPLES / "birth_registry.json")
    with_parents = [
        register.claims_for(p, BIRTH_VCT)
        for p in register.person_ids()
        if BIRTH_VCT in register.vcts_for(p) and "parents" in register.claims_for(p, BIRTH_VCT)
    ]
    assert len(with_parents) >= 2
    assert all(len(claims["parents"]) == 2 for claims in with_parents)
    assert all(claims["birthdate"] >= "2019-01-01" for claims in with_parents)  # the children


def test_pid_claims_find_the_same_person_in_other_registers(tmp_path: Path) -> None:
    """A PID from the identity agency identifies its holder in every other register."""
    with Register.open(str(tmp_path / "id.sqlite3")) as identity:
        identity.import_file(SAMPLES / "identity_agency.json")
        pids = [identity.claims_for(p, PID_VCT) for p in identity.person_ids()]
    for name in ("registry_office.json", "birth_registry.json", "vehicle_register.csv"):
        with Register.open(str(tmp_path / f"{name}.sqlite3")) as other:
            other.import_file(SAMPLES / name)
            found = set()
            for pid in pids:
                try:
                    person_id = other.find_person(pid)
                except AmbiguousSubject:
                    pytest.fail(f"{name}: PID of {pid['given_name']} is ambiguous")
                except UnknownSubject:
                    continue  # not everyone is in every register
                record = other.person(person_id)
                assert (record.given_name, record.family_name, record.birthdate) == (
                    pid["given_name"],
                    pid["family_name"],
                    pid["birthdate"],
                )
                found.add(person_id)
            assert found == set(other.person_ids()), name


def test_same_name_twins_in_the_registry_office_need_the_place_of_birth(tmp_path: Path) -> None:
    with Register.open(str(tmp_path / "mb.sqlite3")) as office:
        office.import_file(SAMPLES / "registry_office.json")
        claims = {"given_name": "Thomas", "family_name": "Schmidt", "birthdate": "1975-08-08"}
        with pytest.raises(AmbiguousSubject):
            office.find_person(claims)
        from_berlin = office.find_person(
            {**claims, "place_of_birth": {"locality": "Berlin", "country": "DE"}}
        )
        from_cologne = office.find_person(
            {**claims, "place_of_birth": {"locality": "Köln", "country": "DE"}}
        )
        assert from_berlin != from_cologne


@pytest.mark.parametrize(
    "sample", ["vehicle_register.csv", "birth_registry.json", "registry_office.json"]
)
def test_a_withheld_birthplace_never_picks_a_namesake(tmp_path: Path, sample: str) -> None:
    """Both Thomas Schmidts, born 1975-08-08: neither gets the other's record.

    The vehicle register knows only the one born in Berlin; the one born in Köln,
    withholding his place of birth, must not be taken for him.
    """
    with Register.open(str(tmp_path / "id.sqlite3")) as identity:
        identity.import_file(SAMPLES / "identity_agency.json")
        berlin, cologne = (identity.claims_for(p, PID_VCT) for p in ("ID-0009", "ID-0010"))
    with Register.open(str(tmp_path / "other.sqlite3")) as other:
        other.import_file(SAMPLES / sample)
        namesakes = [
            p for p in other.person_ids()
            if (other.person(p).given_name, other.person(p).family_name) == ("Thomas", "Schmidt")
        ]  # fmt: skip
        assert namesakes, f"{sample} has no Thomas Schmidt"
        for pid in (berlin, cologne):
            withheld = {k: v for k, v in pid.items() if k != "place_of_birth"}
            with pytest.raises(AmbiguousSubject):
                other.find_person(withheld)
            try:
                found = other.find_person(pid)
            except UnknownSubject:
                continue  # he is not in this register
            place = other.person(found).place_of_birth
            assert place is not None and place.locality == pid["place_of_birth"]["locality"]
