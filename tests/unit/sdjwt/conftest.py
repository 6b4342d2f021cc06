"""Shared keys, a deterministic randomness source and a small credential factory."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Collection, Mapping
from typing import Any

import pytest

from onceonly import jose
from onceonly.sdjwt import ClaimPath, IssuedSdJwt, VerificationPolicy, issue_sd_jwt_vc

NOW = 1_767_225_600
AUD = "@verifier:gov.example"
NONCE = "nonce-123"
ISSUER = "https://issuer.gov.example"
VCT = "urn:example:pid:1"


def counter_random(label: str = "test") -> Callable[[int], bytes]:
    """Deterministic ``random_bytes`` for reproducible tests."""
    state = {"n": 0}

    def random_bytes(size: int) -> bytes:
        out = b""
        while len(out) < size:
            out += hashlib.sha256(f"{label}/{state['n']}".encode()).digest()
            state["n"] += 1
        return out[:size]

    return random_bytes


@pytest.fixture(scope="session")
def issuer_key() -> jose.PrivateKey:
    return jose.generate_private_key(jose.ES256, kid="issuer-1")


@pytest.fixture(scope="session")
def holder_key() -> jose.PrivateKey:
    return jose.generate_private_key(jose.ES256)


@pytest.fixture
def policy() -> VerificationPolicy:
    return VerificationPolicy(expected_audience=AUD, expected_nonce=NONCE)


@pytest.fixture
def issue(issuer_key: jose.PrivateKey, holder_key: jose.PrivateKey) -> Callable[..., IssuedSdJwt]:
    def factory(
        claims: Mapping[str, Any],
        disclosable: Collection[ClaimPath],
        **options: Any,
    ) -> IssuedSdJwt:
        arguments: dict[str, Any] = {
            "issuer": ISSUER,
            "vct": VCT,
            "holder_key": holder_key.public(),
            "signing_key": issuer_key,
            "now": NOW - 100,
            "expires_at": NOW + 86400,
            "random_bytes": counter_random(),
        }
        arguments.update(options)
        return issue_sd_jwt_vc(claims=claims, disclosable=disclosable, **arguments)

    return factory
