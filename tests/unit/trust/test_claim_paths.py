"""Claim path parsing and coverage."""

from __future__ import annotations

import pytest

from onceonly import errors
from onceonly.trust import format_claim_path, parse_claim_path, path_covers
from onceonly.trust.claim_paths import validate_claim_path


@pytest.mark.parametrize(
    ("text", "path"),
    [
        ("family_name", ("family_name",)),
        ("address.locality", ("address", "locality")),
        ("nationalities.*", ("nationalities", None)),
        ("degrees.1.title", ("degrees", 1, "title")),
    ],
)
def test_parse_and_format_round_trip(text: str, path: tuple[object, ...]) -> None:
    assert parse_claim_path(text) == path
    assert format_claim_path(parse_claim_path(text)) == text


@pytest.mark.parametrize("text", ["", ".", "a..b", "a."])
def test_parse_rejects_empty_components(text: str) -> None:
    with pytest.raises(errors.MalformedInput):
        parse_claim_path(text)


@pytest.mark.parametrize("bad", [[], "abc", ["a", True], ["a", -1], ["a", 1.5], [{"a": 1}]])
def test_validate_rejects(bad: object) -> None:
    with pytest.raises(errors.MalformedInput):
        validate_claim_path(bad)


@pytest.mark.parametrize(
    ("registered", "requested", "covered"),
    [
        (("a",), ("a",), True),
        (("a",), ("a", "b"), True),
        (("a", "b"), ("a",), False),
        (("a", None), ("a", 3), True),
        (("a", None), ("a", None, "x"), True),
        (("a", None), ("a", "x"), False),
        (("a", 0), ("a", None), False),
        (("a", 0), ("a", 0), True),
        (("a", "0"), ("a", 0), False),
        (("b",), ("a",), False),
    ],
)
def test_path_covers(
    registered: tuple[object, ...], requested: tuple[object, ...], covered: bool
) -> None:
    assert path_covers(registered, requested) is covered  # type: ignore[arg-type]
