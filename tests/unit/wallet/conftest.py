"""Wallet store fixtures: fast scrypt (explicitly weak) and a fresh wallet per test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from wallet.crypto_box import FAST_SCRYPT_FOR_TESTS
from wallet.store import WalletStore

PASSPHRASE = "correct horse battery staple"


@pytest.fixture
def wallet_path(tmp_path: Path) -> Path:
    return tmp_path / "wallet.db"


@pytest.fixture
def store(wallet_path: Path) -> Iterator[WalletStore]:
    with WalletStore.create(
        wallet_path, passphrase=PASSPHRASE, scrypt=FAST_SCRYPT_FOR_TESTS
    ) as opened:
        yield opened


def sample_sd_jwt(tag: str = "x", size: int = 2000) -> str:
    """An SD-JWT-shaped string (the store treats it as opaque text)."""
    body = (tag * size)[: size - 40]
    return f"eyJhbGciOiJFUzI1NiJ9.{body}.c2lnbmF0dXJl~WyJzYWx0IiwibmFtZSIsIkEiXQ~"
