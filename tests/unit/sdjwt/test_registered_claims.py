"""Registered JWT claims (RFC 7519 §4.1) of the KB-JWT and the credential: every one present counts.

RFC 9901 §7.3: the KB-JWT must be "a valid JWT in all other respects", so an
``exp`` or ``nbf`` it carries is enforced with the same clock-skew convention as the
credential's; an ``aud`` in the credential must name the verifier.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from onceonly import jose
from onceonly.errors import Expired, InvalidClaim, KeyBindingError, NotYetValid
from onceonly.sdjwt import IssuedSdJwt, VerificationPolicy, parse_sd_jwt, verify_presentation
from onceonly.sdjwt.claims import KB_JWT_TYP
from onceonly.sdjwt.disclosures import digest_of
from onceonly.sdjwt.holder import present_without_key_binding
from tests.unit.sdjwt.conftest import AUD, ISSUER, NONCE, NOW, VCT

Issue = Callable[..., IssuedSdJwt]
LEEWAY = 60


def _with_kb(issue: Issue, holder_key: jose.PrivateKey, **extra: Any) -> str:
    sd_jwt = present_without_key_binding(
        parse_sd_jwt(issue({"name": "Ana"}, [("name",)]).serialize()), disclose=[("name",)]
    )
    payload = {"iat": NOW, "aud": AUD, "nonce": NONCE, "sd_hash": digest_of(sd_jwt, "sha-256")}
    payload.update(extra)
    return sd_jwt + jose.sign_compact(payload, holder_key, typ=KB_JWT_TYP)


def _verify(text: str, issuer_key: jose.PrivateKey, **policy: Any) -> Any:
    options: dict[str, Any] = {"expected_audience": AUD, "expected_nonce": NONCE}
    options.update(policy)
    return verify_presentation(
        text,
        issuer_key=issuer_key.public(),
        policy=VerificationPolicy(leeway_seconds=LEEWAY, **options),
        now=NOW,
    )


@pytest.mark.parametrize(
    ("extra", "error"),
    [
        ({"exp": NOW - LEEWAY}, Expired),
        ({"exp": NOW - 3600}, Expired),
        ({"nbf": NOW + LEEWAY + 1}, NotYetValid),
        ({"exp": "soon"}, KeyBindingError),
        ({"nbf": True}, KeyBindingError),
        ({"exp": None}, KeyBindingError),
    ],
)
def test_kb_jwt_exp_and_nbf_are_enforced(
    issue: Issue,
    holder_key: jose.PrivateKey,
    issuer_key: jose.PrivateKey,
    extra: dict[str, Any],
    error: type[Exception],
) -> None:
    text = _with_kb(issue, holder_key, **extra)
    with pytest.raises(error) as info:
        _verify(text, issuer_key)
    if error is not KeyBindingError:
        assert info.value.detail["token"] == "kb-jwt"  # type: ignore[attr-defined]
    # A present KB-JWT is verified in full even when key binding is optional.
    with pytest.raises(error):
        _verify(text, issuer_key, require_key_binding=False, expected_audience=None)


@pytest.mark.parametrize(
    "extra", [{"exp": NOW - LEEWAY + 1}, {"nbf": NOW + LEEWAY}, {"exp": NOW + 30.5, "nbf": NOW}]
)
def test_kb_jwt_window_within_leeway_accepted(
    issue: Issue, holder_key: jose.PrivateKey, issuer_key: jose.PrivateKey, extra: dict[str, Any]
) -> None:
    assert _verify(_with_kb(issue, holder_key, **extra), issuer_key).key_binding is not None


def test_credential_aud_must_name_the_verifier(
    holder_key: jose.PrivateKey, issuer_key: jose.PrivateKey
) -> None:
    def token(aud: Any) -> str:
        payload = {
            "iss": ISSUER,
            "iat": NOW,
            "vct": VCT,
            "cnf": {"jwk": holder_key.public().to_jwk()},
            "aud": aud,
        }
        return jose.sign_compact(payload, issuer_key, typ="dc+sd-jwt") + "~"

    lenient = {"require_key_binding": False}
    for aud in ("https://someone-else.example", [AUD + "x"], 5):
        with pytest.raises(InvalidClaim) as info:
            _verify(token(aud), issuer_key, **lenient)
        assert info.value.detail == {"claim": "aud"}
    with pytest.raises(InvalidClaim):  # a verifier naming nobody is in no aud
        _verify(token(AUD), issuer_key, require_key_binding=False, expected_audience=None)
    _verify(token(AUD), issuer_key, **lenient)
    _verify(token(["x", AUD]), issuer_key, **lenient)


@pytest.mark.parametrize("name", ["iss", "iat"])
def test_iss_and_iat_are_a_profile_rule_and_the_error_says_so(
    name: str, holder_key: jose.PrivateKey, issuer_key: jose.PrivateKey
) -> None:
    # Both are OPTIONAL in the SD-JWT VC draft; onceonly's profile requires them.
    payload = {"iss": ISSUER, "iat": NOW, "vct": VCT, "cnf": {"jwk": holder_key.public().to_jwk()}}
    del payload[name]
    token = jose.sign_compact(payload, issuer_key, typ="dc+sd-jwt") + "~"
    with pytest.raises(InvalidClaim, match="required by the onceonly profile") as info:
        _verify(token, issuer_key, require_key_binding=False)
    assert info.value.detail == {"claim": name, "rule": "onceonly-profile"}
