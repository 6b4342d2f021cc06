"""The optimised disclosure walk gives exactly the oracle's claims, paths and errors."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from onceonly.errors import OnceOnlyError
from onceonly.sdjwt import processing
from onceonly.sdjwt.disclosures import Disclosure
from tests.unit.sdjwt import reference_processing

DIGESTS = [f"digest-{i}" for i in range(40)]  # few collisions: "referenced twice" stays rare
leaves = st.none() | st.booleans() | st.integers(-3, 3) | st.sampled_from(["x", "y"])


def tree_strategies(hostile: bool) -> tuple[st.SearchStrategy[Any], st.SearchStrategy[Any]]:
    """(values, payloads): well-formed SD-JWT shapes, or with broken shapes mixed in."""
    names = ["a", "b", "c", "iss"] + (["_sd", "...", "_sd_alg"] if hostile else [])
    digest_like = st.sampled_from([*DIGESTS, 0, None] if hostile else DIGESTS)

    def containers(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
        objects = st.dictionaries(st.sampled_from(names), children, max_size=4)
        sd_lists = st.lists(digest_like, max_size=4)
        if hostile:
            sd_lists |= digest_like
        with_sd = st.builds(lambda obj, sd: {**obj, "_sd": sd}, objects, sd_lists)
        element = children | st.builds(lambda d: {"...": d}, digest_like)
        if hostile:
            element |= st.builds(lambda d: {"...": d, "a": 1}, digest_like)
        return objects | with_sd | st.lists(element, max_size=4)

    values = st.recursive(leaves, containers, max_leaves=8)
    top = st.dictionaries(st.sampled_from(names), values, max_size=5)
    payloads = st.builds(
        lambda claims, sd, alg: {**claims, "_sd": sd, **alg},
        top,
        st.lists(digest_like, max_size=6),
        st.sampled_from([{}, {"_sd_alg": "sha-256"}]),
    )
    return values, payloads


WELL_FORMED = tree_strategies(hostile=False)
HOSTILE = tree_strategies(hostile=True)


def references(value: Any) -> list[tuple[str, bool]]:
    """Digests a value references, each with whether it sits in an object's ``_sd``."""
    found: list[tuple[str, bool]] = []
    if isinstance(value, dict):
        sd = value.get("_sd")
        if isinstance(sd, list):
            found += [(digest, True) for digest in sd if isinstance(digest, str)]
        if isinstance(value.get("..."), str):
            found.append((value["..."], False))
        for child in value.values():
            found += references(child)
    elif isinstance(value, list):
        for child in value:
            found += references(child)
    return found


def fresh_digests(value: Any, counter: Iterator[int]) -> Any:
    """``value`` with every digest reference renamed to a new one (no chance repeats)."""
    if isinstance(value, list):
        return [fresh_digests(child, counter) for child in value]
    if not isinstance(value, dict):
        return value
    out = {name: fresh_digests(child, counter) for name, child in value.items()}
    if isinstance(value.get("_sd"), list):
        out["_sd"] = [f"digest-{next(counter)}" for _ in value["_sd"]]
    if isinstance(value.get("..."), str):
        out["..."] = f"digest-{next(counter)}"
    return out


@st.composite
def cases(draw: st.DrawFn) -> tuple[dict[str, Any], dict[str, Disclosure]]:
    """A payload and disclosures that mostly fit it (so success is common), sometimes not."""
    hostile = draw(st.booleans())
    values, payloads = HOSTILE if hostile else WELL_FORMED
    counter = itertools.count(1000)

    def fit(value: Any) -> Any:  # hostile cases keep their accidental repeats
        return value if hostile else fresh_digests(value, counter)

    payload = fit(draw(payloads))
    rng = draw(st.randoms(use_true_random=True))  # plain odds; drawn values lean to extremes
    by_digest: dict[str, Disclosure] = {}
    pending = references(payload)
    while pending:
        digest, in_object = pending.pop(0)
        if digest in by_digest or rng.random() < 0.1:
            continue  # already disclosed, or stays undisclosed / a decoy
        name = rng.choice(["d", "e", "f", "g", "a", "_sd_alg"]) if in_object else None
        if rng.random() < 0.05:  # the wrong form for where it is referenced
            name = None if in_object else "a"
        value = fit(draw(values))
        by_digest[digest] = Disclosure(f"encoded-{digest}", "salt", name, value)
        pending += references(value)
    if rng.random() < 0.05:
        by_digest["digest-unreferenced"] = Disclosure("encoded", "salt", "z", 1)
    return payload, by_digest


def outcome(module: Any, payload: Any, by_digest: Any, max_depth: int, collect: bool) -> Any:
    try:
        result = module.process_payload(
            payload, by_digest, max_depth=max_depth, collect_paths=collect
        )
    except OnceOnlyError as exc:
        return ("error", exc.code, exc.message)
    return (
        "ok",
        result.claims,
        [(item.disclosure, item.digest, item.path) for item in result.disclosures],
        result.node_paths,
    )


@settings(max_examples=300, deadline=None)
@given(cases(), st.sampled_from([32, 32, 32, 3, 2, 1]), st.booleans())
def test_same_outcome_as_the_oracle(
    case: tuple[dict[str, Any], dict[str, Disclosure]], max_depth: int, collect: bool
) -> None:
    payload, by_digest = case
    ours = outcome(processing, payload, by_digest, max_depth, collect)
    oracle = outcome(reference_processing, payload, by_digest, max_depth, collect)
    assert ours == oracle


def test_generated_cases_reach_both_success_and_every_error_kind() -> None:
    # Guard against a generator that only ever produces one kind of outcome.
    kinds: set[str] = set()

    @settings(max_examples=200, database=None, deadline=None)
    @given(cases(), st.sampled_from([32, 32, 32, 3, 2, 1]))
    def collect_kinds(case: Any, max_depth: int) -> None:
        result = outcome(processing, *case, max_depth, False)
        if result[0] == "ok":
            kinds.add("ok, something disclosed" if result[2] else "ok, nothing disclosed")
        else:
            kinds.add(result[2])

    collect_kinds()
    assert {"ok, something disclosed", "ok, nothing disclosed"} <= kinds
    assert len(kinds) >= 8, kinds


def _disclose(name: str | None, value: Any, digest: str) -> dict[str, Disclosure]:
    return {digest: Disclosure(f"encoded-{digest}", "salt", name, value)}


TARGETED = [
    # A plain disclosed value: its path is collected for the holder.
    ({"_sd": ["d1"], "a": 1}, _disclose("b", "plain", "d1")),
    # A disclosed object and a disclosed array element, nested.
    (
        {"_sd": ["d1"], "list": [{"...": "d2"}, 3]},
        {**_disclose("obj", {"_sd": ["d3"], "k": [1]}, "d1"), **_disclose(None, "x", "d2")}
        | _disclose("inner", True, "d3"),
    ),
    # A disclosure named like the top-level _sd_alg it would overwrite.
    ({"_sd": ["d1"], "_sd_alg": "sha-256"}, _disclose("_sd_alg", "sha-512", "d1")),
    # Decoys stay invisible; a digest referenced twice is refused.
    ({"_sd": ["d1", "decoy"]}, _disclose("a", 1, "d1")),
    ({"_sd": ["d1"], "n": {"_sd": ["d1"]}}, _disclose("a", 1, "d1")),
]


@pytest.mark.parametrize("collect", [True, False])
@pytest.mark.parametrize(("payload", "by_digest"), TARGETED)
def test_targeted_cases_match_the_oracle(
    payload: dict[str, Any], by_digest: dict[str, Disclosure], collect: bool
) -> None:
    ours = outcome(processing, payload, by_digest, 32, collect)
    assert ours == outcome(reference_processing, payload, by_digest, 32, collect)
    assert ours[0] == ("error" if "n" in payload or "_sd_alg" in payload else "ok")
