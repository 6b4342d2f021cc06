"""Encrypted export/import: faithful round trip, typed failures, nothing half-imported."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from onceonly.errors import BackupInvalid, StoreError, WalletLocked
from tests.unit.wallet.conftest import PASSPHRASE, sample_sd_jwt
from wallet import backup
from wallet.crypto_box import FAST_SCRYPT_FOR_TESTS
from wallet.records import ApprovedDevice, CredentialStatusRecord, StatusReference
from wallet.store import WalletStore

BACKUP_PASSPHRASE = "a different phrase for the backup"


def populate(store: WalletStore) -> None:
    for index in range(5):
        key_id = store.new_holder_key()
        credential_id = store.add_credential(
            sd_jwt=sample_sd_jwt(str(index)),
            vct=f"urn:vct:{index % 2}",
            issuer="https://register.example",
            holder_key_id=key_id,
            status=StatusReference(idx=index, uri="https://status.example/l"),
            label=f"credential {index}",
        )
        store.record_disclosure(
            verifier_id="v",
            verifier_user="@v:example",
            credential_id=credential_id,
            claim_paths=(("a", index), ("b", None)),
            purpose="check",
            outcome="disclosed",
        )
    store.new_holder_key()  # a key whose credential has not arrived yet
    store.add_offer(offer_id="offer-1", issuer="@i:example", vct="urn:vct:0")
    first, second = (c.credential_id for c in store.credentials()[:2])
    for credential_id, state in ((first, "revoked"), (second, "valid")):
        store.record_status(
            CredentialStatusRecord(
                credential_id=credential_id,
                state=state,
                checked_at=1_700_000_000,
                list_uri="https://status.example/l",
            )
        )
    for device_id, state in (("ELEMENTDEV", "approved"), ("LOSTPHONE", "revoked")):
        store.put_device(
            ApprovedDevice(
                device_id=device_id,
                ed25519="E" * 43,
                curve25519="c" * 43,
                state=state,
                changed_at=1_700_000_000,
                announced=True,
            )
        )
    assert store.next_device_list_seq(1_700_000_000_000) == 1_700_000_000_000


def snapshot(store: WalletStore) -> dict[str, Any]:
    return {
        "credentials": store.credentials(),
        "keys": {kid: store.holder_key(kid).to_jwk() for kid in store.holder_key_ids()},
        "history": store.disclosure_history(),
        "offers": store.offers(),
        "statuses": store.credential_statuses(),
        # Announcing is per device: a restored wallet announces its list again.
        "devices": [d.model_copy(update={"announced": False}) for d in store.devices()],
    }


@pytest.fixture
def exported(store: WalletStore, tmp_path: Path) -> tuple[Path, dict[str, Any]]:
    populate(store)
    target = tmp_path / "wallet.backup"
    store.export(target, BACKUP_PASSPHRASE, scrypt=FAST_SCRYPT_FOR_TESTS)
    return target, snapshot(store)


def fresh(tmp_path: Path, name: str = "restored.db") -> WalletStore:
    return WalletStore.create(
        tmp_path / name, passphrase="the new local passphrase", scrypt=FAST_SCRYPT_FOR_TESTS
    )


def test_round_trip_into_a_new_wallet(
    exported: tuple[Path, dict[str, Any]], tmp_path: Path
) -> None:
    target, before = exported
    assert os.stat(target).st_mode & 0o777 == 0o600
    with fresh(tmp_path) as restored:
        contents = restored.import_(target, BACKUP_PASSPHRASE)
        assert contents.counts == {
            "holder_keys": 6,
            "credentials": 5,
            "credential_status": 2,
            "devices": 2,
            "disclosures": 5,
            "offers": 1,
        }
        assert contents.version == backup.FORMAT_VERSION == 2
        assert contents.complete and contents.device_list_seq == 1_700_000_000_000
        assert snapshot(restored) == before
        assert [d.announced for d in restored.devices()] == [False, False]
        # The revoked verdict survived: the restored wallet will not present it.
        assert {s.state for s in restored.credential_statuses().values()} == {"revoked", "valid"}
        # The device-list counter goes on from the backup's, never back.
        assert restored.next_device_list_seq(0) == 1_700_000_000_001
    with WalletStore.open(tmp_path / "restored.db", passphrase="the new local passphrase") as again:
        assert snapshot(again) == before


def test_backup_is_encrypted(exported: tuple[Path, dict[str, Any]]) -> None:
    target, before = exported
    raw = target.read_bytes()
    assert raw.startswith(backup.MAGIC)
    for secret in (before["credentials"][0].sd_jwt[:50], "credential 0", "urn:vct:0"):
        assert secret.encode() not in raw


def _assert_empty(store: WalletStore) -> None:
    assert store.credentials() == []
    assert store.holder_key_ids() == []
    assert store.disclosure_history() == []
    assert store.offers() == []


def test_wrong_backup_passphrase(exported: tuple[Path, dict[str, Any]], tmp_path: Path) -> None:
    target, _ = exported
    with fresh(tmp_path) as restored:
        with pytest.raises(WalletLocked):
            restored.import_(target, PASSPHRASE)
        _assert_empty(restored)


@pytest.mark.parametrize("where", ["payload_start", "payload_end", "middle"])
def test_tampered_payload(
    exported: tuple[Path, dict[str, Any]], tmp_path: Path, where: str
) -> None:
    target, _ = exported
    data = bytearray(target.read_bytes())
    position = {"payload_start": -5000, "payload_end": -1, "middle": len(data) // 2}[where]
    data[position] ^= 0x40
    target.write_bytes(bytes(data))
    with fresh(tmp_path) as restored:
        with pytest.raises(BackupInvalid):
            restored.import_(target, BACKUP_PASSPHRASE)
        _assert_empty(restored)


def test_truncated_and_foreign_files(exported: tuple[Path, dict[str, Any]], tmp_path: Path) -> None:
    target, _ = exported
    data = target.read_bytes()
    cases = {
        "truncated": data[: len(data) - 100],
        "header_only": data[:60],
        "magic": b"NOT-A-BACKUP" + data[12:],
        "version": backup.MAGIC + b"\x09" + data[len(backup.MAGIC) + 1 :],
        # Relabelling a version 2 backup as version 1 (to drop statuses and devices)
        # breaks the seal, which covers the version byte.
        "downgraded": backup.MAGIC + b"\x01" + data[len(backup.MAGIC) + 1 :],
        "empty": b"",
    }
    with fresh(tmp_path) as restored:
        for name, content in cases.items():
            bad = tmp_path / f"{name}.backup"
            bad.write_bytes(content)
            with pytest.raises(BackupInvalid):
                restored.import_(bad, BACKUP_PASSPHRASE)
        _assert_empty(restored)
        with pytest.raises(StoreError):
            restored.import_(tmp_path / "missing.backup", BACKUP_PASSPHRASE)


def test_altered_header_parameters_are_refused(
    exported: tuple[Path, dict[str, Any]], tmp_path: Path
) -> None:
    target, _ = exported
    data = target.read_bytes()
    start = len(backup.MAGIC) + 5
    length = int.from_bytes(data[len(backup.MAGIC) + 1 : start], "big")
    header = json.loads(data[start : start + length])
    header["kdf"]["n"] = 2**30  # would need 128 GiB: refused before deriving
    new_header = json.dumps(header, sort_keys=True).encode()
    forged = (
        data[: len(backup.MAGIC) + 1]
        + len(new_header).to_bytes(4, "big")
        + new_header
        + data[start + length :]
    )
    target.write_bytes(forged)
    with fresh(tmp_path) as restored, pytest.raises(BackupInvalid):
        restored.import_(target, BACKUP_PASSPHRASE)


def test_import_needs_an_empty_wallet(
    exported: tuple[Path, dict[str, Any]], store: WalletStore
) -> None:
    target, before = exported
    with pytest.raises(StoreError, match="empty"):
        store.import_(target, BACKUP_PASSPHRASE)
    assert snapshot(store) == before


def _forge(tmp_path: Path, payload: dict[str, Any]) -> Path:
    target = tmp_path / "forged.backup"
    data = json.dumps(payload).encode()
    backup.write_backup(target, data, BACKUP_PASSPHRASE, FAST_SCRYPT_FOR_TESTS)
    return target


def test_authentic_but_invalid_payloads_import_nothing(
    exported: tuple[Path, dict[str, Any]], tmp_path: Path
) -> None:
    target, _ = exported
    good = json.loads(_decrypt(target))
    broken_record = json.loads(json.dumps(good))
    broken_record["tables"]["credentials"][3]["received_at"] = "yesterday"
    missing_key = json.loads(json.dumps(good))
    missing_key["tables"]["holder_keys"] = missing_key["tables"]["holder_keys"][1:]
    duplicate = json.loads(json.dumps(good))
    duplicate["tables"]["offers"].append(duplicate["tables"]["offers"][0])
    bad_key = json.loads(json.dumps(good))
    bad_key["tables"]["holder_keys"][0]["private_jwk"]["d"] = "AAAA"
    bad_seq = json.loads(json.dumps(good))
    bad_seq["device_list_seq"] = -1
    no_devices = json.loads(json.dumps(good))
    del no_devices["tables"]["devices"]
    v1_shape = good["tables"]  # a version 2 file must hold the version 2 shape
    payloads = (broken_record, missing_key, duplicate, bad_key, bad_seq, no_devices, v1_shape)
    with fresh(tmp_path) as restored:
        for payload in (*payloads, {"credentials": []}):
            with pytest.raises(BackupInvalid):
                restored.import_(_forge(tmp_path, payload), BACKUP_PASSPHRASE)
            _assert_empty(restored)


def _decrypt(target: Path) -> bytes:
    version, payload = backup.read_backup(target, BACKUP_PASSPHRASE)
    assert version == backup.FORMAT_VERSION
    return payload


def test_failure_midway_through_the_import_rolls_back(
    exported: tuple[Path, dict[str, Any]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target, before = exported
    with fresh(tmp_path) as restored:
        real_insert = restored._insert
        calls = {"n": 0}

        def failing_insert(table: str, row_id: str, record: Any) -> None:
            calls["n"] += 1
            if calls["n"] == 9:
                raise OSError("disk full")
            real_insert(table, row_id, record)

        monkeypatch.setattr(restored, "_insert", failing_insert)
        with pytest.raises(OSError, match="disk full"):
            restored.import_(target, BACKUP_PASSPHRASE)
        monkeypatch.undo()
        _assert_empty(restored)
        restored.import_(target, BACKUP_PASSPHRASE)
        assert snapshot(restored) == before
