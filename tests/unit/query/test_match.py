"""Wallet-side matching: candidates, minimal disclosures, claim_sets, credential_sets, misses."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from onceonly.errors import MalformedInput, QueryNotSatisfied
from onceonly.query import (
    HIDDEN,
    HeldCredential,
    claims_satisfy,
    find_candidates,
    match_query,
    parse_query,
    select_presentation,
)
from tests.unit.query.sd_view import verifier_view

PID = "https://credentials.example.com/identity_credential"
RESIDENCE = "https://cred.example/residence_credential"

ARTHUR: dict[str, Any] = {
    "iss": "https://issuer.example",
    "vct": PID,
    "cnf": {"jwk": {"kty": "EC"}},
    "name": "Arthur Dent",
    "age_over_18": True,
    "address": {
        "street_address": "42 Market Street",
        "locality": "Milliways",
        "postal_code": "12345",
    },
    "degrees": [
        {"type": "Bachelor of Science", "university": "University of Betelgeuse"},
        {"type": "Master of Science", "university": "University of Betelgeuse"},
    ],
    "nationalities": ["British", "Betelgeusian"],
}
ARTHUR_DISCLOSABLE = frozenset(
    {
        ("name",),
        ("age_over_18",),
        ("address",),
        ("address", "street_address"),
        ("address", "locality"),
        ("degrees", 0),
        ("degrees", 1),
        ("degrees", 0, "type"),
        ("degrees", 1, "type"),
        ("nationalities", 0),
        ("nationalities", 1),
    }
)
VISIBLE = frozenset({"iss", "vct", "cnf", "degrees", "nationalities"})


def held(
    credential_id: str = "arthur",
    claims: dict[str, Any] | None = None,
    vct: str = PID,
    disclosable: frozenset[Any] = ARTHUR_DISCLOSABLE,
) -> HeldCredential:
    claims = copy.deepcopy(ARTHUR) if claims is None else claims
    claims["vct"] = vct
    return HeldCredential(credential_id, vct, claims, disclosable, VISIBLE)


def one_query(*claims: dict[str, Any], vct: str = PID, **extra: Any) -> Any:
    credential: dict[str, Any] = {"id": "q", "format": "dc+sd-jwt", "meta": {"vct_values": [vct]}}
    if claims:
        credential["claims"] = list(claims)
    credential.update(extra)
    return parse_query({"credentials": [credential]})


def only_candidate(query: Any, *credentials: HeldCredential) -> Any:
    match = match_query(query, credentials or (held(),))
    candidates = match.for_query("q").candidates
    assert len(candidates) == 1
    return candidates[0]


def assert_verifier_sees(query: Any, credential: HeldCredential, disclosures: Any) -> None:
    view = verifier_view(credential.claims, credential.disclosable_paths, disclosures)
    claims_satisfy(query, {"q": view})


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        (["name"], {("name",)}),
        (["address", "street_address"], {("address",), ("address", "street_address")}),
        # The whole object: its own disclosure and every one inside it.
        (
            ["address"],
            {("address",), ("address", "street_address"), ("address", "locality")},
        ),
        (["address", "postal_code"], {("address",)}),
        (
            ["degrees", None, "type"],
            {("degrees", 0), ("degrees", 1), ("degrees", 0, "type"), ("degrees", 1, "type")},
        ),
        (["degrees", None, "university"], {("degrees", 0), ("degrees", 1)}),
        # An index discloses that element only: its position is as issued, and the
        # verifier counts the elements it cannot see.
        (["degrees", 1, "type"], {("degrees", 1), ("degrees", 1, "type")}),
        (["nationalities", 0], {("nationalities", 0)}),
        (["nationalities", 1], {("nationalities", 1)}),
        (["nationalities"], {("nationalities", 0), ("nationalities", 1)}),
        (["iss"], set()),
        (["cnf", "jwk", "kty"], set()),
    ],
)
def test_minimal_disclosures_per_path(path: list[Any], expected: set[Any]) -> None:
    query = one_query({"path": path})
    candidate = only_candidate(query)
    assert candidate.disclosures == frozenset(expected)
    assert_verifier_sees(query, held(), candidate.disclosures)


def test_index_discloses_only_the_selected_element() -> None:
    query = one_query({"path": ["nationalities", 1], "values": ["Betelgeusian"]})
    candidate = only_candidate(query)
    assert candidate.disclosures == {("nationalities", 1)}
    assert candidate.revealed == (("nationalities", 1),)
    view = verifier_view(ARTHUR, ARTHUR_DISCLOSABLE, candidate.disclosures)
    # The verifier cannot see element 0, but knows it is there: index 1 is still index 1.
    assert view["nationalities"] == [HIDDEN, "Betelgeusian"]
    claims_satisfy(query, {"q": view})


def test_revealed_lists_plain_members_of_opened_containers() -> None:
    # degrees[1] is disclosable, its "university" is not: asking for degrees[1].type
    # opens the element, and the university comes with it.
    query = one_query({"path": ["degrees", 1, "type"]})
    assert only_candidate(query).revealed == (("degrees", 1, "type"), ("degrees", 1, "university"))
    # address.postal_code is plain: opening the address shows it, not the disclosable rest.
    query = one_query({"path": ["address", "postal_code"]})
    assert only_candidate(query).revealed == (("address", "postal_code"),)
    query = one_query({"path": ["address", "locality"]})
    assert only_candidate(query).revealed == (("address", "locality"), ("address", "postal_code"))
    # Always-visible claims are not revealed by a disclosure.
    assert only_candidate(one_query({"path": ["iss"]})).revealed == ()


def test_null_with_values_discloses_only_matching_elements() -> None:
    query = one_query({"path": ["nationalities", None], "values": ["Betelgeusian"]})
    candidate = only_candidate(query)
    assert candidate.disclosures == {("nationalities", 1)}
    assert candidate.claim_paths == (("nationalities", 1),)
    assert_verifier_sees(query, held(), candidate.disclosures)


def test_several_claims_union_and_claim_paths_in_query_order() -> None:
    query = one_query({"path": ["name"]}, {"path": ["address", "locality"]})
    candidate = only_candidate(query)
    assert candidate.disclosures == {("name",), ("address",), ("address", "locality")}
    assert candidate.claim_paths == (("name",), ("address", "locality"))
    assert candidate.claim_set is None


def test_absent_claims_need_no_disclosure() -> None:
    candidate = only_candidate(one_query())
    assert candidate.disclosures == frozenset()
    assert candidate.claim_paths == ()


@pytest.mark.parametrize(
    ("claim", "reason"),
    [
        ({"path": ["birth_date"]}, "missing"),
        ({"path": ["address", "country"]}, "missing"),
        ({"path": ["nationalities", 5]}, "missing"),
        ({"path": ["name", "first"]}, "not_an_object"),
        ({"path": ["name", 0]}, "not_an_array"),
        ({"path": ["address", None]}, "not_an_array"),
        ({"path": ["name"], "values": ["Ford Prefect"]}, "value_mismatch"),
        # Exact JSON type: true is not 1, "12345" is not 12345.
        ({"path": ["age_over_18"], "values": [1]}, "value_mismatch"),
        ({"path": ["address", "postal_code"], "values": [12345]}, "value_mismatch"),
    ],
)
def test_no_match_names_the_claim_and_the_reason(claim: dict[str, Any], reason: str) -> None:
    query = one_query({"path": ["iss"]}, claim)
    with pytest.raises(QueryNotSatisfied) as caught:
        match_query(query, [held()])
    assert caught.value.detail == {
        "credential_query": "q",
        "claim_path": claim["path"],
        "reason": reason,
    }
    assert "Arthur" not in str(caught.value)  # never a claim value in the error


def test_values_match_booleans_and_strings_exactly() -> None:
    query = one_query(
        {"path": ["age_over_18"], "values": [True]},
        {"path": ["address", "postal_code"], "values": ["99999", "12345"]},
    )
    candidate = only_candidate(query)
    assert candidate.disclosures == {("age_over_18",), ("address",)}


def test_several_candidates_in_given_order_with_misses() -> None:
    no_name = copy.deepcopy(ARTHUR)
    del no_name["name"]
    credentials = [
        held("first"),
        held("nameless", no_name),
        held("residence", vct=RESIDENCE),
        held("second"),
    ]
    match = find_candidates(one_query({"path": ["name"]}), credentials)
    result = match.for_query("q")
    assert [c.credential_id for c in result.candidates] == ["first", "second"]
    assert [(m.credential_id, m.path, m.reason) for m in result.misses] == [
        ("nameless", ("name",), "missing")
    ]
    assert match.satisfied


def test_no_credential_of_the_requested_type() -> None:
    with pytest.raises(QueryNotSatisfied) as caught:
        match_query(one_query({"path": ["name"]}, vct=RESIDENCE), [held()])
    assert caught.value.detail == {"credential_query": "q", "reason": "no_credential_of_type"}


CLAIM_SETS_CLAIMS = [
    {"id": "name", "path": ["name"]},
    {"id": "zip", "path": ["address", "zip"]},
    {"id": "postal", "path": ["address", "postal_code"]},
    {"id": "locality", "path": ["address", "locality"]},
]


def test_claim_sets_choose_the_first_satisfiable_option_per_credential() -> None:
    query = one_query(
        *CLAIM_SETS_CLAIMS, claim_sets=[["name", "zip"], ["name", "postal", "locality"]]
    )
    with_zip = copy.deepcopy(ARTHUR)
    with_zip["address"]["zip"] = "Z"
    match = match_query(query, [held("plain"), held("zipped", with_zip)])
    plain, zipped = match.for_query("q").candidates
    assert plain.claim_set == ("name", "postal", "locality")
    assert plain.claim_set_index == 1
    assert plain.disclosures == {("name",), ("address",), ("address", "locality")}
    assert zipped.claim_set == ("name", "zip")
    assert zipped.claim_set_index == 0
    # Claims of options not chosen are not disclosed.
    assert ("address", "locality") not in zipped.disclosures
    assert_verifier_sees(query, held("plain"), plain.disclosures)


def test_claim_sets_none_satisfiable_reports_first_option() -> None:
    query = one_query(*CLAIM_SETS_CLAIMS, claim_sets=[["zip"], ["name", "zip"]])
    with pytest.raises(QueryNotSatisfied) as caught:
        match_query(query, [held()])
    assert caught.value.detail["claim_path"] == ["address", "zip"]


ALTERNATIVES = {
    "credentials": [
        {"id": "pid", "format": "dc+sd-jwt", "meta": {"vct_values": [PID]}},
        {"id": "other_pid", "format": "dc+sd-jwt", "meta": {"vct_values": ["urn:other"]}},
        {
            "id": "reduced_1",
            "format": "dc+sd-jwt",
            "meta": {"vct_values": ["urn:reduced"]},
            "claims": [{"path": ["name"]}],
        },
        {"id": "reduced_2", "format": "dc+sd-jwt", "meta": {"vct_values": [RESIDENCE]}},
        {
            "id": "nice_to_have",
            "format": "dc+sd-jwt",
            "meta": {"vct_values": ["urn:rewards"]},
            "multiple": True,
        },
    ],
    "credential_sets": [
        {"options": [["pid"], ["other_pid"], ["reduced_1", "reduced_2"]]},
        {"required": False, "options": [["nice_to_have"]]},
    ],
}


def test_credential_sets_list_satisfiable_options() -> None:
    query = parse_query(ALTERNATIVES)
    wallet = [held("r1", vct="urn:reduced"), held("r2", vct=RESIDENCE)]
    match = match_query(query, wallet)
    first, optional = match.credential_sets
    assert first.satisfiable_options == (("reduced_1", "reduced_2"),)
    assert first.required
    assert optional.satisfiable_options == ()
    assert not optional.required
    chosen = select_presentation(match, include_optional=True)
    assert {qid: [c.credential_id for c in cs] for qid, cs in chosen.items()} == {
        "reduced_1": ["r1"],
        "reduced_2": ["r2"],
    }


def test_credential_sets_prefer_the_first_option_and_optional_multiple() -> None:
    query = parse_query(ALTERNATIVES)
    wallet = [
        held("p", vct=PID),
        held("r1", vct="urn:reduced"),
        held("r2", vct=RESIDENCE),
        held("w1", vct="urn:rewards"),
        held("w2", vct="urn:rewards"),
    ]
    match = match_query(query, wallet)
    assert match.credential_sets[0].satisfiable_options == (("pid",), ("reduced_1", "reduced_2"))
    default = select_presentation(match)
    assert {qid: [c.credential_id for c in cs] for qid, cs in default.items()} == {"pid": ["p"]}
    with_optional = select_presentation(match, include_optional=True)
    assert [c.credential_id for c in with_optional["nice_to_have"]] == ["w1", "w2"]


def test_required_credential_set_unsatisfiable() -> None:
    query = parse_query(ALTERNATIVES)
    match = find_candidates(query, [held("r1", vct="urn:reduced")])
    assert not match.satisfied
    with pytest.raises(QueryNotSatisfied) as caught:
        match_query(query, [held("r1", vct="urn:reduced")])
    assert caught.value.detail["credential_set"] == 0
    assert caught.value.detail["credential_query"] == "pid"
    with pytest.raises(QueryNotSatisfied):
        select_presentation(match)


def test_without_credential_sets_every_query_is_required() -> None:
    query = parse_query(
        {
            "credentials": [
                {"id": "a", "format": "dc+sd-jwt", "meta": {"vct_values": [PID]}},
                {"id": "b", "format": "dc+sd-jwt", "meta": {"vct_values": [RESIDENCE]}},
            ]
        }
    )
    with pytest.raises(QueryNotSatisfied) as caught:
        match_query(query, [held()])
    assert caught.value.detail["credential_query"] == "b"
    both = match_query(query, [held(), held("home", vct=RESIDENCE)])
    assert set(select_presentation(both)) == {"a", "b"}


@pytest.mark.parametrize(
    "disclosable",
    [
        frozenset({("degrees", None)}),
        frozenset({()}),
        frozenset({("degrees", -1)}),
        frozenset({("flag", True)}),
        frozenset({("vct",)}),
    ],
)
def test_held_credential_rejects_bad_disclosable_paths(disclosable: frozenset[Any]) -> None:
    with pytest.raises(MalformedInput):
        HeldCredential("x", PID, ARTHUR, disclosable, VISIBLE)


def test_values_on_a_whole_array_never_match_an_element() -> None:
    # values constrain the claim itself; an array is not one of its elements.
    match = find_candidates(one_query({"path": ["nationalities"], "values": ["British"]}), [held()])
    assert match.for_query("q").misses[0].reason == "value_mismatch"


def test_nested_arrays_disclose_and_reveal_one_inner_element() -> None:
    claims = {"vct": PID, "grid": [["a", "b"], ["c", "d"]]}
    disclosable = frozenset({("grid", 0), ("grid", 1), ("grid", 1, 0), ("grid", 1, 1)})
    credential = held(claims=claims, disclosable=disclosable)
    query = one_query({"path": ["grid", 1, 1]})
    candidate = only_candidate(query, credential)
    assert candidate.disclosures == {("grid", 1), ("grid", 1, 1)}
    assert candidate.revealed == (("grid", 1, 1),)
    view = verifier_view(claims, disclosable, candidate.disclosures)
    assert view["grid"] == [HIDDEN, [HIDDEN, "d"]]
    claims_satisfy(query, {"q": view})
    # Row 0 has no disclosable elements of its own: opening it shows both.
    candidate = only_candidate(one_query({"path": ["grid", 0, 1]}), credential)
    assert candidate.revealed == (("grid", 0, 0), ("grid", 0, 1))
