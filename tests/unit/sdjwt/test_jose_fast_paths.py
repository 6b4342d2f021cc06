"""The hot-path shortcuts in onceonly.jose behave exactly like the plain definitions."""

from __future__ import annotations

import base64
import itertools
import json
import string

import pytest
from hypothesis import given
from hypothesis import strategies as st

from onceonly import jose
from onceonly.errors import DuplicateJsonKey, InputTooLarge, MalformedInput

ALPHABET = string.ascii_letters + string.digits + "-_"


def canonical_decode(text: str) -> bytes | None:
    """The slow definition: decode, then accept only if re-encoding gives ``text`` back."""
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except ValueError:
        return None
    return raw if base64.urlsafe_b64encode(raw).rstrip(b"=").decode() == text else None


@pytest.mark.parametrize("length", [2, 3])
def test_last_character_check_matches_reencoding_exhaustively(length: int) -> None:
    for chars in itertools.product(ALPHABET, repeat=length):
        text = "".join(chars)
        expected = canonical_decode(text)
        if expected is None:
            with pytest.raises(MalformedInput):
                jose.b64url_decode(text)
        else:
            assert jose.b64url_decode(text) == expected


@given(st.binary(max_size=300))
def test_encode_decode_round_trip_matches_stdlib(data: bytes) -> None:
    encoded = jose.b64url_encode(data)
    assert encoded == base64.urlsafe_b64encode(data).rstrip(b"=").decode()
    assert jose.b64url_decode(encoded) == data


@pytest.mark.parametrize("text", ["ab+c", "ab/c", "abc=", "ab c", "é", "a", "abcde"])
def test_outside_the_alphabet_rejected(text: str) -> None:
    with pytest.raises(MalformedInput):
        jose.b64url_decode(text)


def test_cached_compact_encoder_matches_json_dumps() -> None:
    value = {"ä": [1, 2.5, None, True], "b": {"c": "\u2028"}}
    assert jose.json_dumps_compact(value) == json.dumps(
        value, separators=(",", ":"), ensure_ascii=False
    )


def test_duplicate_keys_still_found_deep_inside() -> None:
    with pytest.raises(DuplicateJsonKey):
        jose.strict_json_loads('{"a": [{"b": 1, "c": {"d": 1, "d": 2}}]}')


def test_depth_walk_still_runs_when_brackets_exceed_the_bound() -> None:
    # More brackets than levels but shallow: accepted; deep: rejected.
    jose.strict_json_loads("[" + ",".join(["[]"] * 40) + "]", max_depth=3)
    with pytest.raises(InputTooLarge):
        jose.strict_json_loads("[" * 5 + "]" * 5, max_depth=4)
