"""Command-line forms of trust list entries."""

from __future__ import annotations

import pytest

from onceonly import errors, jose
from onceonly.trust.specs import (
    agency_keys,
    describe,
    iso_time,
    parse_purpose_spec,
    parse_request_spec,
    parse_time,
    parse_window,
)

from .conftest import NOW, Keys, make_list


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("0", 0),
        ("1767225600", 1_767_225_600),
        ("2026-01-01", 1_767_225_600),
        ("2026-01-01T01:00:00+01:00", 1_767_225_600),
        ("2026-01-01T00:00:00Z", 1_767_225_600),
    ],
)
def test_parse_time(text: str, seconds: int) -> None:
    assert parse_time(text) == seconds


@pytest.mark.parametrize("text", ["", "soon", "-5", "2026-13-01", "١٢٣"])
def test_parse_time_rejects(text: str) -> None:
    with pytest.raises(errors.MalformedInput):
        parse_time(text)


def test_iso_time() -> None:
    assert iso_time(1_767_225_600) == "2026-01-01T00:00:00Z"


def test_parse_window() -> None:
    assert parse_window("", default_from=5) == (5, None)
    assert parse_window("..", default_from=5) == (5, None)
    assert parse_window("10..20", default_from=5) == (10, 20)
    assert parse_window("..20", default_from=5) == (5, 20)
    with pytest.raises(errors.MalformedInput):
        parse_window("2026-01-01", default_from=5)


def test_parse_request_spec_splits_at_last_colon() -> None:
    assert parse_request_spec("urn:eudi:pid:de:1:address.locality") == (
        "urn:eudi:pid:de:1",
        ("address", "locality"),
    )
    assert parse_request_spec("https://x.example/vct:list.*") == (
        "https://x.example/vct",
        ("list", None),
    )
    for bad in ["address", ":address", "vct:"]:
        with pytest.raises(errors.MalformedInput):
            parse_request_spec(bad)


def test_parse_purpose_spec() -> None:
    purpose = parse_purpose_spec("benefit:Kindergeld: Antrag:Child benefit: application")
    assert purpose.code == "benefit"
    assert purpose.text.de == "Kindergeld"
    assert purpose.text.en == " Antrag:Child benefit: application"
    for bad in ["benefit", "benefit:de", "Bad:de:en", "ok::en"]:
        with pytest.raises(errors.MalformedInput):
            parse_purpose_spec(bad)


def test_agency_keys_from_jwk_set_get_thumbprint_kids() -> None:
    first, second = jose.generate_private_key(), jose.generate_private_key(jose.EDDSA)
    data = {"keys": [first.public().to_jwk(), second.public().to_jwk()]}
    keys = agency_keys(data, valid_from=1, valid_until=2, source="set.json")
    assert [k.kid for k in keys] == [first.public().thumbprint(), second.public().thumbprint()]
    assert all((k.valid_from, k.valid_until) == (1, 2) for k in keys)
    with pytest.raises(errors.MalformedInput):
        agency_keys({"keys": []}, valid_from=1, valid_until=None, source="empty.json")
    with pytest.raises(errors.MalformedInput, match="private"):
        agency_keys(first.to_jwk(), valid_from=1, valid_until=None, source="secret.json")


def test_describe_mentions_every_agency_and_grant(keys: Keys) -> None:
    text = describe(make_list(keys), verified=True)
    assert "signature verified" in text
    assert "Bürgeramt / Citizens' office" in text
    assert "key reg-2025 (ES256)" in text
    assert "may request https://onceonly.example/vct/residence: address, nationalities.*" in text
    assert iso_time(NOW) in text
