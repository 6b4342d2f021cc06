"""Property tests: selective disclosure is exact, tampering is always caught, junk is typed.

The expected claims are computed by a small independent model of the rules
(a claim is visible iff every disclosable node on its path was disclosed), not
by the code under test.
"""

from __future__ import annotations

import contextlib
import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from onceonly import jose
from onceonly.errors import OnceOnlyError
from onceonly.sdjwt import (
    VerificationPolicy,
    issue_sd_jwt_vc,
    parse_sd_jwt,
    present,
    present_without_key_binding,
    verify_presentation,
)
from onceonly.sdjwt.claims import ISSUER_SET_CLAIMS
from onceonly.sdjwt.disclosures import digest_of
from tests.unit.sdjwt.conftest import AUD, ISSUER, NONCE, NOW, VCT, counter_random

ISSUER_KEY = jose.generate_private_key(jose.EDDSA, kid="k")
HOLDER_KEY = jose.generate_private_key(jose.EDDSA)
POLICY = VerificationPolicy(expected_audience=AUD, expected_nonce=NONCE)
LENIENT = VerificationPolicy(require_key_binding=False)
ALWAYS_VISIBLE = {"iss", "iat", "exp", "vct", "cnf"}

Path = tuple[Any, ...]

names = st.text(min_size=0, max_size=8).filter(lambda s: s not in {"_sd", "...", "_sd_alg"})
scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
)
values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(names, children, max_size=4),
    max_leaves=14,
)
claim_sets = st.dictionaries(
    names.filter(lambda s: s not in ISSUER_SET_CLAIMS), values, min_size=1, max_size=5
)


def node_paths(value: Any, prefix: Path = ()) -> list[Path]:
    out: list[Path] = []
    items: Any = (
        value.items()
        if isinstance(value, dict)
        else enumerate(value)
        if isinstance(value, list)
        else ()
    )
    for key, child in items:
        path = (*prefix, key)
        out.append(path)
        out.extend(node_paths(child, path))
    return out


def related(request: Path, path: Path) -> bool:
    depth = min(len(request), len(path))
    return request[:depth] == path[:depth]


def model(value: Any, disclosable: set[Path], opened: set[Path], prefix: Path = ()) -> Any:
    """What a verifier must see: hidden = disclosable and not opened."""
    if isinstance(value, dict):
        return {
            key: model(child, disclosable, opened, (*prefix, key))
            for key, child in value.items()
            if (*prefix, key) not in disclosable or (*prefix, key) in opened
        }
    if isinstance(value, list):
        return [
            model(child, disclosable, opened, (*prefix, index))
            for index, child in enumerate(value)
            if (*prefix, index) not in disclosable or (*prefix, index) in opened
        ]
    return value


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[dict[str, Any], set[Path], list[Path]]:
    claims = draw(claim_sets)
    paths = node_paths(claims)
    disclosable = set(draw(st.lists(st.sampled_from(paths), unique=True))) if paths else set()
    requests = draw(st.lists(st.sampled_from(paths), max_size=4)) if paths else []
    return claims, disclosable, requests


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios())
def test_verifier_sees_exactly_the_disclosed_claims(
    scenario: tuple[dict[str, Any], set[Path], list[Path]],
) -> None:
    claims, disclosable, requests = scenario
    issued = issue_sd_jwt_vc(
        issuer=ISSUER,
        vct=VCT,
        claims=claims,
        disclosable=disclosable,
        holder_key=HOLDER_KEY.public(),
        signing_key=ISSUER_KEY,
        now=NOW - 10,
        expires_at=NOW + 10,
        random_bytes=counter_random(),
    )
    held = parse_sd_jwt(issued.serialize())
    assert {k: v for k, v in held.claims.items() if k not in ALWAYS_VISIBLE} == claims
    text = present(held, disclose=requests, holder_key=HOLDER_KEY, aud=AUD, nonce=NONCE, now=NOW)
    result = verify_presentation(text, issuer_key=ISSUER_KEY.public(), policy=POLICY, now=NOW)

    opened = {p for p in disclosable if any(related(r, p) for r in requests)}
    expected = model(claims, disclosable, opened)
    assert {k: v for k, v in result.claims.items() if k not in ALWAYS_VISIBLE} == expected
    assert result.disclosed_paths == frozenset(opened)
    for request in requests:  # everything asked for is there, with its value
        assert lookup(result.claims, request, disclosable, opened) == model(
            resolve(claims, request), disclosable, opened, request
        )


def resolve(value: Any, path: Path) -> Any:
    for step in path:
        value = value[step]
    return value


def lookup(processed: Any, path: Path, disclosable: set[Path], opened: set[Path]) -> Any:
    """Follow an issued-array path through processed claims (hidden elements removed)."""
    for depth, step in enumerate(path):
        if isinstance(step, int):
            parent = path[:depth]
            step = sum(
                1 for i in range(step) if (*parent, i) not in disclosable or (*parent, i) in opened
            )
        processed = processed[step]
    return processed


def _fixed_presentation() -> str:
    issued = issue_sd_jwt_vc(
        issuer=ISSUER,
        vct=VCT,
        claims={"a": "x", "b": {"c": [1, 2]}},
        disclosable=[("a",), ("b",), ("b", "c", 1)],
        holder_key=HOLDER_KEY.public(),
        signing_key=ISSUER_KEY,
        now=NOW - 10,
        expires_at=NOW + 10,
        random_bytes=counter_random("tamper"),
    )
    return present(
        parse_sd_jwt(issued.serialize()),
        disclose=[("a",), ("b", "c", 1)],
        holder_key=HOLDER_KEY,
        aud=AUD,
        nonce=NONCE,
        now=NOW,
    )


PRESENTATION = _fixed_presentation()


def test_fixed_presentation_is_valid() -> None:
    assert verify_presentation(PRESENTATION, issuer_key=ISSUER_KEY.public(), policy=POLICY, now=NOW)


def test_every_position_changed_is_rejected() -> None:
    """Exhaustive over positions (the hypothesis test below varies the replacement)."""
    accepted = []
    for position, original in enumerate(PRESENTATION):
        replacement = "A" if original != "A" else "B"
        tampered = PRESENTATION[:position] + replacement + PRESENTATION[position + 1 :]
        try:
            verify_presentation(tampered, issuer_key=ISSUER_KEY.public(), policy=POLICY, now=NOW)
        except OnceOnlyError:
            continue
        accepted.append(position)
    assert accepted == []


@settings(max_examples=400, deadline=None)
@given(
    st.integers(min_value=0, max_value=len(PRESENTATION) - 1),
    st.characters(codec="utf-8") | st.sampled_from("~.-_AQgw0"),
)
def test_any_single_character_change_is_rejected(position: int, replacement: str) -> None:
    original = PRESENTATION[position]
    if replacement == original:
        replacement = "B" if original != "B" else "C"
    tampered = PRESENTATION[:position] + replacement + PRESENTATION[position + 1 :]
    try:
        verify_presentation(tampered, issuer_key=ISSUER_KEY.public(), policy=POLICY, now=NOW)
    except OnceOnlyError:
        return
    raise AssertionError(f"change at {position} to {replacement!r} was accepted")


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300) | st.binary(max_size=300).map(lambda b: b.decode("latin-1")))
def test_random_text_only_raises_typed_errors(text: str) -> None:
    """Any exception other than OnceOnlyError escapes ``suppress`` and fails the test."""
    for policy in (POLICY, LENIENT):
        with contextlib.suppress(OnceOnlyError):
            verify_presentation(text, issuer_key=ISSUER_KEY.public(), policy=policy, now=NOW)


json_values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.sampled_from(["_sd", "...", "a", "iss", "cnf", "jwk"]) | names, children, max_size=4
        )
    ),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(
            ["iss", "vct", "iat", "exp", "nbf", "cnf", "_sd", "_sd_alg", "status", "x"]
        ),
        json_values,
    ),
    st.lists(json_values, max_size=4),
    st.booleans(),
)
def test_signed_junk_only_raises_typed_errors(
    payload: dict[str, Any], disclosures: list[Any], add_kb: bool
) -> None:
    """Past the signature check, arbitrary payloads and disclosures still fail cleanly."""
    encoded = [jose.b64url_encode(json.dumps(d).encode()) for d in disclosures]
    if encoded and "_sd" not in payload:
        # Reference them all, so processing goes beyond "unreferenced disclosure".
        payload = {**payload, "_sd": [digest_of(e) for e in encoded]}
    jwt = jose.sign_compact(payload, ISSUER_KEY, typ="dc+sd-jwt")
    text = "~".join([jwt, *encoded]) + "~"
    if add_kb:
        text += jose.sign_compact(
            {"iat": NOW, "aud": AUD, "nonce": NONCE}, HOLDER_KEY, typ="kb+jwt"
        )
    for policy in (POLICY, LENIENT):
        with contextlib.suppress(OnceOnlyError):
            verify_presentation(text, issuer_key=ISSUER_KEY.public(), policy=policy, now=NOW)


@settings(max_examples=200, deadline=None)
@given(json_values)
def test_json_serialization_junk_only_raises_typed_errors(document: Any) -> None:
    """JSON-looking junk: only OnceOnlyError may come out."""
    text = json.dumps(
        {"payload": "e30", "header": document} if not isinstance(document, dict) else document
    )
    if not text.startswith("{"):
        text = "{" + text
    with contextlib.suppress(OnceOnlyError):
        verify_presentation(text, issuer_key=ISSUER_KEY.public(), policy=LENIENT, now=NOW)


@settings(max_examples=200, deadline=None)
@given(
    st.dictionaries(st.sampled_from(["_sd", "_sd_alg", "cnf", "a", "b"]), json_values),
    st.lists(json_values, max_size=4),
)
def test_holder_parse_of_signed_junk_only_raises_typed_errors(
    payload: dict[str, Any], disclosures: list[Any]
) -> None:
    """A wallet parses what an issuer sent before trusting it: junk must fail cleanly."""
    encoded = [jose.b64url_encode(json.dumps(d).encode()) for d in disclosures]
    if encoded and "_sd" not in payload:
        payload = {**payload, "_sd": [digest_of(e) for e in encoded]}
    text = "~".join([jose.sign_compact(payload, ISSUER_KEY, typ="dc+sd-jwt"), *encoded]) + "~"
    with contextlib.suppress(OnceOnlyError):
        held = parse_sd_jwt(text)
        # Whatever parsed must be presentable without crashing either.
        present_without_key_binding(held, disclose=list(held.claim_paths)[:3])


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200, alphabet=st.sampled_from('~.{}[]"eyJAQ_-0 ')) | st.text(max_size=50))
def test_holder_parse_of_random_text_only_raises_typed_errors(text: str) -> None:
    with contextlib.suppress(OnceOnlyError):
        parse_sd_jwt(text)
