"""Holder: parsing without trust, choosing disclosures by path, key binding."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from onceonly import jose
from onceonly.errors import InvalidDisclosure, KeyBindingError, MalformedInput, QueryNotSatisfied
from onceonly.sdjwt import (
    IssuedSdJwt,
    VerificationPolicy,
    parse_sd_jwt,
    present,
    present_disclosures,
    present_without_key_binding,
    select_disclosures,
    verify_presentation,
)
from onceonly.sdjwt.disclosures import digest_of
from tests.unit.sdjwt.conftest import AUD, NONCE, NOW

Issue = Callable[..., IssuedSdJwt]

CLAIMS: dict[str, Any] = {
    "name": "Ana",
    "address": {"street": "Rua 1", "city": "Porto", "geo": {"lat": 41.1, "lon": -8.6}},
    "children": [{"name": "Rui", "born": 2015}, {"name": "Eva", "born": 2018}],
    "tags": [],
}
DISCLOSABLE = [
    ("name",),
    ("address",),
    ("address", "street"),
    ("address", "geo"),
    ("address", "geo", "lat"),
    ("children", None),
    ("children", None, "born"),
]


@pytest.fixture
def held(issue: Issue) -> Any:
    return parse_sd_jwt(issue(CLAIMS, DISCLOSABLE).serialize())


def paths_of(held: Any, selected: list[str]) -> set[tuple[Any, ...]]:
    by_encoded = {d.disclosure.encoded: d.path for d in held.disclosures}
    return {by_encoded[s] for s in selected}


def test_parse_places_every_disclosure(held: Any) -> None:
    assert {d.path for d in held.disclosures} == {
        ("name",),
        ("address",),
        ("address", "street"),
        ("address", "geo"),
        ("address", "geo", "lat"),
        ("children", 0),
        ("children", 1),
        ("children", 0, "born"),
        ("children", 1, "born"),
    }
    assert held.claims["address"]["geo"] == {"lat": 41.1, "lon": -8.6}
    assert held.key_binding_jwt is None


def test_nested_path_pulls_in_its_parents(held: Any) -> None:
    selected = select_disclosures(held, [("address", "geo", "lat")])
    assert paths_of(held, selected) == {("address",), ("address", "geo"), ("address", "geo", "lat")}


def test_object_path_pulls_in_everything_below(held: Any) -> None:
    selected = select_disclosures(held, [("address",)])
    assert paths_of(held, selected) == {
        ("address",),
        ("address", "street"),
        ("address", "geo"),
        ("address", "geo", "lat"),
    }


def test_wildcard_and_index(held: Any) -> None:
    assert paths_of(held, select_disclosures(held, [("children", None, "name")])) == {
        ("children", 0),
        ("children", 1),
    }
    assert paths_of(held, select_disclosures(held, [("children", 1, "born")])) == {
        ("children", 1),
        ("children", 1, "born"),
    }


def test_always_visible_path_needs_no_disclosure(held: Any) -> None:
    assert select_disclosures(held, [("address", "city")]) == [
        d.disclosure.encoded for d in held.disclosures if d.path == ("address",)
    ]
    assert select_disclosures(held, [("iss",)]) == []
    assert select_disclosures(held, [("tags", None)]) == []


@pytest.mark.parametrize(
    "path",
    [("surname",), ("address", "zip"), ("children", 5), ("nothing", None), ("name", "x")],
)
def test_missing_claims_are_reported(held: Any, path: tuple[Any, ...]) -> None:
    with pytest.raises(QueryNotSatisfied):
        select_disclosures(held, [path])


def test_presentation_verifies_and_hides_the_rest(
    held: Any, holder_key: jose.PrivateKey, issuer_key: jose.PrivateKey, policy: Any
) -> None:
    text = present(
        held,
        disclose=[("children", 1, "born"), ("address", "street")],
        holder_key=holder_key,
        aud=AUD,
        nonce=NONCE,
        now=NOW,
    )
    result = verify_presentation(text, issuer_key=issuer_key.public(), policy=policy, now=NOW)
    assert result.claims["children"] == [{"name": "Eva", "born": 2018}]
    assert result.claims["address"] == {"street": "Rua 1", "city": "Porto"}
    assert "name" not in result.claims
    assert result.key_binding is not None and result.key_binding.nonce == NONCE


def test_kb_jwt_covers_exactly_the_presented_string(held: Any, holder_key: jose.PrivateKey) -> None:
    text = present(held, disclose=[("name",)], holder_key=holder_key, aud=AUD, nonce=NONCE, now=NOW)
    prefix, kb = text.rsplit("~", 1)
    jws = jose.verify_compact(kb, holder_key.public(), expected_typ="kb+jwt")
    assert jws.payload == {
        "iat": NOW,
        "aud": AUD,
        "nonce": NONCE,
        "sd_hash": digest_of(prefix + "~"),
    }
    assert "kid" not in jws.header


def test_present_refuses_a_key_that_is_not_bound(held: Any) -> None:
    with pytest.raises(KeyBindingError):
        present(
            held,
            disclose=[("name",)],
            holder_key=jose.generate_private_key(),
            aud=AUD,
            nonce=NONCE,
            now=NOW,
        )


def test_present_without_kb_ends_with_tilde(held: Any, issuer_key: jose.PrivateKey) -> None:
    text = present_without_key_binding(held, disclose=[("name",)])
    assert text.endswith("~") and text.count("~") == 2
    policy = VerificationPolicy(require_key_binding=False)
    result = verify_presentation(text, issuer_key=issuer_key.public(), policy=policy, now=NOW)
    assert result.claims["name"] == "Ana" and result.key_binding is None


def test_json_form_is_kept(issue: Issue, holder_key: jose.PrivateKey) -> None:
    held = parse_sd_jwt(issue(CLAIMS, DISCLOSABLE).serialize_json(general=True))
    text = present(held, disclose=[("name",)], holder_key=holder_key, aud=AUD, nonce=NONCE, now=NOW)
    assert text.startswith("{") and '"signatures"' in text and '"kb_jwt"' in text


@pytest.mark.parametrize(
    ("text", "error"),
    [("abc", MalformedInput), ("a.b.c~", MalformedInput), ("~", MalformedInput)],
)
def test_parse_rejects_garbage(text: str, error: type[Exception]) -> None:
    with pytest.raises(error):
        parse_sd_jwt(text)


def test_parse_rejects_unreferenced_disclosure(issue: Issue) -> None:
    text = issue(CLAIMS, DISCLOSABLE).serialize()
    with pytest.raises(InvalidDisclosure):
        parse_sd_jwt(text + jose.b64url_encode(b'["salt","x",1]') + "~")


def test_wildcard_opens_only_elements_that_have_the_claim(issue: Issue) -> None:
    claims = {"pets": [{"name": "Rex", "chip": "123"}, {"name": "Tom"}]}
    held = parse_sd_jwt(issue(claims, [("pets", None), ("pets", None, "chip")]).serialize())
    assert paths_of(held, select_disclosures(held, [("pets", None, "chip")])) == {
        ("pets", 0),
        ("pets", 0, "chip"),
    }
    # A wildcard that matches nothing inside an existing array discloses nothing.
    assert select_disclosures(held, [("pets", None, "owner")]) == []


def test_present_disclosures_uses_exactly_the_given_ones(
    held: Any, holder_key: jose.PrivateKey, issuer_key: jose.PrivateKey, policy: Any
) -> None:
    by_path = {d.path: d.disclosure.encoded for d in held.disclosures}
    chosen = [by_path[("children", 1)], by_path[("name",)]]  # any order in, issued order out
    text = present_disclosures(
        held, disclosures=chosen, holder_key=holder_key, aud=AUD, nonce=NONCE, now=NOW
    )
    assert text.split("~")[1:-1] == [e for e in by_path.values() if e in chosen]
    result = verify_presentation(text, issuer_key=issuer_key.public(), policy=policy, now=NOW)
    assert result.disclosed_paths == {("children", 1), ("name",)}
    assert result.claims["children"] == [{"name": "Eva"}]


def test_present_disclosures_refuses_foreign_ones(held: Any, holder_key: jose.PrivateKey) -> None:
    with pytest.raises(InvalidDisclosure):
        present_disclosures(
            held,
            disclosures=[jose.b64url_encode(b'["s","x",1]')],
            holder_key=holder_key,
            aud=AUD,
            nonce=NONCE,
            now=NOW,
        )
