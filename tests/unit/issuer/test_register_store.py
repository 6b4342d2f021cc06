"""The register store on SQLite and PostgreSQL: records, matching, bindings, life events."""

from __future__ import annotations

import json
import sqlite3
import unicodedata
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from issuer.register import (
    PID_VCT,
    RESIDENCE_VCT,
    BindingMethod,
    Register,
    parse_person,
)
from onceonly.errors import (
    AmbiguousSubject,
    IdentityBindingConflict,
    IdentityNotBound,
    MalformedInput,
    StoreCorrupt,
    StoreError,
    UnknownSubject,
)

NOW = 1_800_000_000
BERLIN = {
    "street_address": "Kastanienallee 12",
    "postal_code": "10435",
    "locality": "Berlin",
    "country": "DE",
}
KOELN = {
    "street_address": "Aachener Straße 220",
    "postal_code": "50931",
    "locality": "Köln",
    "country": "DE",
}


def record(person_id: str, **overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "person_id": person_id,
        "given_name": "Thomas",
        "family_name": "Schmidt",
        "birthdate": "1975-08-08",
        "claims": {
            RESIDENCE_VCT: {
                "address": BERLIN,
                "registered_since": "2017-05-20",
                "residence_type": "main",
            }
        },
    }
    data.update(overrides)
    return data


@pytest.fixture
def register(target: str) -> Iterator[Register]:
    with Register.open(target) as opened:
        yield opened


def put(register: Register, person_id: str, **overrides: Any) -> None:
    register.put_person(parse_person(record(person_id, **overrides)))


# --- records ----------------------------------------------------------------------


def test_put_and_read_back(register: Register) -> None:
    put(register, "MB-1", place_of_birth={"locality": "Köln", "country": "DE"})
    stored = register.person("MB-1")
    assert stored == parse_person(
        record("MB-1", place_of_birth={"locality": "Köln", "country": "DE"})
    )
    assert register.person_ids() == ["MB-1"]
    assert register.vcts_for("MB-1") == [RESIDENCE_VCT]


def test_claims_for_returns_the_schema_payload(register: Register) -> None:
    put(register, "MB-1")
    assert register.claims_for("MB-1", RESIDENCE_VCT) == {
        "given_name": "Thomas",
        "family_name": "Schmidt",
        "birthdate": "1975-08-08",
        "address": BERLIN,
        "registered_since": "2017-05-20",
        "residence_type": "main",
    }


def test_claims_for_unknown_person_or_type(register: Register) -> None:
    put(register, "MB-1")
    with pytest.raises(UnknownSubject):
        register.claims_for("MB-404", RESIDENCE_VCT)
    with pytest.raises(UnknownSubject) as caught:
        register.claims_for("MB-1", PID_VCT)
    assert caught.value.detail == {"vct": PID_VCT}


def test_put_replaces_claims_and_keeps_bindings(register: Register) -> None:
    put(register, "MB-1")
    register.bind_matrix_user("MB-1", "@thomas:localhost", BindingMethod.EID_CHECK, NOW)
    put(register, "MB-1", claims={PID_VCT: {"nationalities": ["DE"]}})
    assert register.vcts_for("MB-1") == [PID_VCT]
    assert register.person_for_matrix_user("@thomas:localhost") == "MB-1"


def run_sql(target: str, sql: str, params: tuple[Any, ...] = ()) -> list[Any]:
    """Run ``sql`` directly against the database, behind the register's back."""
    if target.endswith(".sqlite3"):
        with sqlite3.connect(target) as conn:
            return conn.execute(sql, params).fetchall()
    import psycopg

    with psycopg.connect(target, autocommit=True) as conn:
        cursor = conn.execute(sql.replace("?", "%s"), params)
        return cursor.fetchall() if cursor.description else []


def test_hand_edited_record_is_refused_not_issued(register: Register, target: str) -> None:
    put(register, "MB-1")
    (row,) = run_sql(target, "SELECT claims FROM register_claims WHERE person_id = 'MB-1'")
    stored = json.loads(row[0])
    stored["address"]["postal_code"] = "ABCDE"
    run_sql(target, "UPDATE register_claims SET claims = ?", (json.dumps(stored),))
    with pytest.raises(StoreCorrupt, match="postal_code"):
        register.claims_for("MB-1", RESIDENCE_VCT)


def test_schema_version_mismatch_is_refused(target: str) -> None:
    with Register.open(target) as opened:
        put(opened, "MB-1")
    run_sql(target, "UPDATE onceonly_schema SET version = 99 WHERE component = 'register'")
    with pytest.raises(StoreError, match="register schema version 99"):
        Register.open(target)


def test_unopenable_database_is_a_store_error(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="cannot open register"):
        Register.open(str(tmp_path / "missing-dir" / "register.sqlite3"))


# --- identity matching --------------------------------------------------------------


def test_find_person_exact_match(register: Register) -> None:
    put(register, "MB-1")
    put(register, "MB-2", given_name="Tomas")
    claims = {"given_name": "Thomas", "family_name": "Schmidt", "birthdate": "1975-08-08"}
    assert register.find_person(claims) == "MB-1"


def test_find_person_is_exact_not_fuzzy(register: Register) -> None:
    put(register, "MB-1")
    for wrong in (
        {"given_name": "thomas"},
        {"family_name": "Schmitt"},
        {"birthdate": "1975-08-09"},
    ):
        claims = {
            "given_name": "Thomas",
            "family_name": "Schmidt",
            "birthdate": "1975-08-08",
            **wrong,
        }
        with pytest.raises(UnknownSubject):
            register.find_person(claims)


def test_find_person_normalises_unicode(register: Register) -> None:
    put(register, "MB-1", given_name="Jürgen", family_name="Weiß")
    claims = {
        "given_name": unicodedata.normalize("NFD", "Jürgen"),
        "family_name": "Weiß",
        "birthdate": "1975-08-08",
    }
    assert register.find_person(claims) == "MB-1"


def test_find_person_refuses_ambiguous_matches(register: Register) -> None:
    put(register, "MB-1", place_of_birth={"locality": "Berlin", "country": "DE"})
    put(register, "MB-2", place_of_birth={"locality": "Köln"})
    claims = {"given_name": "Thomas", "family_name": "Schmidt", "birthdate": "1975-08-08"}
    with pytest.raises(AmbiguousSubject) as caught:
        register.find_person(claims)
    assert caught.value.detail == {}  # the error may reach the requester: no count, no ids
    # The place of birth tells them apart; a record without a country still matches.
    cologne = {**claims, "place_of_birth": {"locality": "Köln", "country": "DE"}}
    assert register.find_person(cologne) == "MB-2"
    berlin = {**claims, "place_of_birth": {"locality": "Berlin", "country": "DE"}}
    assert register.find_person(berlin) == "MB-1"
    with pytest.raises(UnknownSubject):
        register.find_person({**claims, "place_of_birth": {"locality": "Bonn"}})


def test_find_person_never_matches_on_less_than_the_record_knows(register: Register) -> None:
    """A lone namesake is not the requester just because the birthplace was withheld."""
    put(register, "MB-1", place_of_birth={"locality": "Berlin", "country": "DE"})
    claims = {"given_name": "Thomas", "family_name": "Schmidt", "birthdate": "1975-08-08"}
    for withheld in (claims, {**claims, "place_of_birth": {"locality": "Berlin"}}):
        with pytest.raises(AmbiguousSubject) as caught:
            register.find_person(withheld)
        assert caught.value.detail == {}
    # Born elsewhere: not this record; the full birthplace confirms it.
    with pytest.raises(UnknownSubject):
        register.find_person({**claims, "place_of_birth": {"locality": "Köln", "country": "DE"}})
    full = {**claims, "place_of_birth": {"locality": "Berlin", "country": "DE"}}
    assert register.find_person(full) == "MB-1"
    # A record that knows only the locality is confirmed by it.
    put(register, "MB-1", place_of_birth={"locality": "Berlin"})
    assert register.find_person({**claims, "place_of_birth": {"locality": "Berlin"}}) == "MB-1"


def test_find_person_keeps_records_without_place_of_birth(register: Register) -> None:
    put(register, "MB-1")
    put(register, "MB-2", place_of_birth={"locality": "Köln", "country": "DE"})
    claims = {
        "given_name": "Thomas",
        "family_name": "Schmidt",
        "birthdate": "1975-08-08",
        "place_of_birth": {"locality": "Köln", "country": "DE"},
    }
    # MB-1 does not know its place of birth, so it cannot be ruled out: refuse to guess.
    with pytest.raises(AmbiguousSubject):
        register.find_person(claims)


def test_find_person_with_no_records(register: Register) -> None:
    with pytest.raises(UnknownSubject):
        register.find_person(
            {"given_name": "Thomas", "family_name": "Schmidt", "birthdate": "1975-08-08"}
        )


@pytest.mark.parametrize(
    "claims",
    [
        {"given_name": "Thomas", "family_name": "Schmidt"},
        {"given_name": "Thomas", "family_name": ["Schmidt"], "birthdate": "1975-08-08"},
        {"given_name": "Thomas", "family_name": "Schmidt", "birthdate": "08.08.1975"},
        {
            "given_name": "Thomas",
            "family_name": "Schmidt",
            "birthdate": "1975-08-08",
            "place_of_birth": "Köln",
        },
    ],
)
def test_find_person_refuses_malformed_claims(register: Register, claims: Any) -> None:
    with pytest.raises(MalformedInput):
        register.find_person(claims)


def test_person_for_eid_card(register: Register) -> None:
    put(register, "ID-1", eid_card_number="L01X00T47")
    assert register.person_for_eid_card("L01X00T47") == "ID-1"
    with pytest.raises(UnknownSubject):
        register.person_for_eid_card("L01X00T48")


def test_eid_card_numbers_are_unique(register: Register) -> None:
    put(register, "ID-1", eid_card_number="L01X00T47")
    with pytest.raises(StoreError):
        put(register, "ID-2", eid_card_number="L01X00T47")


# --- Matrix bindings ----------------------------------------------------------------


def test_bind_and_look_up(register: Register) -> None:
    put(register, "MB-1")
    with pytest.raises(IdentityNotBound):
        register.person_for_matrix_user("@thomas:localhost")
    register.bind_matrix_user("MB-1", "@thomas:localhost", "pid_presentation", NOW)
    register.bind_matrix_user("MB-1", "@thomas-web:localhost", BindingMethod.IN_PERSON, NOW + 1)
    assert register.person_for_matrix_user("@thomas:localhost") == "MB-1"
    assert register.matrix_users_of("MB-1") == ["@thomas:localhost", "@thomas-web:localhost"]


def test_rebinding_to_the_same_person_is_idempotent(register: Register) -> None:
    put(register, "MB-1")
    register.bind_matrix_user("MB-1", "@thomas:localhost", "eid_check", NOW)
    register.bind_matrix_user("MB-1", "@thomas:localhost", "in_person", NOW + 5)
    assert register.matrix_users_of("MB-1") == ["@thomas:localhost"]


def test_binding_to_another_person_conflicts(register: Register) -> None:
    put(register, "MB-1")
    put(register, "MB-2", given_name="Anna")
    register.bind_matrix_user("MB-1", "@thomas:localhost", "eid_check", NOW)
    with pytest.raises(IdentityBindingConflict):
        register.bind_matrix_user("MB-2", "@thomas:localhost", "eid_check", NOW)
    register.unbind_matrix_user("@thomas:localhost")
    register.bind_matrix_user("MB-2", "@thomas:localhost", "eid_check", NOW)
    assert register.person_for_matrix_user("@thomas:localhost") == "MB-2"
    with pytest.raises(IdentityNotBound):
        register.unbind_matrix_user("@nobody:localhost")


@pytest.mark.parametrize(
    ("person_id", "user", "method", "error"),
    [
        ("MB-404", "@thomas:localhost", "eid_check", UnknownSubject),
        ("MB-1", "thomas", "eid_check", MalformedInput),
        ("MB-1", "@thomas:localhost", "trust_me", MalformedInput),
    ],
)
def test_bind_refuses_bad_input(
    register: Register, person_id: str, user: str, method: str, error: type[Exception]
) -> None:
    put(register, "MB-1")
    with pytest.raises(error):
        register.bind_matrix_user(person_id, user, method, NOW)
    assert register.matrix_users_of("MB-1") == []


# --- life events --------------------------------------------------------------------


def test_record_move_updates_residence_and_queues_an_event(register: Register) -> None:
    put(register, "MB-1")
    event = register.record_move("MB-1", KOELN, NOW, moved_on=date(2027, 1, 1))
    assert (event.person_id, event.kind, event.vct) == ("MB-1", "move", RESIDENCE_VCT)
    assert (event.effective_on, event.recorded_at, event.handled_at) == ("2027-01-01", NOW, None)
    claims = register.claims_for("MB-1", RESIDENCE_VCT)
    assert claims["address"] == KOELN
    assert claims["registered_since"] == "2027-01-01"
    assert register.pending_life_events() == [event]


def test_move_date_defaults_to_the_recording_day(register: Register) -> None:
    put(register, "MB-1")
    event = register.record_move("MB-1", KOELN, NOW)  # 2027-01-15 08:00 UTC
    assert event.effective_on == "2027-01-15"


def test_handled_events_leave_the_queue(register: Register) -> None:
    put(register, "MB-1")
    put(register, "MB-2", given_name="Anna")
    first = register.record_move("MB-1", KOELN, NOW)
    second = register.record_move("MB-2", KOELN, NOW + 1)
    assert [e.event_id for e in register.pending_life_events()] == [
        first.event_id,
        second.event_id,
    ]
    register.mark_life_event_handled(first.event_id, NOW + 10)
    assert register.pending_life_events() == [second]
    with pytest.raises(MalformedInput):
        register.mark_life_event_handled(first.event_id, NOW + 11)
    with pytest.raises(MalformedInput):
        register.mark_life_event_handled(999_999, NOW)


def test_record_move_failures_change_nothing(register: Register) -> None:
    put(register, "MB-1")
    put(register, "MB-2", given_name="Anna", claims={PID_VCT: {"nationalities": ["DE"]}})
    with pytest.raises(UnknownSubject):
        register.record_move("MB-404", KOELN, NOW)
    with pytest.raises(UnknownSubject):
        register.record_move("MB-2", KOELN, NOW)  # no residence record
    with pytest.raises(MalformedInput, match="postal_code"):
        register.record_move("MB-1", {**KOELN, "postal_code": "D-50931"}, NOW)
    assert register.claims_for("MB-1", RESIDENCE_VCT)["address"] == BERLIN
    assert register.pending_life_events() == []


# --- file import --------------------------------------------------------------------


def write_json(path: Path, persons: list[dict[str, Any]], moves: list[dict[str, Any]]) -> Path:
    document = {"format": "onceonly-register/1", "persons": persons, "moves": moves}
    path.write_text(json.dumps(document, ensure_ascii=False, indent=1), encoding="utf-8")
    return path


def test_import_records_moves_once(register: Register, tmp_path: Path) -> None:
    move = {
        "person_id": "MB-1",
        "moved_on": "2026-12-01",
        "recorded_at": "2026-11-25T10:15:00+01:00",
        "new_address": KOELN,
    }
    path = write_json(
        tmp_path / "mb.json", [record("MB-1"), record("MB-2", given_name="A")], [move]
    )
    assert register.import_file(path) == (2, 1)
    assert register.import_file(path) == (2, 0)
    (event,) = register.pending_life_events()
    assert event.effective_on == "2026-12-01"
    assert register.claims_for("MB-1", RESIDENCE_VCT)["address"] == KOELN


def test_import_is_atomic(register: Register, tmp_path: Path) -> None:
    bad_move = {
        "person_id": "MB-404",
        "moved_on": "2026-12-01",
        "recorded_at": "2026-11-25T10:15:00+01:00",
        "new_address": KOELN,
    }
    path = write_json(tmp_path / "mb.json", [record("MB-1")], [bad_move])
    with pytest.raises(UnknownSubject):
        register.import_file(path)
    assert register.person_ids() == []


def test_import_reports_bad_files_without_writing(register: Register, tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(
        "person_id,given_name,family_name,birthdate\nMB-1,A,B,1970-01-01\nMB-2,C,D,1970-02-30\n",
        encoding="utf-8",
    )
    with pytest.raises(MalformedInput, match=r"^malformed: bad\.csv:3: birthdate"):
        register.import_file(path)
    assert register.person_ids() == []


def test_two_connections_see_each_other(target: str) -> None:
    with Register.open(target) as first, Register.open(target) as second:
        put(first, "MB-1")
        second.bind_matrix_user("MB-1", "@thomas:localhost", "eid_check", NOW)
        assert first.person_for_matrix_user("@thomas:localhost") == "MB-1"


def test_concurrent_moves_from_several_connections(target: str) -> None:
    with Register.open(target) as setup:
        put(setup, "MB-1")

    def mover(worker: int) -> list[int]:
        with Register.open(target) as own:
            return [
                own.record_move(
                    "MB-1", {**KOELN, "street_address": f"Ring {worker}-{n}"}, NOW + n
                ).event_id
                for n in range(8)
            ]

    with ThreadPoolExecutor(max_workers=4) as pool:
        ids = [event_id for batch in pool.map(mover, range(4)) for event_id in batch]
    assert len(set(ids)) == 32
    with Register.open(target) as check:
        assert sorted(e.event_id for e in check.pending_life_events()) == sorted(ids)
        final = check.claims_for("MB-1", RESIDENCE_VCT)["address"]["street_address"]
        assert final.startswith("Ring ") and final.endswith("-7")
