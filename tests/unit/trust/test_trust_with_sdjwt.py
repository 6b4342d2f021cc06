"""The trust list's key resolver in front of the real SD-JWT VC verifier (key rotation)."""

from __future__ import annotations

import os

import pytest

from onceonly import errors, jose
from onceonly.sdjwt import (
    VerificationPolicy,
    issue_sd_jwt_vc,
    parse_sd_jwt,
    present,
    verify_presentation,
)

from .conftest import DAY, NOW, PID, Keys, make_list

HOLDER = jose.generate_private_key(jose.ES256)
VERIFIER = "https://tax.example"


def issue(signer: jose.PrivateKey, *, issued_at: int, vct: str = PID) -> str:
    issued = issue_sd_jwt_vc(
        issuer="https://registry.example",
        vct=vct,
        claims={"family_name": "Mustermann", "birthdate": "1990-01-01"},
        disclosable=[("family_name",), ("birthdate",)],
        holder_key=HOLDER.public(),
        signing_key=signer,
        now=issued_at,
        expires_at=issued_at + 365 * DAY,
        random_bytes=os.urandom,
    )
    return present(
        parse_sd_jwt(issued.serialize()),
        disclose=[("family_name",)],
        holder_key=HOLDER,
        aud=VERIFIER,
        nonce="n-0123456789abcdef0123",
        now=NOW,
    )


def check(keys: Keys, presentation: str) -> dict[str, object]:
    policy = VerificationPolicy(expected_audience=VERIFIER, expected_nonce="n-0123456789abcdef0123")
    resolver = make_list(keys).issuer_key_resolver()
    verified = verify_presentation(presentation, issuer_key=resolver, policy=policy, now=NOW)
    return dict(verified.claims)


def test_credential_from_rotated_out_key_still_verifies(keys: Keys) -> None:
    claims = check(keys, issue(keys.registry_old, issued_at=NOW - 100 * DAY))
    assert claims["family_name"] == "Mustermann"
    assert "birthdate" not in claims


def test_new_credential_with_rotated_out_key_is_refused(keys: Keys) -> None:
    with pytest.raises(errors.UntrustedIssuer):
        check(keys, issue(keys.registry_old, issued_at=NOW - DAY))


def test_current_key_verifies(keys: Keys) -> None:
    assert check(keys, issue(keys.registry_new, issued_at=NOW - DAY))["iss"] == (
        "https://registry.example"
    )


def test_vct_outside_the_agency_registration_is_refused(keys: Keys) -> None:
    with pytest.raises(errors.UntrustedIssuer, match="may not issue"):
        check(keys, issue(keys.registry_new, issued_at=NOW - DAY, vct="urn:eudi:driving:1"))


def test_another_agency_key_is_refused(keys: Keys) -> None:
    with pytest.raises(errors.UnknownKey):
        check(keys, issue(keys.tax, issued_at=NOW - DAY))
