"""Status List Token in JWT form: sign, verify, and every rejection path."""

from __future__ import annotations

import pytest

from onceonly.errors import (
    Expired,
    InputTooLarge,
    InvalidClaim,
    InvalidSignature,
    InvalidTokenType,
    MalformedInput,
    NotYetValid,
    UnsupportedAlgorithm,
)
from onceonly.jose import (
    ES256,
    PrivateKey,
    b64url_decode,
    b64url_encode,
    generate_private_key,
    json_object_b64,
    parse_compact,
    public_key_from_jwk,
    sign_compact,
    strict_json_loads,
)
from onceonly.status_list import (
    StatusList,
    sign_status_list_jwt,
    verify_status_list_jwt,
)
from tests.unit.status_list import draft_vectors as vectors
from tests.unit.status_list.conftest import NOW, URI


def _sign(status_list: StatusList, key: PrivateKey, **overrides: object) -> str:
    args: dict[str, object] = {"uri": URI, "issued_at": NOW - 10, "expires_at": NOW + 3600}
    args.update(overrides)
    return sign_status_list_jwt(status_list, key, **args)  # type: ignore[arg-type]


def test_round_trip(issuer_key: PrivateKey, sample_list: StatusList) -> None:
    token = _sign(sample_list, issuer_key, ttl=600, extra_claims={"iss": "https://issuer"})
    jws = parse_compact(token)
    assert jws.header == {"alg": issuer_key.alg, "typ": "statuslist+jwt", "kid": "status-1"}
    assert set(jws.payload) == {"iss", "sub", "iat", "exp", "ttl", "status_list"}
    verified = verify_status_list_jwt(token, issuer_key.public(), uri=URI, now=NOW)
    assert verified.uri == URI
    assert (verified.issued_at, verified.expires_at, verified.ttl) == (NOW - 10, NOW + 3600, 600)
    assert verified.status_list == sample_list
    assert verified.form == "jwt"


def test_without_optional_claims(issuer_key: PrivateKey, sample_list: StatusList) -> None:
    token = sign_status_list_jwt(sample_list, issuer_key, uri=URI, issued_at=NOW)
    verified = verify_status_list_jwt(token, issuer_key.public(), uri=URI, now=NOW + 10**8)
    assert verified.expires_at is None
    assert verified.ttl is None


def test_draft_example_verifies() -> None:
    # Draft section 8.2: the example token, signed with the draft's example key.
    key = public_key_from_jwk(vectors.EXAMPLE_PUBLIC_JWK)
    verified = verify_status_list_jwt(
        vectors.EXAMPLE_STATUS_LIST_JWT, key, uri=vectors.EXAMPLE_URI, now=vectors.EXAMPLE_IAT
    )
    assert (verified.issued_at, verified.expires_at, verified.ttl) == (
        vectors.EXAMPLE_IAT,
        vectors.EXAMPLE_EXP,
        vectors.EXAMPLE_TTL,
    )
    statuses = vectors.SECTION_4_1_ONE_BIT["statuses"]
    assert [verified.status_list.get(i) for i in range(16)] == statuses


def test_tampered_payload_rejected(issuer_key: PrivateKey, sample_list: StatusList) -> None:
    header, payload, signature = _sign(sample_list, issuer_key).split(".")
    claims = strict_json_loads(b64url_decode(payload))
    claims["status_list"] = StatusList(1024, 2).to_json()  # "un-revoke" everything
    forged = f"{header}.{json_object_b64(claims)}.{signature}"
    with pytest.raises(InvalidSignature):
        verify_status_list_jwt(forged, issuer_key.public(), uri=URI, now=NOW)


def test_wrong_key_rejected(
    issuer_key: PrivateKey, other_key: PrivateKey, sample_list: StatusList
) -> None:
    token = _sign(sample_list, other_key)
    with pytest.raises(InvalidSignature):
        verify_status_list_jwt(token, issuer_key.public(), uri=URI, now=NOW)


def test_key_of_other_algorithm_rejected(sample_list: StatusList) -> None:
    token = _sign(sample_list, generate_private_key("EdDSA"))
    with pytest.raises(UnsupportedAlgorithm):
        verify_status_list_jwt(token, generate_private_key(ES256).public(), uri=URI, now=NOW)


@pytest.mark.parametrize("typ", ["JWT", "dc+sd-jwt", "statuslist+cwt", None])
def test_wrong_typ_rejected(issuer_key: PrivateKey, sample_list: StatusList, typ: str) -> None:
    claims = {"sub": URI, "iat": NOW, "status_list": sample_list.to_json()}
    if typ is None:
        header = {"alg": issuer_key.alg}
        signing_input = f"{json_object_b64(header)}.{json_object_b64(claims)}".encode()
        token = f"{signing_input.decode()}.{b64url_encode(issuer_key.sign(signing_input))}"
    else:
        token = sign_compact(claims, issuer_key, typ=typ)
    with pytest.raises(InvalidTokenType):
        verify_status_list_jwt(token, issuer_key.public(), uri=URI, now=NOW)


def test_media_type_form_of_typ_accepted(issuer_key: PrivateKey, sample_list: StatusList) -> None:
    claims = {"sub": URI, "iat": NOW, "status_list": sample_list.to_json()}
    token = sign_compact(claims, issuer_key, typ="application/statuslist+jwt")
    assert verify_status_list_jwt(token, issuer_key.public(), uri=URI, now=NOW).uri == URI


def test_alg_none_rejected(issuer_key: PrivateKey, sample_list: StatusList) -> None:
    header = {"alg": "none", "typ": "statuslist+jwt"}
    claims = {"sub": URI, "iat": NOW, "status_list": sample_list.to_json()}
    token = f"{json_object_b64(header)}.{json_object_b64(claims)}."
    with pytest.raises(UnsupportedAlgorithm):
        verify_status_list_jwt(token, issuer_key.public(), uri=URI, now=NOW)


def test_expired_rejected(issuer_key: PrivateKey, sample_list: StatusList) -> None:
    token = _sign(sample_list, issuer_key, issued_at=NOW - 7200, expires_at=NOW - 61)
    with pytest.raises(Expired):
        verify_status_list_jwt(token, issuer_key.public(), uri=URI, now=NOW)
    # Within the leeway it still verifies, and with no leeway it does not.
    token = _sign(sample_list, issuer_key, issued_at=NOW - 7200, expires_at=NOW - 30)
    assert verify_status_list_jwt(token, issuer_key.public(), uri=URI, now=NOW).uri == URI
    with pytest.raises(Expired):
        verify_status_list_jwt(token, issuer_key.public(), uri=URI, now=NOW, leeway=0)


def test_issued_in_future_rejected(issuer_key: PrivateKey, sample_list: StatusList) -> None:
    token = _sign(sample_list, issuer_key, issued_at=NOW + 3600, expires_at=NOW + 7200)
    with pytest.raises(NotYetValid):
        verify_status_list_jwt(token, issuer_key.public(), uri=URI, now=NOW)


def test_max_age_policy(issuer_key: PrivateKey, sample_list: StatusList) -> None:
    token = _sign(sample_list, issuer_key, issued_at=NOW - 86400, expires_at=NOW + 60)
    verify_status_list_jwt(token, issuer_key.public(), uri=URI, now=NOW)
    with pytest.raises(Expired):
        verify_status_list_jwt(token, issuer_key.public(), uri=URI, now=NOW, max_age=3600)


def test_sub_mismatch_rejected(issuer_key: PrivateKey, sample_list: StatusList) -> None:
    token = _sign(sample_list, issuer_key, uri="https://issuer.example/status/2")
    with pytest.raises(InvalidClaim) as info:
        verify_status_list_jwt(token, issuer_key.public(), uri=URI, now=NOW)
    assert info.value.detail == {"claim": "sub"}


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"sub": None}, InvalidClaim),
        ({"iat": None}, InvalidClaim),
        ({"iat": "1800000000"}, InvalidClaim),
        ({"iat": True}, InvalidClaim),
        ({"exp": "1900000000"}, InvalidClaim),
        ({"nbf": "0"}, InvalidClaim),
        ({"nbf": True}, InvalidClaim),
        ({"ttl": 0}, InvalidClaim),
        ({"ttl": 0.0}, InvalidClaim),
        ({"ttl": -5}, InvalidClaim),
        ({"ttl": "600"}, InvalidClaim),
        ({"aud": 7}, InvalidClaim),
        ({"status_list": None}, InvalidClaim),
        ({"status_list": "eNrbuRgAAhcBXQ"}, MalformedInput),
        ({"status_list": {"bits": 3, "lst": "eNrbuRgAAhcBXQ"}}, MalformedInput),
        ({"status_list": {"bits": 1, "lst": "AAAA"}}, MalformedInput),
    ],
)
def test_bad_claims_rejected(
    issuer_key: PrivateKey, change: dict[str, object], error: type[Exception]
) -> None:
    claims: dict[str, object] = {
        "sub": URI,
        "iat": NOW,
        "status_list": StatusList(8, 1).to_json(),
    }
    for name, value in change.items():
        if value is None:
            claims.pop(name)
        else:
            claims[name] = value
    token = sign_compact(claims, issuer_key, typ="statuslist+jwt")
    with pytest.raises(error):
        verify_status_list_jwt(token, issuer_key.public(), uri=URI, now=NOW)


def test_zip_bomb_in_token_rejected(issuer_key: PrivateKey) -> None:
    import zlib

    bomb = b64url_encode(zlib.compress(bytes(32 * 1024 * 1024), 9))
    claims = {"sub": URI, "iat": NOW, "status_list": {"bits": 1, "lst": bomb}}
    token = sign_compact(claims, issuer_key, typ="statuslist+jwt")
    with pytest.raises(InputTooLarge):
        verify_status_list_jwt(
            token, issuer_key.public(), uri=URI, now=NOW, max_list_bytes=1024 * 1024
        )


def test_oversized_token_rejected(issuer_key: PrivateKey, sample_list: StatusList) -> None:
    token = _sign(sample_list, issuer_key)
    with pytest.raises(InputTooLarge):
        verify_status_list_jwt(
            token, issuer_key.public(), uri=URI, now=NOW, max_token_bytes=len(token) - 1
        )


@pytest.mark.parametrize("token", ["", "a.b", "a.b.c.d", "!!.!!.!!"])
def test_structurally_broken_tokens_rejected(issuer_key: PrivateKey, token: str) -> None:
    with pytest.raises(MalformedInput):
        verify_status_list_jwt(token, issuer_key.public(), uri=URI, now=NOW)


def _signed_claims(key: PrivateKey, **extra: object) -> str:
    claims: dict[str, object] = {
        "sub": URI,
        "iat": NOW - 10,
        "status_list": StatusList(8, 1).to_json(),
    }
    claims.update(extra)
    return sign_compact(claims, key, typ="statuslist+jwt")


def test_future_nbf_rejected_within_leeway_accepted(issuer_key: PrivateKey) -> None:
    # RFC 7519 §4.1.5: before nbf the token must not be accepted (same skew as iat).
    with pytest.raises(NotYetValid) as info:
        verify_status_list_jwt(
            _signed_claims(issuer_key, nbf=NOW + 61), issuer_key.public(), uri=URI, now=NOW
        )
    assert info.value.detail["nbf"] == NOW + 61
    token = _signed_claims(issuer_key, nbf=NOW + 60)
    verified = verify_status_list_jwt(token, issuer_key.public(), uri=URI, now=NOW)
    assert verified.not_before == NOW + 60
    with pytest.raises(NotYetValid):
        verified.check_time(now=NOW - 5)  # a cached token is re-checked against nbf too


@pytest.mark.parametrize("aud", ["https://other-verifier.example", ["https://other.example"], []])
def test_foreign_aud_rejected(issuer_key: PrivateKey, aud: object) -> None:
    token = _signed_claims(issuer_key, aud=aud)
    for audience in (None, "https://verifier.example"):
        with pytest.raises(InvalidClaim) as info:
            verify_status_list_jwt(token, issuer_key.public(), uri=URI, now=NOW, audience=audience)
        assert info.value.detail == {"claim": "aud"}


@pytest.mark.parametrize("aud", ["https://verifier.example", ["x", "https://verifier.example"]])
def test_aud_naming_the_verifier_accepted(issuer_key: PrivateKey, aud: object) -> None:
    token = _signed_claims(issuer_key, aud=aud)
    verify_status_list_jwt(
        token, issuer_key.public(), uri=URI, now=NOW, audience="https://verifier.example"
    )


def test_fractional_times_and_ttl_accepted(issuer_key: PrivateKey, sample_list: StatusList) -> None:
    # NumericDate and ttl are JSON numbers, not only integers.
    token = _sign(sample_list, issuer_key, ttl=0.5)
    assert verify_status_list_jwt(token, issuer_key.public(), uri=URI, now=NOW).ttl == 0.5
    token = _signed_claims(issuer_key, iat=NOW - 0.25, exp=NOW + 99.5, ttl=1.5)
    verified = verify_status_list_jwt(token, issuer_key.public(), uri=URI, now=NOW)
    assert (verified.issued_at, verified.expires_at, verified.ttl) == (NOW - 0.25, NOW + 99.5, 1.5)
    with pytest.raises(Expired):
        verify_status_list_jwt(token, issuer_key.public(), uri=URI, now=NOW + 160)
