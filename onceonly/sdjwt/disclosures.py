"""Disclosures (RFC 9901 §4.2): encoding, strict decoding and digests.

A disclosure is the base64url of a JSON array: ``[salt, name, value]`` for an
object property, ``[salt, value]`` for an array element. Its digest is the
base64url hash of the *encoded* ASCII string exactly as transmitted, which is
why :class:`Disclosure` keeps the encoded form and never re-encodes.
"""

from __future__ import annotations

import hashlib
from _json import encode_basestring as _json_string
from collections.abc import Callable, Mapping
from typing import Any, Final, NamedTuple

from onceonly.errors import InvalidDisclosure, MalformedInput, UnsupportedAlgorithm
from onceonly.jose import b64url_decode, b64url_encode, json_dumps_compact, strict_json_loads

SD_KEY: Final = "_sd"
"""Object member holding the digests of its disclosable properties."""
SD_ALG_KEY: Final = "_sd_alg"
"""Top-level member naming the digest algorithm."""
ELLIPSIS_KEY: Final = "..."
"""Only member of an array-element placeholder ``{"...": digest}``."""
RESERVED_NAMES: Final[frozenset[str]] = frozenset({SD_KEY, ELLIPSIS_KEY})
"""Claim names a disclosure (or an issuer's claim set) may never use."""

DEFAULT_HASH_ALG: Final = "sha-256"
# IANA "Named Information Hash Algorithm" names -> hashlib constructors.
_HASHES: Final[dict[str, Callable[[bytes], Any]]] = {
    "sha-256": hashlib.sha256,
    "sha-384": hashlib.sha384,
    "sha-512": hashlib.sha512,
}
SUPPORTED_HASH_ALGS: Final[frozenset[str]] = frozenset(_HASHES)

MIN_SALT_BYTES: Final = 16
"""Salts we issue carry at least 128 bits of entropy (RFC 9901 §9.3)."""


def hash_function(hash_alg: str) -> Callable[[bytes], Any]:
    """Return the hashlib constructor for an IANA hash name.

    Raises:
        UnsupportedAlgorithm: the name is not one we implement.
    """
    try:
        return _HASHES[hash_alg]
    except (KeyError, TypeError):
        raise UnsupportedAlgorithm(f"digest algorithm {hash_alg!r} is not supported") from None


def digest_of(encoded: str, hash_alg: str = DEFAULT_HASH_ALG) -> str:
    """base64url digest of an encoded disclosure (or of an ``sd_hash`` input string).

    Raises:
        MalformedInput: ``encoded`` is not ASCII (so cannot be a base64url form).
    """
    try:
        data = encoded.encode("ascii")
    except UnicodeEncodeError as exc:
        raise MalformedInput("SD-JWT components must be ASCII") from exc
    return b64url_encode(hash_function(hash_alg)(data).digest())


class Disclosure(NamedTuple):
    """One decoded disclosure (immutable; a NamedTuple because it is built on hot paths).

    Attributes:
        encoded: The base64url string exactly as issued or received.
        salt: The salt string.
        name: The claim name, or ``None`` for an array element.
        value: The disclosed value (may itself contain ``_sd`` / ``...`` digests).
    """

    encoded: str
    salt: str
    name: str | None
    value: Any

    @property
    def is_array_element(self) -> bool:
        """True for the two-element (array element) form."""
        return self.name is None

    def digest(self, hash_alg: str = DEFAULT_HASH_ALG) -> str:
        """The digest that references this disclosure from the payload."""
        return digest_of(self.encoded, hash_alg)


def encode_disclosure(salt: str, name: str | None, value: Any) -> Disclosure:
    """Build a disclosure from its parts (issuer side).

    Raises:
        InvalidDisclosure: ``name`` is ``_sd`` or ``...``.
    """
    if name is not None and name in RESERVED_NAMES:
        raise InvalidDisclosure(f"claim name {name!r} is reserved")
    if type(salt) is not str or not (name is None or type(name) is str):
        parts: list[Any] = [salt, value] if name is None else [salt, name, value]
        text = json_dumps_compact(parts)  # misuse (e.g. a number as salt): the plain way
    else:
        # The compact JSON array written piece by piece: the text the encoder
        # gives for [salt, name, value] (it joins items with "," and encodes
        # each alone), without building and walking a list on this per-claim path.
        item = _json_string(value) if type(value) is str else json_dumps_compact(value)
        if name is None:
            text = f"[{_json_string(salt)},{item}]"
        else:
            text = f"[{_json_string(salt)},{_json_string(name)},{item}]"
    return Disclosure(b64url_encode(text.encode("utf-8")), salt, name, value)


def decode_disclosure(encoded: str, *, max_bytes: int, max_depth: int) -> Disclosure:
    """Decode and shape-check a received disclosure.

    Raises:
        InvalidDisclosure: not an array of 2 or 3 elements, salt or name not a
            string, or a reserved name (``_sd``, ``...``).
        MalformedInput: bad base64url or JSON (including duplicate keys).
    """
    try:
        raw = b64url_decode(encoded)
    except MalformedInput as exc:
        raise InvalidDisclosure("disclosure is not base64url") from exc
    parts = strict_json_loads(raw, max_bytes=max_bytes, max_depth=max_depth)
    if not isinstance(parts, list) or len(parts) not in (2, 3):
        raise InvalidDisclosure("disclosure must be a JSON array of 2 or 3 elements")
    salt = parts[0]
    if not isinstance(salt, str):
        raise InvalidDisclosure("disclosure salt must be a string")
    if len(parts) == 2:
        return Disclosure(encoded, salt, None, parts[1])
    name = parts[1]
    if not isinstance(name, str):
        raise InvalidDisclosure("disclosure claim name must be a string")
    if name in RESERVED_NAMES:
        raise InvalidDisclosure(f"disclosure uses the reserved claim name {name!r}")
    return Disclosure(encoded, salt, name, parts[2])


def new_salt(random_bytes: Callable[[int], bytes], size: int = MIN_SALT_BYTES) -> str:
    """Draw a salt of ``size`` bytes from the caller's randomness source.

    Raises:
        ValueError: ``size`` is below 128 bits or the source returned short output
            (a programming error, not bad input).
    """
    if size < MIN_SALT_BYTES:
        raise ValueError("salts must carry at least 128 bits")
    raw = random_bytes(size)
    if not isinstance(raw, bytes) or len(raw) != size:
        raise ValueError("random_bytes returned the wrong number of bytes")
    return b64url_encode(raw)


def decoy_digest(random_bytes: Callable[[int], bytes], hash_alg: str) -> str:
    """A digest indistinguishable from a real one (the hash of fresh random bytes)."""
    return b64url_encode(hash_function(hash_alg)(random_bytes(MIN_SALT_BYTES)).digest())


def is_array_placeholder(element: Any) -> bool:
    """True if an array element has the ``{"...": ...}`` placeholder shape (any size)."""
    return isinstance(element, Mapping) and ELLIPSIS_KEY in element
