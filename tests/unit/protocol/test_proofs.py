"""Key proofs and signed device lists: real signatures, every failure path."""

from __future__ import annotations

from typing import Any

import pytest

from onceonly.errors import (
    AudienceMismatch,
    Expired,
    InvalidClaim,
    InvalidSignature,
    InvalidTokenType,
    MalformedInput,
    NonceMismatch,
    NotYetValid,
    ReplayDetected,
)
from onceonly.jose import (
    EDDSA,
    ES256,
    PrivateKey,
    generate_private_key,
    parse_compact,
    public_key_from_jwk,
    sign_compact,
)
from onceonly.protocol import NAMESPACE, DeviceEntry, DeviceListPayload, parse_event, to_content
from onceonly.protocol.bodies import build_credential_request
from onceonly.protocol.events import KEY_PROOF_TYP, CredentialRequest
from onceonly.protocol.proofs import (
    make_key_proof,
    sign_device_list,
    verify_device_list,
    verify_key_proof,
)
from onceonly.protocol.rooms import DEVICE_LIST_TYP
from tests.unit.protocol.samples import EXCHANGE_ID, NONCE, NOW, RESIDENCE, RESIDENCE_VCT

AGENCY = "did:web:buergeramt.berlin.example"
USER = "@erika:localhost"


@pytest.fixture(params=[ES256, EDDSA])
def holder(request: pytest.FixtureRequest) -> PrivateKey:
    return generate_private_key(request.param)


def test_key_proof_travels_in_a_request_and_verifies(holder: PrivateKey) -> None:
    proof = make_key_proof(holder, audience=AGENCY, nonce=NONCE, now=NOW)
    request = build_credential_request(
        exchange_id=EXCHANGE_ID,
        vct=RESIDENCE_VCT,
        holder_jwk=holder.public().to_jwk(),  # type: ignore[arg-type]
        proof=proof,
        credential_name=RESIDENCE,
    )
    parsed = parse_event(NAMESPACE + "credential.request", to_content(request))
    assert isinstance(parsed, CredentialRequest)
    jwk = parsed.holder_jwk.model_dump(exclude_none=True)
    verify_key_proof(parsed.proof, jwk, audience=AGENCY, nonce=NONCE, now=NOW + 10)


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"audience": "did:web:other.example"}, AudienceMismatch),
        ({"nonce": "another_nonce_value_0000"}, NonceMismatch),
        ({"now": NOW + 301}, Expired),
        ({"now": NOW - 31}, NotYetValid),
    ],
)
def test_key_proof_failures(
    holder: PrivateKey, kwargs: dict[str, Any], error: type[Exception]
) -> None:
    proof = make_key_proof(holder, audience=AGENCY, nonce=NONCE, now=NOW)
    args = {"audience": AGENCY, "nonce": NONCE, "now": NOW, **kwargs}
    with pytest.raises(error):
        verify_key_proof(proof, holder.public().to_jwk(), **args)


def test_key_proof_edges_of_the_window(holder: PrivateKey) -> None:
    proof = make_key_proof(holder, audience=AGENCY, nonce=NONCE, now=NOW)
    jwk = holder.public().to_jwk()
    verify_key_proof(proof, jwk, audience=AGENCY, nonce=NONCE, now=NOW + 300)
    verify_key_proof(proof, jwk, audience=AGENCY, nonce=NONCE, now=NOW - 30)


def test_key_proof_by_another_key_is_refused() -> None:
    holder, thief = generate_private_key(ES256), generate_private_key(ES256)
    holder_jwk = holder.public().to_jwk()
    # Naming its own key in the header: not the key the request wants bound.
    proof = make_key_proof(thief, audience=AGENCY, nonce=NONCE, now=NOW)
    with pytest.raises(InvalidSignature, match="another key"):
        verify_key_proof(proof, holder_jwk, audience=AGENCY, nonce=NONCE, now=NOW)
    # Naming the holder's key, but signed by the thief: the signature fails.
    forged = sign_compact(
        {"aud": AGENCY, "nonce": NONCE, "iat": NOW},
        thief,
        typ=KEY_PROOF_TYP,
        extra_header={"jwk": holder_jwk},
    )
    with pytest.raises(InvalidSignature):
        verify_key_proof(forged, holder_jwk, audience=AGENCY, nonce=NONCE, now=NOW)


def test_key_proof_is_an_openid4vci_jwt_proof(holder: PrivateKey) -> None:
    keyed = PrivateKey(alg=holder.alg, key=holder.key, kid="holder-1")
    proof = make_key_proof(keyed, audience=AGENCY, nonce=NONCE, now=NOW)
    header = parse_compact(proof).header
    assert header["typ"] == "openid4vci-proof+jwt"
    assert header["alg"] == holder.alg
    # OpenID4VCI: exactly one of kid / jwk / x5c names the key; a fresh key goes as jwk.
    assert "kid" not in header and "x5c" not in header
    assert public_key_from_jwk(header["jwk"]).thumbprint() == holder.public().thumbprint()
    assert "d" not in header["jwk"]
    assert parse_compact(proof).payload == {"aud": AGENCY, "nonce": NONCE, "iat": NOW}


@pytest.mark.parametrize(
    "header",
    [
        {},  # no jwk at all
        {"kid": "holder-1"},  # named by kid instead
        {"jwk": "not-an-object"},
        "with kid beside jwk",
        "private key in jwk",
    ],
)
def test_key_proof_header_must_name_the_key_by_jwk_alone(header: Any) -> None:
    holder = generate_private_key(ES256)
    jwk = holder.public().to_jwk()
    if header == "with kid beside jwk":
        header = {"jwk": jwk, "kid": "holder-1"}
    elif header == "private key in jwk":
        header = {"jwk": holder.to_jwk()}
    proof = sign_compact(
        {"aud": AGENCY, "nonce": NONCE, "iat": NOW}, holder, typ=KEY_PROOF_TYP, extra_header=header
    )
    with pytest.raises(MalformedInput):
        verify_key_proof(proof, jwk, audience=AGENCY, nonce=NONCE, now=NOW)


def test_key_proof_type_and_iat_are_checked() -> None:
    holder = generate_private_key(ES256)
    jwk = holder.public().to_jwk()
    with_jwk = {"jwk": jwk}
    wrong_typ = sign_compact(
        {"aud": AGENCY, "nonce": NONCE, "iat": NOW}, holder, typ="JWT", extra_header=with_jwk
    )
    with pytest.raises(InvalidTokenType):
        verify_key_proof(wrong_typ, jwk, audience=AGENCY, nonce=NONCE, now=NOW)
    string_iat = sign_compact(
        {"aud": AGENCY, "nonce": NONCE, "iat": str(NOW)},
        holder,
        typ=KEY_PROOF_TYP,
        extra_header=with_jwk,
    )
    with pytest.raises(InvalidClaim):
        verify_key_proof(string_iat, jwk, audience=AGENCY, nonce=NONCE, now=NOW)


def _devices(seq: int = 3, sub: str = USER, iat: int = NOW) -> DeviceListPayload:
    return DeviceListPayload(
        sub=sub,
        seq=seq,
        iat=iat,
        devices=(
            DeviceEntry(device_id="WALLET01", ed25519="A" * 43, curve25519="B" * 43),
            DeviceEntry(device_id="ELEMENT1", ed25519="C" * 43, curve25519="D" * 43),
        ),
    )


def test_device_list_round_trip() -> None:
    pid_key = generate_private_key(ES256)
    token = sign_device_list(_devices(), pid_key)
    payload = verify_device_list(token, pid_key.public(), user_id=USER, newer_than=2, now=NOW)
    assert payload == _devices()
    assert [d.device_id for d in payload.devices] == ["WALLET01", "ELEMENT1"]


def test_device_list_failures() -> None:
    pid_key, other = generate_private_key(ES256), generate_private_key(ES256)
    token = sign_device_list(_devices(), pid_key)
    with pytest.raises(InvalidSignature):
        verify_device_list(token, other.public(), user_id=USER, now=NOW)
    with pytest.raises(InvalidClaim):
        verify_device_list(token, pid_key.public(), user_id="@mallory:localhost", now=NOW)
    with pytest.raises(ReplayDetected):
        verify_device_list(token, pid_key.public(), user_id=USER, newer_than=3, now=NOW)
    future = sign_device_list(_devices(iat=NOW + 60), pid_key)
    with pytest.raises(NotYetValid):
        verify_device_list(future, pid_key.public(), user_id=USER, now=NOW)


def test_device_list_payload_is_validated_strictly() -> None:
    pid_key = generate_private_key(ES256)
    bad = _devices().model_dump(mode="json")
    bad["seq"] = "4"
    token = sign_compact(bad, pid_key, typ=DEVICE_LIST_TYP)
    with pytest.raises(MalformedInput) as caught:
        verify_device_list(token, pid_key.public(), user_id=USER, now=NOW)
    assert caught.value.detail["fields"] == ["seq"]
    bad["seq"] = 4
    bad["devices"] = []
    token = sign_compact(bad, pid_key, typ=DEVICE_LIST_TYP)
    with pytest.raises(MalformedInput):
        verify_device_list(token, pid_key.public(), user_id=USER, now=NOW)
