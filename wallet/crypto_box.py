"""Key derivation and authenticated encryption for the wallet's data at rest.

* A passphrase becomes a key-encryption key with scrypt (memory-hard, so a
  stolen file cannot be brute-forced cheaply); a raw key from the caller (an OS
  keyring, a hardware token) goes through HKDF instead, because it already has
  full entropy and scrypt would only add latency.
* Records are sealed with AES-256-GCM under a random 96-bit nonce per record.
  The associated data names the table and row a ciphertext belongs to, so a
  ciphertext copied into another row or table no longer opens.
"""

from __future__ import annotations

import os
import unicodedata
from dataclasses import dataclass
from typing import Any, Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from onceonly.errors import InputTooLarge, MalformedInput

KEY_BYTES: Final = 32
NONCE_BYTES: Final = 12
SALT_BYTES: Final = 16
TAG_BYTES: Final = 16
MIN_RAW_KEY_BYTES: Final = 32

_MIN_LOG2_N: Final = 10
_MAX_LOG2_N: Final = 20
_MAX_R: Final = 32
_MAX_P: Final = 16
_MAX_SCRYPT_MEMORY: Final = 1 << 30


class SealBroken(Exception):
    """A sealed blob did not authenticate (wrong key, wrong associated data, or altered)."""


@dataclass(frozen=True, slots=True)
class ScryptParams:
    """Cost parameters of scrypt (RFC 7914).

    The default (``n=2**17, r=8, p=1``: 128 MiB, a few hundred milliseconds) is
    what we ask of a passphrase that protects personal data. Tests pass
    :data:`FAST_SCRYPT_FOR_TESTS` explicitly to stay fast; nothing else should.

    Attributes:
        n: CPU/memory cost, a power of two.
        r: Block size.
        p: Parallelism.
    """

    n: int = 2**17
    r: int = 8
    p: int = 1

    def check(self) -> None:
        """Refuse parameters that are not a power of two or would cost unbounded memory.

        A wallet file or backup header carries these numbers, so they are input:
        an altered header must not make us allocate gigabytes.

        Raises:
            MalformedInput: ``n`` is not a power of two in range, or ``r``/``p`` are invalid.
            InputTooLarge: the derivation would need more than 1 GiB.
        """
        for value in (self.n, self.r, self.p):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise MalformedInput("scrypt parameters must be positive integers")
        if self.n & (self.n - 1) or not _MIN_LOG2_N <= self.n.bit_length() - 1 <= _MAX_LOG2_N:
            raise MalformedInput(f"scrypt n must be a power of two in 2**{_MIN_LOG2_N}..")
        if self.r > _MAX_R or self.p > _MAX_P:
            raise MalformedInput("scrypt r or p out of range")
        if 128 * self.r * self.n > _MAX_SCRYPT_MEMORY:
            raise InputTooLarge("scrypt parameters need more than 1 GiB of memory")

    def to_json(self) -> dict[str, Any]:
        """The form stored next to the salt."""
        return {"kdf": "scrypt", "n": self.n, "r": self.r, "p": self.p}

    @classmethod
    def from_json(cls, data: Any) -> ScryptParams:
        """Parse and bound-check stored parameters.

        Raises:
            MalformedInput: not a scrypt parameter object.
            InputTooLarge: the parameters would cost too much memory.
        """
        if not isinstance(data, dict) or data.get("kdf") != "scrypt":
            raise MalformedInput("not scrypt parameters")
        params = cls(n=data.get("n"), r=data.get("r"), p=data.get("p"))  # type: ignore[arg-type]
        params.check()
        return params


FAST_SCRYPT_FOR_TESTS: Final = ScryptParams(n=2**10, r=8, p=1)
"""Weak on purpose (about a millisecond): only for tests and benchmarks of other parts."""


def new_salt() -> bytes:
    """A fresh random salt for a key derivation."""
    return os.urandom(SALT_BYTES)


def new_key() -> bytes:
    """A fresh random 256-bit key."""
    return os.urandom(KEY_BYTES)


def key_from_passphrase(passphrase: str, salt: bytes, params: ScryptParams) -> bytes:
    """Derive a 256-bit key from a passphrase with scrypt.

    The passphrase is NFC-normalised first, so the same words typed on two
    keyboards (composed or decomposed accents) give the same key.
    """
    params.check()
    normalised = unicodedata.normalize("NFC", passphrase).encode("utf-8")
    kdf = Scrypt(salt=salt, length=KEY_BYTES, n=params.n, r=params.r, p=params.p)
    return kdf.derive(normalised)


def key_from_raw(raw_key: bytes, salt: bytes, purpose: bytes) -> bytes:
    """Derive a 256-bit key from a caller-supplied high-entropy key with HKDF-SHA256.

    Raises:
        MalformedInput: ``raw_key`` is shorter than 32 bytes.
    """
    if not isinstance(raw_key, bytes) or len(raw_key) < MIN_RAW_KEY_BYTES:
        raise MalformedInput(f"a raw wallet key must be at least {MIN_RAW_KEY_BYTES} bytes")
    return HKDF(algorithm=hashes.SHA256(), length=KEY_BYTES, salt=salt, info=purpose).derive(
        raw_key
    )


class SecretBox:
    """AES-256-GCM with a random nonce per message; the nonce is stored in front.

    Creating one does no I/O; :meth:`seal` draws the nonce from the OS.
    """

    __slots__ = ("_aead",)

    def __init__(self, key: bytes) -> None:
        if len(key) != KEY_BYTES:
            raise ValueError("SecretBox needs a 32-byte key")
        self._aead = AESGCM(key)

    def seal(self, plaintext: bytes, associated_data: bytes) -> bytes:
        """Encrypt and authenticate ``plaintext``, bound to ``associated_data``."""
        nonce = os.urandom(NONCE_BYTES)
        return nonce + self._aead.encrypt(nonce, plaintext, associated_data)

    def open(self, sealed: bytes, associated_data: bytes) -> bytes:
        """Decrypt a blob made by :meth:`seal` with the same associated data.

        Raises:
            SealBroken: wrong key, wrong associated data, truncated or altered blob.
        """
        if len(sealed) < NONCE_BYTES + TAG_BYTES:
            raise SealBroken("sealed blob is too short")
        try:
            return self._aead.decrypt(sealed[:NONCE_BYTES], sealed[NONCE_BYTES:], associated_data)
        except InvalidTag as exc:
            raise SealBroken("sealed blob does not authenticate") from exc


def record_aad(table: str, row_id: str) -> bytes:
    """Associated data that binds a sealed record to its table and row."""
    return f"onceonly-wallet\x00{table}\x00{row_id}".encode()
