"""Key derivation bounds and the sealed-record primitive."""

from __future__ import annotations

import os

import pytest

from onceonly.errors import InputTooLarge, MalformedInput
from wallet.crypto_box import (
    FAST_SCRYPT_FOR_TESTS,
    ScryptParams,
    SealBroken,
    SecretBox,
    key_from_passphrase,
    key_from_raw,
    new_key,
    record_aad,
)


def test_strong_default_and_explicit_test_parameters() -> None:
    assert ScryptParams() == ScryptParams(n=2**17, r=8, p=1)
    ScryptParams().check()
    FAST_SCRYPT_FOR_TESTS.check()
    assert ScryptParams.from_json(ScryptParams().to_json()) == ScryptParams()


@pytest.mark.parametrize(
    ("params", "error"),
    [
        ({"kdf": "scrypt", "n": 3000, "r": 8, "p": 1}, MalformedInput),  # not a power of two
        ({"kdf": "scrypt", "n": 2**9, "r": 8, "p": 1}, MalformedInput),  # too weak
        ({"kdf": "scrypt", "n": 2**21, "r": 8, "p": 1}, MalformedInput),  # too costly
        ({"kdf": "scrypt", "n": 2**20, "r": 16, "p": 1}, InputTooLarge),  # 2 GiB
        ({"kdf": "scrypt", "n": 2**14, "r": 0, "p": 1}, MalformedInput),
        ({"kdf": "scrypt", "n": 2**14, "r": 8, "p": 17}, MalformedInput),
        ({"kdf": "scrypt", "n": True, "r": 8, "p": 1}, MalformedInput),
        ({"kdf": "scrypt", "n": "16384", "r": 8, "p": 1}, MalformedInput),
        ({"kdf": "argon2", "n": 2**14, "r": 8, "p": 1}, MalformedInput),
        ([], MalformedInput),
    ],
)
def test_stored_parameters_are_bounded(params: object, error: type[Exception]) -> None:
    with pytest.raises(error):
        ScryptParams.from_json(params)


def test_passphrase_is_normalised_before_derivation() -> None:
    salt = os.urandom(16)
    composed = "Passwort für Ämter"
    decomposed = "Passwort fu\u0308r A\u0308mter"
    assert composed != decomposed
    assert key_from_passphrase(composed, salt, FAST_SCRYPT_FOR_TESTS) == key_from_passphrase(
        decomposed, salt, FAST_SCRYPT_FOR_TESTS
    )
    assert key_from_passphrase(composed, salt, FAST_SCRYPT_FOR_TESTS) != key_from_passphrase(
        composed, os.urandom(16), FAST_SCRYPT_FOR_TESTS
    )


def test_raw_keys_must_be_long_and_are_domain_separated() -> None:
    raw, salt = os.urandom(32), os.urandom(16)
    assert key_from_raw(raw, salt, b"a") != key_from_raw(raw, salt, b"b")
    with pytest.raises(MalformedInput):
        key_from_raw(os.urandom(31), salt, b"a")


def test_seal_binds_key_and_associated_data() -> None:
    box = SecretBox(new_key())
    sealed = box.seal(b"secret", record_aad("credentials", "c1"))
    assert box.open(sealed, record_aad("credentials", "c1")) == b"secret"
    assert box.seal(b"secret", record_aad("credentials", "c1")) != sealed  # fresh nonce
    for aad in (record_aad("credentials", "c2"), record_aad("offers", "c1")):
        with pytest.raises(SealBroken):
            box.open(sealed, aad)
    with pytest.raises(SealBroken):
        SecretBox(new_key()).open(sealed, record_aad("credentials", "c1"))
    with pytest.raises(SealBroken):
        box.open(sealed[:20], record_aad("credentials", "c1"))
    with pytest.raises(ValueError):
        SecretBox(b"short")
