"""Interoperability with the IETF reference implementation (PyPI ``sd-jwt`` 0.10.4), both ways.

Compact serialization only: 0.10.4 predates RFC 9901 §8 and puts ``disclosures``
at the top level of its JSON form instead of in the unprotected header, which
onceonly (following the RFC) rejects.

The reference holder stamps its KB-JWT with the wall clock, so these tests read
the clock once and pass it to onceonly as ``now``.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from jwcrypto.jwk import JWK
from sd_jwt.common import SDObj
from sd_jwt.holder import SDJWTHolder
from sd_jwt.issuer import SDJWTIssuer
from sd_jwt.verifier import SDJWTVerifier

from onceonly import jose
from onceonly.errors import Expired, InvalidDisclosure
from onceonly.sdjwt import (
    VerificationPolicy,
    issue_sd_jwt_vc,
    parse_sd_jwt,
    present,
    verify_presentation,
)
from onceonly.sdjwt.key_binding import create_kb_jwt
from tests.unit.sdjwt.conftest import AUD, ISSUER, NONCE, VCT, counter_random

ALWAYS_VISIBLE = ("iss", "iat", "exp", "vct", "cnf")


def jwcrypto_key(key: jose.PrivateKey | jose.PublicKey) -> JWK:
    return JWK(**key.to_jwk())


@pytest.fixture
def now() -> int:
    return int(time.time())


@pytest.fixture
def keys() -> tuple[jose.PrivateKey, jose.PrivateKey]:
    # ES256 for both: the reference verifier checks KB-JWTs with ES256 only.
    return jose.generate_private_key(jose.ES256, kid="ref-issuer"), jose.generate_private_key()


def reference_issuance(
    issuer: jose.PrivateKey, holder: jose.PrivateKey, now: int, typ: str = "dc+sd-jwt"
) -> str:
    user_claims: dict[Any, Any] = {
        "iss": ISSUER,
        "iat": now - 60,
        "exp": now + 3600,
        "vct": VCT,
        SDObj("given_name"): "Ana",
        SDObj("family_name"): "Sousa",
        SDObj("address"): {SDObj("street"): "Rua 1", "city": "Porto"},
        "nationalities": [SDObj("PT"), "ES", SDObj("BR")],
    }
    issued = SDJWTIssuer(
        user_claims,
        jwcrypto_key(issuer),
        holder_key=jwcrypto_key(holder.public()),
        add_decoy_claims=True,
        extra_header_parameters={"typ": typ, "kid": issuer.kid},
    )
    return str(issued.sd_jwt_issuance)


def test_reference_issued_and_presented_verifies_in_onceonly(
    keys: tuple[jose.PrivateKey, jose.PrivateKey], now: int
) -> None:
    issuer, holder = keys
    reference_holder = SDJWTHolder(reference_issuance(issuer, holder, now))
    reference_holder.create_presentation(
        {"given_name": True, "address": {"street": True}, "nationalities": [False, True, True]},
        nonce=NONCE,
        aud=AUD,
        holder_key=jwcrypto_key(holder),
        sign_alg="ES256",
    )
    policy = VerificationPolicy(expected_audience=AUD, expected_nonce=NONCE)
    result = verify_presentation(
        reference_holder.sd_jwt_presentation,
        issuer_key=issuer.public(),
        policy=policy,
        now=now,
    )
    assert result.claims["given_name"] == "Ana"
    assert "family_name" not in result.claims
    assert result.claims["address"] == {"street": "Rua 1", "city": "Porto"}
    assert result.claims["nationalities"] == ["ES", "BR"]
    assert result.disclosed_paths == {
        ("given_name",),
        ("address",),
        ("address", "street"),
        ("nationalities", 2),
    }
    assert result.key_binding is not None and result.key_binding.nonce == NONCE


def verified_by_reference(text: str, issuer: jose.PrivateKey) -> dict[str, Any]:
    """The payload the reference verifier accepts for ``text`` (with AUD and NONCE)."""
    verifier = SDJWTVerifier(
        text,
        lambda _iss, _header: jwcrypto_key(issuer.public()),
        expected_aud=AUD,
        expected_nonce=NONCE,
    )
    payload: dict[str, Any] = verifier.get_verified_payload()
    return payload


def test_reference_issued_presented_by_onceonly_verifies_in_reference(
    keys: tuple[jose.PrivateKey, jose.PrivateKey], now: int
) -> None:
    issuer, holder = keys
    held = parse_sd_jwt(reference_issuance(issuer, holder, now))
    text = present(
        held,
        disclose=[("family_name",), ("nationalities", 0)],
        holder_key=holder,
        aud=AUD,
        nonce=NONCE,
        now=now,
    )
    payload = verified_by_reference(text, issuer)
    assert payload["family_name"] == "Sousa"
    assert payload["nationalities"] == ["PT", "ES"]
    assert "given_name" not in payload and "address" not in payload


def onceonly_issuance(issuer: jose.PrivateKey, holder: jose.PrivateKey, now: int) -> str:
    return issue_sd_jwt_vc(
        issuer=ISSUER,
        vct=VCT,
        claims={
            "given_name": "Ana",
            "address": {"street": "Rua 1", "city": "Porto"},
            "nationalities": ["PT", "ES", "BR"],
        },
        disclosable=[("given_name",), ("address",), ("address", "street"), ("nationalities", None)],
        holder_key=holder.public(),
        signing_key=issuer,
        now=now - 60,
        expires_at=now + 3600,
        random_bytes=counter_random("interop"),
    ).serialize()


def test_onceonly_issued_and_presented_verifies_in_reference(
    keys: tuple[jose.PrivateKey, jose.PrivateKey], now: int
) -> None:
    issuer, holder = keys
    text = present(
        parse_sd_jwt(onceonly_issuance(issuer, holder, now)),
        disclose=[("address", "street"), ("nationalities", 1)],
        holder_key=holder,
        aud=AUD,
        nonce=NONCE,
        now=now,
    )
    payload = verified_by_reference(text, issuer)
    ours = verify_presentation(
        text,
        issuer_key=issuer.public(),
        policy=VerificationPolicy(expected_audience=AUD, expected_nonce=NONCE),
        now=now,
    )
    # Same processed claims from both implementations.
    assert payload == ours.claims
    assert payload["address"] == {"street": "Rua 1", "city": "Porto"}
    assert payload["nationalities"] == ["ES"]


def test_onceonly_issued_presented_by_reference_verifies_in_onceonly(
    keys: tuple[jose.PrivateKey, jose.PrivateKey], now: int
) -> None:
    issuer, holder = keys
    reference_holder = SDJWTHolder(onceonly_issuance(issuer, holder, now))
    reference_holder.create_presentation(
        {"given_name": True, "nationalities": [True, False, True]},
        nonce=NONCE,
        aud=AUD,
        holder_key=jwcrypto_key(holder),
        sign_alg="ES256",
    )
    result = verify_presentation(
        reference_holder.sd_jwt_presentation,
        issuer_key=issuer.public(),
        policy=VerificationPolicy(expected_audience=AUD, expected_nonce=NONCE),
        now=now,
    )
    assert result.claims["given_name"] == "Ana"
    assert result.claims["nationalities"] == ["PT", "BR"]
    assert "address" not in result.claims


def _reference_accepts(text: str, issuer: jose.PrivateKey) -> dict[str, Any]:
    payload: dict[str, Any] = verified_by_reference(text, issuer)
    return payload


def test_onceonly_rejects_what_the_reference_verifier_lets_through(
    keys: tuple[jose.PrivateKey, jose.PrivateKey], now: int
) -> None:
    """The reference verifier skips time checks and the unreferenced-disclosure rule."""
    issuer, holder = keys
    policy = VerificationPolicy(expected_audience=AUD, expected_nonce=NONCE)
    held = parse_sd_jwt(onceonly_issuance(issuer, holder, now))

    # 1. A presentation made (and checked) two hours after the credential expired.
    later = now + 7200
    expired = present(
        held, disclose=[("given_name",)], holder_key=holder, aud=AUD, nonce=NONCE, now=later
    )
    assert _reference_accepts(expired, issuer)["given_name"] == "Ana"
    with pytest.raises(Expired):
        verify_presentation(expired, issuer_key=issuer.public(), policy=policy, now=later)

    # 2. A disclosure that no digest references, covered by a valid KB-JWT.
    stray = jose.b64url_encode(b'["c2FsdHNhbHRzYWx0c2FsdA","smuggled","value"]')
    prefix = f"{held.raw.issuer_jwt}~{stray}~"
    unreferenced = prefix + create_kb_jwt(
        prefix, holder_key=holder, aud=AUD, nonce=NONCE, now=now, hash_alg="sha-256"
    )
    assert "smuggled" not in _reference_accepts(unreferenced, issuer)
    with pytest.raises(InvalidDisclosure, match="not referenced"):
        verify_presentation(unreferenced, issuer_key=issuer.public(), policy=policy, now=now)
