"""Verifier API: policy validation, key resolution, result fields, time boundaries.

The rule-by-rule negative cases live in the published vectors (test_vectors.py);
these tests cover what vectors cannot express.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import pytest

from onceonly import jose
from onceonly.errors import Expired, MalformedInput, NotYetValid, UnknownKey
from onceonly.sdjwt import (
    IssuedSdJwt,
    VerificationPolicy,
    parse_sd_jwt,
    present,
    verify_presentation,
)
from tests.unit.sdjwt.conftest import AUD, ISSUER, NONCE, NOW, VCT

Issue = Callable[..., IssuedSdJwt]
CLAIMS = {"name": "Ana", "address": {"city": "Porto"}}


@pytest.fixture
def presentation(issue: Issue, holder_key: jose.PrivateKey) -> str:
    issued = issue(CLAIMS, [("name",), ("address", "city")], not_before=NOW - 50, status={"s": 1})
    return present(
        parse_sd_jwt(issued.serialize()),
        disclose=[("name",)],
        holder_key=holder_key,
        aud=AUD,
        nonce=NONCE,
        now=NOW,
    )


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"expected_audience": AUD},
        {"expected_nonce": NONCE},
        {"expected_audience": "", "expected_nonce": NONCE},
        {"require_key_binding": False, "leeway_seconds": 301},
        {"require_key_binding": False, "leeway_seconds": -1},
        {"require_key_binding": False, "max_kb_age_seconds": 0},
        {"require_key_binding": False, "allowed_algs": frozenset()},
        {"require_key_binding": False, "allowed_algs": frozenset({"HS256"})},
        {"require_key_binding": False, "accepted_hash_algs": frozenset()},
    ],
)
def test_invalid_policies_are_programming_errors(options: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        VerificationPolicy(**options)


def test_result_fields(
    presentation: str,
    issuer_key: jose.PrivateKey,
    holder_key: jose.PrivateKey,
    policy: VerificationPolicy,
) -> None:
    result = verify_presentation(
        presentation, issuer_key=issuer_key.public(), policy=policy, now=NOW
    )
    assert result.issuer == ISSUER and result.vct == VCT
    assert result.holder_key is not None
    assert result.holder_key.thumbprint() == holder_key.public().thumbprint()
    assert result.status == {"s": 1}
    assert (result.issued_at, result.not_before, result.expires_at) == (
        NOW - 100,
        NOW - 50,
        NOW + 86400,
    )
    assert result.disclosed_paths == frozenset({("name",)})
    assert result.issuer_header["kid"] == "issuer-1"
    assert result.claims["name"] == "Ana" and result.claims["address"] == {}
    assert not {"_sd", "_sd_alg"} & set(result.claims)


def test_resolver_chooses_by_kid(
    presentation: str, issuer_key: jose.PrivateKey, policy: VerificationPolicy
) -> None:
    keys = {"issuer-1": issuer_key.public()}

    def resolve(header: Mapping[str, Any], payload: Mapping[str, Any]) -> jose.PublicKey:
        assert payload["iss"] == ISSUER
        return keys[header["kid"]]

    assert verify_presentation(presentation, issuer_key=resolve, policy=policy, now=NOW)
    keys.clear()
    with pytest.raises(UnknownKey):
        verify_presentation(presentation, issuer_key=resolve, policy=policy, now=NOW)


def test_resolver_returning_nothing_is_unknown_key(
    presentation: str, policy: VerificationPolicy
) -> None:
    def resolve(header: Mapping[str, Any], payload: Mapping[str, Any]) -> jose.PublicKey:
        return None  # type: ignore[return-value]

    with pytest.raises(UnknownKey):
        verify_presentation(presentation, issuer_key=resolve, policy=policy, now=NOW)


def test_kb_optional_checks_aud_and_nonce_only_when_named(
    presentation: str, issuer_key: jose.PrivateKey
) -> None:
    lenient = VerificationPolicy(require_key_binding=False)
    result = verify_presentation(
        presentation, issuer_key=issuer_key.public(), policy=lenient, now=NOW
    )
    assert result.key_binding is not None and result.key_binding.aud == AUD


def test_exp_boundary_without_leeway(issue: Issue, issuer_key: jose.PrivateKey) -> None:
    text = issue(CLAIMS, [], expires_at=NOW).serialize()
    strict = VerificationPolicy(require_key_binding=False, leeway_seconds=0)
    verify_presentation(text, issuer_key=issuer_key.public(), policy=strict, now=NOW - 1)
    with pytest.raises(Expired):
        verify_presentation(text, issuer_key=issuer_key.public(), policy=strict, now=NOW)


def test_nbf_boundary_with_leeway(issue: Issue, issuer_key: jose.PrivateKey) -> None:
    text = issue(CLAIMS, [], now=NOW - 500, not_before=NOW + 60).serialize()
    lenient = VerificationPolicy(require_key_binding=False, leeway_seconds=60)
    verify_presentation(text, issuer_key=issuer_key.public(), policy=lenient, now=NOW)
    with pytest.raises(NotYetValid):
        verify_presentation(text, issuer_key=issuer_key.public(), policy=lenient, now=NOW - 1)


@pytest.mark.parametrize("value", [b"bytes~", None, 42])
def test_non_text_input_is_malformed(
    value: Any, issuer_key: jose.PrivateKey, policy: VerificationPolicy
) -> None:
    with pytest.raises(MalformedInput):
        verify_presentation(value, issuer_key=issuer_key.public(), policy=policy, now=NOW)
