"""The piecewise disclosure encoder writes exactly what encoding the list would."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from onceonly import jose
from onceonly.errors import InvalidDisclosure
from onceonly.sdjwt.disclosures import decode_disclosure, encode_disclosure

VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=10,
)


def by_list(salt: Any, name: Any, value: Any) -> str:
    parts = [salt, value] if name is None else [salt, name, value]
    return jose.b64url_encode(jose.json_dumps_compact(parts).encode("utf-8"))


@given(st.text(), st.none() | st.text(), VALUES)
def test_same_encoding_as_the_whole_list(salt: str, name: str | None, value: Any) -> None:
    if name in ("_sd", "..."):
        return
    disclosure = encode_disclosure(salt, name, value)
    assert disclosure.encoded == by_list(salt, name, value)
    assert (disclosure.salt, disclosure.name, disclosure.value) == (salt, name, value)
    decoded = decode_disclosure(disclosure.encoded, max_bytes=1 << 20, max_depth=64)
    assert decoded == disclosure


class Name(str):
    """A str subclass: takes the general path, same output."""


@pytest.mark.parametrize(
    ("salt", "name", "value"),
    [
        ("c2FsdA", "given_name", 'Zoë \u2028 "quoted" \\ tab\t'),
        ("c2FsdA", None, "FR"),
        ("c2FsdA", "age", 42),
        ("c2FsdA", "ratio", 0.1),
        ("c2FsdA", "nested", {"a": [1, None, True]}),
        ("c2FsdA", Name("sub"), Name("value")),
        (12345, "odd salt", "v"),  # misuse still encodes as before
        ("c2FsdA", 7, "odd name"),
    ],
)
def test_examples_match_the_whole_list(salt: Any, name: Any, value: Any) -> None:
    assert encode_disclosure(salt, name, value).encoded == by_list(salt, name, value)


@pytest.mark.parametrize("name", ["_sd", "..."])
def test_reserved_names_still_refused(name: str) -> None:
    with pytest.raises(InvalidDisclosure):
        encode_disclosure("c2FsdA", name, 1)


def test_unencodable_value_still_raises_type_error() -> None:
    with pytest.raises(TypeError):
        encode_disclosure("c2FsdA", "x", object())
