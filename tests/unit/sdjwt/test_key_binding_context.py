"""The KB-JWT ``onceonly_context`` claim: signed for one kind of exchange, refused in another."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from onceonly import jose
from onceonly.errors import ContextMismatch, KeyBindingError
from onceonly.sdjwt import (
    IssuedSdJwt,
    VerificationPolicy,
    parse_sd_jwt,
    present,
    verify_presentation,
)
from onceonly.sdjwt.holder import compact_without_kb
from onceonly.sdjwt.serialization import split_sd_jwt
from tests.unit.sdjwt.conftest import AUD, NONCE, NOW

Issue = Callable[..., IssuedSdJwt]
BINDING = "identity_binding"


def presentation(issue: Issue, holder_key: jose.PrivateKey, context: str | None) -> str:
    issued = issue({"name": "Ana"}, [("name",)])
    return present(
        parse_sd_jwt(issued.serialize()),
        disclose=[("name",)],
        holder_key=holder_key,
        aud=AUD,
        nonce=NONCE,
        now=NOW,
        context=context,
    )


def verify(text: str, issuer_key: jose.PrivateKey, context: str | None) -> Any:
    policy = VerificationPolicy(
        expected_audience=AUD, expected_nonce=NONCE, expected_context=context
    )
    return verify_presentation(text, issuer_key=issuer_key.public(), policy=policy, now=NOW)


@pytest.mark.parametrize(
    ("signed", "expected"), [(BINDING, None), (None, BINDING), ("other", BINDING)]
)
def test_a_kb_jwt_from_another_context_is_refused(
    issue: Issue,
    holder_key: jose.PrivateKey,
    issuer_key: jose.PrivateKey,
    signed: str | None,
    expected: str | None,
) -> None:
    with pytest.raises(ContextMismatch) as caught:
        verify(presentation(issue, holder_key, signed), issuer_key, expected)
    assert caught.value.code == "context_mismatch"


@pytest.mark.parametrize("context", [None, BINDING])
def test_the_matching_context_verifies(
    issue: Issue, holder_key: jose.PrivateKey, issuer_key: jose.PrivateKey, context: str | None
) -> None:
    verified = verify(presentation(issue, holder_key, context), issuer_key, context)
    assert verified.key_binding is not None and verified.key_binding.context == context
    assert verified.claims["name"] == "Ana"


def test_a_non_string_context_is_a_key_binding_error(
    issue: Issue, holder_key: jose.PrivateKey, issuer_key: jose.PrivateKey
) -> None:
    raw = split_sd_jwt(presentation(issue, holder_key, None))
    kb = jose.parse_compact(raw.kb_jwt or "")
    payload = {**kb.payload, "onceonly_context": ["identity_binding"]}
    signed = jose.sign_compact(payload, holder_key, typ="kb+jwt")
    text = compact_without_kb(raw.issuer_jwt, raw.disclosures) + signed
    with pytest.raises(KeyBindingError) as caught:
        verify(text, issuer_key, None)
    assert type(caught.value) is KeyBindingError
