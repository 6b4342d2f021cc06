"""DID documents and ``did:key`` (pure): parsing, keys as jose keys, multicodec decoding."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from onceonly import jose
from onceonly.errors import DidResolutionError, MalformedInput, UnsupportedAlgorithm

MAX_VERIFICATION_METHODS: Final = 64

_BASE58_ALPHABET: Final = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_ED25519_PUB_PREFIX: Final = bytes([0xED, 0x01])  # multicodec 0xed, varint-encoded
_P256_PUB_PREFIX: Final = bytes([0x80, 0x24])  # multicodec 0x1200, varint-encoded
_ED25519_KEY_BYTES: Final = 32
_P256_COMPRESSED_BYTES: Final = 33


# --- documents -----------------------------------------------------------------------


@dataclass(frozen=True)
class VerificationMethod:
    """One key of a DID document.

    Attributes:
        id: Absolute DID URL of the method (``did:...#fragment``).
        controller: The controlling DID.
        key: The public key; its ``kid`` is :attr:`id`.
    """

    id: str
    controller: str
    key: jose.PublicKey


@dataclass(frozen=True)
class DidDocument:
    """The parts of a DID document onceonly uses.

    Attributes:
        id: The DID.
        verification_methods: Keys with a JWK or multibase form we support.
        assertion_method: Ids of the methods allowed to sign credentials.
    """

    id: str
    verification_methods: tuple[VerificationMethod, ...]
    assertion_method: tuple[str, ...] = field(default=())

    def key(self, reference: str) -> jose.PublicKey:
        """Return the key of a method named by absolute DID URL, ``#fragment`` or fragment.

        Raises:
            DidResolutionError: the document has no such method.
        """
        wanted = _absolute(self.id, reference if "#" in reference else f"#{reference}")
        for method in self.verification_methods:
            if method.id == wanted:
                return method.key
        raise DidResolutionError(f"{self.id} has no verification method {reference!r}")

    def assertion_keys(self) -> tuple[jose.PublicKey, ...]:
        """Keys listed under ``assertionMethod`` (those that may sign credentials)."""
        allowed = set(self.assertion_method)
        return tuple(m.key for m in self.verification_methods if m.id in allowed)


def _absolute(did: str, reference: str) -> str:
    return f"{did}{reference}" if reference.startswith("#") else reference


def _method_key(entry: Mapping[str, Any], method_id: str) -> jose.PublicKey:
    if "publicKeyJwk" in entry:
        public = jose.public_key_from_jwk(entry["publicKeyJwk"])
    elif "publicKeyMultibase" in entry:
        public = public_key_from_multibase(entry["publicKeyMultibase"])
    else:
        raise MalformedInput(f"verification method {method_id} has no supported key form")
    return jose.PublicKey(alg=public.alg, key=public.key, kid=method_id)


def parse_did_document(data: Any, did: str) -> DidDocument:
    """Validate a decoded DID document for ``did`` and extract its supported keys.

    Methods with key types we do not support (e.g. RSA) are skipped; a method we
    cannot parse at all makes the document malformed.

    Raises:
        DidResolutionError: the document describes another DID.
        MalformedInput: wrong structure.
    """
    if not isinstance(data, dict):
        raise MalformedInput("DID document must be a JSON object")
    if data.get("id") != did:
        raise DidResolutionError(f"DID document id {data.get('id')!r} is not {did!r}")
    raw_methods = data.get("verificationMethod", [])
    if not isinstance(raw_methods, list) or len(raw_methods) > MAX_VERIFICATION_METHODS:
        raise MalformedInput("verificationMethod must be a list of bounded length")
    methods: list[VerificationMethod] = []
    for entry in raw_methods:
        if not isinstance(entry, dict) or not isinstance(entry.get("id"), str):
            raise MalformedInput("each verification method needs a string id")
        method_id = _absolute(did, entry["id"])
        controller = entry.get("controller", did)
        if not isinstance(controller, str):
            raise MalformedInput(f"verification method {method_id} has a bad controller")
        try:
            key = _method_key(entry, method_id)
        except UnsupportedAlgorithm:
            continue  # a key type we cannot use (e.g. RSA); others in the document may do
        methods.append(VerificationMethod(method_id, controller, key))
    assertion: list[str] = []
    raw_assertion = data.get("assertionMethod", [])
    if not isinstance(raw_assertion, list):
        raise MalformedInput("assertionMethod must be a list")
    for ref in raw_assertion:
        if isinstance(ref, str):
            assertion.append(_absolute(did, ref))
        elif isinstance(ref, dict) and isinstance(ref.get("id"), str):
            method_id = _absolute(did, ref["id"])
            methods.append(VerificationMethod(method_id, did, _method_key(ref, method_id)))
            assertion.append(method_id)
        else:
            raise MalformedInput("assertionMethod entries must be ids or methods")
    return DidDocument(did, tuple(methods), tuple(assertion))


# --- did:key (own decoding) ---------------------------------------------------------


def _base58_decode(text: str) -> bytes:
    number = 0
    for char in text:
        digit = _BASE58_ALPHABET.find(char)
        if digit < 0:
            raise MalformedInput("invalid base58btc character")
        number = number * 58 + digit
    leading_zeros = len(text) - len(text.lstrip("1"))
    body = number.to_bytes((number.bit_length() + 7) // 8, "big") if number else b""
    return b"\x00" * leading_zeros + body


def _base58_encode(data: bytes) -> str:
    number = int.from_bytes(data, "big")
    out = ""
    while number:
        number, digit = divmod(number, 58)
        out = _BASE58_ALPHABET[digit] + out
    return "1" * (len(data) - len(data.lstrip(b"\x00"))) + out


def public_key_from_multibase(value: Any) -> jose.PublicKey:
    """Decode a multibase (``z`` base58btc) multicodec Ed25519 or P-256 public key.

    Raises:
        MalformedInput: not base58btc, or an unsupported or malformed key.
    """
    if not isinstance(value, str) or not value.startswith("z") or len(value) > 128:
        raise MalformedInput("expected a base58btc multibase key ('z...')")
    raw = _base58_decode(value[1:])
    if raw.startswith(_ED25519_PUB_PREFIX) and len(raw) == 2 + _ED25519_KEY_BYTES:
        ed_key = ed25519.Ed25519PublicKey.from_public_bytes(raw[2:])
        return jose.PublicKey(alg=jose.EDDSA, key=ed_key)
    if raw.startswith(_P256_PUB_PREFIX) and len(raw) == 2 + _P256_COMPRESSED_BYTES:
        try:
            ec_key = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), raw[2:])
        except ValueError as exc:
            raise MalformedInput("invalid P-256 point in multibase key") from exc
        return jose.PublicKey(alg=jose.ES256, key=ec_key)
    raise MalformedInput("multibase key is neither Ed25519 nor P-256")


def did_key_for(public: jose.PublicKey) -> str:
    """The ``did:key`` of a public key (Ed25519 or P-256, compressed point)."""
    from cryptography.hazmat.primitives import serialization

    if isinstance(public.key, ed25519.Ed25519PublicKey):
        raw = public.key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return "did:key:z" + _base58_encode(_ED25519_PUB_PREFIX + raw)
    point = public.key.public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.CompressedPoint
    )
    return "did:key:z" + _base58_encode(_P256_PUB_PREFIX + point)


def did_key_document(did: str) -> DidDocument:
    """Build the document of a ``did:key`` from the DID itself (no didkit).

    Raises:
        MalformedInput: the identifier is not a supported multibase key.
    """
    multibase = did.removeprefix("did:key:")
    public = public_key_from_multibase(multibase)
    method_id = f"{did}#{multibase}"
    key = jose.PublicKey(alg=public.alg, key=public.key, kid=method_id)
    return DidDocument(did, (VerificationMethod(method_id, did, key),), (method_id,))
