"""Properties: path coverage laws, and hostile input never escapes as a non-typed error."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from onceonly import errors, jose
from onceonly.trust import path_covers, verify_trust_list
from onceonly.trust.claim_paths import validate_claim_path

from .conftest import NOW

component = st.one_of(st.text(min_size=1, max_size=5), st.integers(0, 5), st.none())
paths = st.lists(component, min_size=1, max_size=4).map(tuple)
ANCHOR = jose.generate_private_key()


@given(paths, st.lists(component, max_size=3).map(tuple))
def test_a_path_covers_everything_below_it(registered: tuple, suffix: tuple) -> None:
    assert path_covers(registered, registered + suffix)


@given(paths, st.lists(component, min_size=1, max_size=3).map(tuple))
def test_a_path_never_covers_its_parent(registered: tuple, extra: tuple) -> None:
    assert not path_covers(registered + extra, registered)


@given(paths, paths)
def test_coverage_is_a_prefix_relation(registered: tuple, requested: tuple) -> None:
    if path_covers(registered, requested):
        assert len(registered) <= len(requested)
        assert validate_claim_path(list(requested)) == requested


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(st.text(max_size=300), st.binary(max_size=300).map(jose.b64url_encode)))
def test_garbage_tokens_raise_only_typed_errors(text: str) -> None:
    for token in (text, f"{text}.{text}.{text}", f"eyJhbGciOiJFUzI1NiJ9.{text}.AA"):
        with pytest.raises(errors.OnceOnlyError):
            verify_trust_list(token, [ANCHOR.public()], now=NOW)


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.recursive(
        st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=8)),
        lambda children: st.one_of(
            st.lists(children, max_size=3),
            st.dictionaries(st.text(max_size=6), children, max_size=3),
        ),
        max_leaves=12,
    )
)
def test_signed_garbage_payloads_are_malformed(payload: object) -> None:
    body = payload if isinstance(payload, dict) else {"agencies": payload}
    token = jose.sign_compact(body, ANCHOR, typ="trust-list+jwt")
    with pytest.raises(errors.MalformedInput):
        verify_trust_list(token, [ANCHOR.public()], now=NOW)
