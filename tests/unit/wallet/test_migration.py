"""Schema migration: a version-1 wallet file, written here by hand, opens at the current version."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from onceonly.errors import StoreError, WalletLocked
from onceonly.jose import generate_private_key
from wallet.crypto_box import (
    FAST_SCRYPT_FOR_TESTS,
    SecretBox,
    key_from_passphrase,
    new_key,
    new_salt,
)
from wallet.schema import CURRENT_VERSION
from wallet.store import WalletStore

V1_SCHEMA = """
CREATE TABLE wallet_meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE key_slots (
    kind TEXT PRIMARY KEY CHECK (kind IN ('passphrase', 'raw')),
    params TEXT NOT NULL, salt BLOB NOT NULL, wrapped_key BLOB NOT NULL);
CREATE TABLE holder_keys (key_id TEXT PRIMARY KEY, sealed BLOB NOT NULL);
CREATE TABLE credentials (credential_id TEXT PRIMARY KEY, sealed BLOB NOT NULL);
PRAGMA user_version = 1;
"""
PASSPHRASE = "version one passphrase"


def _aad(*parts: str) -> bytes:
    return "\x00".join(("onceonly-wallet", *parts)).encode()


def write_v1_wallet(path: Path) -> dict[str, object]:
    db = sqlite3.connect(path)
    db.executescript(V1_SCHEMA)
    data_key = new_key()
    salt = new_salt()
    params = json.dumps(FAST_SCRYPT_FOR_TESTS.to_json(), sort_keys=True)
    kek = key_from_passphrase(PASSPHRASE, salt, FAST_SCRYPT_FOR_TESTS)
    wrapped = SecretBox(kek).seal(data_key, _aad("key_slots", "passphrase", params))
    db.execute("INSERT INTO wallet_meta VALUES ('wallet_id', 'v1wallet')")
    db.execute("INSERT INTO key_slots VALUES ('passphrase', ?, ?, ?)", (params, salt, wrapped))
    box = SecretBox(data_key)
    key = generate_private_key()
    key_record = {"key_id": "k1", "private_jwk": key.to_jwk(), "created_at": 100}
    db.execute(
        "INSERT INTO holder_keys VALUES ('k1', ?)",
        (box.seal(json.dumps(key_record).encode(), _aad("holder_keys", "k1")),),
    )
    # Version-1 credentials had no display label.
    credential = {
        "credential_id": "c1",
        "sd_jwt": "eyJ.eyJ.sig~disclosure~",
        "vct": "urn:pid",
        "issuer": "https://register.example",
        "received_at": 200,
        "status": None,
        "holder_key_id": "k1",
    }
    db.execute(
        "INSERT INTO credentials VALUES ('c1', ?)",
        (box.seal(json.dumps(credential).encode(), _aad("credentials", "c1")),),
    )
    db.commit()
    db.close()
    return {"jwk": key.to_jwk(), "credential": credential}


def test_v1_file_migrates_to_current(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    written = write_v1_wallet(path)
    assert CURRENT_VERSION > 1
    with WalletStore.open(path, passphrase=PASSPHRASE) as store:
        assert store.schema_version == CURRENT_VERSION
        (credential,) = store.credentials()
        assert credential.model_dump(exclude={"label"}) == written["credential"]
        assert credential.label == ""
        assert store.holder_key("k1").to_jwk() == written["jwk"]
        # Tables added after version 1 work.
        store.add_offer(offer_id="o1", issuer="@i:example", vct="urn:pid")
        store.record_disclosure(
            verifier_id="v",
            verifier_user="@v:example",
            credential_id="c1",
            claim_paths=(("name",),),
            purpose="p",
            outcome="disclosed",
        )
    probe = sqlite3.connect(path)
    assert probe.execute("PRAGMA user_version").fetchone()[0] == CURRENT_VERSION
    assert probe.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    probe.close()
    with WalletStore.open(path, passphrase=PASSPHRASE) as again:
        assert [o.offer_id for o in again.offers()] == ["o1"]
        assert len(again.disclosure_history()) == 1


def test_wrong_passphrase_leaves_a_v1_file_untouched(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    write_v1_wallet(path)
    with pytest.raises(WalletLocked):
        WalletStore.open(path, passphrase="not it")
    probe = sqlite3.connect(path)
    assert probe.execute("PRAGMA user_version").fetchone()[0] == 1
    probe.close()


def test_a_failing_migration_changes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import wallet.store

    path = tmp_path / "old.db"
    write_v1_wallet(path)
    broken = (wallet.store.MIGRATIONS[0], ("CREATE TABLE offers (x)", "CREATE TABLE offers (y)"))
    monkeypatch.setattr(wallet.store, "MIGRATIONS", broken)
    with pytest.raises(StoreError):
        WalletStore.open(path, passphrase=PASSPHRASE)
    probe = sqlite3.connect(path)
    assert probe.execute("PRAGMA user_version").fetchone()[0] == 1
    tables = {row[0] for row in probe.execute("SELECT name FROM sqlite_master")}
    assert "offers" not in tables
    probe.close()
    monkeypatch.undo()
    with WalletStore.open(path, passphrase=PASSPHRASE) as store:
        assert store.schema_version == CURRENT_VERSION


def test_a_failed_create_leaves_no_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import wallet.store

    path = tmp_path / "new.db"
    monkeypatch.setattr(wallet.store, "MIGRATIONS", (("CREATE TABLE broken (",),))
    with pytest.raises(StoreError):
        WalletStore.create(path, passphrase=PASSPHRASE, scrypt=FAST_SCRYPT_FOR_TESTS)
    assert list(tmp_path.iterdir()) == []
    monkeypatch.undo()
    WalletStore.create(path, passphrase=PASSPHRASE, scrypt=FAST_SCRYPT_FOR_TESTS).close()
