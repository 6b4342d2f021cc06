"""Minimal, strict JOSE: JWKs, compact JWS and hardened JSON parsing.

Pure: no I/O, no clock. Keys are passed in; :func:`generate_private_key` is the
only function that draws randomness (from the OS) and is meant for key
creation by services, never for the verification path.

Why not a general JOSE library: every SD-JWT, KB-JWT, status list token and
trust list we handle is a compact JWS with one of two algorithms. A small
surface we control lets us enforce the allow-list, exact ``typ`` values,
duplicate-key rejection and size bounds in one place, and it is faster than
generic libraries because it calls ``cryptography`` directly.
"""

from __future__ import annotations

import binascii
import functools
import hashlib
import json
import re
from _json import encode_basestring as _encode_json_string
from _json import make_encoder as _make_c_json_encoder
from _json import make_scanner as _make_c_json_scanner
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, cast

from cryptography.exceptions import InvalidSignature as _CryptoInvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from onceonly.errors import (
    DuplicateJsonKey,
    InputTooLarge,
    InvalidSignature,
    InvalidTokenType,
    MalformedInput,
    UnknownKey,
    UnsupportedAlgorithm,
)

ES256: Final = "ES256"
ESP256: Final = "ESP256"
EDDSA: Final = "EdDSA"
ED25519: Final = "Ed25519"
P256_ALGS: Final[frozenset[str]] = frozenset({ES256, ESP256})
"""ECDSA with P-256 and SHA-256: ``ES256`` and RFC 9864's fully-specified ``ESP256``."""
ED25519_ALGS: Final[frozenset[str]] = frozenset({EDDSA, ED25519})
"""Ed25519 signatures: polymorphic ``EdDSA`` (Ed25519 curve only) and RFC 9864's ``Ed25519``."""
SUPPORTED_ALGS: Final[frozenset[str]] = P256_ALGS | ED25519_ALGS
"""Algorithms we can sign and verify. ``none``, HS* and Ed448 are never accepted."""

DEFAULT_MAX_TOKEN_BYTES: Final = 256 * 1024
DEFAULT_MAX_JSON_DEPTH: Final = 32

# Last characters whose unused low bits are zero (4 unused bits after 2 chars, 2 after 3).
_CANONICAL_LAST_OF_2: Final = frozenset("AQgw")
_CANONICAL_LAST_OF_3: Final = frozenset("AEIMQUYcgkosw048")
_P256_COORD_BYTES: Final = 32
_ECDSA_SHA256: Final = ec.ECDSA(hashes.SHA256())  # immutable; built once for the hot path
_TO_STANDARD_B64: Final = bytes.maketrans(b"-_", b"+/")
_TO_URLSAFE_B64: Final = bytes.maketrans(b"+/", b"-_")
_PADDING: Final = (b"", b"", b"==", b"=")  # by len % 4 (1 is invalid and rejected first)
_JWK_CACHE_SIZE: Final = 512
_HEADER_CACHE_SIZE: Final = 256
_MAX_CACHED_HEADER_CHARS: Final = 1024  # with the cache size, bounds its memory
_FLAT_JSON_TYPES: Final = frozenset({str, int, float, bool, type(None)})


# --- base64url and JSON ----------------------------------------------------------


def b64url_encode(data: bytes) -> str:
    """Encode bytes as unpadded base64url (RFC 7515 §2)."""
    # binascii directly: base64.urlsafe_b64encode adds Python layers on a hot path.
    encoded = binascii.b2a_base64(data, newline=False).rstrip(b"=")
    return encoded.translate(_TO_URLSAFE_B64).decode("ascii")


def b64url_decode(text: str) -> bytes:
    """Decode unpadded base64url strictly: no padding, no other alphabet, no whitespace.

    Raises:
        MalformedInput: if ``text`` is not canonical unpadded base64url.
    """
    # The standard alphabet's own "+", "/" and "=" would be accepted after the
    # translation below, so they are refused first; strict_mode then refuses
    # every other character outside the alphabet (whitespace included), and
    # encode("ascii") anything non-ASCII. Cheaper than a regex over the text.
    if not isinstance(text, str) or len(text) % 4 == 1 or "+" in text or "/" in text or "=" in text:
        raise MalformedInput("not unpadded base64url")
    try:
        padded = text.encode("ascii").translate(_TO_STANDARD_B64) + _PADDING[len(text) % 4]
        decoded = binascii.a2b_base64(padded, strict_mode=True)
    except (binascii.Error, ValueError) as exc:  # UnicodeEncodeError is a ValueError
        raise MalformedInput("not unpadded base64url") from exc
    # Reject non-canonical encodings (stray low bits) so one value has one encoding.
    # Only the last character can carry such bits; checking it is much cheaper
    # than re-encoding on this hot path.
    tail = len(text) % 4
    if (tail == 2 and text[-1] not in _CANONICAL_LAST_OF_2) or (
        tail == 3 and text[-1] not in _CANONICAL_LAST_OF_3
    ):
        raise MalformedInput("non-canonical base64url")
    return decoded


def _reject_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(pairs)  # C-speed; a size difference reveals a repeated name
    if len(out) != len(pairs):
        seen: set[str] = set()
        for key, _value in pairs:
            if key in seen:
                raise DuplicateJsonKey(f"duplicate JSON member name {key!r}")
            seen.add(key)
    return out


def _reject_constant(name: str) -> Any:
    raise MalformedInput(f"non-standard JSON constant {name}")


def _depth(value: Any, limit: int) -> None:
    # Iterative, so hostile nesting cannot exhaust the Python stack.
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict | list):
            if level > limit:
                raise InputTooLarge(f"JSON nested deeper than {limit} levels")
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, level + 1) for child in children)


# Built once: json.loads with hooks would build (and discard) a decoder per call.
_STRICT_DECODER: Final = json.JSONDecoder(
    object_pairs_hook=_reject_duplicates, parse_constant=_reject_constant
)
_COMPACT_ENCODER: Final = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)
# The decoder's C scanner, called without JSONDecoder.decode's Python layers
# (see strict_json_loads); the decoder object only supplies its settings.
_scan_json_value: Final = _make_c_json_scanner(cast(Any, _STRICT_DECODER))
_JSON_WHITESPACE: Final = re.compile(r"[ \t\n\r]*")  # json.decoder's own definition
_JSON_WHITESPACE_CHARS: Final = " \t\n\r"  # "" (empty text) is "in" it too: regex then


def _after_whitespace(text: str, index: int) -> int:
    match = _JSON_WHITESPACE.match(text, index)
    return match.end() if match else index  # the pattern matches "" everywhere


def strict_json_loads(
    data: str | bytes,
    *,
    max_bytes: int = DEFAULT_MAX_TOKEN_BYTES,
    max_depth: int = DEFAULT_MAX_JSON_DEPTH,
) -> Any:
    """Parse JSON rejecting duplicate member names, NaN/Infinity, oversize and deep input.

    Raises:
        InputTooLarge: input longer than ``max_bytes`` or deeper than ``max_depth``.
        DuplicateJsonKey: an object repeats a member name.
        MalformedInput: not valid UTF-8 JSON.
    """
    if len(data) > max_bytes:
        raise InputTooLarge(f"JSON input of {len(data)} bytes exceeds {max_bytes}")
    try:
        text = data.decode("utf-8") if isinstance(data, bytes) else data
        # Depth is bounded before parsing too: json's recursive decoder would
        # otherwise hit RecursionError on pathological input.
        brackets = text.count("[") + text.count("{")
        if brackets > max_depth and _bracket_depth(text) > max_depth:
            raise InputTooLarge(f"JSON nested deeper than {max_depth} levels")
        # Exactly JSONDecoder.decode, inline: optional whitespace, one value,
        # optional whitespace, the end; the same errors at the same positions.
        # Tokens never start with whitespace: look before paying for the regex.
        index = _after_whitespace(text, 0) if text[:1] in _JSON_WHITESPACE_CHARS else 0
        try:
            value, end = _scan_json_value(text, index)
        except StopIteration as exc:
            raise json.JSONDecodeError("Expecting value", text, exc.value) from None
        if end != len(text) and _after_whitespace(text, end) != len(text):
            raise json.JSONDecodeError("Extra data", text, _after_whitespace(text, end))
    except UnicodeDecodeError as exc:
        raise MalformedInput("JSON is not valid UTF-8") from exc
    except json.JSONDecodeError as exc:
        raise MalformedInput(f"invalid JSON: {exc.msg} at position {exc.pos}") from exc
    # With no more brackets than levels allowed, the value cannot be too deep:
    # skip the walk (the common case for tokens, and a hot path).
    if brackets > max_depth:
        _depth(value, max_depth)
    return value


def _bracket_depth(text: str) -> int:
    depth = deepest = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest


def json_dumps_compact(value: Any) -> str:
    """Serialize JSON compactly (no spaces), keeping non-ASCII characters as UTF-8."""
    # What JSONEncoder.encode does for this configuration, minus its Python
    # layers: the C encoder with the same arguments and a fresh circular-
    # reference table per call (a shared one would not be thread-safe).
    encoder = _make_c_json_encoder(
        {}, _COMPACT_ENCODER.default, _encode_json_string, None, ":", ",", False, False, True
    )
    return "".join(encoder(value, 0))


def json_object_b64(value: Mapping[str, Any]) -> str:
    """base64url of the compact UTF-8 JSON serialization of ``value``."""
    return b64url_encode(json_dumps_compact(value).encode("utf-8"))


# --- keys ------------------------------------------------------------------------


def _int_to_b64(value: int, length: int) -> str:
    return b64url_encode(value.to_bytes(length, "big"))


def _b64_fixed(text: Any, length: int, what: str) -> bytes:
    if not isinstance(text, str):
        raise MalformedInput(f"JWK member {what} must be a string")
    raw = b64url_decode(text)
    if len(raw) != length:
        raise MalformedInput(f"JWK member {what} must be {length} bytes")
    return raw


def _b64_to_int(text: Any, length: int, what: str) -> int:
    return int.from_bytes(_b64_fixed(text, length, what), "big")


@functools.cache
def _key_kind(cls: type) -> str | None:
    # By class, once: isinstance against these ABCs costs about a microsecond,
    # and keys are built on hot paths (a KB-JWT's key, every presentation).
    if issubclass(cls, ed25519.Ed25519PublicKey | ed25519.Ed25519PrivateKey):
        return "OKP"
    if issubclass(cls, ec.EllipticCurvePublicKey | ec.EllipticCurvePrivateKey):
        return "EC"
    return None


def _algs_of(key: object) -> frozenset[str]:
    """The JWS algorithms a key of this type can sign or verify (RFC 9864 §2)."""
    kind = _key_kind(cast(Any, type(key)))  # classes hash; typeshed's type[object] does not say so
    if kind == "OKP":
        return ED25519_ALGS
    if kind == "EC" and isinstance(cast(Any, key).curve, ec.SECP256R1):
        return P256_ALGS
    return frozenset()


@dataclass(frozen=True)
class PublicKey:
    """A verification key with its algorithm.

    Attributes:
        alg: The key's algorithm: ``ES256``/``ESP256`` (P-256) or ``EdDSA``/``Ed25519``.
        key: The ``cryptography`` public key object.
        kid: Optional key id.
        alg_pinned: The key's JWK declared ``alg``: only that algorithm verifies
            with it (RFC 7517 §4.4). Otherwise any algorithm of the key's type does.

    Raises:
        ValueError: ``alg`` is not an algorithm of the key's type (a programming error).
    """

    alg: str
    key: ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey
    kid: str | None = None
    alg_pinned: bool = field(default=False, compare=False)
    # The key's public JWK members, filled once: exporting a key costs
    # microseconds and never changes. init=False, so dataclasses.replace()
    # (which may swap the key) starts from an empty one.
    _jwk: dict[str, str] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.alg not in _algs_of(self.key):
            raise ValueError(f"alg {self.alg!r} does not fit a {type(self.key).__name__}")

    def accepts(self, alg: str) -> bool:
        """Whether a signature with JWS ``alg`` may be verified with this key."""
        if alg == self.alg:
            return True
        return not self.alg_pinned and alg in _algs_of(self.key)

    def _public_members(self) -> dict[str, str]:
        if not self._jwk:
            self._jwk.update(_public_jwk(self.key))
        return self._jwk

    def to_jwk(self) -> dict[str, str]:
        """Return the public JWK (with ``kid`` when set, ``alg`` when pinned)."""
        jwk = dict(self._public_members())
        if self.alg_pinned:
            jwk["alg"] = self.alg
        if self.kid is not None:
            jwk["kid"] = self.kid
        return jwk

    def thumbprint(self) -> str:
        """RFC 7638 JWK thumbprint (SHA-256, base64url)."""
        jwk = self._public_members()
        members = ("crv", "kty", "x", "y") if jwk["kty"] == "EC" else ("crv", "kty", "x")
        canonical = json_dumps_compact({name: jwk[name] for name in members})
        return b64url_encode(hashlib.sha256(canonical.encode("ascii")).digest())

    def verify(self, signing_input: bytes, signature: bytes) -> bool:
        """Return whether ``signature`` is valid for ``signing_input`` (JWS raw format)."""
        try:
            if isinstance(self.key, ec.EllipticCurvePublicKey):
                if len(signature) != 2 * _P256_COORD_BYTES:
                    return False
                self.key.verify(_raw_to_der(signature), signing_input, _ECDSA_SHA256)
            else:
                self.key.verify(signature, signing_input)
        except _CryptoInvalidSignature:
            return False
        return True


def _raw_to_der(signature: bytes) -> bytes:
    """JWS ``r || s`` (32 + 32 bytes) to the DER ``ECDSA-Sig-Value`` OpenSSL verifies.

    Byte-level, because converting through Python integers and
    ``encode_dss_signature`` is slower on the verification hot path. Each
    INTEGER is minimal, with a leading zero when its high bit is set (it is
    positive); at most 33 + 33 bytes, so every length fits the short form.
    """
    r = signature[:_P256_COORD_BYTES].lstrip(b"\0")
    s = signature[_P256_COORD_BYTES:].lstrip(b"\0")
    if not r or r[0] & 0x80:
        r = b"\0" + r
    if not s or s[0] & 0x80:
        s = b"\0" + s
    return bytes((0x30, len(r) + len(s) + 4, 0x02, len(r))) + r + bytes((0x02, len(s))) + s


def _der_to_raw(der: bytes) -> bytes:
    """OpenSSL's DER ``ECDSA-Sig-Value`` to JWS ``r || s`` (32 + 32 bytes), by bytes.

    Only for signatures we just made: short-form lengths, two INTEGERs. Cheaper
    than decode_dss_signature and back through Python integers when signing.
    """
    r_length = der[3]  # 0x30 len 0x02 r_len r... 0x02 s_len s...
    r = der[4 : 4 + r_length]
    s = der[6 + r_length : 6 + r_length + der[5 + r_length]]
    return r.lstrip(b"\0").rjust(_P256_COORD_BYTES, b"\0") + s.lstrip(b"\0").rjust(
        _P256_COORD_BYTES, b"\0"
    )


@dataclass(frozen=True)
class PrivateKey:
    """A signing key with its algorithm and optional key id."""

    alg: str
    key: ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey
    kid: str | None = None

    def __post_init__(self) -> None:
        if self.alg not in _algs_of(self.key):
            raise ValueError(f"alg {self.alg!r} does not fit a {type(self.key).__name__}")

    def public(self) -> PublicKey:
        """The matching :class:`PublicKey` (same ``alg`` and ``kid``)."""
        return PublicKey(alg=self.alg, key=self.key.public_key(), kid=self.kid)

    def sign(self, signing_input: bytes) -> bytes:
        """Sign ``signing_input``; ES256 signatures are returned as raw ``r || s``."""
        if isinstance(self.key, ec.EllipticCurvePrivateKey):
            return _der_to_raw(self.key.sign(signing_input, _ECDSA_SHA256))
        return self.key.sign(signing_input)

    def to_jwk(self) -> dict[str, str]:
        """Return the private JWK (``d`` included). Store it with restrictive permissions."""
        jwk = _public_jwk(self.key.public_key())
        if isinstance(self.key, ec.EllipticCurvePrivateKey):
            jwk["d"] = _int_to_b64(self.key.private_numbers().private_value, _P256_COORD_BYTES)
        else:
            from cryptography.hazmat.primitives import serialization

            raw = self.key.private_bytes(
                serialization.Encoding.Raw,
                serialization.PrivateFormat.Raw,
                serialization.NoEncryption(),
            )
            jwk["d"] = b64url_encode(raw)
        jwk["alg"] = self.alg
        if self.kid is not None:
            jwk["kid"] = self.kid
        return jwk


def _public_jwk(key: ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey) -> dict[str, str]:
    if isinstance(key, ec.EllipticCurvePublicKey):
        numbers = key.public_numbers()
        return {
            "kty": "EC",
            "crv": "P-256",
            "x": _int_to_b64(numbers.x, _P256_COORD_BYTES),
            "y": _int_to_b64(numbers.y, _P256_COORD_BYTES),
        }
    from cryptography.hazmat.primitives import serialization

    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return {"kty": "OKP", "crv": "Ed25519", "x": b64url_encode(raw)}


def public_key_from_jwk(jwk: Mapping[str, Any], *, allow_private: bool = False) -> PublicKey:
    """Build a :class:`PublicKey` from a JWK (P-256 EC or Ed25519 OKP only).

    Args:
        jwk: The JWK object.
        allow_private: Accept (and ignore) a ``d`` member. Off by default: a public
            key that carries its private part (e.g. in ``cnf``) is a leak, not a key.

    Raises:
        MalformedInput: unsupported key type/curve, bad coordinates, or a private member.
    """
    if not isinstance(jwk, Mapping):
        raise MalformedInput("JWK must be a JSON object")
    if "d" in jwk and not allow_private:
        raise MalformedInput("public JWK contains private key material")
    members = (
        jwk.get("kty"),
        jwk.get("crv"),
        jwk.get("x"),
        jwk.get("y"),
        jwk.get("kid"),
        jwk.get("alg"),
    )
    try:
        hash(members)
    except TypeError:  # an array or object where a string belongs: report it uncached
        return _public_key_from_members(*members)
    return _cached_public_key_from_members(*members)


def _public_key_from_members(
    kty: Any, crv: Any, x_text: Any, y_text: Any, kid: Any, declared: Any
) -> PublicKey:
    # Everything public_key_from_jwk's result depends on is an argument here,
    # which is what makes the result cacheable by these members.
    if kid is not None and not isinstance(kid, str):
        raise MalformedInput("JWK kid must be a string")
    if kty == "EC" and crv == "P-256":
        x = _b64_fixed(x_text, _P256_COORD_BYTES, "x")
        y = _b64_fixed(y_text, _P256_COORD_BYTES, "y")
        try:
            # The uncompressed SEC1 point; faster than going through integers.
            key: ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey = (
                ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), b"\x04" + x + y)
            )
        except ValueError as exc:
            raise MalformedInput("EC point is not on P-256") from exc
        family, alg = P256_ALGS, ES256
        # Strict decoding made x and y canonical: they are exactly what
        # exporting this key would produce, so they serve as its JWK.
        exported = {"kty": "EC", "crv": "P-256", "x": x_text, "y": y_text}
    elif kty == "OKP" and crv == "Ed25519":
        x_raw = b64url_decode(x_text) if isinstance(x_text, str) else b""
        if len(x_raw) != 32:  # Ed25519 public keys are 32 bytes
            raise MalformedInput("Ed25519 JWK x must be 32 bytes")
        key = ed25519.Ed25519PublicKey.from_public_bytes(x_raw)
        family, alg = ED25519_ALGS, EDDSA
        exported = {"kty": "OKP", "crv": "Ed25519", "x": x_text}
    else:
        raise UnsupportedAlgorithm(f"unsupported JWK kty/crv {kty!r}/{crv!r}")
    # RFC 9864: a fully-specified alg names its key type, so "Ed25519" only
    # with an Ed25519 OKP key and "ESP256"/"ES256" only with a P-256 EC key.
    if declared is not None and declared not in family:
        raise UnsupportedAlgorithm(f"JWK alg {declared!r} does not match its key type")
    pinned = declared is not None
    public = PublicKey(alg=declared if pinned else alg, key=key, kid=kid, alg_pinned=pinned)
    public._jwk.update(exported)
    return public


# The issuer key and a holder's cnf key recur in every presentation; importing
# a point costs several microseconds. Keys are immutable, so sharing is safe;
# failures are not cached (lru_cache only stores returned values), and the
# bound keeps a flood of distinct keys from growing memory.
_cached_public_key_from_members: Final = functools.lru_cache(maxsize=_JWK_CACHE_SIZE)(
    _public_key_from_members
)


def private_key_from_jwk(jwk: Mapping[str, Any]) -> PrivateKey:
    """Build a :class:`PrivateKey` from a private JWK (P-256 or Ed25519).

    Raises:
        MalformedInput: missing ``d``, or ``d`` does not match the public part.
    """
    public = public_key_from_jwk(jwk, allow_private=True)
    if "d" not in jwk:
        raise MalformedInput("private JWK has no 'd' member")
    key: ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey
    if public.alg in P256_ALGS:
        d = _b64_to_int(jwk["d"], _P256_COORD_BYTES, "d")
        try:
            key = ec.derive_private_key(d, ec.SECP256R1())
        except ValueError as exc:
            raise MalformedInput("invalid P-256 private scalar") from exc
    else:
        d_raw = b64url_decode(jwk["d"]) if isinstance(jwk["d"], str) else b""
        if len(d_raw) != 32:  # Ed25519 seeds are 32 bytes
            raise MalformedInput("Ed25519 JWK d must be 32 bytes")
        key = ed25519.Ed25519PrivateKey.from_private_bytes(d_raw)
    if _public_jwk(key.public_key()) != _public_jwk(public.key):
        raise MalformedInput("private JWK 'd' does not match its public key")
    return PrivateKey(alg=public.alg, key=key, kid=public.kid)


def generate_private_key(alg: str = ES256, kid: str | None = None) -> PrivateKey:
    """Create a fresh signing key from the OS CSPRNG (for key creation, not verification).

    Raises:
        UnsupportedAlgorithm: ``alg`` is not one of :data:`SUPPORTED_ALGS`.
    """
    if alg in P256_ALGS:
        return PrivateKey(alg=alg, key=ec.generate_private_key(ec.SECP256R1()), kid=kid)
    if alg in ED25519_ALGS:
        return PrivateKey(alg=alg, key=ed25519.Ed25519PrivateKey.generate(), kid=kid)
    raise UnsupportedAlgorithm(f"cannot generate keys for {alg!r}")


# --- compact JWS -----------------------------------------------------------------


@dataclass(frozen=True)
class CompactJws:
    """A parsed (not yet verified, unless returned by :func:`verify_compact`) compact JWS."""

    header: dict[str, Any]
    payload: dict[str, Any]
    signing_input: bytes
    signature: bytes
    raw: str


KeyResolver = Callable[[Mapping[str, Any], Mapping[str, Any]], PublicKey]
"""Chooses the verification key from the (header, payload) — by the verifier's rules."""


def sign_compact(
    payload: Mapping[str, Any],
    key: PrivateKey,
    *,
    typ: str,
    extra_header: Mapping[str, Any] | None = None,
) -> str:
    """Sign ``payload`` as a compact JWS with header ``{alg, typ[, kid], **extra_header}``."""
    if not extra_header and isinstance(typ, str) and isinstance(key.kid, str | None):
        encoded_header = _encoded_plain_header(key.alg, typ, key.kid)
    else:
        header = _plain_header(key.alg, typ, key.kid)
        header.update(extra_header or {})
        encoded_header = json_object_b64(header)
    signing_input = f"{encoded_header}.{json_object_b64(payload)}".encode("ascii")
    return f"{signing_input.decode('ascii')}.{b64url_encode(key.sign(signing_input))}"


def _plain_header(alg: str, typ: str, kid: str | None) -> dict[str, Any]:
    header: dict[str, Any] = {"alg": alg, "typ": typ}
    if kid is not None:
        header["kid"] = kid
    return header


# A signer uses one key and one typ over and over: encode that header once.
@functools.lru_cache(maxsize=_HEADER_CACHE_SIZE)
def _encoded_plain_header(alg: str, typ: str, kid: str | None) -> str:
    return json_object_b64(_plain_header(alg, typ, kid))


def parse_compact(
    token: str,
    *,
    max_bytes: int = DEFAULT_MAX_TOKEN_BYTES,
    max_depth: int = DEFAULT_MAX_JSON_DEPTH,
) -> CompactJws:
    """Parse a compact JWS without verifying it.

    Raises:
        InputTooLarge, MalformedInput, DuplicateJsonKey: on any structural problem.
    """
    if not isinstance(token, str):
        raise MalformedInput("JWS must be a string")
    if len(token) > max_bytes:
        raise InputTooLarge(f"JWS of {len(token)} bytes exceeds {max_bytes}")
    parts = token.split(".")
    if len(parts) != 3:  # header.payload.signature
        raise MalformedInput("compact JWS must have exactly three parts")
    header = _parse_header(parts[0], max_bytes, max_depth)
    payload = strict_json_loads(b64url_decode(parts[1]), max_bytes=max_bytes, max_depth=max_depth)
    if not isinstance(header, dict) or not isinstance(payload, dict):
        raise MalformedInput("JWS header and payload must be JSON objects")
    signing_input = f"{parts[0]}.{parts[1]}".encode("ascii")
    return CompactJws(header, payload, signing_input, b64url_decode(parts[2]), token)


def _parse_header(segment: str, max_bytes: int, max_depth: int) -> Any:
    if len(segment) <= _MAX_CACHED_HEADER_CHARS:
        members = _flat_header_members(segment, max_bytes, max_depth)
        if members is not None:
            return dict(members)  # a fresh dict: callers may change theirs
    return strict_json_loads(b64url_decode(segment), max_bytes=max_bytes, max_depth=max_depth)


@functools.lru_cache(maxsize=_HEADER_CACHE_SIZE)
def _flat_header_members(
    segment: str, max_bytes: int, max_depth: int
) -> tuple[tuple[str, Any], ...] | None:
    # Protected headers repeat: one per issuer key, one per holder algorithm
    # for KB-JWTs. A flat header (no nested array or object) has immutable
    # members, so its parse can be replayed as a new dict; anything else
    # (None) is parsed every time. Bad input raises here, and is not cached.
    header = strict_json_loads(b64url_decode(segment), max_bytes=max_bytes, max_depth=max_depth)
    if isinstance(header, dict) and all(
        type(value) in _FLAT_JSON_TYPES for value in header.values()
    ):
        return tuple(header.items())
    return None


def _normalise_typ(typ: str) -> str:
    # RFC 7515 §4.1.9: "application/" may be omitted and media types compare
    # case-insensitively, so "application/DC+SD-JWT" and "dc+sd-jwt" are equal.
    lowered = typ.lower()
    return lowered.removeprefix("application/")


def check_header(
    header: Mapping[str, Any], *, allowed_algs: Collection[str], expected_typ: str | None
) -> str:
    """Enforce the algorithm allow-list, ``crit`` and the exact ``typ``; return ``alg``.

    Raises:
        UnsupportedAlgorithm: ``alg`` missing, ``none``, HS*, or not allowed.
        InvalidTokenType: ``typ`` is not ``expected_typ``.
        MalformedInput: ``crit`` present (we understand no extensions).
    """
    alg = header.get("alg")
    if not isinstance(alg, str) or alg not in SUPPORTED_ALGS or alg not in allowed_algs:
        raise UnsupportedAlgorithm(f"algorithm {alg!r} is not allowed")
    if "crit" in header:
        raise MalformedInput("JWS 'crit' extensions are not supported")
    if expected_typ is not None:
        typ = header.get("typ")
        # Equal strings need no normalising (the usual case, on every token).
        if not isinstance(typ, str) or (
            typ != expected_typ and _normalise_typ(typ) != _normalise_typ(expected_typ)
        ):
            raise InvalidTokenType(f"typ {typ!r} is not {expected_typ!r}")
    return alg


def verify_compact(
    token: str | CompactJws,
    key: PublicKey | KeyResolver,
    *,
    allowed_algs: Collection[str] = SUPPORTED_ALGS,
    expected_typ: str | None,
    max_bytes: int = DEFAULT_MAX_TOKEN_BYTES,
) -> CompactJws:
    """Parse and verify a compact JWS.

    The key is the verifier's choice: either a fixed :class:`PublicKey` or a
    resolver that looks at the (untrusted) header and payload to pick one of the
    keys the verifier already trusts. The token's ``alg`` must be one the key
    accepts (:meth:`PublicKey.accepts`).

    Raises:
        UnsupportedAlgorithm, InvalidTokenType, InvalidSignature, UnknownKey, MalformedInput.
    """
    jws = token if isinstance(token, CompactJws) else parse_compact(token, max_bytes=max_bytes)
    alg = check_header(jws.header, allowed_algs=allowed_algs, expected_typ=expected_typ)
    public = key if isinstance(key, PublicKey) else key(jws.header, jws.payload)
    if not isinstance(public, PublicKey):
        raise UnknownKey("no verification key for this token")
    if not public.accepts(alg):
        raise UnsupportedAlgorithm(f"token alg {alg!r} does not match key alg {public.alg!r}")
    if not public.verify(jws.signing_input, jws.signature):
        raise InvalidSignature("JWS signature does not verify")
    return jws
