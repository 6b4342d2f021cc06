"""The keyed index permutation used to allocate status indices out of order."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from onceonly.status_list import IndexPermutation

KEY = bytes(range(32))


@given(st.integers(min_value=1, max_value=3000), st.binary(min_size=16, max_size=32))
@settings(max_examples=40, deadline=None)
def test_is_a_bijection(size: int, key: bytes) -> None:
    permutation = IndexPermutation(key, size)
    assert sorted(permutation.index_at(p) for p in range(size)) == list(range(size))


def test_deterministic_and_key_dependent() -> None:
    first = [IndexPermutation(KEY, 1 << 16).index_at(p) for p in range(32)]
    again = [IndexPermutation(KEY, 1 << 16).index_at(p) for p in range(32)]
    other = [IndexPermutation(KEY[::-1], 1 << 16).index_at(p) for p in range(32)]
    assert first == again
    assert first != other


def test_not_sequential() -> None:
    indices = [IndexPermutation(KEY, 1 << 20).index_at(p) for p in range(1000)]
    ascending_steps = sum(1 for a, b in itertools.pairwise(indices) if b == a + 1)
    assert ascending_steps < 10
    # Spread over the whole list, not clustered at the start.
    assert max(indices) > (1 << 20) * 0.9
    assert min(indices) < (1 << 20) * 0.1


def test_bounds() -> None:
    permutation = IndexPermutation(KEY, 10)
    with pytest.raises(IndexError):
        permutation.index_at(10)
    with pytest.raises(IndexError):
        permutation.index_at(-1)
    with pytest.raises(ValueError):
        IndexPermutation(b"short", 10)
    with pytest.raises(ValueError):
        IndexPermutation(KEY, 0)
