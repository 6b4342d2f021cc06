"""Credential status in the store: the v4 migration, ``revoked`` is final, ``wallet list``."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner

from onceonly.cli import cli
from onceonly.errors import StoreError
from tests.unit.wallet.conftest import PASSPHRASE, sample_sd_jwt
from wallet.crypto_box import FAST_SCRYPT_FOR_TESTS
from wallet.records import CredentialStatusRecord
from wallet.schema import CURRENT_VERSION
from wallet.store import WalletStore

URI = "https://registry.example/status/1"


def status(credential_id: str, state: str, at: int = 100) -> CredentialStatusRecord:
    return CredentialStatusRecord.model_validate(
        {"credential_id": credential_id, "state": state, "checked_at": at, "list_uri": URI}
    )


def add(store: WalletStore, tag: str) -> str:
    return store.add_credential(
        sd_jwt=sample_sd_jwt(tag), vct="urn:test", issuer="did:web:i.example", holder_key_id=None
    )


def test_a_v3_wallet_gains_the_status_table(wallet_path: Path) -> None:
    with WalletStore.create(wallet_path, passphrase=PASSPHRASE, scrypt=FAST_SCRYPT_FOR_TESTS) as s:
        kept = add(s, "a")
    # Make the file exactly what version 3 wrote: no credential_status table.
    db = sqlite3.connect(wallet_path)
    db.execute("DROP TABLE credential_status")
    db.execute("PRAGMA user_version = 3")
    db.commit()
    db.close()
    assert CURRENT_VERSION == 4
    with WalletStore.open(wallet_path, passphrase=PASSPHRASE) as store:
        assert store.schema_version == 4
        assert [c.credential_id for c in store.credentials()] == [kept]
        assert store.credential_statuses() == {}
        store.record_status(status(kept, "revoked"))
    with WalletStore.open(wallet_path, passphrase=PASSPHRASE) as store:
        assert store.credential_statuses()[kept].state == "revoked"


def test_status_rows_are_sealed(store: WalletStore, wallet_path: Path) -> None:
    cid = add(store, "a")
    store.record_status(status(cid, "revoked"))
    raw = sqlite3.connect(wallet_path).execute("SELECT sealed FROM credential_status").fetchone()
    assert b"revoked" not in raw[0]
    assert URI.encode() not in raw[0]


def test_revoked_is_never_overwritten(store: WalletStore) -> None:
    cid = add(store, "a")
    assert store.record_status(status(cid, "suspended")).state == "suspended"
    assert store.record_status(status(cid, "valid", 200)).state == "valid"
    assert store.record_status(status(cid, "revoked", 300)).state == "revoked"
    kept = store.record_status(status(cid, "valid", 400))
    assert (kept.state, kept.checked_at) == ("revoked", 300)
    assert store.credential_statuses()[cid] == kept


def test_status_of_an_unknown_credential_is_refused(store: WalletStore) -> None:
    with pytest.raises(StoreError):
        store.record_status(status("nosuchcredential", "revoked"))
    assert store.credential_statuses() == {}


def test_deleting_a_credential_deletes_its_status(store: WalletStore) -> None:
    cid, other = add(store, "a"), add(store, "b")
    store.record_status(status(cid, "revoked"))
    store.record_status(status(other, "valid"))
    store.delete_credential(cid)
    assert set(store.credential_statuses()) == {other}


def test_a_damaged_status_row_is_reported(store: WalletStore, wallet_path: Path) -> None:
    cid = add(store, "a")
    store.record_status(status(cid, "revoked"))
    db = sqlite3.connect(wallet_path)
    db.execute("UPDATE credential_status SET sealed = X'00'")
    db.commit()
    db.close()
    with pytest.raises(StoreError):
        store.credential_statuses()


def test_wallet_list_shows_revoked_credentials(tmp_path: Path) -> None:
    data_dir = tmp_path / "wallet"
    data_dir.mkdir()
    with WalletStore.create(
        data_dir / "wallet.db", passphrase=PASSPHRASE, scrypt=FAST_SCRYPT_FOR_TESTS
    ) as store:
        revoked, valid, unchecked = add(store, "a"), add(store, "b"), add(store, "c")
        store.record_status(status(revoked, "revoked", 1_800_000_000))
        store.record_status(status(valid, "valid"))
    env = {"ONCEONLY_WALLET_PASSPHRASE": PASSPHRASE}
    args = ["wallet", "list", "--data-dir", str(data_dir)]
    result = CliRunner().invoke(cli, ["--json", *args], env=env, catch_exceptions=False)
    assert result.exit_code == 0
    rows = {row["id"]: row for row in json.loads(result.output)["credentials"]}
    assert rows[revoked]["status"] == "revoked"
    assert rows[revoked]["status_checked_at"] == 1_800_000_000
    assert rows[valid]["status"] == "valid"
    assert rows[unchecked]["status"] is None
    human = CliRunner().invoke(cli, args, env=env, catch_exceptions=False).output.splitlines()
    by_id = {line.split()[0]: line for line in human}
    assert "REVOKED" in by_id[revoked]
    assert "not presented" in by_id[revoked]
    assert "REVOKED" not in by_id[valid]
    assert "REVOKED" not in by_id[unchecked]
