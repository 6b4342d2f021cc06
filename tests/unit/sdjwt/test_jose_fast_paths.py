"""The hot-path shortcuts in onceonly.jose behave exactly like the plain definitions."""

from __future__ import annotations

import base64
import dataclasses
import itertools
import json
import re
import string
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from hypothesis import given
from hypothesis import strategies as st

from onceonly import jose
from onceonly.errors import DuplicateJsonKey, InputTooLarge, MalformedInput, UnsupportedAlgorithm

ALPHABET = string.ascii_letters + string.digits + "-_"


def canonical_decode(text: str) -> bytes | None:
    """The slow definition: decode, then accept only if re-encoding gives ``text`` back."""
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except ValueError:
        return None
    return raw if base64.urlsafe_b64encode(raw).rstrip(b"=").decode() == text else None


@pytest.mark.parametrize("length", [2, 3])
def test_last_character_check_matches_reencoding_exhaustively(length: int) -> None:
    for chars in itertools.product(ALPHABET, repeat=length):
        text = "".join(chars)
        expected = canonical_decode(text)
        if expected is None:
            with pytest.raises(MalformedInput):
                jose.b64url_decode(text)
        else:
            assert jose.b64url_decode(text) == expected


@given(st.binary(max_size=300))
def test_encode_decode_round_trip_matches_stdlib(data: bytes) -> None:
    encoded = jose.b64url_encode(data)
    assert encoded == base64.urlsafe_b64encode(data).rstrip(b"=").decode()
    assert jose.b64url_decode(encoded) == data


@pytest.mark.parametrize("text", ["ab+c", "ab/c", "abc=", "ab c", "é", "a", "abcde"])
def test_outside_the_alphabet_rejected(text: str) -> None:
    with pytest.raises(MalformedInput):
        jose.b64url_decode(text)


def test_cached_compact_encoder_matches_json_dumps() -> None:
    value = {"ä": [1, 2.5, None, True], "b": {"c": "\u2028"}}
    assert jose.json_dumps_compact(value) == json.dumps(
        value, separators=(",", ":"), ensure_ascii=False
    )


def test_duplicate_keys_still_found_deep_inside() -> None:
    with pytest.raises(DuplicateJsonKey):
        jose.strict_json_loads('{"a": [{"b": 1, "c": {"d": 1, "d": 2}}]}')


def test_depth_walk_still_runs_when_brackets_exceed_the_bound() -> None:
    # More brackets than levels but shallow: accepted; deep: rejected.
    jose.strict_json_loads("[" + ",".join(["[]"] * 40) + "]", max_depth=3)
    with pytest.raises(InputTooLarge):
        jose.strict_json_loads("[" * 5 + "]" * 5, max_depth=4)


# --- strict base64url without a regex --------------------------------------------

B64URL_DEFINITION = re.compile(r"[A-Za-z0-9_-]*")
TRICKY = ALPHABET + "+/= \n\t.~$\x00é\u2028"


def decode_by_definition(text: str) -> bytes | None:
    """Alphabet by regex, no length 1 mod 4, canonical: the documented contract."""
    if not B64URL_DEFINITION.fullmatch(text) or len(text) % 4 == 1:
        return None
    return canonical_decode(text)


@given(st.text(alphabet=TRICKY, max_size=12) | st.text(max_size=12))
def test_decode_accepts_exactly_what_the_definition_accepts(text: str) -> None:
    expected = decode_by_definition(text)
    if expected is None:
        with pytest.raises(MalformedInput):
            jose.b64url_decode(text)
    else:
        assert jose.b64url_decode(text) == expected


@pytest.mark.parametrize("text", ["abcd====", "ab==", "abc=", "=abc", "ab\ncd", "ab-_", ""])
def test_padding_and_whitespace_edge_cases(text: str) -> None:
    expected = decode_by_definition(text)
    if expected is None:
        with pytest.raises(MalformedInput):
            jose.b64url_decode(text)
    else:
        assert jose.b64url_decode(text) == expected


# --- the C JSON encoder called directly ------------------------------------------

JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4)
    ),
    max_leaves=20,
)


@given(JSON_VALUES)
def test_compact_encoder_matches_json_dumps(value: Any) -> None:
    expected = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    assert jose.json_dumps_compact(value) == expected


def test_compact_encoder_keeps_its_errors() -> None:
    looped: list[Any] = []
    looped.append(looped)
    with pytest.raises(ValueError, match="Circular reference"):
        jose.json_dumps_compact(looped)
    with pytest.raises(TypeError):
        jose.json_dumps_compact({"a": object()})
    # A failed call leaves nothing behind that would spoil the next one.
    shared = [1]
    assert jose.json_dumps_compact([shared, shared]) == "[[1],[1]]"
    assert jose.json_dumps_compact(float("nan")) == json.dumps(float("nan"))


# --- raw ES256 signatures to DER by bytes ----------------------------------------

SIGNATURES = st.binary(min_size=64, max_size=64) | st.builds(
    lambda zeros, rest: bytes(zeros) + rest[zeros:],
    st.integers(min_value=0, max_value=64),
    st.binary(min_size=64, max_size=64),
)


@given(SIGNATURES)
def test_raw_to_der_matches_encode_dss_signature(signature: bytes) -> None:
    r = int.from_bytes(signature[:32], "big")
    s = int.from_bytes(signature[32:], "big")
    assert jose._raw_to_der(signature) == encode_dss_signature(r, s)


def test_es256_verify_still_rejects_tampered_and_short_signatures() -> None:
    key = jose.generate_private_key(jose.ES256)
    signature = key.sign(b"message")
    public = key.public()
    assert public.verify(b"message", signature)
    assert not public.verify(b"other", signature)
    assert not public.verify(b"message", signature[:-1])
    assert not public.verify(b"message", bytes(64))
    flipped = bytes([signature[0] ^ 1]) + signature[1:]
    assert not public.verify(b"message", flipped)


# --- imported keys cached by their JWK members -----------------------------------


def test_same_jwk_gives_the_same_cached_key() -> None:
    jwk = jose.generate_private_key(jose.ES256).public().to_jwk()
    first = jose.public_key_from_jwk(jwk)
    assert jose.public_key_from_jwk(dict(jwk)) is first
    assert jose.public_key_from_jwk({**jwk, "use": "sig"}) is first  # ignored member


def test_members_that_matter_are_part_of_the_cache_key() -> None:
    jwk = jose.generate_private_key(jose.ES256).public().to_jwk()
    plain = jose.public_key_from_jwk(jwk)
    with_kid = jose.public_key_from_jwk({**jwk, "kid": "k1"})
    assert with_kid.kid == "k1" and plain.kid is None
    assert jose.public_key_from_jwk({**jwk, "alg": "ES256"}).alg == jose.ES256
    with pytest.raises(UnsupportedAlgorithm):
        jose.public_key_from_jwk({**jwk, "alg": "EdDSA"})
    # A key once cached does not make its private form acceptable as public.
    private = {**jwk, "d": jose.b64url_encode(bytes(32))}
    with pytest.raises(MalformedInput):
        jose.public_key_from_jwk(private)


@pytest.mark.parametrize(
    "change",
    [{"x": ["not", "a", "string"]}, {"kid": {"nested": 1}}, {"y": 7}, {"kid": 5}],
)
def test_unhashable_or_mistyped_members_still_give_typed_errors(change: dict[str, Any]) -> None:
    jwk = jose.generate_private_key(jose.ES256).public().to_jwk()
    with pytest.raises(MalformedInput):
        jose.public_key_from_jwk({**jwk, **change})


def test_failures_are_not_cached_and_the_cache_is_bounded() -> None:
    jwk = jose.generate_private_key(jose.ES256).public().to_jwk()
    off_curve = {**jwk, "y": jose.b64url_encode(bytes(31) + b"\x01")}
    for _ in range(2):
        with pytest.raises(MalformedInput):
            jose.public_key_from_jwk(off_curve)
    info = jose._cached_public_key_from_members.cache_info()
    assert info.maxsize is not None and 0 < info.maxsize <= 4096
    assert info.currsize <= info.maxsize


@pytest.mark.parametrize("alg", [jose.ES256, jose.EDDSA])
def test_jwk_of_an_imported_key_equals_its_export(alg: str) -> None:
    for _ in range(20):
        public = jose.generate_private_key(alg).public()
        exported = public.to_jwk()
        imported = jose.public_key_from_jwk(exported)
        fresh = jose.PublicKey(alg=imported.alg, key=imported.key)
        assert imported.to_jwk() == fresh.to_jwk() == exported
        assert imported.thumbprint() == fresh.thumbprint() == public.thumbprint()


def test_replace_does_not_carry_a_stale_jwk() -> None:
    one = jose.generate_private_key(jose.ES256).public()
    other = jose.generate_private_key(jose.ES256).public()
    one.to_jwk()  # fills the per-instance JWK
    swapped = dataclasses.replace(one, key=other.key)
    assert swapped.to_jwk() == other.to_jwk()


# --- the C JSON scanner without JSONDecoder.decode's layers ----------------------


def stdlib_strict_outcome(text: str) -> tuple[str, Any]:
    """What JSONDecoder.decode with the same hooks does, as (kind, value or message)."""
    try:
        value = jose._STRICT_DECODER.decode(text)
    except json.JSONDecodeError as exc:
        return "error", f"invalid JSON: {exc.msg} at position {exc.pos}"
    except (DuplicateJsonKey, MalformedInput) as exc:
        return "error", exc.message
    return "value", value


def our_outcome(text: str) -> tuple[str, Any]:
    try:
        return "value", jose.strict_json_loads(text, max_depth=1000)
    except (DuplicateJsonKey, MalformedInput) as exc:
        return "error", exc.message


JSON_PIECES = ["", " ", "\n", "\t", "{", "}", "[", "]", ",", ":", '"a"', "1", "-", "1e5", "null"]


@given(JSON_VALUES, st.sampled_from(["", " ", "\r\n", "\t "]), st.sampled_from(["", " ", "\n"]))
def test_scanner_path_matches_decode_on_valid_documents(value: Any, lead: str, trail: str) -> None:
    text = lead + json.dumps(value) + trail
    assert our_outcome(text) == stdlib_strict_outcome(text) == ("value", value)


@given(st.lists(st.sampled_from(JSON_PIECES), max_size=8).map("".join) | st.text(max_size=10))
def test_scanner_path_matches_decode_on_any_text(text: str) -> None:
    assert our_outcome(text) == stdlib_strict_outcome(text)


@pytest.mark.parametrize(
    "text", ["", "   ", "1 2", "{} x", '{"a":1,"a":2}', "NaN", "[1,]", '"\\ud800"', "\u00a01"]
)
def test_scanner_path_error_examples(text: str) -> None:
    assert our_outcome(text) == stdlib_strict_outcome(text)


# --- DER signatures from OpenSSL to r || s by bytes ------------------------------

SCALARS = st.integers(min_value=1, max_value=2**256 - 1) | st.integers(min_value=1, max_value=2**64)


@given(SCALARS, SCALARS)
def test_der_to_raw_matches_decode_dss_signature(r: int, s: int) -> None:
    der = encode_dss_signature(r, s)
    assert jose._der_to_raw(der) == r.to_bytes(32, "big") + s.to_bytes(32, "big")


def test_signatures_made_by_bytes_verify_with_cryptography() -> None:
    key = jose.generate_private_key(jose.ES256)
    for index in range(200):  # enough signatures for short r or s to occur now and then
        message = f"message {index}".encode()
        signature = key.sign(message)
        assert len(signature) == 64
        r = int.from_bytes(signature[:32], "big")
        s = int.from_bytes(signature[32:], "big")
        der = encode_dss_signature(r, s)
        assert isinstance(key.key, ec.EllipticCurvePrivateKey)
        key.key.public_key().verify(der, message, ec.ECDSA(hashes.SHA256()))
        assert key.public().verify(message, signature)


# --- repeated protected headers parsed once --------------------------------------


def token_with_header(header_json: str, payload: str = '{"a":1}') -> str:
    encode = jose.b64url_encode
    return f"{encode(header_json.encode())}.{encode(payload.encode())}.{encode(b'sig')}"


def test_a_repeated_header_is_a_fresh_equal_dict_each_time() -> None:
    token = token_with_header('{"alg":"ES256","typ":"kb+jwt","n":1.5,"b":true,"z":null}')
    first = jose.parse_compact(token).header
    first["alg"] = "none"  # a caller changing its copy
    second = jose.parse_compact(token).header
    assert second == {"alg": "ES256", "typ": "kb+jwt", "n": 1.5, "b": True, "z": None}
    assert second is not first
    assert list(second) == ["alg", "typ", "n", "b", "z"]  # member order kept


def test_nested_headers_are_never_shared() -> None:
    token = token_with_header('{"alg":"ES256","x5c":["a"],"jwk":{"kty":"EC"}}')
    first = jose.parse_compact(token).header
    first["x5c"].append("b")
    first["jwk"]["kty"] = "changed"
    assert jose.parse_compact(token).header == {
        "alg": "ES256",
        "x5c": ["a"],
        "jwk": {"kty": "EC"},
    }


@pytest.mark.parametrize(
    ("header_json", "error"),
    [
        ('{"alg":"ES256","alg":"none"}', DuplicateJsonKey),
        ('{"alg":NaN}', MalformedInput),
        ("[1,2]", MalformedInput),
        ('{"alg":', MalformedInput),
    ],
)
def test_bad_headers_fail_every_time(header_json: str, error: type[Exception]) -> None:
    token = token_with_header(header_json)
    for _ in range(3):
        with pytest.raises(error):
            jose.parse_compact(token)


def test_limits_apply_to_a_header_seen_before() -> None:
    token = token_with_header('{"alg":"ES256"}')
    jose.parse_compact(token)  # cached under the default limits
    with pytest.raises(InputTooLarge):
        jose.parse_compact(token, max_depth=0)
    with pytest.raises(InputTooLarge):
        jose.parse_compact(token, max_bytes=10)


FLAT_HEADERS = st.dictionaries(
    st.text(max_size=5),
    st.none() | st.booleans() | st.integers() | st.text(max_size=8) | st.lists(st.integers()),
    max_size=5,
)


@given(FLAT_HEADERS)
def test_header_parse_matches_strict_json_loads(header: dict[str, Any]) -> None:
    header_json = json.dumps(header)
    expected = jose.strict_json_loads(header_json)
    for _ in range(2):
        assert jose.parse_compact(token_with_header(header_json)).header == expected


# --- the signer's repeated header encoded once -----------------------------------


def header_of(token: str) -> dict[str, Any]:
    return json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))


@pytest.mark.parametrize("kid", [None, "issuer-1", "ключ"])
@pytest.mark.parametrize("typ", ["dc+sd-jwt", "kb+jwt"])
def test_signed_header_is_the_plain_one(kid: str | None, typ: str) -> None:
    key = dataclasses.replace(jose.generate_private_key(jose.ES256), kid=kid)
    expected = {"alg": "ES256", "typ": typ} | ({} if kid is None else {"kid": kid})
    for _ in range(2):  # first encoding and the cached one
        token = jose.sign_compact({"a": 1}, key, typ=typ)
        assert header_of(token) == expected
        assert list(header_of(token)) == list(expected)
        assert token.split(".")[0] == jose.json_object_b64(expected)
        assert jose.verify_compact(token, key.public(), expected_typ=typ).payload == {"a": 1}


def test_extra_header_members_still_added_and_may_override() -> None:
    key = jose.generate_private_key(jose.EDDSA, kid="k")
    token = jose.sign_compact({}, key, typ="t", extra_header={"x5t": "abc", "kid": "other"})
    assert header_of(token) == {"alg": "EdDSA", "typ": "t", "kid": "other", "x5t": "abc"}
    assert header_of(jose.sign_compact({}, key, typ="t", extra_header={})) == {
        "alg": "EdDSA",
        "typ": "t",
        "kid": "k",
    }
