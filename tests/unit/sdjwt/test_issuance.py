"""Issuing: payload shape, salts, decoys, ordering, recursion and refusals."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from onceonly import jose
from onceonly.errors import ForbiddenDisclosableClaim, IssuanceError, ReservedClaimName
from onceonly.sdjwt import IssuedSdJwt, parse_sd_jwt
from onceonly.sdjwt.disclosures import digest_of
from tests.unit.sdjwt.conftest import ISSUER, NOW, VCT, counter_random

Issue = Callable[..., IssuedSdJwt]

CLAIMS: dict[str, Any] = {
    "given_name": "Ana",
    "address": {"street": "Rua 1", "city": "Porto"},
    "nationalities": ["PT", "ES"],
}


def test_payload_carries_vc_claims_and_header(issue: Issue, holder_key: jose.PrivateKey) -> None:
    issued = issue(CLAIMS, [("given_name",)], not_before=NOW - 100, status={"idx": 3})
    jws = jose.parse_compact(issued.issuer_jwt)
    assert jws.header == {"alg": "ES256", "typ": "dc+sd-jwt", "kid": "issuer-1"}
    payload = jws.payload
    assert payload["iss"] == ISSUER and payload["vct"] == VCT
    assert payload["iat"] == NOW - 100 and payload["nbf"] == NOW - 100
    assert payload["exp"] == NOW + 86400 and payload["status"] == {"idx": 3}
    assert payload["cnf"] == {"jwk": holder_key.public().to_jwk()}
    assert payload["_sd_alg"] == "sha-256"
    assert "given_name" not in payload and payload["address"] == CLAIMS["address"]


def test_compact_serialization_ends_with_tilde_and_lists_all_disclosures(issue: Issue) -> None:
    issued = issue(CLAIMS, [("given_name",), ("address", "city")])
    text = issued.serialize()
    assert text.endswith("~")
    parts = text.split("~")
    assert parts[0] == issued.issuer_jwt
    assert parts[1:-1] == [d.disclosure.encoded for d in issued.disclosures]
    assert {d.path for d in issued.disclosures} == {("given_name",), ("address", "city")}


def test_salts_are_128_bits_and_unique(issue: Issue) -> None:
    issued = issue(CLAIMS, [("given_name",), ("address",), ("nationalities", None)])
    salts = [d.disclosure.salt for d in issued.disclosures]
    assert all(len(jose.b64url_decode(s)) >= 16 for s in salts)
    assert len(set(salts)) == len(salts)


def test_sd_arrays_sorted_and_hold_decoys(issue: Issue) -> None:
    issued = issue(CLAIMS, [("given_name",), ("address", "city")], decoys=3)
    payload = jose.parse_compact(issued.issuer_jwt).payload
    top, nested = payload["_sd"], payload["address"]["_sd"]
    assert top == sorted(top) and nested == sorted(nested)
    assert len(top) == 1 + 3 and len(nested) == 1 + 3
    real = {d.digest for d in issued.disclosures}
    assert len(set(top) - real) == 3  # the decoys match no disclosure


def test_no_decoys_and_no_sd_when_nothing_hidden(issue: Issue) -> None:
    payload = jose.parse_compact(issue(CLAIMS, [], decoys=0).issuer_jwt).payload
    assert "_sd" not in payload and "_sd" not in payload["address"]


def test_array_elements_become_placeholders(issue: Issue) -> None:
    issued = issue(CLAIMS, [("nationalities", 1)])
    payload = jose.parse_compact(issued.issuer_jwt).payload
    (element,) = issued.disclosures
    assert payload["nationalities"] == ["PT", {"...": element.digest}]
    assert element.disclosure.name is None and element.disclosure.value == "ES"


def test_recursive_disclosure_nests_digests(issue: Issue) -> None:
    issued = issue(CLAIMS, [("address",), ("address", "street")])
    by_path = {d.path: d for d in issued.disclosures}
    outer = by_path[("address",)].disclosure.value
    assert outer["city"] == "Porto" and "street" not in outer
    assert by_path[("address", "street")].digest in outer["_sd"]


def test_digest_is_hash_of_encoded_disclosure(issue: Issue) -> None:
    issued = issue(CLAIMS, [("given_name",)], hash_alg="sha-384")
    (item,) = issued.disclosures
    assert item.digest == digest_of(item.disclosure.encoded, "sha-384")
    decoded = json.loads(jose.b64url_decode(item.disclosure.encoded))
    assert decoded[1:] == ["given_name", "Ana"]


def test_deterministic_given_the_same_randomness(issue: Issue) -> None:
    first = issue(CLAIMS, [("given_name",)], random_bytes=counter_random("x"))
    second = issue(CLAIMS, [("given_name",)], random_bytes=counter_random("x"))
    assert first.disclosures == second.disclosures


@pytest.mark.parametrize("claim", ["iss", "nbf", "exp", "cnf", "vct", "status", "iat"])
def test_always_visible_claims_cannot_be_disclosable(issue: Issue, claim: str) -> None:
    with pytest.raises(ForbiddenDisclosableClaim):
        issue(CLAIMS, [(claim,)])


@pytest.mark.parametrize(
    "claims",
    [
        {"_sd": ["x"]},
        {"a": {"...": 1}},
        {"a": [{"_sd": []}]},
        {"a": {"_sd_alg": "sha-256"}},
        {"iss": "x"},
        {"cnf": {}},
    ],
    ids=["sd-top", "ellipsis-nested", "sd-in-array", "sd-alg-nested", "iss-given", "cnf-given"],
)
def test_reserved_claim_names_refused(issue: Issue, claims: dict[str, Any]) -> None:
    with pytest.raises(ReservedClaimName):
        issue(claims, [])


def test_unknown_disclosable_path_refused(issue: Issue) -> None:
    with pytest.raises(IssuanceError, match=r"address\.zip"):
        issue(CLAIMS, [("address", "zip")])


@pytest.mark.parametrize(
    "options",
    [
        {"hash_alg": "md5"},
        {"extra_header": {"typ": "JWT"}},
        {"extra_header": {"jwk": {}}},
        {"decoys": -1},
        {"expires_at": NOW - 200},
    ],
    ids=["hash", "typ-override", "jwk-header", "negative-decoys", "expired"],
)
def test_bad_arguments_refused(issue: Issue, options: dict[str, Any]) -> None:
    with pytest.raises(IssuanceError):
        issue(CLAIMS, [], **options)


def test_bad_path_is_a_programming_error(issue: Issue) -> None:
    with pytest.raises(ValueError, match="claim path"):
        issue(CLAIMS, [()])
    with pytest.raises(ValueError, match="component"):
        issue(CLAIMS, [("nationalities", -1)])


def test_short_randomness_is_a_programming_error(issue: Issue) -> None:
    with pytest.raises(ValueError, match="random_bytes"):
        issue(CLAIMS, [("given_name",)], random_bytes=lambda n: b"\x00" * (n - 1))


def test_json_serializations_parse_back(issue: Issue) -> None:
    issued = issue(CLAIMS, [("given_name",), ("nationalities", 0)])
    for text in (issued.serialize_json(), issued.serialize_json(general=True)):
        parsed = parse_sd_jwt(text)
        assert parsed.raw.issuer_jwt == issued.issuer_jwt
        assert parsed.claims["given_name"] == "Ana"
        assert parsed.claims["nationalities"] == ["PT", "ES"]


def test_header_is_read_back_from_the_signed_jwt(issue: Issue) -> None:
    issued = issue(CLAIMS, [], extra_header={"x5t#S256": "abc"})
    assert issued.header == {
        "alg": "ES256",
        "typ": "dc+sd-jwt",
        "kid": "issuer-1",
        "x5t#S256": "abc",
    }
