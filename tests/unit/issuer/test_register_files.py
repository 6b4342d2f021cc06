"""Register files: JSON and CSV parsing, with errors that name the file and line."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from issuer.register import (
    BIRTH_VCT,
    INCOME_VCT,
    RESIDENCE_VCT,
    VEHICLE_VCT,
    read_register_file,
)
from issuer.register.files import MAX_FILE_BYTES, parse_register_csv, parse_register_json
from onceonly.errors import DuplicateJsonKey, InputTooLarge, MalformedInput

GOOD_JSON = """{
  "format": "onceonly-register/1",
  "persons": [
    {
      "person_id": "MB-0001",
      "given_name": "Käthe",
      "family_name": "Groß",
      "birthdate": "1952-12-01",
      "claims": {
        "urn:onceonly:credential:residence:1": {
          "address": {
            "street_address": "Severinstraße 15",
            "postal_code": "50678",
            "locality": "Köln",
            "country": "DE"
          },
          "registered_since": "2003-10-01",
          "residence_type": "main"
        }
      }
    },
    {
      "person_id": "MB-0002",
      "given_name": "Sören",
      "family_name": "Groß",
      "birthdate": "1969-03-28",
      "claims": {}
    }
  ],
  "moves": [
    {
      "person_id": "MB-0001",
      "moved_on": "2026-12-01",
      "recorded_at": "2026-11-25T10:15:00+01:00",
      "new_address": {
        "street_address": "Venloer Straße 301",
        "postal_code": "50823",
        "locality": "Köln",
        "country": "DE"
      }
    }
  ]
}
"""

CSV_HEADER = (
    "person_id,given_name,family_name,birthdate,place_of_birth.locality,"
    "place_of_birth.country,income.tax_year,income.taxable_income_eur,"
    "income.assessment_date,income.tax_office\n"
)


def test_json_register_parses() -> None:
    content = parse_register_json(GOOD_JSON)
    assert [p.person_id for p in content.persons] == ["MB-0001", "MB-0002"]
    assert content.persons[0].claims[RESIDENCE_VCT]["address"]["locality"] == "Köln"
    assert content.persons[1].claims == {}
    (move,) = content.moves
    assert (move.person_id, move.moved_on) == ("MB-0001", "2026-12-01")
    assert move.recorded_at == datetime(2026, 11, 25, 9, 15, tzinfo=UTC)


def lines_with(replace: str, by: str) -> str:
    assert replace in GOOD_JSON
    return GOOD_JSON.replace(replace, by, 1)


@pytest.mark.parametrize(
    ("text", "line", "fragment"),
    [
        # Innermost object on the error path: the address object opens on line 11.
        (lines_with('"50678"', '"5067"'), 11, "address.postal_code"),
        (lines_with('"birthdate": "1969-03-28"', '"birthdate": "28.03.1969"'), 22, "birthdate"),
        (lines_with('"given_name": "Sören"', '"givenname": "Sören"'), 22, "given_name"),
        (lines_with('"moved_on": "2026-12-01"', '"moved_on": "2026-13-01"'), 31, "moved_on"),
        (lines_with("T10:15:00+01:00", "T10:15:00"), 31, "recorded_at"),
        (lines_with('"MB-0002"', '"MB-0001"'), 22, "already used on line 4"),
        (lines_with('"registered_since"', '"registered"'), 10, "registered_since"),
        (lines_with('}\n  ],\n  "moves"', '},\n  ],\n  "moves"'), 29, "invalid JSON"),
        (lines_with('"format": "onceonly-register/1"', '"format": "v2"'), 1, "format"),
        (lines_with('"moves": [', '"removals": ['), 1, "unknown member"),
    ],
)
def test_json_errors_carry_the_line(text: str, line: int, fragment: str) -> None:
    with pytest.raises(MalformedInput) as caught:
        parse_register_json(text, source="mb.json")
    assert caught.value.message.startswith(f"mb.json:{line}: "), caught.value.message
    assert fragment in caught.value.message


def test_json_duplicate_member_is_refused_with_its_line() -> None:
    text = lines_with('"given_name": "Sören",', '"given_name": "Sören", "given_name": "Jörg",')
    with pytest.raises(DuplicateJsonKey, match=r"mb\.json:22: member 'given_name' appears twice"):
        parse_register_json(text, source="mb.json")


@pytest.mark.parametrize(
    "text", ["[]", '{"format": "onceonly-register/1", "persons": {}}', "NaN", "{" * 5000]
)
def test_json_wrong_shapes(text: str) -> None:
    with pytest.raises(MalformedInput):
        parse_register_json(text)


def test_csv_register_converts_cells_by_schema_type() -> None:
    text = CSV_HEADER + "St-1,Jürgen,Müller,1978-05-12,Köln,DE,2025,58400,2026-06-12,Finanzamt\n"
    (record,) = parse_register_csv(text)
    assert record.place_of_birth is not None and record.place_of_birth.locality == "Köln"
    assert record.claims == {
        INCOME_VCT: {
            "tax_year": 2025,
            "taxable_income_eur": 58400,
            "assessment_date": "2026-06-12",
            "tax_office": "Finanzamt",
        }
    }


def test_csv_arrays_and_nested_paths() -> None:
    text = (
        "person_id,given_name,family_name,birthdate,place_of_birth.locality,"
        "place_of_birth.country,birth.register_number,birth.parents.0.given_name,"
        "birth.parents.0.family_name,birth.parents.1.given_name,birth.parents.1.family_name,"
        "pid.nationalities\n"
        "GB-1,Lea,Müller,2019-02-21,Berlin,DE,G 12/2019,Anna,Müller,Jürgen,Müller,DE;AT\n"
    )
    (record,) = parse_register_csv(text)
    assert record.claims[BIRTH_VCT]["parents"] == [
        {"given_name": "Anna", "family_name": "Müller"},
        {"given_name": "Jürgen", "family_name": "Müller"},
    ]
    assert record.claims["urn:onceonly:credential:pid:1"] == {"nationalities": ["DE", "AT"]}


def test_csv_empty_cells_are_absent_and_blank_rows_skipped() -> None:
    text = (
        "person_id,given_name,family_name,birthdate,vehicle.registration_plate\n"
        "\n"
        "KFZ-1,Björn,Weiß,1990-11-30,\n"
    )
    (record,) = parse_register_csv(text)
    assert record.claims == {}


@pytest.mark.parametrize(
    ("text", "line", "fragment"),
    [
        ("", 1, "empty file"),
        ("person_id,given_name,family_name\n", 1, "missing column(s) birthdate"),
        (CSV_HEADER.replace("income.tax_office", "income.office"), 1, "no such claim"),
        (CSV_HEADER.replace("income.tax_office", "salary"), 1, "unknown column 'salary'"),
        (CSV_HEADER.replace("income.tax_office", "given_name"), 1, "appears twice"),
        (CSV_HEADER + "St-1,Jürgen,Müller,1978-05-12,Köln,DE,2025,58400\n", 2, "8 cells"),
        (
            CSV_HEADER + "St-1,A,B,1978-05-12,,,2025,58400,2026-06-12,F\n"
            "St-2,A,B,1978-05-12,,,2025,viel,2026-06-12,F\n",
            3,
            "'viel' is not a whole number",
        ),
        (
            CSV_HEADER + "St-1,A,B,1978-05-12,,,2025,58400,2026-06-12,F\n"
            '"St-2,A,B,1978-05-32,,,2025,1,2026-06-12,F\n',
            3,
            "malformed CSV",
        ),
        (CSV_HEADER + "St-1,A,B,1978-05-32,,,2025,1,2026-06-12,F\n", 2, "birthdate"),
        (CSV_HEADER + "St-1,A,B,1978-05-12,,,1999,1,2026-06-12,F\n", 2, "tax_year"),
        (
            CSV_HEADER + "St-1,A,B,1978-05-12,,,2025,1,2026-06-12,F\n"
            "St-1,C,D,1978-05-12,,,2025,1,2026-06-12,F\n",
            3,
            "already used on line 2",
        ),
    ],
)
def test_csv_errors_carry_the_line(text: str, line: int, fragment: str) -> None:
    with pytest.raises(MalformedInput) as caught:
        parse_register_csv(text, source="tax.csv")
    assert caught.value.message.startswith(f"tax.csv:{line}: "), caught.value.message
    assert fragment in caught.value.message


def test_csv_boolean_cells() -> None:
    header = "person_id,given_name,family_name,birthdate,pid.nationalities,pid.age_over_18\n"
    (record,) = parse_register_csv(header + "ID-1,A,B,1978-05-12,DE,TRUE\n")
    assert record.claims["urn:onceonly:credential:pid:1"]["age_over_18"] is True
    with pytest.raises(MalformedInput, match=r"tax\.csv:2: .*'ja' is not true or false"):
        parse_register_csv(header + "ID-1,A,B,1978-05-12,DE,ja\n", source="tax.csv")


def test_read_register_file_picks_the_form_by_suffix(tmp_path: Path) -> None:
    as_json = tmp_path / "r.json"
    as_json.write_text(GOOD_JSON, encoding="utf-8")
    assert len(read_register_file(as_json).persons) == 2
    as_csv = tmp_path / "r.csv"
    # A byte-order mark, as spreadsheet programs write it, is tolerated.
    as_csv.write_bytes(
        b"\xef\xbb\xbf" + (CSV_HEADER + "St-1,A,B,1978-05-12,,,2025,1,2026-06-12,F\n").encode()
    )
    assert read_register_file(as_csv).persons[0].claims[INCOME_VCT]["tax_year"] == 2025
    other = tmp_path / "r.xml"
    other.write_text("<register/>", encoding="utf-8")
    with pytest.raises(MalformedInput, match=r"must end in \.json or \.csv"):
        read_register_file(other)


def test_read_register_file_refuses_bad_bytes_and_missing_files(tmp_path: Path) -> None:
    latin1 = tmp_path / "latin1.csv"
    latin1.write_bytes(CSV_HEADER.encode() + "St-1,Jürgen".encode("latin-1"))
    with pytest.raises(MalformedInput, match=r"latin1\.csv: not UTF-8"):
        read_register_file(latin1)
    with pytest.raises(MalformedInput, match="cannot read"):
        read_register_file(tmp_path / "absent.json")


def test_read_register_file_refuses_oversize(tmp_path: Path) -> None:
    big = tmp_path / "big.json"
    with big.open("wb") as handle:
        handle.truncate(MAX_FILE_BYTES + 1)
    with pytest.raises(InputTooLarge):
        read_register_file(big)


def test_vehicle_csv_nested_holder_validates() -> None:
    text = (
        "person_id,given_name,family_name,birthdate,vehicle.holder.given_name,"
        "vehicle.holder.family_name,vehicle.registration_plate,vehicle.vin,vehicle.make,"
        "vehicle.first_registration\n"
        "KFZ-1,Björn,Weiß,1990-11-30,Björn,Weiß,B-BW 990,W4R5JYVPPUEB45RUV,Tesla,2023-06-01\n"
    )
    (record,) = parse_register_csv(text)
    assert record.claims[VEHICLE_VCT]["holder"] == {"given_name": "Björn", "family_name": "Weiß"}
    with pytest.raises(MalformedInput, match="registration_plate"):
        parse_register_csv(text.replace("B-BW 990", "BBW990"))


def test_json_round_trip_of_sample_shape() -> None:
    document = json.loads(GOOD_JSON)
    document["persons"][0]["eid_card_number"] = "L01X00T47"
    assert parse_register_json(json.dumps(document)).persons[0].eid_card_number == "L01X00T47"
