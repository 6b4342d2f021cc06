"""Backups across format versions, and wallets with a damaged record (list and save the rest)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from onceonly.errors import StoreCorrupt
from tests.unit.wallet.test_backup import BACKUP_PASSPHRASE, fresh, populate, snapshot
from wallet import backup
from wallet import store as store_module
from wallet.crypto_box import FAST_SCRYPT_FOR_TESTS
from wallet.records import DamagedRecord
from wallet.schema import SEALED_TABLES
from wallet.store import WalletStore


def corrupt(wallet_file: Path, table: str, row_id: str) -> None:
    """Flip one byte of a row's ciphertext, as a disk error or a tamperer would."""
    column = SEALED_TABLES[table]
    db = sqlite3.connect(wallet_file)
    try:
        query = f"SELECT sealed FROM {table} WHERE {column} = ?"
        (sealed,) = db.execute(query, (row_id,)).fetchone()
        damaged = bytearray(sealed)
        damaged[len(damaged) // 2] ^= 0x01
        update = f"UPDATE {table} SET sealed = ? WHERE {column} = ?"
        db.execute(update, (bytes(damaged), row_id))
        db.commit()
    finally:
        db.close()


def test_every_sealed_table_is_in_a_backup() -> None:
    # A table added later must be backed up (or consciously listed as not carried).
    assert set(store_module._BACKUP_TABLES) == set(SEALED_TABLES)


def test_a_version_1_backup_still_imports(
    store: WalletStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    populate(store)
    before = snapshot(store)
    flat = {
        table: [
            r.model_dump(mode="json") for r in store._all(table, store_module._BACKUP_TABLES[table])
        ]
        for table in backup.V1_TABLES
    }
    target = tmp_path / "old.backup"
    monkeypatch.setattr(backup, "FORMAT_VERSION", 1)  # what the previous release wrote
    backup.write_backup(target, json.dumps(flat).encode(), BACKUP_PASSPHRASE, FAST_SCRYPT_FOR_TESTS)
    monkeypatch.undo()
    assert target.read_bytes()[len(backup.MAGIC)] == 1
    with fresh(tmp_path) as restored:
        contents = restored.import_(target, BACKUP_PASSPHRASE)
        assert contents.version == 1 and contents.complete
        assert contents.device_list_seq is None
        assert set(contents.counts) == set(backup.V1_TABLES)
        assert restored.credentials() == before["credentials"]
        assert restored.offers() == before["offers"]
        assert restored.credential_statuses() == {} and restored.devices() == []


def test_one_damaged_credential_does_not_hide_the_others(
    store: WalletStore, wallet_path: Path, tmp_path: Path
) -> None:
    populate(store)
    intact = store.credentials()
    victim = intact[2].credential_id
    corrupt(wallet_path, "credentials", victim)
    with pytest.raises(StoreCorrupt, match=victim):
        store.credentials()  # the strict read still refuses
    readable, damaged = store.readable_credentials()
    assert readable == [c for c in intact if c.credential_id != victim]
    assert damaged == [DamagedRecord(table="credentials", row_id=victim)]

    target = tmp_path / "partial.backup"
    exported = store.export(target, BACKUP_PASSPHRASE, scrypt=FAST_SCRYPT_FOR_TESTS)
    assert not exported.complete and exported.damaged == tuple(damaged)
    assert exported.counts["credentials"] == 4
    with fresh(tmp_path) as restored:
        imported = restored.import_(target, BACKUP_PASSPHRASE)
        assert imported.damaged == tuple(damaged)  # the backup says it is incomplete
        assert restored.credentials() == readable
        assert len(restored.holder_key_ids()) == 6


def test_a_credential_whose_key_is_damaged_is_still_saved(
    store: WalletStore, wallet_path: Path, tmp_path: Path
) -> None:
    populate(store)
    credential = store.credentials()[0]
    assert credential.holder_key_id is not None
    corrupt(wallet_path, "holder_keys", credential.holder_key_id)
    target = tmp_path / "partial.backup"
    exported = store.export(target, BACKUP_PASSPHRASE, scrypt=FAST_SCRYPT_FOR_TESTS)
    assert exported.damaged == (
        DamagedRecord(table="holder_keys", row_id=credential.holder_key_id),
    )
    with fresh(tmp_path) as restored:
        restored.import_(target, BACKUP_PASSPHRASE)
        assert credential in restored.credentials()
        assert credential.holder_key_id not in restored.holder_key_ids()
