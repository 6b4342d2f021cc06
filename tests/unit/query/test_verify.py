"""Verifier-side checks: disclosed claims answer the query; paths requested per vct."""

from __future__ import annotations

from typing import Any

import pytest

from onceonly.errors import QueryNotSatisfied
from onceonly.query import (
    HIDDEN,
    claims_satisfy,
    parse_query,
    positioned_claims,
    requested_paths_by_vct,
    uses_indices,
)

PID = "urn:pid"
HOME = "urn:residence"


def cq(qid: str, vct: str = PID, **extra: Any) -> dict[str, Any]:
    return {"id": qid, "format": "dc+sd-jwt", "meta": {"vct_values": [vct]}, **extra}


QUERY = parse_query(
    {
        "credentials": [
            cq(
                "pid",
                claims=[
                    {"id": "n", "path": ["family_name"], "values": ["Doe"]},
                    {"id": "o", "path": ["age_over_18"], "values": [True]},
                    {"id": "b", "path": ["birthdate"]},
                ],
                claim_sets=[["n", "o"], ["n", "b"]],
            ),
            cq("home", HOME, claims=[{"path": ["address", "locality"]}]),
        ]
    }
)
GOOD_PID = {"vct": PID, "family_name": "Doe", "age_over_18": True}
GOOD_HOME = {"vct": HOME, "address": {"locality": "Milliways"}}


def test_satisfied_by_first_or_second_claim_set() -> None:
    claims_satisfy(QUERY, {"pid": GOOD_PID, "home": GOOD_HOME})
    second = {"vct": PID, "family_name": "Doe", "birthdate": "1940-01-01"}
    claims_satisfy(QUERY, {"pid": [second], "home": GOOD_HOME})


@pytest.mark.parametrize(
    ("presented", "detail"),
    [
        ({"pid": GOOD_PID}, {"credential_query": "home", "reason": "not_presented"}),
        (
            {"pid": {**GOOD_PID, "family_name": "Prefect"}, "home": GOOD_HOME},
            {"credential_query": "pid", "claim_path": ["family_name"], "reason": "value_mismatch"},
        ),
        (
            # "true" the string is not true the boolean, and no birthdate either.
            {"pid": {**GOOD_PID, "age_over_18": "true"}, "home": GOOD_HOME},
            {"credential_query": "pid", "claim_path": ["age_over_18"], "reason": "value_mismatch"},
        ),
        (
            {"pid": GOOD_PID, "home": {"vct": HOME, "address": {}}},
            {
                "credential_query": "home",
                "claim_path": ["address", "locality"],
                "reason": "missing",
            },
        ),
        (
            {"pid": GOOD_PID, "home": {"vct": HOME, "address": "Milliways"}},
            {
                "credential_query": "home",
                "claim_path": ["address", "locality"],
                "reason": "not_an_object",
            },
        ),
        (
            {"pid": {**GOOD_PID, "vct": HOME}, "home": GOOD_HOME},
            {"credential_query": "pid", "reason": "vct_not_requested"},
        ),
        (
            {"pid": {k: v for k, v in GOOD_PID.items() if k != "vct"}, "home": GOOD_HOME},
            {"credential_query": "pid", "reason": "vct_not_requested"},
        ),
        (
            {"pid": [GOOD_PID, GOOD_PID], "home": GOOD_HOME},
            {"credential_query": "pid", "reason": "multiple_not_allowed"},
        ),
        (
            {"pid": GOOD_PID, "home": GOOD_HOME, "extra": GOOD_PID},
            {"credential_query": "extra", "reason": "unknown_credential_query"},
        ),
        ({"pid": GOOD_PID, "home": []}, {"credential_query": "home", "reason": "not_presented"}),
    ],
)
def test_not_satisfied(presented: dict[str, Any], detail: dict[str, Any]) -> None:
    with pytest.raises(QueryNotSatisfied) as caught:
        claims_satisfy(QUERY, presented)
    assert caught.value.detail == detail


SETS = parse_query(
    {
        "credentials": [
            cq("pid", claims=[{"path": ["family_name"]}]),
            cq("home", HOME),
            cq("bonus", "urn:bonus", multiple=True),
        ],
        "credential_sets": [
            {"options": [["pid"], ["home"]]},
            {"options": [["bonus"]], "required": False},
        ],
    }
)


def test_credential_sets_on_the_verifier_side() -> None:
    claims_satisfy(SETS, {"home": {"vct": HOME}})
    claims_satisfy(SETS, {"pid": GOOD_PID, "bonus": [{"vct": "urn:bonus"}] * 2})
    with pytest.raises(QueryNotSatisfied) as caught:
        claims_satisfy(SETS, {"bonus": {"vct": "urn:bonus"}})
    assert caught.value.detail == {"credential_set": 0, "reason": "not_presented"}


def test_null_path_needs_one_matching_element() -> None:
    query = parse_query(
        {"credentials": [cq("q", claims=[{"path": ["nat", None], "values": ["DE"]}])]}
    )
    claims_satisfy(query, {"q": {"vct": PID, "nat": ["DE"]}})
    claims_satisfy(query, {"q": {"vct": PID, "nat": ["FR", "DE"]}})
    with pytest.raises(QueryNotSatisfied):
        claims_satisfy(query, {"q": {"vct": PID, "nat": ["FR"]}})
    with pytest.raises(QueryNotSatisfied):
        claims_satisfy(query, {"q": {"vct": PID, "nat": []}})


def test_requested_paths_by_vct_is_the_union_over_alternatives() -> None:
    query = parse_query(
        {
            "credentials": [
                cq(
                    "a",
                    claims=[
                        {"id": "x", "path": ["family_name"]},
                        {"id": "y", "path": ["birthdate"]},
                    ],
                    claim_sets=[["x"], ["y"]],
                ),
                {
                    "id": "b",
                    "format": "dc+sd-jwt",
                    "meta": {"vct_values": [PID, HOME]},
                    "claims": [{"path": ["address", None, "street"]}],
                },
                cq("c", "urn:empty"),
            ]
        }
    )
    assert requested_paths_by_vct(query) == {
        PID: {("family_name",), ("birthdate",), ("address", None, "street")},
        HOME: {("address", None, "street")},
        "urn:empty": frozenset(),
    }


def test_an_index_counts_the_elements_the_verifier_cannot_see() -> None:
    query = parse_query({"credentials": [cq("q", claims=[{"path": ["nat", 1], "values": ["FR"]}])]})
    # Element 0 was not disclosed: FR is still at index 1.
    claims_satisfy(query, {"q": {"vct": PID, "nat": [HIDDEN, "FR"]}})
    # An index that lands on a hidden element selects nothing, values or not.
    with pytest.raises(QueryNotSatisfied) as caught:
        claims_satisfy(query, {"q": {"vct": PID, "nat": ["FR", HIDDEN]}})
    assert caught.value.detail["reason"] == "missing"
    bare = parse_query({"credentials": [cq("q", claims=[{"path": ["nat", 1]}])]})
    with pytest.raises(QueryNotSatisfied) as caught:
        claims_satisfy(bare, {"q": {"vct": PID, "nat": ["DE", HIDDEN, "FR"]}})
    assert caught.value.detail["reason"] == "missing"
    # null skips hidden elements; nested paths under them select nothing.
    anywhere = parse_query(
        {"credentials": [cq("q", claims=[{"path": ["nat", None], "values": ["FR"]}])]}
    )
    claims_satisfy(anywhere, {"q": {"vct": PID, "nat": [HIDDEN, "FR"]}})
    with pytest.raises(QueryNotSatisfied):
        claims_satisfy(anywhere, {"q": {"vct": PID, "nat": [HIDDEN, HIDDEN]}})


def test_positioned_claims_put_elements_back_at_their_signed_slots() -> None:
    claims = {"vct": PID, "nat": ["FR"], "deg": [{"type": "MSc", "tags": ["b"]}], "plain": []}
    visible = {
        ("vct",),
        ("nat",),
        ("nat", 2),
        ("deg",),
        ("deg", 1),
        ("deg", 1, "type"),
        ("deg", 1, "tags"),
        ("deg", 1, "tags", 3),
        ("plain",),
    }
    assert positioned_claims(claims, visible) == {
        "vct": PID,
        "nat": [HIDDEN, HIDDEN, "FR"],
        "deg": [HIDDEN, {"type": "MSc", "tags": [HIDDEN, HIDDEN, HIDDEN, "b"]}],
        "plain": [],
    }
    with pytest.raises(ValueError, match="do not describe"):
        positioned_claims(claims, visible - {("nat", 2)})


def test_uses_indices() -> None:
    assert uses_indices(parse_query({"credentials": [cq("q", claims=[{"path": ["a", 0]}])]}))
    assert not uses_indices(parse_query({"credentials": [cq("q", claims=[{"path": ["a", None]}])]}))
    assert not uses_indices(parse_query({"credentials": [cq("q")]}))
