"""The wallet store: unlocking, records, encryption at rest, tamper detection."""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path

import pytest

from onceonly.errors import MalformedInput, StoreCorrupt, StoreError, WalletLocked
from onceonly.jose import EDDSA, ES256
from tests.unit.wallet.conftest import PASSPHRASE, sample_sd_jwt
from wallet.crypto_box import FAST_SCRYPT_FOR_TESTS, ScryptParams
from wallet.records import StatusReference
from wallet.schema import CURRENT_VERSION
from wallet.store import WalletStore

PID = "https://pid.example/vct/pid"


def add(store: WalletStore, tag: str = "a", **extra: object) -> str:
    key_id = store.new_holder_key()
    return store.add_credential(
        sd_jwt=sample_sd_jwt(tag),
        vct=PID,
        issuer="https://register.example",
        holder_key_id=key_id,
        status=StatusReference(idx=7, uri="https://status.example/1"),
        label=f"ID {tag}",
        received_at=1_700_000_000,
        **extra,  # type: ignore[arg-type]
    )


def test_round_trip_after_reopen(store: WalletStore, wallet_path: Path) -> None:
    first = add(store, "a")
    second = add(store, "b")
    store.close()
    with WalletStore.open(wallet_path, passphrase=PASSPHRASE) as reopened:
        listed = reopened.credentials()
        assert [c.credential_id for c in listed] == [first, second]
        assert listed[0].sd_jwt == sample_sd_jwt("a")
        assert listed[0].status == StatusReference(idx=7, uri="https://status.example/1")
        assert listed[1].label == "ID b"
        assert reopened.schema_version == CURRENT_VERSION
        key = reopened.holder_key(listed[0].holder_key_id or "")
        assert key.alg == ES256
        assert reopened.holder_public_key(listed[0].holder_key_id or "") == key.public()


def test_file_and_journal_settings(store: WalletStore, wallet_path: Path) -> None:
    assert os.stat(wallet_path).st_mode & 0o777 == 0o600
    probe = sqlite3.connect(wallet_path)
    assert probe.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    probe.close()
    assert store._db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL


def test_wrong_or_missing_passphrase_is_locked(store: WalletStore, wallet_path: Path) -> None:
    add(store)
    store.close()
    with pytest.raises(WalletLocked):
        WalletStore.open(wallet_path, passphrase="wrong horse")
    with pytest.raises(WalletLocked):
        WalletStore.open(wallet_path)
    with pytest.raises(WalletLocked):
        WalletStore.open(wallet_path, raw_key=os.urandom(32))


def test_raw_key_instead_of_passphrase(wallet_path: Path) -> None:
    raw = os.urandom(32)
    with WalletStore.create(wallet_path, raw_key=raw) as store:
        credential_id = add(store)
    with WalletStore.open(wallet_path, raw_key=raw) as store:
        assert store.credential(credential_id).label == "ID a"
    with pytest.raises(WalletLocked):
        WalletStore.open(wallet_path, raw_key=os.urandom(32))
    with pytest.raises(WalletLocked):
        WalletStore.open(wallet_path, passphrase=PASSPHRASE)


def test_secret_arguments_are_checked(tmp_path: Path) -> None:
    with pytest.raises(MalformedInput):
        WalletStore.create(tmp_path / "a.db")
    with pytest.raises(MalformedInput):
        WalletStore.create(tmp_path / "b.db", passphrase="x", raw_key=os.urandom(32))
    with pytest.raises(MalformedInput):
        WalletStore.create(tmp_path / "c.db", raw_key=b"short")
    with pytest.raises(MalformedInput):
        WalletStore.create(tmp_path / "d.db", passphrase=PASSPHRASE, scrypt=ScryptParams(n=1000))
    assert not list(tmp_path.iterdir())  # nothing created on a refused argument


def test_change_secret(store: WalletStore, wallet_path: Path) -> None:
    credential_id = add(store)
    store.change_secret(passphrase="new words here", scrypt=FAST_SCRYPT_FOR_TESTS)
    store.close()
    with pytest.raises(WalletLocked):
        WalletStore.open(wallet_path, passphrase=PASSPHRASE)
    raw = os.urandom(32)
    with WalletStore.open(wallet_path, passphrase="new words here") as store:
        assert store.credential(credential_id).vct == PID
        store.change_secret(raw_key=raw)
    with WalletStore.open(wallet_path, raw_key=raw) as store:
        assert store.credential(credential_id).vct == PID


def test_default_scrypt_is_strong_and_still_opens(wallet_path: Path) -> None:
    assert ScryptParams().n >= 2**15
    started = time.perf_counter()
    with WalletStore.create(wallet_path, passphrase=PASSPHRASE) as store:
        add(store)
    with WalletStore.open(wallet_path, passphrase=PASSPHRASE) as store:
        assert len(store.credentials()) == 1
    probe = sqlite3.connect(wallet_path)
    params = probe.execute("SELECT params FROM key_slots").fetchone()[0]
    probe.close()
    assert '"n": 131072' in params
    assert time.perf_counter() - started < 30


def test_cannot_create_over_an_existing_file(store: WalletStore, wallet_path: Path) -> None:
    with pytest.raises(StoreError):
        WalletStore.create(wallet_path, passphrase=PASSPHRASE, scrypt=FAST_SCRYPT_FOR_TESTS)


def test_opening_what_is_not_a_wallet(tmp_path: Path) -> None:
    with pytest.raises(StoreError):
        WalletStore.open(tmp_path / "absent.db", passphrase="x")
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(os.urandom(4096))
    with pytest.raises(StoreError):
        WalletStore.open(garbage, passphrase="x")
    plain = tmp_path / "plain.db"
    sqlite3.connect(plain).execute("CREATE TABLE t (x)").connection.close()
    with pytest.raises(StoreError, match="not a wallet"):
        WalletStore.open(plain, passphrase="x")


def test_newer_schema_is_refused(store: WalletStore, wallet_path: Path) -> None:
    store.close()
    probe = sqlite3.connect(wallet_path)
    probe.execute(f"PRAGMA user_version = {CURRENT_VERSION + 1}")
    probe.close()
    with pytest.raises(StoreError, match="newer"):
        WalletStore.open(wallet_path, passphrase=PASSPHRASE)


def test_credentials_crud_and_key_lifecycle(store: WalletStore) -> None:
    first = add(store, "a")
    second = add(store, "b")
    store.set_label(first, "Personalausweis")
    assert store.credential(first).label == "Personalausweis"
    bound_key = store.credential(first).holder_key_id
    store.delete_credential(first)
    assert [c.credential_id for c in store.credentials()] == [second]
    assert bound_key not in store.holder_key_ids()
    with pytest.raises(StoreError):
        store.credential(first)
    with pytest.raises(StoreError):
        store.holder_key(bound_key or "")


def test_eddsa_holder_key(store: WalletStore) -> None:
    key_id = store.new_holder_key(EDDSA)
    assert store.holder_key(key_id).alg == EDDSA


def test_add_credential_refusals(store: WalletStore) -> None:
    credential_id = add(store)
    with pytest.raises(StoreError, match="unknown holder key"):
        store.add_credential(sd_jwt="a~", vct=PID, issuer="i", holder_key_id="nope")
    with pytest.raises(StoreError, match="already exists"):
        add(store, credential_id=credential_id)
    assert len(store.credentials()) == 1
    assert len(store.holder_key_ids()) == 2  # the key made for the refused add remains


def test_disclosure_history_and_offers(store: WalletStore) -> None:
    credential_id = add(store)
    store.record_disclosure(
        verifier_id="kfz-stelle",
        verifier_user="@kfz:gov.example",
        credential_id=credential_id,
        claim_paths=(("family_name",), ("address", "locality"), ("nationalities", None)),
        purpose="vehicle_registration",
        outcome="disclosed",
        exchange_id="ex-1234567890abcdef",
        at=1_700_000_100,
    )
    store.record_disclosure(
        verifier_id="tax",
        verifier_user="@tax:gov.example",
        credential_id=None,
        claim_paths=(("income",),),
        purpose="tax_return",
        outcome="declined",
        at=1_700_000_200,
    )
    history = store.disclosure_history()
    assert [(h.verifier_id, h.outcome) for h in history] == [
        ("kfz-stelle", "disclosed"),
        ("tax", "declined"),
    ]
    assert history[0].claim_paths[2] == ("nationalities", None)

    store.add_offer(offer_id="offer-1", issuer="@register:gov.example", vct=PID, received_at=5)
    store.add_offer(offer_id="offer-2", issuer="@register:gov.example", vct=PID, received_at=6)
    store.set_offer_state("offer-1", "accepted")
    assert store.offer("offer-1").state == "accepted"
    assert [o.offer_id for o in store.offers("pending")] == ["offer-2"]
    with pytest.raises(StoreError):
        store.add_offer(offer_id="offer-1", issuer="x", vct=PID)
    with pytest.raises(StoreError):
        store.set_offer_state("offer-9", "accepted")


def test_nothing_readable_at_rest(store: WalletStore, wallet_path: Path) -> None:
    credential_id = add(store, "q")
    jwk_d = store.holder_key(store.credential(credential_id).holder_key_id or "").to_jwk()["d"]
    store.record_disclosure(
        verifier_id="secret-verifier",
        verifier_user="@v:example",
        credential_id=credential_id,
        claim_paths=(("x",),),
        purpose="p",
        outcome="disclosed",
    )
    store.close()
    raw = b"".join(p.read_bytes() for p in wallet_path.parent.iterdir())
    for secret in ("qqqqqqqqqqqq", PID, "ID q", "register.example", jwk_d, "secret-verifier"):
        assert secret.encode() not in raw, secret


def _swap_sealed(path: Path, table: str, column: str, first: str, second: str) -> None:
    db = sqlite3.connect(path)
    a = db.execute(f"SELECT sealed FROM {table} WHERE {column} = ?", (first,)).fetchone()[0]
    b = db.execute(f"SELECT sealed FROM {table} WHERE {column} = ?", (second,)).fetchone()[0]
    db.execute(f"UPDATE {table} SET sealed = ? WHERE {column} = ?", (b, first))
    db.execute(f"UPDATE {table} SET sealed = ? WHERE {column} = ?", (a, second))
    db.commit()
    db.close()


def test_swapped_rows_do_not_open(store: WalletStore, wallet_path: Path) -> None:
    first, second = add(store, "a"), add(store, "b")
    store.close()
    _swap_sealed(wallet_path, "credentials", "credential_id", first, second)
    with WalletStore.open(wallet_path, passphrase=PASSPHRASE) as reopened:
        with pytest.raises(StoreCorrupt):
            reopened.credential(first)
        with pytest.raises(StoreCorrupt):
            reopened.credentials()


def test_row_moved_to_another_table_does_not_open(store: WalletStore, wallet_path: Path) -> None:
    key_id = store.new_holder_key()
    store.add_offer(offer_id=key_id, issuer="i", vct=PID)
    store.close()
    db = sqlite3.connect(wallet_path)
    sealed_key = db.execute("SELECT sealed FROM holder_keys").fetchone()[0]
    db.execute("UPDATE offers SET sealed = ? WHERE offer_id = ?", (sealed_key, key_id))
    db.commit()
    db.close()
    with WalletStore.open(wallet_path, passphrase=PASSPHRASE) as reopened:
        with pytest.raises(StoreCorrupt):
            reopened.offer(key_id)
        assert reopened.holder_key(key_id).alg == ES256


def test_flipped_bit_is_detected(store: WalletStore, wallet_path: Path) -> None:
    credential_id = add(store)
    store.close()
    db = sqlite3.connect(wallet_path)
    sealed = bytearray(db.execute("SELECT sealed FROM credentials").fetchone()[0])
    sealed[40] ^= 1
    db.execute("UPDATE credentials SET sealed = ?", (bytes(sealed),))
    db.commit()
    db.close()
    with (
        WalletStore.open(wallet_path, passphrase=PASSPHRASE) as reopened,
        pytest.raises(StoreCorrupt),
    ):
        reopened.credential(credential_id)


def test_weakened_key_slot_parameters_are_refused(store: WalletStore, wallet_path: Path) -> None:
    store.close()
    db = sqlite3.connect(wallet_path)
    db.execute("""UPDATE key_slots SET params = '{"kdf": "scrypt", "n": 1024, "p": 1, "r": 9}'""")
    db.commit()
    db.close()
    with pytest.raises(WalletLocked):
        WalletStore.open(wallet_path, passphrase=PASSPHRASE)
    db = sqlite3.connect(wallet_path)
    db.execute("""UPDATE key_slots SET params = '{"kdf": "scrypt", "n": 1073741824}'""")
    db.commit()
    db.close()
    with pytest.raises(StoreCorrupt):
        WalletStore.open(wallet_path, passphrase=PASSPHRASE)
