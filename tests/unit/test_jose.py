"""onceonly.jose: strict JSON, base64url, JWKs and compact JWS."""

import json

import pytest

from onceonly import errors, jose


@pytest.fixture(params=[jose.ES256, jose.EDDSA])
def key(request: pytest.FixtureRequest) -> jose.PrivateKey:
    return jose.generate_private_key(request.param, kid="k1")


def test_sign_verify_round_trip(key: jose.PrivateKey) -> None:
    token = jose.sign_compact({"a": "ä"}, key, typ="example+jwt")
    jws = jose.verify_compact(token, key.public(), expected_typ="example+jwt")
    assert jws.payload == {"a": "ä"}
    assert jws.header == {"alg": key.alg, "typ": "example+jwt", "kid": "k1"}


def test_typ_compared_as_media_type(key: jose.PrivateKey) -> None:
    token = jose.sign_compact({}, key, typ="application/Example+JWT")
    jose.verify_compact(token, key.public(), expected_typ="example+jwt")
    with pytest.raises(errors.InvalidTokenType):
        jose.verify_compact(token, key.public(), expected_typ="other+jwt")


def test_wrong_key_rejected(key: jose.PrivateKey) -> None:
    token = jose.sign_compact({"a": 1}, key, typ="t")
    other = jose.generate_private_key(key.alg)
    with pytest.raises(errors.InvalidSignature):
        jose.verify_compact(token, other.public(), expected_typ="t")


def test_alg_must_match_key() -> None:
    es = jose.generate_private_key(jose.ES256)
    ed = jose.generate_private_key(jose.EDDSA)
    token = jose.sign_compact({}, es, typ="t")
    with pytest.raises(errors.UnsupportedAlgorithm):
        jose.verify_compact(token, ed.public(), expected_typ="t")


@pytest.mark.parametrize("alg", ["none", "HS256", "RS256", None])
def test_disallowed_algorithms(alg: str | None) -> None:
    key = jose.generate_private_key()
    header = {"typ": "t"} if alg is None else {"alg": alg, "typ": "t"}
    signing_input = f"{jose.json_object_b64(header)}.{jose.json_object_b64({})}"
    token = f"{signing_input}.{jose.b64url_encode(key.sign(signing_input.encode()))}"
    with pytest.raises(errors.UnsupportedAlgorithm):
        jose.verify_compact(token, key.public(), expected_typ="t")


def test_allow_list_narrower_than_supported() -> None:
    key = jose.generate_private_key(jose.EDDSA)
    token = jose.sign_compact({}, key, typ="t")
    with pytest.raises(errors.UnsupportedAlgorithm):
        jose.verify_compact(token, key.public(), expected_typ="t", allowed_algs={jose.ES256})


def test_crit_rejected() -> None:
    key = jose.generate_private_key()
    token = jose.sign_compact({}, key, typ="t", extra_header={"crit": ["x"], "x": 1})
    with pytest.raises(errors.MalformedInput):
        jose.verify_compact(token, key.public(), expected_typ="t")


def test_tampered_payload_rejected() -> None:
    key = jose.generate_private_key()
    header, _, sig = jose.sign_compact({"a": 1}, key, typ="t").split(".")
    forged = f"{header}.{jose.json_object_b64({'a': 2})}.{sig}"
    with pytest.raises(errors.InvalidSignature):
        jose.verify_compact(forged, key.public(), expected_typ="t")


@pytest.mark.parametrize(
    "token",
    ["a.b", "a.b.c.d", "", "!!.e30.", "e30.W10.", "W10.e30."],
    ids=["two-parts", "four-parts", "empty", "bad-b64", "payload-array", "header-array"],
)
def test_malformed_tokens(token: str) -> None:
    key = jose.generate_private_key()
    with pytest.raises(errors.MalformedInput):
        jose.verify_compact(token, key.public(), expected_typ="t")


def test_oversize_token_rejected() -> None:
    key = jose.generate_private_key()
    token = jose.sign_compact({"pad": "x" * 2000}, key, typ="t")
    with pytest.raises(errors.InputTooLarge):
        jose.parse_compact(token, max_bytes=1000)


def test_duplicate_keys_rejected() -> None:
    with pytest.raises(errors.DuplicateJsonKey):
        jose.strict_json_loads('{"a": 1, "a": 2}')
    with pytest.raises(errors.DuplicateJsonKey):
        jose.strict_json_loads('{"x": [{"b": 1, "b": 1}]}')


@pytest.mark.parametrize("text", ["NaN", '{"a": Infinity}', "[-Infinity]"])
def test_nonstandard_constants_rejected(text: str) -> None:
    with pytest.raises(errors.MalformedInput):
        jose.strict_json_loads(text)


def test_depth_bound() -> None:
    jose.strict_json_loads("[" * 10 + "]" * 10, max_depth=10)
    with pytest.raises(errors.InputTooLarge):
        jose.strict_json_loads("[" * 11 + "]" * 11, max_depth=10)
    # Far beyond Python's recursion limit: still a typed error, not a crash.
    with pytest.raises(errors.InputTooLarge):
        jose.strict_json_loads("[" * 100_000 + "]" * 100_000, max_bytes=10**6)
    # Brackets inside strings do not count.
    assert jose.strict_json_loads(json.dumps("[" * 50), max_depth=2) == "[" * 50


@pytest.mark.parametrize("text", ["YQ==", "Y", "a+b/", "YQ\n", "YR"])
def test_b64url_strict(text: str) -> None:
    with pytest.raises(errors.MalformedInput):
        jose.b64url_decode(text)


def test_jwk_round_trip(key: jose.PrivateKey) -> None:
    private_jwk = key.to_jwk()
    again = jose.private_key_from_jwk(private_jwk)
    assert again.public().to_jwk() == key.public().to_jwk()
    public = jose.public_key_from_jwk(key.public().to_jwk())
    token = jose.sign_compact({}, again, typ="t")
    jose.verify_compact(token, public, expected_typ="t")


def test_public_jwk_with_private_part_rejected(key: jose.PrivateKey) -> None:
    with pytest.raises(errors.MalformedInput):
        jose.public_key_from_jwk(key.to_jwk())


@pytest.mark.parametrize(
    "jwk",
    [
        {"kty": "RSA", "n": "AQAB", "e": "AQAB"},
        {"kty": "EC", "crv": "P-384", "x": "AA", "y": "AA"},
        {"kty": "oct", "k": "c2VjcmV0"},
    ],
)
def test_unsupported_jwk(jwk: dict[str, str]) -> None:
    with pytest.raises(errors.UnsupportedAlgorithm):
        jose.public_key_from_jwk(jwk)


def test_point_not_on_curve_rejected() -> None:
    jwk = jose.generate_private_key().public().to_jwk()
    jwk["y"] = jose.b64url_encode((1).to_bytes(32, "big"))
    with pytest.raises(errors.MalformedInput):
        jose.public_key_from_jwk(jwk)


def test_mismatched_private_part_rejected() -> None:
    a = jose.generate_private_key().to_jwk()
    b = jose.generate_private_key().to_jwk()
    a["d"] = b["d"]
    with pytest.raises(errors.MalformedInput):
        jose.private_key_from_jwk(a)


def test_thumbprint_rfc7638_example() -> None:
    # RFC 7638 §3.1 uses an RSA key; this is the analogous fixed EC vector from RFC 8037
    # style: the thumbprint must be stable and independent of member order and kid.
    jwk = jose.generate_private_key().public().to_jwk()
    reordered = dict(reversed(list(jwk.items())))
    assert (
        jose.public_key_from_jwk(jwk).thumbprint()
        == jose.public_key_from_jwk({**reordered, "kid": "x"}).thumbprint()
    )


def test_ed25519_thumbprint_rfc8037_vector() -> None:
    # RFC 8037 Appendix A.3: the thumbprint of the example Ed25519 key.
    jwk = {"kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}
    assert (
        jose.public_key_from_jwk(jwk).thumbprint() == "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"
    )


def test_ed25519_signature_rfc8037_vector() -> None:
    # RFC 8037 Appendix A.4: signing "Example of Ed25519 signing" with the example key.
    jwk = {
        "kty": "OKP",
        "crv": "Ed25519",
        "d": "nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A",
        "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo",
    }
    key = jose.private_key_from_jwk(jwk)
    signing_input = b"eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc"
    expected = (
        "hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt9g7sVvpAr_MuM0KAg"
    )
    assert jose.b64url_encode(key.sign(signing_input)) == expected


@pytest.mark.parametrize("alg", [jose.ESP256, jose.ED25519])
def test_fully_specified_algorithms_sign_and_verify(alg: str) -> None:
    # RFC 9864: ESP256 is ECDSA P-256/SHA-256, Ed25519 is EdDSA on Ed25519 only.
    key = jose.generate_private_key(alg, kid="k")
    token = jose.sign_compact({"a": 1}, key, typ="t")
    assert jose.parse_compact(token).header["alg"] == alg
    assert jose.verify_compact(token, key.public(), expected_typ="t").payload == {"a": 1}
    restored = jose.private_key_from_jwk(key.to_jwk())
    assert restored.alg == alg


@pytest.mark.parametrize(
    ("kind", "alg"), [(jose.ES256, jose.ED25519), (jose.EDDSA, jose.ESP256), (jose.EDDSA, "ES256")]
)
def test_token_alg_of_another_key_type_is_refused(kind: str, alg: str) -> None:
    key = jose.generate_private_key(kind)
    jws = jose.sign_compact({}, key, typ="t")
    _header, payload, signature = jws.split(".")
    forged = jose.json_object_b64({"alg": alg, "typ": "t"}) + "." + payload + "." + signature
    with pytest.raises(errors.UnsupportedAlgorithm):
        jose.verify_compact(forged, key.public(), expected_typ="t")


def test_key_object_and_alg_must_agree() -> None:
    ed = jose.generate_private_key(jose.EDDSA)
    with pytest.raises(ValueError, match="does not fit"):
        jose.PrivateKey(alg=jose.ESP256, key=ed.key)
    with pytest.raises(ValueError, match="does not fit"):
        jose.PublicKey(alg=jose.ES256, key=ed.key.public_key())


def test_ed448_jwk_is_refused_whatever_its_alg() -> None:
    for alg in (jose.EDDSA, jose.ED25519, None):
        jwk = {"kty": "OKP", "crv": "Ed448", "x": jose.b64url_encode(bytes(57))}
        if alg is not None:
            jwk["alg"] = alg
        with pytest.raises(errors.UnsupportedAlgorithm):
            jose.public_key_from_jwk(jwk)


@pytest.mark.parametrize(("alg", "label"), [(jose.ESP256, -9), (jose.ED25519, -19)])
def test_cose_fully_specified_algorithm_labels(alg: str, label: int) -> None:
    import cbor2

    from onceonly import cose

    key = jose.generate_private_key(alg)
    message = cose.sign1(b"payload", key)
    protected = cbor2.loads(cbor2.loads(message).value[0])
    assert protected[1] == label
    assert cose.verify_sign1(message, key.public(), expected_typ=None).alg == alg


@pytest.mark.parametrize(("alg", "fits"), [("Ed25519", True), ("EdDSA", True), ("ESP256", False)])
def test_holder_jwk_in_credential_request_takes_rfc9864_names(alg: str, fits: bool) -> None:
    # The wire model of a holder key (credential.request) follows public_key_from_jwk.
    import pydantic

    from onceonly.protocol import OkpPublicJwk

    jwk = dict(jose.generate_private_key(jose.ED25519).public().to_jwk(), alg=alg)
    if fits:
        assert OkpPublicJwk.model_validate(jwk).alg == alg
        assert jose.public_key_from_jwk(jwk).alg == alg
    else:
        with pytest.raises(pydantic.ValidationError):
            OkpPublicJwk.model_validate(jwk)
