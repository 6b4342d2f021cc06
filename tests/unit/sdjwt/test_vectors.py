"""Every published vector in specs/vectors/sdjwt/ gives exactly its expected outcome."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from onceonly.errors import OnceOnlyError
from onceonly.sdjwt import verify_presentation
from tests.unit.sdjwt.vectors import (
    SDJWT_DIR,
    case_dirs,
    issuer_key,
    load_case,
    load_generator,
    outcome,
    policy_from_json,
)

CASES = case_dirs()


@pytest.mark.parametrize("case", CASES, ids=[p.name for p in CASES])
def test_vector(case: Path) -> None:
    inputs, presentation, expected = load_case(case)
    policy = policy_from_json(inputs["policy"], inputs.get("type_metadata"))
    if expected["valid"]:
        result = verify_presentation(
            presentation, issuer_key=issuer_key(inputs), policy=policy, now=inputs["now"]
        )
        assert outcome(result) == expected
    else:
        with pytest.raises(OnceOnlyError) as info:
            verify_presentation(
                presentation, issuer_key=issuer_key(inputs), policy=policy, now=inputs["now"]
            )
        assert info.value.code == expected["error"], info.value


def test_vector_set_is_rich_enough() -> None:
    outcomes = Counter("valid" if load_case(c)[2]["valid"] else "invalid" for c in CASES)
    assert outcomes["valid"] >= 8
    assert outcomes["invalid"] >= 35
    codes = {load_case(c)[2].get("error") for c in CASES} - {None}
    assert len(codes) >= 12, codes


def test_every_negative_names_an_existing_valid_sibling() -> None:
    valid = {c.name for c in CASES if load_case(c)[2]["valid"]}
    for case in CASES:
        inputs, _, expected = load_case(case)
        if not expected["valid"]:
            assert inputs["valid_sibling"] in valid, case.name


def test_generator_reproduces_the_published_files() -> None:
    tree = load_generator().expected_tree()
    on_disk = {
        str(p.relative_to(SDJWT_DIR)): p.read_text("utf-8")
        for p in SDJWT_DIR.rglob("*")
        if p.is_file()
    }
    assert set(tree) == set(on_disk)
    stale = [path for path, text in tree.items() if on_disk[path] != text]
    assert not stale, f"regenerate the vectors: {stale[:5]}"
