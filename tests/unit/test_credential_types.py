"""Shipped credential types: metadata and schemas agree, and validation bites."""

import json
from pathlib import Path
from typing import Any

import pytest

from onceonly import credential_types as ct
from onceonly.errors import ConfigError, InvalidClaim

EXPECTED = {
    "urn:onceonly:credential:pid:1",
    "urn:onceonly:credential:residence:1",
    "urn:onceonly:credential:birth-certificate:1",
    "urn:onceonly:credential:vehicle-registration:1",
    "urn:onceonly:credential:income-tax-assessment:1",
}

ALWAYS_VISIBLE = {"iss", "iat", "nbf", "exp", "vct", "cnf", "status"}


def test_all_expected_types_ship() -> None:
    assert set(ct.all_types()) == EXPECTED


@pytest.mark.parametrize("vct", sorted(EXPECTED))
def test_metadata_paths_exist_in_schema(vct: str) -> None:
    ctype = ct.get_type(vct)
    assert ctype.name_de and ctype.name_en and ctype.name_de != ctype.name_en
    for claim in ctype.claims:
        node: Any = ctype.schema
        for step in claim.path:
            if step is None:
                node = node["items"]
            else:
                assert step not in ALWAYS_VISIBLE, f"{claim.path} would disclose a protected claim"
                node = node["properties"][step]
        assert claim.label_de and claim.label_en


@pytest.mark.parametrize("vct", sorted(EXPECTED))
def test_every_required_claim_is_labelled(vct: str) -> None:
    ctype = ct.get_type(vct)
    labelled = {c.path[0] for c in ctype.claims}
    required = set(ctype.schema["required"]) - ALWAYS_VISIBLE
    assert required <= labelled


def _residence() -> dict[str, Any]:
    return {
        "iss": "https://meldebehoerde.example",
        "iat": 1,
        "exp": 2,
        "vct": "urn:onceonly:credential:residence:1",
        "cnf": {"jwk": {}},
        "given_name": "Jürgen",
        "family_name": "Müller-Lüdenscheidt",
        "address": {
            "street_address": "Schönhauser Allee 12",
            "postal_code": "10119",
            "locality": "Berlin",
            "country": "DE",
        },
        "registered_since": "2026-10-01",
        "residence_type": "main",
    }


def test_valid_payload_passes() -> None:
    ct.get_type("urn:onceonly:credential:residence:1").validate(_residence())


@pytest.mark.parametrize(
    ("mutate", "where"),
    [
        (lambda p: p["address"].update(postal_code="1011"), "address/postal_code"),
        (lambda p: p.pop("registered_since"), "(root)"),
        (lambda p: p.update(residence_type="tent"), "residence_type"),
        (lambda p: p.update(vct="urn:other"), "vct"),
        (lambda p: p["address"].update(extra="x"), "address"),
    ],
)
def test_invalid_payload_names_location(mutate: Any, where: str) -> None:
    payload = _residence()
    mutate(payload)
    with pytest.raises(InvalidClaim, match=where):
        ct.get_type("urn:onceonly:credential:residence:1").validate(payload)


def test_unknown_type() -> None:
    with pytest.raises(ConfigError):
        ct.get_type("urn:nope")


def test_labels() -> None:
    pid = ct.get_type("urn:onceonly:credential:pid:1")
    assert pid.label(("birthdate",), "de") == "Geburtsdatum"
    assert pid.label(("address", "locality"), "en") == "Locality"
    assert pid.label(("unknown", 0), "en") == "unknown.0"


def test_schema_file_is_named_under_the_onceonly_member_not_a_draft_member() -> None:
    # schema_uri left the SD-JWT VC draft: it lives in our namespaced extension member.
    for ctype in ct.all_types().values():
        assert "schema_uri" not in ctype.metadata
        assert ctype.metadata[ct.ONCEONLY_MEMBER]["schema_uri"].endswith(".schema.json")
        assert ctype.type_metadata.vct == ctype.vct
        assert ct.type_metadata(ctype.vct) is ctype.type_metadata
    assert ct.type_metadata("urn:nope") is None


@pytest.mark.parametrize(
    "member",
    [None, {"schema_uri": 5}, {"schema_uri": "../secret.json"}, "pid.schema.json"],
)
def test_type_without_a_usable_schema_reference_is_a_config_error(
    tmp_path: Path, member: object
) -> None:
    source = ct.SCHEMA_DIR / "pid.vct.json"
    document = json.loads(source.read_text(encoding="utf-8"))
    document.pop(ct.ONCEONLY_MEMBER)
    if member is not None:
        document[ct.ONCEONLY_MEMBER] = member
    (tmp_path / "pid.vct.json").write_text(json.dumps(document), encoding="utf-8")
    (tmp_path / "pid.schema.json").write_text("{}", encoding="utf-8")
    with pytest.raises(ConfigError):
        ct.all_types.__wrapped__(tmp_path)


def test_malformed_claim_metadata_is_a_config_error(tmp_path: Path) -> None:
    document = json.loads((ct.SCHEMA_DIR / "pid.vct.json").read_text(encoding="utf-8"))
    document["claims"][0]["sd"] = "mostly"
    (tmp_path / "pid.vct.json").write_text(json.dumps(document), encoding="utf-8")
    with pytest.raises(ConfigError, match="sd"):
        ct.all_types.__wrapped__(tmp_path)


@pytest.mark.parametrize("vct", sorted(EXPECTED))
def test_mandatory_claims_are_required_by_the_schema(vct: str) -> None:
    # The wallet enforces "mandatory" (draft: a holder with every disclosure can
    # tell a mandatory claim is missing) through the type's JSON Schema.
    ctype = ct.get_type(vct)
    for claim in ctype.type_metadata.claims:
        if not claim.mandatory or not all(isinstance(p, str) for p in claim.path):
            continue
        node: Any = ctype.schema
        for name in claim.path:
            assert name in node.get("required", []), (vct, claim.path)
            node = node["properties"][name]
