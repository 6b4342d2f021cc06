"""did:key decoding (ours vs didkit) and DID document parsing."""

from __future__ import annotations

import json
from typing import Any

import didkit  # tests may cross-check against the library directly
import pytest

from onceonly import dids, errors, jose


@pytest.fixture(params=[jose.ES256, jose.EDDSA])
def private_key(request: pytest.FixtureRequest) -> jose.PrivateKey:
    return jose.generate_private_key(request.param)


def test_our_did_key_encoding_matches_didkit(private_key: jose.PrivateKey) -> None:
    ours = dids.did_key_for(private_key.public())
    assert ours == didkit.key_to_did("key", json.dumps(private_key.to_jwk()))


async def test_resolve_did_key_cross_checked(private_key: jose.PrivateKey) -> None:
    did = dids.did_key_for(private_key.public())
    document = await dids.resolve(did)
    assert document.id == did
    (method,) = document.verification_methods
    assert method.id == f"{did}#{did.removeprefix('did:key:')}"
    assert method.key.to_jwk() == {**private_key.public().to_jwk(), "kid": method.id}
    assert document.assertion_keys() == (method.key,)
    # The key verifies what the private key signs, found by fragment or full DID URL.
    token = jose.sign_compact({"x": 1}, private_key, typ="t")
    jose.verify_compact(token, document.key(method.id), expected_typ="t")
    assert document.key(method.id.split("#")[1]) == method.key


async def test_did_key_without_didkit_gives_the_same_document() -> None:
    did = dids.did_key_for(jose.generate_private_key(jose.EDDSA).public())
    with_didkit = await dids.StandardDidResolver().resolve(did)
    without = await dids.StandardDidResolver(use_didkit=False).resolve(did)
    assert with_didkit == without


@pytest.mark.parametrize(
    "did",
    [
        "did:key:zBAD0",  # '0' is not base58
        "did:key:abc",  # not multibase base58btc
        "did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2do",  # Ed25519 one char short
        "did:key:z" + "1" * 40,  # zeros: unknown multicodec
    ],
)
async def test_bad_did_key_rejected(did: str) -> None:
    with pytest.raises(errors.DidResolutionError):
        await dids.resolve(did)


@pytest.mark.parametrize("did", ["did:example:123", "did:ion:abc", "not-a-did", "did:key"])
async def test_unsupported_method(did: str) -> None:
    with pytest.raises(errors.DidResolutionError):
        await dids.resolve(did)


def _document(did: str, key: jose.PrivateKey) -> dict[str, Any]:
    return {
        "@context": ["https://www.w3.org/ns/did/v1"],
        "id": did,
        "verificationMethod": [
            {
                "id": "#k1",
                "type": "JsonWebKey2020",
                "controller": did,
                "publicKeyJwk": key.public().to_jwk(),
            },
            {
                "id": f"{did}#rsa",
                "type": "JsonWebKey2020",
                "controller": did,
                "publicKeyJwk": {"kty": "RSA", "n": "AQAB", "e": "AQAB"},
            },
        ],
        "assertionMethod": ["#k1"],
    }


def test_parse_document_resolves_relative_ids_and_skips_unsupported_keys() -> None:
    key = jose.generate_private_key(jose.ES256)
    did = "did:web:agency.example"
    document = dids.parse_did_document(_document(did, key), did)
    assert [m.id for m in document.verification_methods] == [f"{did}#k1"]
    assert document.assertion_method == (f"{did}#k1",)
    assert document.key("#k1").to_jwk()["x"] == key.public().to_jwk()["x"]
    with pytest.raises(errors.DidResolutionError):
        document.key("rsa")


@pytest.mark.parametrize(
    ("mutate", "error"),
    [
        (lambda d: d.update(id="did:web:other.example"), errors.DidResolutionError),
        (lambda d: d.update(verificationMethod={"id": "#k"}), errors.MalformedInput),
        (lambda d: d["verificationMethod"][0].pop("id"), errors.MalformedInput),
        (lambda d: d["verificationMethod"][0].pop("publicKeyJwk"), errors.MalformedInput),
        (
            lambda d: d["verificationMethod"][0]["publicKeyJwk"].update(x="AA"),
            errors.MalformedInput,
        ),
        (lambda d: d.update(assertionMethod=[7]), errors.MalformedInput),
        (
            lambda d: d.update(verificationMethod=[{"id": f"#{i}"} for i in range(65)]),
            errors.MalformedInput,
        ),
    ],
)
def test_parse_document_rejects(mutate: Any, error: type[Exception]) -> None:
    did = "did:web:agency.example"
    document = _document(did, jose.generate_private_key(jose.ES256))
    mutate(document)
    with pytest.raises(error):
        dids.parse_did_document(document, did)


def test_parse_document_rejects_non_object() -> None:
    with pytest.raises(errors.MalformedInput):
        dids.parse_did_document(["did:web:a"], "did:web:a")


def test_multibase_key_in_document() -> None:
    key = jose.generate_private_key(jose.EDDSA)
    multibase = dids.did_key_for(key.public()).removeprefix("did:key:")
    did = "did:web:agency.example"
    document = dids.parse_did_document(
        {"id": did, "verificationMethod": [{"id": "#m", "publicKeyMultibase": multibase}]}, did
    )
    assert document.key("m").to_jwk()["x"] == key.public().to_jwk()["x"]


async def test_check_agency_dids_with_did_key() -> None:
    from onceonly.trust import Agency, AgencyKey, LocalizedText

    key = jose.generate_private_key(jose.EDDSA, kid="k1")
    other = jose.generate_private_key(jose.ES256)
    did = dids.did_key_for(key.public())

    def agency(*listed: jose.PrivateKey) -> Agency:
        return Agency(
            id="https://registry.example",
            name=LocalizedText(de="Amt", en="Office"),
            matrix_user_id="@registry:gov.example",
            dids=(did,),
            keys=tuple(
                AgencyKey(jwk={**k.public().to_jwk(), "kid": f"k{i}"}, valid_from=0)
                for i, k in enumerate(listed)
            ),
        )

    matches = await dids.check_agency_dids(agency(other, key), dids.StandardDidResolver())
    assert matches == {did: ["k1"]}
    with pytest.raises(errors.DidResolutionError, match="names none"):
        await dids.check_agency_dids(agency(other), dids.StandardDidResolver())
