"""A credential's status claim and check_status over both token forms."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from onceonly.cose import strict_cbor_loads, verify_sign1
from onceonly.errors import (
    Expired,
    InputTooLarge,
    InvalidClaim,
    InvalidSignature,
    MalformedInput,
    Revoked,
    StatusIndexOutOfRange,
    Suspended,
    UnrecognisedStatus,
)
from onceonly.jose import PrivateKey, public_key_from_jwk
from onceonly.status_list import (
    VALID,
    StatusList,
    StatusReference,
    check_status,
    parse_status_claim,
    sign_status_list_cwt,
    sign_status_list_jwt,
    status_reference_from_claims,
    status_reference_from_cwt_claims,
    verify_status_list_jwt,
)
from tests.unit.status_list import draft_vectors as vectors
from tests.unit.status_list.conftest import NOW, URI

Signer = Callable[..., str | bytes]


def test_parse_status_claim() -> None:
    reference = parse_status_claim({"status_list": {"idx": 7, "uri": URI, "extension": 1}})
    assert reference == StatusReference(idx=7, uri=URI)
    assert reference.to_claim() == {"status_list": {"idx": 7, "uri": URI}}
    assert status_reference_from_claims({"vct": "x", "status": reference.to_claim()}) == reference


@pytest.mark.parametrize(
    ("status", "error"),
    [
        ("https://x", MalformedInput),
        ({}, InvalidClaim),
        ({"status_list": [0, URI]}, MalformedInput),
        ({"status_list": {"uri": URI}}, MalformedInput),
        ({"status_list": {"idx": 0}}, MalformedInput),
        ({"status_list": {"idx": -1, "uri": URI}}, MalformedInput),
        ({"status_list": {"idx": "0", "uri": URI}}, MalformedInput),
        ({"status_list": {"idx": True, "uri": URI}}, MalformedInput),
        ({"status_list": {"idx": 1.0, "uri": URI}}, MalformedInput),
        ({"status_list": {"idx": 0, "uri": "/relative/path"}}, MalformedInput),
        ({"status_list": {"idx": 0, "uri": "https://a b"}}, MalformedInput),
        ({"status_list": {"idx": 0, "uri": ""}}, MalformedInput),
        ({"status_list": {"idx": 0, "uri": "https://x/" + "a" * 3000}}, MalformedInput),
    ],
)
def test_bad_status_claims_rejected(status: object, error: type[Exception]) -> None:
    with pytest.raises(error):
        parse_status_claim(status)


def test_missing_status_claim() -> None:
    with pytest.raises(InvalidClaim):
        status_reference_from_claims({"vct": "x"})


def _jwt(status_list: StatusList, key: PrivateKey, uri: str = URI) -> str:
    return sign_status_list_jwt(status_list, key, uri=uri, issued_at=NOW, expires_at=NOW + 600)


def _cwt(status_list: StatusList, key: PrivateKey, uri: str = URI) -> bytes:
    return sign_status_list_cwt(status_list, key, uri=uri, issued_at=NOW, expires_at=NOW + 600)


@pytest.fixture(params=[_jwt, _cwt], ids=["jwt", "cwt"])
def sign(request: pytest.FixtureRequest) -> Signer:
    return request.param  # type: ignore[no-any-return]


def test_statuses(issuer_key: PrivateKey, sample_list: StatusList, sign: Signer) -> None:
    token = sign(sample_list, issuer_key)
    public = issuer_key.public()
    assert check_status(StatusReference(idx=0, uri=URI), token, issuer_key=public, now=NOW) == 0
    with pytest.raises(Revoked) as revoked:
        check_status(StatusReference(idx=3, uri=URI), token, issuer_key=public, now=NOW)
    assert revoked.value.code == "revoked"
    with pytest.raises(Suspended) as suspended:
        check_status(StatusReference(idx=4, uri=URI), token, issuer_key=public, now=NOW)
    assert suspended.value.code == "suspended"
    reference = StatusReference(idx=5, uri=URI)
    with pytest.raises(UnrecognisedStatus):
        check_status(reference, token, issuer_key=public, now=NOW)
    accepted = {VALID, 3}
    assert check_status(reference, token, issuer_key=public, now=NOW, accepted=accepted) == 3


def test_index_out_of_range(issuer_key: PrivateKey, sample_list: StatusList, sign: Signer) -> None:
    token = sign(sample_list, issuer_key)
    public = issuer_key.public()
    assert check_status(StatusReference(idx=1023, uri=URI), token, issuer_key=public, now=NOW) == 0
    with pytest.raises(StatusIndexOutOfRange):
        check_status(StatusReference(idx=1024, uri=URI), token, issuer_key=public, now=NOW)


def test_token_for_another_list_rejected(
    issuer_key: PrivateKey, sample_list: StatusList, sign: Signer
) -> None:
    token = sign(sample_list, issuer_key, "https://issuer.example/status/2")
    with pytest.raises(InvalidClaim):
        check_status(
            StatusReference(idx=0, uri=URI), token, issuer_key=issuer_key.public(), now=NOW
        )


def test_wrong_issuer_key_rejected(
    issuer_key: PrivateKey, other_key: PrivateKey, sample_list: StatusList, sign: Signer
) -> None:
    token = sign(sample_list, issuer_key)
    with pytest.raises(InvalidSignature):
        check_status(StatusReference(idx=0, uri=URI), token, issuer_key=other_key.public(), now=NOW)


def test_expired_token_rejected(
    issuer_key: PrivateKey, sample_list: StatusList, sign: Signer
) -> None:
    token = sign(sample_list, issuer_key)
    with pytest.raises(Expired):
        check_status(
            StatusReference(idx=0, uri=URI), token, issuer_key=issuer_key.public(), now=NOW + 3600
        )


def test_cached_token_is_rechecked(issuer_key: PrivateKey, sample_list: StatusList) -> None:
    verified = verify_status_list_jwt(
        _jwt(sample_list, issuer_key), issuer_key.public(), uri=URI, now=NOW
    )
    public = issuer_key.public()
    assert check_status(StatusReference(idx=1, uri=URI), verified, issuer_key=public, now=NOW) == 0
    with pytest.raises(Revoked):
        check_status(StatusReference(idx=3, uri=URI), verified, issuer_key=public, now=NOW)
    with pytest.raises(Expired):
        check_status(StatusReference(idx=1, uri=URI), verified, issuer_key=public, now=NOW + 3600)
    with pytest.raises(InvalidClaim):
        other = StatusReference(idx=1, uri="https://issuer.example/status/2")
        check_status(other, verified, issuer_key=public, now=NOW)


def test_draft_referenced_cwt_against_draft_status_list() -> None:
    # Draft section 6.3 (a CWT whose status claim 65535 points at index 0 of
    # https://example.com/statuslists/1) checked against the section 5.2 status
    # list CWT, in which index 0 is 1 (INVALID): the credential is revoked.
    key = public_key_from_jwk(vectors.EXAMPLE_PUBLIC_JWK)
    credential = verify_sign1(
        bytes.fromhex(vectors.EXAMPLE_REFERENCED_TOKEN_CWT_HEX), key, expected_typ=None
    )
    reference = status_reference_from_cwt_claims(strict_cbor_loads(credential.payload))
    assert reference == StatusReference(idx=0, uri=vectors.EXAMPLE_URI)
    status_token = bytes.fromhex(vectors.EXAMPLE_STATUS_LIST_CWT_HEX)
    with pytest.raises(Revoked):
        check_status(reference, status_token, issuer_key=key, now=vectors.EXAMPLE_IAT)
    # Index 1 of the same list is 0 (VALID).
    second = StatusReference(idx=1, uri=vectors.EXAMPLE_URI)
    assert check_status(second, status_token, issuer_key=key, now=vectors.EXAMPLE_IAT) == 0


def test_cwt_claims_without_status() -> None:
    with pytest.raises(InvalidClaim):
        status_reference_from_cwt_claims({2: "subject"})
    with pytest.raises(MalformedInput):
        status_reference_from_cwt_claims({65535: {"status_list": {"idx": "0", "uri": URI}}})


def test_max_entries_policy(issuer_key: PrivateKey, sample_list: StatusList, sign: Signer) -> None:
    token = sign(sample_list, issuer_key)
    public = issuer_key.public()
    reference = StatusReference(idx=0, uri=URI)
    assert check_status(reference, token, issuer_key=public, now=NOW, max_entries=1024) == 0
    with pytest.raises(InputTooLarge):
        check_status(reference, token, issuer_key=public, now=NOW, max_entries=512)
