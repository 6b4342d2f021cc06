"""Minimal COSE_Sign1 (RFC 9052) for CWT-form status list tokens.

Pure: no I/O, no clock. Only what the status list CWT needs: one signer,
algorithms ES256 (-7), EdDSA (-8), ESP256 (-9) and Ed25519 (-19) (RFC 9864),
the tagged form (CBOR tag 18), an empty external AAD, and strict decoding (no
duplicate map keys, no indefinite lengths, bounded size and depth, no ``crit`` extensions).

Signatures are the raw forms RFC 9053 prescribes: ``r || s`` (64 bytes) for
ES256 and the 64-byte Ed25519 signature, which is exactly what
:meth:`onceonly.jose.PrivateKey.sign` produces, so the JOSE key objects serve
both worlds.
"""

from __future__ import annotations

import io
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any, Final

import cbor2

from onceonly.errors import (
    InputTooLarge,
    InvalidSignature,
    InvalidTokenType,
    MalformedInput,
    UnsupportedAlgorithm,
)
from onceonly.jose import ED25519, EDDSA, ES256, ESP256, PrivateKey, PublicKey

COSE_SIGN1_TAG: Final = 18

# Header labels (RFC 9052 §3.1) and the content type / typ header (RFC 9596).
HEADER_ALG: Final = 1
HEADER_CRIT: Final = 2
HEADER_CONTENT_TYPE: Final = 3
HEADER_KID: Final = 4
HEADER_TYP: Final = 16

COSE_ALG_ES256: Final = -7
COSE_ALG_EDDSA: Final = -8
COSE_ALG_ESP256: Final = -9  # RFC 9864 fully-specified algorithms
COSE_ALG_ED25519: Final = -19

_JOSE_TO_COSE_ALG: Final[dict[str, int]] = {
    ES256: COSE_ALG_ES256,
    EDDSA: COSE_ALG_EDDSA,
    ESP256: COSE_ALG_ESP256,
    ED25519: COSE_ALG_ED25519,
}
_COSE_TO_JOSE_ALG: Final[dict[int, str]] = {v: k for k, v in _JOSE_TO_COSE_ALG.items()}

DEFAULT_MAX_COSE_BYTES: Final = 1024 * 1024
_MAX_CBOR_DEPTH: Final = 16


@dataclass(frozen=True)
class CoseSign1:
    """A decoded COSE_Sign1 message (verified when returned by :func:`verify_sign1`).

    Attributes:
        protected: The decoded protected header map.
        unprotected: The unprotected header map (not covered by the signature).
        payload: The payload bytes.
        alg: The JOSE name of the algorithm (``ES256``, ``ESP256``, ``EdDSA`` or ``Ed25519``).
    """

    protected: dict[Any, Any]
    unprotected: dict[Any, Any]
    payload: bytes
    alg: str


def strict_cbor_loads(data: bytes, *, max_bytes: int = DEFAULT_MAX_COSE_BYTES) -> Any:
    """Decode one CBOR item strictly: bounded size and depth, no duplicate keys or
    indefinite lengths.

    Raises:
        InputTooLarge: ``data`` longer than ``max_bytes``.
        MalformedInput: not one well-formed CBOR item (trailing bytes included).
    """
    if not isinstance(data, bytes | bytearray):
        raise MalformedInput("CBOR input must be bytes")
    if len(data) > max_bytes:
        raise InputTooLarge(f"CBOR input of {len(data)} bytes exceeds {max_bytes}")
    try:
        value, consumed = _loads_with_length(bytes(data))
    except (cbor2.CBORDecodeError, ValueError, TypeError, OverflowError, RecursionError) as exc:
        raise MalformedInput(f"invalid CBOR: {exc}") from exc
    if consumed != len(data):
        raise MalformedInput("unexpected bytes after the CBOR item")
    return value


def _loads_with_length(data: bytes) -> tuple[Any, int]:
    # Decode from a stream so we learn how many bytes the item used.
    stream = io.BytesIO(data)
    decoder = cbor2.CBORDecoder(
        stream,
        max_depth=_MAX_CBOR_DEPTH,
        allow_indefinite=False,
        allow_duplicate_keys=False,
    )
    value = decoder.decode()
    return value, stream.tell()


def _sig_structure(protected: bytes, payload: bytes, external_aad: bytes = b"") -> bytes:
    # RFC 9052 §4.4: the bytes that are actually signed.
    return bytes(cbor2.dumps(["Signature1", protected, external_aad, payload]))


def sign1(
    payload: bytes,
    key: PrivateKey,
    *,
    protected: Mapping[int, Any] | None = None,
    unprotected: Mapping[int, Any] | None = None,
) -> bytes:
    """Build a tagged COSE_Sign1 message.

    The algorithm header comes from ``key``; its ``kid`` (if any) goes to the
    unprotected header as a byte string, as RFC 9052 requires.

    Args:
        payload: The bytes to sign (e.g. an encoded CWT claims set).
        key: The signing key (ES256 or EdDSA).
        protected: Extra protected header parameters (e.g. ``{16: typ}``).
        unprotected: Extra unprotected header parameters.

    Raises:
        UnsupportedAlgorithm: the key's algorithm has no COSE mapping here.
    """
    if key.alg not in _JOSE_TO_COSE_ALG:
        raise UnsupportedAlgorithm(f"no COSE algorithm for {key.alg!r}")
    protected_map: dict[int, Any] = {HEADER_ALG: _JOSE_TO_COSE_ALG[key.alg]}
    protected_map.update(protected or {})
    unprotected_map: dict[int, Any] = {}
    if key.kid is not None:
        unprotected_map[HEADER_KID] = key.kid.encode("utf-8")
    unprotected_map.update(unprotected or {})
    protected_bytes = bytes(cbor2.dumps(protected_map))
    signature = key.sign(_sig_structure(protected_bytes, payload))
    message = cbor2.CBORTag(COSE_SIGN1_TAG, [protected_bytes, unprotected_map, payload, signature])
    return bytes(cbor2.dumps(message))


def parse_sign1(
    data: bytes, *, max_bytes: int = DEFAULT_MAX_COSE_BYTES
) -> tuple[bytes, CoseSign1, bytes]:
    """Decode a tagged COSE_Sign1 without verifying it.

    Returns:
        ``(protected_bytes, message, signature)``.

    Raises:
        MalformedInput, InputTooLarge, UnsupportedAlgorithm: on structural problems.
    """
    item = strict_cbor_loads(data, max_bytes=max_bytes)
    if not isinstance(item, cbor2.CBORTag) or item.tag != COSE_SIGN1_TAG:
        raise MalformedInput("not a tagged COSE_Sign1 message (tag 18)")
    body = item.value
    # cbor2 decodes a tagged array as a tuple.
    if not isinstance(body, list | tuple) or len(body) != 4:  # protected, unprotected, payload, sig
        raise MalformedInput("COSE_Sign1 must be an array of four items")
    protected_bytes, unprotected, payload, signature = body
    if not isinstance(protected_bytes, bytes):
        raise MalformedInput("COSE protected header must be a byte string")
    # Inside a tag cbor2 decodes maps immutably (FrozenDict), hence Mapping.
    if not isinstance(unprotected, Mapping):
        raise MalformedInput("COSE unprotected header must be a map")
    if not isinstance(payload, bytes):
        raise MalformedInput("COSE payload must be an attached byte string")
    if not isinstance(signature, bytes):
        raise MalformedInput("COSE signature must be a byte string")
    protected = strict_cbor_loads(protected_bytes, max_bytes=max_bytes) if protected_bytes else {}
    if not isinstance(protected, Mapping):
        raise MalformedInput("COSE protected header must encode a map")
    if set(protected) & set(unprotected):
        # RFC 9052 §3: a label must not appear in both buckets.
        raise MalformedInput("COSE header label in both protected and unprotected headers")
    if HEADER_CRIT in protected:
        raise MalformedInput("COSE 'crit' header parameters are not supported")
    if HEADER_ALG in unprotected:
        raise UnsupportedAlgorithm("COSE alg must be in the protected header")
    cose_alg = protected.get(HEADER_ALG)
    # Only an int can name an algorithm; a list or map would not even hash.
    if type(cose_alg) is not int or cose_alg not in _COSE_TO_JOSE_ALG:
        raise UnsupportedAlgorithm(f"COSE algorithm {cose_alg!r} is not allowed")
    message = CoseSign1(
        protected=dict(protected),
        unprotected=dict(unprotected),
        payload=payload,
        alg=_COSE_TO_JOSE_ALG[cose_alg],
    )
    return protected_bytes, message, signature


def verify_sign1(
    data: bytes,
    key: PublicKey,
    *,
    expected_typ: str | int | None,
    allowed_algs: Collection[str] = (ES256, EDDSA, ESP256, ED25519),
    max_bytes: int = DEFAULT_MAX_COSE_BYTES,
) -> CoseSign1:
    """Decode and verify a tagged COSE_Sign1 message with the verifier's key.

    Args:
        data: The encoded message.
        key: The key the verifier chose; it must accept the message's algorithm.
        expected_typ: Exact protected ``typ`` (label 16) required, or ``None`` to skip.
        allowed_algs: JOSE names of acceptable algorithms.
        max_bytes: Upper bound on the encoded size.

    Raises:
        MalformedInput, InputTooLarge: malformed message.
        UnsupportedAlgorithm: algorithm not allowed or not the key's.
        InvalidTokenType: ``typ`` missing or different.
        InvalidSignature: the signature does not verify.
    """
    protected_bytes, message, signature = parse_sign1(data, max_bytes=max_bytes)
    if message.alg not in allowed_algs:
        raise UnsupportedAlgorithm(f"algorithm {message.alg!r} is not allowed")
    if expected_typ is not None:
        typ = message.protected.get(HEADER_TYP)
        if isinstance(typ, bool) or typ != expected_typ:
            raise InvalidTokenType(f"COSE typ {typ!r} is not {expected_typ!r}")
    if not key.accepts(message.alg):
        raise UnsupportedAlgorithm(
            f"message alg {message.alg!r} does not match key alg {key.alg!r}"
        )
    if not key.verify(_sig_structure(protected_bytes, message.payload), signature):
        raise InvalidSignature("COSE_Sign1 signature does not verify")
    return message
