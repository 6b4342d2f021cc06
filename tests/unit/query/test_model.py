"""The DCQL model accepts the specification's examples and rejects malformed queries."""

from __future__ import annotations

import json
from typing import Any

import pytest

from onceonly.errors import InputTooLarge, MalformedInput
from onceonly.query import DcqlQuery, parse_query

PID = "https://credentials.example.com/identity_credential"


def _credential(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "id": "pid",
        "format": "dc+sd-jwt",
        "meta": {"vct_values": [PID]},
        "claims": [{"path": ["given_name"]}, {"path": ["address", "street_address"]}],
    }
    base.update(overrides)
    return base


def test_spec_claims_alternatives_example_parses() -> None:
    query = parse_query(
        {
            "credentials": [
                _credential(
                    claims=[
                        {"id": "a", "path": ["family_name"]},
                        {"id": "b", "path": ["postal_code"]},
                        {"id": "c", "path": ["locality"]},
                        {"id": "d", "path": ["region"]},
                        {"id": "e", "path": ["date_of_birth"]},
                    ],
                    claim_sets=[["a", "c", "d", "e"], ["a", "b", "e"]],
                )
            ]
        }
    )
    cq = query.credentials[0]
    assert cq.claim_sets == (("a", "c", "d", "e"), ("a", "b", "e"))
    assert cq.multiple is False
    assert cq.require_cryptographic_holder_binding is True


def test_round_trip_through_json_text() -> None:
    wire = {
        "credentials": [
            _credential(claims=[{"path": ["nationalities", None]}, {"path": ["degrees", 1]}]),
            _credential(id="other", claims=[{"path": ["age_over_18"], "values": [True]}]),
        ],
        "credential_sets": [{"options": [["pid"], ["other"]], "required": True}],
    }
    query = parse_query(json.dumps(wire))
    out = query.to_json_dict()
    assert out["credentials"][0]["claims"] == wire["credentials"][0]["claims"]
    assert out["credentials"][1]["claims"] == wire["credentials"][1]["claims"]
    assert out["credential_sets"] == wire["credential_sets"]
    assert out["credentials"][0]["multiple"] is False
    assert "claim_sets" not in out["credentials"][0]
    assert query.credentials[0].claims is not None
    assert query.credentials[0].claims[0].path == ("nationalities", None)
    assert parse_query(json.dumps(query.to_json_dict())) == query


def test_unknown_members_are_ignored_as_dcql_requires() -> None:
    query = parse_query({"credentials": [_credential(future_member=[])], "future": 1})
    assert query.credentials[0].id == "pid"


def test_values_keep_their_json_type() -> None:
    query = parse_query(
        {"credentials": [_credential(claims=[{"path": ["x"], "values": [True, 1, "1"]}])]}
    )
    claims = query.credentials[0].claims
    assert claims is not None
    assert [type(v) for v in claims[0].values or ()] == [bool, int, str]


@pytest.mark.parametrize(
    ("credential", "why"),
    [
        (_credential(id="has space"), "id charset"),
        (_credential(id=""), "empty id"),
        (_credential(format="mso_mdoc"), "format"),
        (_credential(meta={}), "vct_values required"),
        (_credential(meta={"vct_values": []}), "vct_values empty"),
        (_credential(claims=[]), "claims empty"),
        (_credential(claims=[{"path": []}]), "empty path"),
        (_credential(claims=[{"path": [-1]}]), "negative index"),
        (_credential(claims=[{"path": [True]}]), "bool in path"),
        (_credential(claims=[{"path": [1.5]}]), "float in path"),
        (_credential(claims=[{"path": ["a"], "values": []}]), "empty values"),
        (_credential(claims=[{"path": ["a"], "values": [{"x": 1}]}]), "object value"),
        (_credential(claims=[{"path": ["a"], "values": [1.5]}]), "float value"),
        (
            _credential(claims=[{"id": "x", "path": ["a"]}, {"id": "x", "path": ["b"]}]),
            "duplicate claim id",
        ),
        (_credential(claims=None, claim_sets=[["a"]]), "claim_sets without claims"),
        (
            _credential(claims=[{"id": "a", "path": ["a"]}, {"path": ["b"]}], claim_sets=[["a"]]),
            "claim without id under claim_sets",
        ),
        (
            _credential(claims=[{"id": "a", "path": ["a"]}], claim_sets=[["b"]]),
            "unknown claim id",
        ),
        (_credential(claims=[{"id": "a", "path": ["a"]}], claim_sets=[[]]), "empty claim set"),
        (_credential(claims=[{"id": "a", "path": ["a"]}], claim_sets=[]), "no claim sets"),
        (_credential(require_cryptographic_holder_binding="false"), "holder binding not a bool"),
        (_credential(trusted_authorities=[]), "empty trusted_authorities"),
        (_credential(trusted_authorities=[{"type": "aki"}]), "authority without values"),
        (_credential(trusted_authorities=[{"type": "aki", "values": []}]), "empty values"),
        (_credential(trusted_authorities=[{"values": ["x"]}]), "authority without type"),
        (_credential(trusted_authorities=[{"type": "aki", "values": [1]}]), "value not a str"),
        (_credential(multiple="yes"), "multiple not a bool"),
    ],
)
def test_malformed_credential_queries_are_rejected(credential: dict[str, Any], why: str) -> None:
    if credential.get("claims", 0) is None:
        del credential["claims"]
    with pytest.raises(MalformedInput):
        parse_query({"credentials": [credential]})


@pytest.mark.parametrize(
    "query",
    [
        {"credentials": []},
        {"credentials": [_credential(), _credential()]},
        {"credentials": [_credential()], "credential_sets": []},
        {"credentials": [_credential()], "credential_sets": [{"options": []}]},
        {"credentials": [_credential()], "credential_sets": [{"options": [[]]}]},
        {"credentials": [_credential()], "credential_sets": [{"options": [["nope"]]}]},
        {
            "credentials": [_credential()],
            "credential_sets": [{"options": [["pid"]], "required": 1}],
        },
    ],
)
def test_malformed_queries_are_rejected(query: dict[str, Any]) -> None:
    with pytest.raises(MalformedInput):
        parse_query(query)


def test_not_an_object_and_bad_json_are_malformed() -> None:
    with pytest.raises(MalformedInput):
        parse_query("[1, 2]")
    with pytest.raises(MalformedInput):
        parse_query('{"credentials": [}')
    with pytest.raises(MalformedInput):
        parse_query('{"credentials": [], "credentials": []}')


def test_size_bounds_raise_input_too_large() -> None:
    too_many = [_credential(id=f"c{i}") for i in range(17)]
    with pytest.raises(InputTooLarge):
        parse_query({"credentials": too_many})
    long_path = _credential(claims=[{"path": ["a"] * 17}])
    with pytest.raises(InputTooLarge):
        parse_query({"credentials": [long_path]})
    huge_index = _credential(claims=[{"path": ["a", 10_001]}])
    with pytest.raises(InputTooLarge):
        parse_query({"credentials": [huge_index]})
    with pytest.raises(InputTooLarge):
        parse_query(b"{" + b" " * 40_000 + b"}")


def test_too_large_is_still_malformed_for_callers_that_catch_the_family() -> None:
    with pytest.raises(MalformedInput):
        parse_query({"credentials": [_credential(id=f"c{i}") for i in range(17)]})


def test_model_is_frozen() -> None:
    query = parse_query({"credentials": [_credential()]})
    with pytest.raises(ValueError, match="frozen"):
        query.credentials[0].id = "other"  # type: ignore[misc]
    assert isinstance(query, DcqlQuery)


def test_a_duplicate_claim_query_is_ignored_not_fatal() -> None:
    # OpenID4VP 1.0 §6.1: "Wallets SHOULD ignore such duplicate claim queries."
    query = parse_query(
        {"credentials": [_credential(claims=[{"path": ["a"]}, {"path": ["b"]}, {"path": ["a"]}])]}
    )
    claims = query.credentials[0].claims
    assert claims is not None
    assert [claim.path for claim in claims] == [("a",), ("b",)]


def test_a_claim_set_naming_an_ignored_duplicate_names_the_one_kept() -> None:
    query = parse_query(
        {
            "credentials": [
                _credential(
                    claims=[
                        {"id": "first", "path": ["a"]},
                        {"id": "other", "path": ["b"]},
                        {"id": "again", "path": ["a"], "values": ["x"]},
                    ],
                    claim_sets=[["again", "other"], ["first", "again"]],
                )
            ]
        }
    )
    cq = query.credentials[0]
    assert [claim.id for claim in cq.claims or ()] == ["first", "other"]
    assert cq.claim_sets == (("first", "other"), ("first",))


def test_holder_binding_not_required_is_a_valid_query() -> None:
    query = parse_query({"credentials": [_credential(require_cryptographic_holder_binding=False)]})
    assert query.credentials[0].require_cryptographic_holder_binding is False
    assert (
        parse_query({"credentials": [_credential()]})
        .credentials[0]
        .require_cryptographic_holder_binding
    )


def test_trusted_authorities_accept_only_the_agencies_named() -> None:
    cq = parse_query(
        {
            "credentials": [
                _credential(
                    trusted_authorities=[
                        {"type": "aki", "values": ["s9tIpPmhxdiuNkHMEWNpYim8S8Y"]},
                        {"type": "onceonly_agency", "values": ["did:web:registry.example"]},
                    ]
                )
            ]
        }
    ).credentials[0]
    assert cq.accepts_issuer("did:web:registry.example")
    assert not cq.accepts_issuer("did:web:other.example")
    assert not cq.accepts_issuer(None)
    # Without trusted_authorities every (trust-listed) issuer may answer.
    assert parse_query({"credentials": [_credential()]}).credentials[0].accepts_issuer(None)


def test_x509_and_federation_authorities_match_no_credential_of_this_protocol() -> None:
    for kind in ("aki", "etsi_tl", "openid_federation"):
        cq = parse_query(
            {
                "credentials": [
                    _credential(
                        trusted_authorities=[{"type": kind, "values": ["did:web:registry.example"]}]
                    )
                ]
            }
        ).credentials[0]
        assert not cq.accepts_issuer("did:web:registry.example")
