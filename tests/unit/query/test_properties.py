"""Properties of matching on random credentials, disclosure layouts and paths.

For a claim a query selects, the disclosures the wallet picks must (a) let the
verifier see exactly the holder's value at that path and satisfy the query, and
(b) be minimal: without any single one of them, the verifier sees something else.
"""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from onceonly.errors import QueryNotSatisfied
from onceonly.query import (
    HeldCredential,
    PointerMiss,
    claims_satisfy,
    match_query,
    parse_query,
    select,
)
from tests.unit.query.sd_view import all_paths, verifier_view

VCT = "urn:test"
KEYS = st.sampled_from(["a", "b", "c", "d"])

# Non-empty containers, so that two different sub-trees never compare equal
# once every leaf is made unique (see _uniquify).
json_values = st.recursive(
    st.just("leaf"),
    lambda children: st.one_of(
        st.lists(children, min_size=1, max_size=4),
        st.dictionaries(KEYS, children, min_size=1, max_size=4),
    ),
    max_leaves=20,
)


def _uniquify(value: Any, counter: itertools.count[int]) -> Any:
    if isinstance(value, dict):
        return {key: _uniquify(child, counter) for key, child in value.items()}
    if isinstance(value, list):
        return [_uniquify(child, counter) for child in value]
    return f"v{next(counter)}"


@st.composite
def credentials(draw: st.DrawFn) -> tuple[dict[str, Any], frozenset[Any], Any]:
    body = draw(st.dictionaries(KEYS, json_values, min_size=1, max_size=4))
    claims = _uniquify(body, itertools.count())
    paths = all_paths(claims)
    disclosable = frozenset(p for p in paths if draw(st.booleans()))
    target = draw(st.sampled_from(paths))
    claims["vct"] = VCT
    return claims, disclosable, target


def _value_at(root: Any, path: tuple[Any, ...]) -> Any:
    for part in path:
        root = root[part]
    return root


def _query(path: tuple[Any, ...], values: list[Any] | None = None) -> Any:
    claim: dict[str, Any] = {"path": list(path)}
    if values is not None:
        claim["values"] = values
    return parse_query(
        {
            "credentials": [
                {"id": "q", "format": "dc+sd-jwt", "meta": {"vct_values": [VCT]}, "claims": [claim]}
            ]
        }
    )


@settings(max_examples=200, deadline=None)
@given(credentials())
def test_concrete_path_disclosures_are_faithful_and_minimal(case: Any) -> None:
    claims, disclosable, target = case
    query = _query(target)
    held = HeldCredential("c", VCT, claims, disclosable, frozenset({"vct"}))
    (candidate,) = match_query(query, [held]).for_query("q").candidates
    assert candidate.claim_paths == (target,)
    assert candidate.disclosures <= disclosable

    view = verifier_view(claims, disclosable, candidate.disclosures)
    assert _value_at(view, target) == _value_at(claims, target)
    claims_satisfy(query, {"q": view})

    for dropped in candidate.disclosures:
        smaller = verifier_view(claims, disclosable, candidate.disclosures - {dropped})
        try:
            seen = _value_at(smaller, target)
        except (KeyError, IndexError, TypeError):
            continue
        assert seen != _value_at(claims, target), f"{dropped} was not needed"


@settings(max_examples=200, deadline=None)
@given(credentials(), st.data())
def test_wildcard_paths_show_the_verifier_the_same_selection(case: Any, data: Any) -> None:
    claims, disclosable, target = case
    pattern = tuple(
        None if isinstance(part, int) and data.draw(st.booleans()) else part for part in target
    )
    held = HeldCredential("c", VCT, claims, disclosable, frozenset({"vct"}))
    try:
        expected = select(claims, pattern)
    except PointerMiss as miss:
        # A wildcard that meets a non-array (mixed arrays) aborts, as §7.1 says.
        event("pointer aborted")
        assert miss.reason in {"not_an_array", "not_an_object"}
        with pytest.raises(QueryNotSatisfied):
            match_query(_query(pattern), [held])
        return
    match = match_query(_query(pattern), [held])
    (candidate,) = match.for_query("q").candidates
    assert candidate.claim_paths == tuple(item.path for item in expected)

    view = verifier_view(claims, disclosable, candidate.disclosures)
    assert [item.value for item in select(view, pattern)] == [item.value for item in expected]
    claims_satisfy(_query(pattern), {"q": view})


@settings(max_examples=150, deadline=None)
@given(credentials(), st.data())
def test_values_constraint_keeps_only_matching_elements(case: Any, data: Any) -> None:
    claims, disclosable, _ = case
    leaf_paths = [p for p in all_paths(claims) if isinstance(_value_at(claims, p), str)]
    leaf = data.draw(st.sampled_from(leaf_paths))
    wanted = _value_at(claims, leaf)
    pattern = tuple(None if isinstance(part, int) else part for part in leaf)
    held = HeldCredential("c", VCT, claims, disclosable, frozenset({"vct"}))
    query = _query(pattern, values=[wanted])
    try:
        select(claims, pattern)
    except PointerMiss:
        with pytest.raises(QueryNotSatisfied):
            match_query(query, [held])
        return
    (candidate,) = match_query(query, [held]).for_query("q").candidates
    # Leaves are unique, so exactly the one element carrying the value is selected.
    assert candidate.claim_paths == (leaf,)
    view = verifier_view(claims, disclosable, candidate.disclosures)
    claims_satisfy(query, {"q": view})
