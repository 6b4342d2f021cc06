"""The strength floor for new wallet and backup passphrases, and ``init --generate-passphrase``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from onceonly.cli import cli
from onceonly.errors import WeakPassphrase
from tests.unit.wallet.conftest import PASSPHRASE
from wallet.crypto_box import FAST_SCRYPT_FOR_TESTS
from wallet.passphrase import MIN_LENGTH, generate_passphrase, require_strong
from wallet.store import WalletStore

WEAK = {"x": "min_length", "eleven char": "min_length", "aaaaaaaaaaaaaaaa": "min_distinct"}


@pytest.mark.parametrize(("passphrase", "rule"), sorted(WEAK.items()))
def test_weak_passphrases_are_refused_with_the_rule(passphrase: str, rule: str) -> None:
    with pytest.raises(WeakPassphrase, match=f"at least {MIN_LENGTH} characters") as caught:
        require_strong(passphrase)
    assert caught.value.code == "weak_passphrase"
    assert caught.value.detail["rule"] == rule


def test_repeated_short_units_are_refused_and_words_accepted() -> None:
    with pytest.raises(WeakPassphrase, match="too repetitive"):
        require_strong("abcabcabcabcabc")
    require_strong(PASSPHRASE)
    require_strong("twelve chars")


def test_a_wallet_is_not_created_with_a_weak_passphrase(tmp_path: Path) -> None:
    with pytest.raises(WeakPassphrase, match="wallet passphrase is too short"):
        WalletStore.create(tmp_path / "w.db", passphrase="x", scrypt=FAST_SCRYPT_FOR_TESTS)
    assert not list(tmp_path.iterdir())


def test_a_weak_new_secret_or_backup_passphrase_is_refused(
    store: WalletStore, wallet_path: Path, tmp_path: Path
) -> None:
    with pytest.raises(WeakPassphrase):
        store.change_secret(passphrase="1234", scrypt=FAST_SCRYPT_FOR_TESTS)
    with pytest.raises(WeakPassphrase, match="backup passphrase is too short"):
        store.export(tmp_path / "backup.bin", "short", scrypt=FAST_SCRYPT_FOR_TESTS)
    assert not (tmp_path / "backup.bin").exists()
    store.close()
    with WalletStore.open(wallet_path, passphrase=PASSPHRASE) as reopened:  # old one still works
        assert reopened.credentials() == []


def test_generated_passphrases_are_strong_and_random() -> None:
    fixed = generate_passphrase(lambda n: bytes(range(n)))
    assert fixed == "0123-4567-89AB-CDEF-GHJK-MNPQ-RSTV-WXYZ"
    first, second = generate_passphrase(), generate_passphrase()
    assert first != second
    for made in (first, second):
        require_strong(made)
        assert len(made.replace("-", "")) == 32


def test_cli_init_refuses_a_weak_passphrase_and_says_why(tmp_path: Path) -> None:
    data_dir = tmp_path / "wallet"
    result = CliRunner().invoke(
        cli,
        ["--json", "wallet", "init", "--data-dir", str(data_dir)],
        env={"ONCEONLY_WALLET_PASSPHRASE": "x"},
    )
    assert result.exit_code == 1
    error = json.loads(result.output)["error"]
    assert error["code"] == "weak_passphrase"
    assert f"at least {MIN_LENGTH} characters" in error["message"]
    assert not data_dir.exists()


def test_cli_init_can_generate_the_passphrase_and_prints_it_once(tmp_path: Path) -> None:
    data_dir = tmp_path / "wallet"
    made = CliRunner().invoke(
        cli,
        ["--json", "wallet", "init", "--data-dir", str(data_dir), "--generate-passphrase"],
        env={"ONCEONLY_WALLET_PASSPHRASE": ""},
    )
    assert made.exit_code == 0, made.output
    passphrase = json.loads(made.output)["passphrase"]
    require_strong(passphrase)
    listed = CliRunner().invoke(
        cli,
        ["--json", "wallet", "list", "--data-dir", str(data_dir)],
        env={"ONCEONLY_WALLET_PASSPHRASE": passphrase},
    )
    assert listed.exit_code == 0, listed.output
    assert json.loads(listed.output)["credentials"] == []
