"""Property: any single deletion, swap or alteration is found, with the right code and entry."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from onceonly.jose import PrivateKey, generate_private_key
from tests.unit.verifier.audit_samples import build_export, cut_tail, entry_line, entry_of
from verifier.audit import audit_lines

ENTRIES = 30
HEADS_AT = (10, 20, 30)


@pytest.fixture(scope="module")
def signed_export(tmp_path_factory: pytest.TempPathFactory) -> tuple[PrivateKey, list[str]]:
    key = generate_private_key(kid="verifier-1")
    return key, build_export(tmp_path_factory.mktemp("prop"), key, entries=ENTRIES)


def findings(key: PrivateKey, lines: list[str]) -> list[tuple[str, int | None]]:
    return [(f.code, f.seq) for f in audit_lines(lines, verifier_key=key.public()).findings]


def test_untouched_export_is_clean(signed_export: tuple[PrivateKey, list[str]]) -> None:
    key, lines = signed_export
    assert findings(key, lines) == []


@settings(max_examples=60, deadline=None)
@given(seq=st.integers(1, ENTRIES - 1))
def test_any_deletion_is_a_gap_there(signed_export: tuple[PrivateKey, list[str]], seq: int) -> None:
    key, original = signed_export
    lines = list(original)
    del lines[seq]
    assert findings(key, lines) == [("audit_gap", seq)]


@settings(max_examples=60, deadline=None)
@given(seq=st.integers(1, ENTRIES - 1))
def test_any_adjacent_swap_is_a_reordering(
    signed_export: tuple[PrivateKey, list[str]], seq: int
) -> None:
    key, original = signed_export
    lines = list(original)
    lines[seq], lines[seq + 1] = lines[seq + 1], lines[seq]
    assert findings(key, lines) == [("audit_reordered", seq)]


@settings(max_examples=80, deadline=None)
@given(
    seq=st.integers(1, ENTRIES - 1),
    field=st.sampled_from(["exchange_id", "time", "kind", "details"]),
    rehash=st.booleans(),
)
def test_any_alteration_is_found_at_that_entry(
    signed_export: tuple[PrivateKey, list[str]], seq: int, field: str, rehash: bool
) -> None:
    key, original = signed_export
    lines = list(original)
    entry = entry_of(lines[seq])
    entry[field] = {
        "exchange_id": entry["exchange_id"] + "x",
        "time": entry["time"] + 1,
        "kind": "status_sent" if entry["kind"] != "status_sent" else "request",
        "details": {"forged": "yes"},
    }[field]
    lines[seq] = entry_line(entry, rehash=rehash)
    expected = [("audit_altered", seq)]
    if rehash and seq in HEADS_AT:  # the head signed over this very entry disagrees too
        expected.append(("audit_head_mismatch", seq))
    assert findings(key, lines) == expected


@settings(max_examples=60, deadline=None)
@given(keep=st.integers(0, ENTRIES - 1), keep_export_head=st.booleans())
def test_any_tail_cut_is_found_where_the_export_now_ends(
    signed_export: tuple[PrivateKey, list[str]], keep: int, keep_export_head: bool
) -> None:
    key, original = signed_export
    lines = cut_tail(original, keep, keep_export_head=keep_export_head)
    code = "audit_truncated" if keep_export_head else "audit_export_unsigned"
    expected = [(code, keep + 1)]
    last_head = max((at for at in HEADS_AT if at <= keep), default=0)
    if keep > last_head:  # what is left after the last remaining head is unsigned
        expected.append(("audit_unsigned_tail", last_head + 1))
    assert findings(key, lines) == expected
