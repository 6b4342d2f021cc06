"""Status List Token in CWT form and the COSE_Sign1 underneath it."""

from __future__ import annotations

import cbor2
import pytest

from onceonly.cose import COSE_SIGN1_TAG, sign1, strict_cbor_loads, verify_sign1
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
from onceonly.jose import PrivateKey, generate_private_key, public_key_from_jwk
from onceonly.status_list import (
    STATUS_LIST_CWT_TYP,
    StatusList,
    sign_status_list_cwt,
    verify_status_list_cwt,
)
from tests.unit.status_list import draft_vectors as vectors
from tests.unit.status_list.conftest import NOW, URI


def _sign(status_list: StatusList, key: PrivateKey, **overrides: object) -> bytes:
    args: dict[str, object] = {"uri": URI, "issued_at": NOW - 10, "expires_at": NOW + 3600}
    args.update(overrides)
    return sign_status_list_cwt(status_list, key, **args)  # type: ignore[arg-type]


def _resign(key: PrivateKey, claims: dict[int, object], protected: dict[int, object]) -> bytes:
    """A correctly signed message with arbitrary claims and protected headers."""
    return sign1(cbor2.dumps(claims), key, protected=protected)


def _claims(status_list: StatusList) -> dict[int, object]:
    return {2: URI, 6: NOW, 4: NOW + 60, 65533: status_list.to_cbor_map()}


def test_round_trip(issuer_key: PrivateKey, sample_list: StatusList) -> None:
    token = _sign(sample_list, issuer_key, ttl=600)
    outer = cbor2.loads(token)
    assert outer.tag == COSE_SIGN1_TAG
    protected = cbor2.loads(outer.value[0])
    assert protected == {1: -7 if issuer_key.alg == "ES256" else -8, 16: STATUS_LIST_CWT_TYP}
    assert outer.value[1] == {4: b"status-1"}
    assert len(outer.value[3]) == 64  # raw r||s for ES256, Ed25519 signature for EdDSA
    verified = verify_status_list_cwt(token, issuer_key.public(), uri=URI, now=NOW)
    assert (verified.uri, verified.issued_at, verified.expires_at, verified.ttl) == (
        URI,
        NOW - 10,
        NOW + 3600,
        600,
    )
    assert verified.status_list == sample_list
    assert verified.form == "cwt"


def test_draft_example_verifies() -> None:
    # Draft section 5.2: the example CWT, signed with the draft's example key.
    key = public_key_from_jwk(vectors.EXAMPLE_PUBLIC_JWK)
    token = bytes.fromhex(vectors.EXAMPLE_STATUS_LIST_CWT_HEX)
    verified = verify_status_list_cwt(token, key, uri=vectors.EXAMPLE_URI, now=vectors.EXAMPLE_IAT)
    assert (verified.expires_at, verified.ttl) == (vectors.EXAMPLE_EXP, vectors.EXAMPLE_TTL)
    statuses = vectors.SECTION_4_1_ONE_BIT["statuses"]
    assert [verified.status_list.get(i) for i in range(16)] == statuses
    # One flipped bit anywhere in the signed part breaks it.
    forged = bytearray(token)
    forged[token.index(bytes.fromhex("78dadbb9")) + 5] ^= 0x01
    with pytest.raises((InvalidSignature, MalformedInput)):
        verify_status_list_cwt(bytes(forged), key, uri=vectors.EXAMPLE_URI, now=NOW)


def test_tampered_payload_rejected(issuer_key: PrivateKey, sample_list: StatusList) -> None:
    outer = cbor2.loads(_sign(sample_list, issuer_key))
    protected, unprotected, payload, signature = outer.value
    claims = cbor2.loads(payload)
    claims[65533] = StatusList(1024, 2).to_cbor_map()
    forged = cbor2.dumps(
        cbor2.CBORTag(18, [protected, unprotected, cbor2.dumps(claims), signature])
    )
    with pytest.raises(InvalidSignature):
        verify_status_list_cwt(forged, issuer_key.public(), uri=URI, now=NOW)


def test_tampered_protected_header_rejected(
    issuer_key: PrivateKey, sample_list: StatusList
) -> None:
    outer = cbor2.loads(_sign(sample_list, issuer_key))
    protected, unprotected, payload, signature = outer.value
    header = cbor2.loads(protected)
    header[3] = "text/plain"  # add a content type the signer never signed
    forged = cbor2.dumps(cbor2.CBORTag(18, [cbor2.dumps(header), unprotected, payload, signature]))
    with pytest.raises(InvalidSignature):
        verify_status_list_cwt(forged, issuer_key.public(), uri=URI, now=NOW)


def test_wrong_key_rejected(
    issuer_key: PrivateKey, other_key: PrivateKey, sample_list: StatusList
) -> None:
    with pytest.raises(InvalidSignature):
        verify_status_list_cwt(_sign(sample_list, other_key), issuer_key.public(), uri=URI, now=NOW)


def test_key_of_other_algorithm_rejected(sample_list: StatusList) -> None:
    token = _sign(sample_list, generate_private_key("EdDSA"))
    with pytest.raises(UnsupportedAlgorithm):
        verify_status_list_cwt(token, generate_private_key("ES256").public(), uri=URI, now=NOW)


@pytest.mark.parametrize("typ", [None, "application/statuslist+jwt", "application/cwt", 61])
def test_wrong_typ_rejected(issuer_key: PrivateKey, sample_list: StatusList, typ: object) -> None:
    protected = {} if typ is None else {16: typ}
    token = _resign(issuer_key, _claims(sample_list), protected)
    with pytest.raises(InvalidTokenType):
        verify_status_list_cwt(token, issuer_key.public(), uri=URI, now=NOW)


def test_untagged_and_cwt_tagged_messages_rejected(
    issuer_key: PrivateKey, sample_list: StatusList
) -> None:
    outer = cbor2.loads(_sign(sample_list, issuer_key))
    untagged = cbor2.dumps(list(outer.value))
    cwt_tagged = cbor2.dumps(cbor2.CBORTag(61, outer))
    mac0 = cbor2.dumps(cbor2.CBORTag(17, list(outer.value)))
    for token in (untagged, cwt_tagged, mac0):
        with pytest.raises(MalformedInput):
            verify_status_list_cwt(token, issuer_key.public(), uri=URI, now=NOW)


def test_alg_only_in_unprotected_header_rejected(issuer_key: PrivateKey) -> None:
    outer = cbor2.loads(sign1(b"payload", issuer_key, protected={16: STATUS_LIST_CWT_TYP}))
    protected, _, payload, signature = outer.value
    moved = cbor2.dumps(
        cbor2.CBORTag(18, [cbor2.dumps({16: STATUS_LIST_CWT_TYP}), {1: -7}, payload, signature])
    )
    with pytest.raises(UnsupportedAlgorithm):
        verify_sign1(moved, issuer_key.public(), expected_typ=STATUS_LIST_CWT_TYP)
    assert protected  # the original had alg in its protected header


def test_unknown_algorithm_rejected(issuer_key: PrivateKey) -> None:
    outer = cbor2.loads(sign1(b"payload", issuer_key))
    _, unprotected, payload, signature = outer.value
    # ES384, HMAC 256/256, absent, bool, and unhashable values (found by fuzzing).
    for alg in (-35, 5, None, True, [], {-7: 1}):
        protected = cbor2.dumps({} if alg is None else {1: alg})
        token = cbor2.dumps(cbor2.CBORTag(18, [protected, unprotected, payload, signature]))
        with pytest.raises(UnsupportedAlgorithm):
            verify_sign1(token, issuer_key.public(), expected_typ=None)


def test_crit_header_rejected(issuer_key: PrivateKey) -> None:
    token = sign1(b"payload", issuer_key, protected={2: [99], 99: True})
    with pytest.raises(MalformedInput):
        verify_sign1(token, issuer_key.public(), expected_typ=None)


def test_duplicate_label_in_both_headers_rejected(issuer_key: PrivateKey) -> None:
    token = sign1(b"p", issuer_key, protected={16: "a"}, unprotected={16: "b"})
    with pytest.raises(MalformedInput):
        verify_sign1(token, issuer_key.public(), expected_typ=None)


def test_strict_cbor_decoding() -> None:
    with pytest.raises(MalformedInput):
        strict_cbor_loads(bytes.fromhex("a201010103"))  # duplicate map key
    with pytest.raises(MalformedInput):
        strict_cbor_loads(bytes.fromhex("bf0102ff"))  # indefinite-length map
    with pytest.raises(MalformedInput):
        strict_cbor_loads(bytes.fromhex("0102"))  # trailing item
    with pytest.raises(MalformedInput):
        strict_cbor_loads(b"\x81" * 100 + b"\x00")  # nested too deep
    with pytest.raises(MalformedInput):
        strict_cbor_loads(bytes.fromhex("5a7fffffff00"))  # declares 2 GiB, has 1 byte
    with pytest.raises(InputTooLarge):
        strict_cbor_loads(bytes(10), max_bytes=9)


def test_expired_and_future_rejected(issuer_key: PrivateKey, sample_list: StatusList) -> None:
    expired = _sign(sample_list, issuer_key, issued_at=NOW - 7200, expires_at=NOW - 3600)
    with pytest.raises(Expired):
        verify_status_list_cwt(expired, issuer_key.public(), uri=URI, now=NOW)
    future = _sign(sample_list, issuer_key, issued_at=NOW + 3600, expires_at=NOW + 7200)
    with pytest.raises(NotYetValid):
        verify_status_list_cwt(future, issuer_key.public(), uri=URI, now=NOW)


def test_sub_mismatch_rejected(issuer_key: PrivateKey, sample_list: StatusList) -> None:
    token = _sign(sample_list, issuer_key, uri="https://issuer.example/status/9")
    with pytest.raises(InvalidClaim):
        verify_status_list_cwt(token, issuer_key.public(), uri=URI, now=NOW)


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({2: None}, InvalidClaim),
        ({6: None}, InvalidClaim),
        ({6: -1}, InvalidClaim),
        ({65534: 0}, InvalidClaim),
        ({65533: None}, InvalidClaim),
        ({65533: {"bits": 1, "lst": "eNrbuRgAAhcBXQ"}}, MalformedInput),
        ({65533: {"bits": 1, "lst": b"\x78\xda\x00"}}, MalformedInput),
    ],
)
def test_bad_claims_rejected(
    issuer_key: PrivateKey,
    sample_list: StatusList,
    change: dict[int, object],
    error: type[Exception],
) -> None:
    claims = _claims(sample_list)
    for label, value in change.items():
        if value is None:
            claims.pop(label)
        else:
            claims[label] = value
    token = _resign(issuer_key, claims, {16: STATUS_LIST_CWT_TYP})
    with pytest.raises(error):
        verify_status_list_cwt(token, issuer_key.public(), uri=URI, now=NOW)


def test_claims_set_must_be_a_map(issuer_key: PrivateKey) -> None:
    token = sign1(cbor2.dumps([1, 2]), issuer_key, protected={16: STATUS_LIST_CWT_TYP})
    with pytest.raises(MalformedInput):
        verify_status_list_cwt(token, issuer_key.public(), uri=URI, now=NOW)


def test_cwt_future_nbf_and_foreign_aud_rejected(
    issuer_key: PrivateKey, sample_list: StatusList
) -> None:
    protected = {16: STATUS_LIST_CWT_TYP}
    claims = _claims(sample_list)
    with pytest.raises(NotYetValid):
        token = _resign(issuer_key, {**claims, 5: NOW + 3600}, protected)
        verify_status_list_cwt(token, issuer_key.public(), uri=URI, now=NOW)
    token = _resign(issuer_key, {**claims, 3: "https://other.example"}, protected)
    with pytest.raises(InvalidClaim):
        verify_status_list_cwt(token, issuer_key.public(), uri=URI, now=NOW)
    verified = verify_status_list_cwt(
        token, issuer_key.public(), uri=URI, now=NOW, audience="https://other.example"
    )
    assert verified.status_list == sample_list
