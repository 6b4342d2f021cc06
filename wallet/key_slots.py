"""Key slots: the wallet's data key, wrapped by a passphrase- or raw-key-derived key.

The data key that seals every record is random and never changes; what the
citizen's secret unlocks is a slot holding that key sealed under a
key-encryption key. Opening the slot is the key check (a wrong secret fails
there, before any record is touched), and changing the passphrase only
rewrites the slot. The slot's associated data covers its kind and KDF
parameters, so they cannot be swapped or weakened in place.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any, Final

from onceonly.errors import MalformedInput, StoreCorrupt, WalletLocked
from wallet.crypto_box import (
    ScryptParams,
    SealBroken,
    SecretBox,
    key_from_passphrase,
    key_from_raw,
    new_salt,
)
from wallet.passphrase import require_strong

_RAW_KEY_PURPOSE: Final = b"onceonly wallet raw-key slot"


def make_slot(
    data_key: bytes, passphrase: str | None, raw_key: bytes | None, scrypt: ScryptParams
) -> tuple[str, str, bytes, bytes]:
    """Wrap ``data_key`` under a passphrase (scrypt) or raw key (HKDF); return the slot row.

    Raises:
        MalformedInput: neither or both secrets, or a raw key shorter than 32 bytes.
        WeakPassphrase: the passphrase is below the strength floor (new slots only).
    """
    if (passphrase is None) == (raw_key is None):
        raise MalformedInput("give exactly one of passphrase and raw_key")
    if passphrase is not None:
        require_strong(passphrase)
    salt = new_salt()
    if passphrase is not None:
        kind, params = "passphrase", scrypt.to_json()
        wrapping_key = key_from_passphrase(passphrase, salt, scrypt)
    else:
        assert raw_key is not None
        kind, params = "raw", {"kdf": "hkdf-sha256"}
        wrapping_key = key_from_raw(raw_key, salt, _RAW_KEY_PURPOSE)
    params_text = json.dumps(params, sort_keys=True)
    wrapped = SecretBox(wrapping_key).seal(data_key, _slot_aad(kind, params_text))
    return kind, params_text, salt, wrapped


def _slot_aad(kind: str, params_text: str) -> bytes:
    return f"onceonly-wallet\x00key_slots\x00{kind}\x00{params_text}".encode()


def unlock(db: sqlite3.Connection, passphrase: str | None, raw_key: bytes | None) -> bytes:
    """Open the matching key slot and return the data key.

    Raises:
        WalletLocked: no secret, no slot of that kind, or the secret is wrong.
        StoreCorrupt: the slot's parameters are damaged.
    """
    kind = "passphrase" if passphrase is not None else "raw" if raw_key is not None else None
    if kind is None:
        raise WalletLocked("the wallet is locked: a passphrase or key is required")
    row = db.execute(
        "SELECT params, salt, wrapped_key FROM key_slots WHERE kind = ?", (kind,)
    ).fetchone()
    if row is None:
        raise WalletLocked(f"this wallet is not protected by a {kind.replace('raw', 'raw key')}")
    params_text, salt, wrapped = row
    try:
        params: Any = json.loads(params_text)
    except ValueError as exc:
        raise StoreCorrupt("the wallet's key slot is damaged") from exc
    if passphrase is not None:
        try:
            scrypt = ScryptParams.from_json(params)
        except MalformedInput as exc:
            raise StoreCorrupt("the wallet's key slot has invalid scrypt parameters") from exc
        wrapping_key = key_from_passphrase(passphrase, salt, scrypt)
    else:
        assert raw_key is not None
        wrapping_key = key_from_raw(raw_key, salt, _RAW_KEY_PURPOSE)
    try:
        return SecretBox(wrapping_key).open(wrapped, _slot_aad(kind, params_text))
    except SealBroken:
        raise WalletLocked(f"wrong {kind.replace('raw', 'raw key')}") from None
