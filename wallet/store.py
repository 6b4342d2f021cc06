"""The citizen's wallet store: credentials, holder keys, history and offers, encrypted at rest.

One SQLite file. Every row's content is sealed with AES-256-GCM under a random
data key; the data key is stored wrapped by a key-encryption key that comes
from the passphrase (scrypt) or from a raw key the caller keeps elsewhere (an
OS keyring). Unwrapping it doubles as the key check: a wrong passphrase fails
there, at once, with :class:`~onceonly.errors.WalletLocked`.

Crash safety: WAL journal, ``synchronous=FULL``, and every public write is one
``BEGIN IMMEDIATE ... COMMIT`` transaction that has completed before the method
returns. A process killed at any instant loses at most the write in flight,
never one that returned.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import Final, TypeVar

from pydantic import BaseModel, ValidationError

from onceonly.errors import StoreCorrupt, StoreError
from onceonly.jose import ES256, PrivateKey, PublicKey, generate_private_key, private_key_from_jwk
from wallet import backup
from wallet.crypto_box import ScryptParams, SealBroken, SecretBox, new_key, record_aad
from wallet.key_slots import make_slot, unlock
from wallet.records import (
    ApprovedDevice,
    CredentialStatusRecord,
    DamagedRecord,
    DisclosureOutcome,
    DisclosureRecord,
    HolderKeyRecord,
    OfferState,
    PendingOffer,
    StatusReference,
    StoredCredential,
)
from wallet.schema import CURRENT_VERSION, MIGRATIONS, SEALED_TABLES

_R = TypeVar("_R", bound=BaseModel)
_SIDE_FILES: Final = ("-wal", "-shm", "-journal")


def _now(at: int | None) -> int:
    return int(time.time()) if at is None else at


def _new_id() -> str:
    return uuid.uuid4().hex


class WalletStore:
    """An unlocked wallet. Get one from :meth:`create` or :meth:`open`; close it when done."""

    def __init__(self, connection: sqlite3.Connection, data_key: bytes, path: Path) -> None:
        # Private: only create()/open() build one, after unlocking.
        self._db = connection
        self._key = data_key
        self._box = SecretBox(data_key)
        self.path = path

    # --- lifecycle ---------------------------------------------------------------

    @classmethod
    def create(
        cls,
        path: str | os.PathLike[str],
        *,
        passphrase: str | None = None,
        raw_key: bytes | None = None,
        scrypt: ScryptParams | None = None,
    ) -> WalletStore:
        """Create a new, empty wallet file protected by a passphrase or a raw key.

        Args:
            path: Where the file goes; it must not exist yet.
            passphrase: Protects the wallet (scrypt). Exactly one of ``passphrase``
                and ``raw_key`` is required.
            raw_key: At least 32 random bytes kept by the caller (e.g. an OS keyring).
            scrypt: scrypt cost; defaults to the strong :class:`ScryptParams` (tests may
                pass ``FAST_SCRYPT_FOR_TESTS``).

        Raises:
            StoreError: the file exists or cannot be created.
            MalformedInput: neither or both secrets given, or a short raw key.
            WeakPassphrase: the passphrase is below :mod:`wallet.passphrase`'s floor.
        """
        target = Path(path)
        data_key = new_key()
        slot = make_slot(data_key, passphrase, raw_key, scrypt or ScryptParams())
        try:
            # O_EXCL: never overwrite a wallet; 0600: nobody else reads the file.
            os.close(os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        except OSError as exc:
            raise StoreError(f"cannot create a wallet at {target.name}: {exc.strerror}") from exc
        db: sqlite3.Connection | None = None
        try:
            db = _connect(target)
            store = cls(db, data_key, target)
            with store._write():
                for statements in MIGRATIONS:
                    _migrate(db, statements)
                db.execute(f"PRAGMA user_version = {CURRENT_VERSION}")
                db.execute(
                    "INSERT INTO wallet_meta (name, value) VALUES ('wallet_id', ?)", (_new_id(),)
                )
                db.execute("INSERT INTO key_slots VALUES (?, ?, ?, ?)", slot)
        except BaseException:
            # Leave no half-made file behind: it would block the next create().
            if db is not None:
                db.close()
            for suffix in ("", *_SIDE_FILES):
                target.with_name(target.name + suffix).unlink(missing_ok=True)
            raise
        return store

    @classmethod
    def open(
        cls,
        path: str | os.PathLike[str],
        *,
        passphrase: str | None = None,
        raw_key: bytes | None = None,
    ) -> WalletStore:
        """Open and unlock an existing wallet, migrating its schema forward if needed.

        Raises:
            StoreError: no wallet there, not a wallet, or a schema newer than this code.
            WalletLocked: no secret given, or the passphrase / raw key is wrong.
        """
        target = Path(path)
        if not target.is_file():
            raise StoreError(f"no wallet at {target.name}")
        db = _connect(target)
        try:
            version = db.execute("PRAGMA user_version").fetchone()[0]
            if version == 0 or version > CURRENT_VERSION:
                what = "not a wallet" if version == 0 else f"schema v{version} is newer than ours"
                raise StoreError(f"{target.name}: {what}")
            data_key = unlock(db, passphrase, raw_key)
        except sqlite3.DatabaseError as exc:
            db.close()
            raise StoreError(f"{target.name} is not a readable wallet database") from exc
        except BaseException:
            db.close()
            raise
        store = cls(db, data_key, target)
        if version < CURRENT_VERSION:
            try:
                with store._write():
                    for step in range(version, CURRENT_VERSION):
                        _migrate(db, MIGRATIONS[step])
                    db.execute(f"PRAGMA user_version = {CURRENT_VERSION}")
            except BaseException:
                db.close()
                raise
        return store

    def close(self) -> None:
        """Close the database (the data key is dropped with this object)."""
        self._db.close()

    def __enter__(self) -> WalletStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def schema_version(self) -> int:
        """The schema version of the open file."""
        return int(self._db.execute("PRAGMA user_version").fetchone()[0])

    def change_secret(
        self,
        *,
        passphrase: str | None = None,
        raw_key: bytes | None = None,
        scrypt: ScryptParams | None = None,
    ) -> None:
        """Protect the wallet with a new passphrase or raw key (replacing every old slot).

        Only the wrapped data key changes; records stay as they are.

        Raises:
            WeakPassphrase: the new passphrase is below :mod:`wallet.passphrase`'s floor.
        """
        data_key = self._key
        slot = make_slot(data_key, passphrase, raw_key, scrypt or ScryptParams())
        with self._write():
            self._db.execute("DELETE FROM key_slots")
            self._db.execute("INSERT INTO key_slots VALUES (?, ?, ?, ?)", slot)

    # --- holder keys -------------------------------------------------------------

    def new_holder_key(self, alg: str = ES256, *, created_at: int | None = None) -> str:
        """Generate a holder key (one per credential) and store it sealed; return its id."""
        key = generate_private_key(alg)
        record = HolderKeyRecord(
            key_id=_new_id(), private_jwk=key.to_jwk(), created_at=_now(created_at)
        )
        with self._write():
            self._insert("holder_keys", record.key_id, record)
        return record.key_id

    def holder_key(self, key_id: str) -> PrivateKey:
        """The private holder key ``key_id``, in memory only.

        Raises:
            StoreError: no such key.
            StoreCorrupt: the record does not authenticate or decode.
        """
        record = self._get("holder_keys", key_id, HolderKeyRecord)
        try:
            return private_key_from_jwk(record.private_jwk)
        except Exception as exc:  # a sealed record we wrote ourselves: corruption, not input
            raise StoreCorrupt(f"holder key {key_id} does not decode") from exc

    def holder_public_key(self, key_id: str) -> PublicKey:
        """The public half of holder key ``key_id`` (for ``cnf`` in a credential request)."""
        return self.holder_key(key_id).public()

    def holder_key_ids(self) -> list[str]:
        """Ids of every stored holder key, oldest first."""
        rows = self._db.execute("SELECT key_id FROM holder_keys ORDER BY rowid").fetchall()
        return [row[0] for row in rows]

    def delete_holder_key(self, key_id: str) -> None:
        """Forget a holder key (its credentials can no longer be presented)."""
        with self._write():
            self._db.execute("DELETE FROM holder_keys WHERE key_id = ?", (key_id,))

    # --- credentials ---------------------------------------------------------------

    def add_credential(
        self,
        *,
        sd_jwt: str,
        vct: str,
        issuer: str,
        holder_key_id: str | None,
        status: StatusReference | None = None,
        label: str = "",
        received_at: int | None = None,
        credential_id: str | None = None,
    ) -> str:
        """Store a credential; return its id (new unless ``credential_id`` is given).

        Raises:
            StoreError: ``credential_id`` exists, or ``holder_key_id`` is not a stored key.
        """
        record = StoredCredential(
            credential_id=credential_id or _new_id(),
            sd_jwt=sd_jwt,
            vct=vct,
            issuer=issuer,
            received_at=_now(received_at),
            status=status,
            holder_key_id=holder_key_id,
            label=label,
        )
        with self._write():
            if holder_key_id is not None and not self._exists("holder_keys", holder_key_id):
                raise StoreError(f"unknown holder key {holder_key_id}")
            self._insert("credentials", record.credential_id, record)
        return record.credential_id

    def credential(self, credential_id: str) -> StoredCredential:
        """One credential (raises :class:`StoreError` if unknown)."""
        return self._get("credentials", credential_id, StoredCredential)

    def readable_credentials(self) -> tuple[list[StoredCredential], list[DamagedRecord]]:
        """Every credential that can be read, and the damaged ones named instead of raising.

        For the commands that must show or save what is intact even when one record
        is damaged (``wallet list``, ``wallet export``); :meth:`credentials` raises.
        """
        return self._scan("credentials", StoredCredential)

    def credentials(self) -> list[StoredCredential]:
        """Every credential, decrypted, oldest first."""
        return self._all("credentials", StoredCredential)

    def set_label(self, credential_id: str, label: str) -> None:
        """Rename a credential for the citizen."""
        with self._write():
            record = self._get("credentials", credential_id, StoredCredential)
            self._replace("credentials", credential_id, record.model_copy(update={"label": label}))

    def delete_credential(self, credential_id: str, *, with_holder_key: bool = True) -> None:
        """Delete a credential and, by default, the holder key only it used."""
        with self._write():
            record = self._get("credentials", credential_id, StoredCredential)
            self._db.execute("DELETE FROM credentials WHERE credential_id = ?", (credential_id,))
            self._db.execute(
                "DELETE FROM credential_status WHERE credential_id = ?", (credential_id,)
            )
            if with_holder_key and record.holder_key_id is not None:
                still_used = any(
                    other.holder_key_id == record.holder_key_id
                    for other in self._all("credentials", StoredCredential)
                )
                if not still_used:
                    self._db.execute(
                        "DELETE FROM holder_keys WHERE key_id = ?", (record.holder_key_id,)
                    )

    def record_status(self, record: CredentialStatusRecord) -> CredentialStatusRecord:
        """Keep what a credential's status list said; return what is now stored.

        ``revoked`` is final: a later ``valid`` or ``suspended`` (an older cached
        list, a replayed token) never replaces it.

        Raises:
            StoreError: no such credential.
        """
        with self._write():
            if not self._exists("credentials", record.credential_id):
                raise StoreError(f"no credentials record {record.credential_id}")
            table = "credential_status"
            if self._exists(table, record.credential_id):
                known = self._get(table, record.credential_id, CredentialStatusRecord)
                if known.state == "revoked":
                    return known
            self._upsert(table, record.credential_id, record)
        return record

    def credential_statuses(self) -> dict[str, CredentialStatusRecord]:
        """What each checked credential's status list last said, by credential id."""
        records = self._all("credential_status", CredentialStatusRecord)
        return {record.credential_id: record for record in records}

    def readable_credential_statuses(
        self,
    ) -> tuple[dict[str, CredentialStatusRecord], list[DamagedRecord]]:
        """Like :meth:`credential_statuses`, naming damaged verdicts instead of raising."""
        records, damaged = self._scan("credential_status", CredentialStatusRecord)
        return {record.credential_id: record for record in records}, damaged

    # --- disclosure history --------------------------------------------------------

    def record_disclosure(
        self,
        *,
        verifier_id: str,
        verifier_user: str,
        credential_id: str | None,
        claim_paths: tuple[tuple[str | int | None, ...], ...],
        purpose: str,
        outcome: DisclosureOutcome,
        exchange_id: str | None = None,
        at: int | None = None,
    ) -> str:
        """Append an entry to the citizen's disclosure history; return its id."""
        record = DisclosureRecord(
            entry_id=_new_id(),
            verifier_id=verifier_id,
            verifier_user=verifier_user,
            credential_id=credential_id,
            claim_paths=claim_paths,
            purpose=purpose,
            at=_now(at),
            outcome=outcome,
            exchange_id=exchange_id,
        )
        with self._write():
            self._insert("disclosures", record.entry_id, record)
        return record.entry_id

    def disclosure_history(self) -> list[DisclosureRecord]:
        """The whole history, oldest first."""
        return self._all("disclosures", DisclosureRecord)

    def readable_disclosure_history(self) -> tuple[list[DisclosureRecord], list[DamagedRecord]]:
        """Like :meth:`disclosure_history`, naming damaged entries instead of raising."""
        return self._scan("disclosures", DisclosureRecord)

    # --- offers ------------------------------------------------------------------

    def add_offer(
        self,
        *,
        offer_id: str,
        issuer: str,
        vct: str,
        received_at: int | None = None,
        state: OfferState = "pending",
    ) -> None:
        """Remember an incoming credential offer (``StoreError`` if its id is known)."""
        record = PendingOffer(
            offer_id=offer_id, issuer=issuer, vct=vct, received_at=_now(received_at), state=state
        )
        with self._write():
            self._insert("offers", offer_id, record)

    def put_offer(self, record: PendingOffer) -> None:
        """Insert or replace an offer record as a whole (e.g. after a request went out)."""
        with self._write():
            self._upsert("offers", record.offer_id, record)

    def set_offer_state(self, offer_id: str, state: OfferState) -> None:
        """Move an offer to ``state``."""
        with self._write():
            record = self._get("offers", offer_id, PendingOffer)
            self._replace("offers", offer_id, record.model_copy(update={"state": state}))

    def offer(self, offer_id: str) -> PendingOffer:
        """One offer (raises :class:`StoreError` if unknown)."""
        return self._get("offers", offer_id, PendingOffer)

    def offers(self, state: OfferState | None = None) -> list[PendingOffer]:
        """Offers, oldest first, optionally only those in ``state``."""
        every = self._all("offers", PendingOffer)
        return every if state is None else [offer for offer in every if offer.state == state]

    def readable_offers(self) -> tuple[list[PendingOffer], list[DamagedRecord]]:
        """Like :meth:`offers`, naming damaged offers instead of raising."""
        return self._scan("offers", PendingOffer)

    # --- the citizen's other devices --------------------------------------------------

    def put_device(self, record: ApprovedDevice) -> None:
        """Insert or replace the approval record of one device."""
        with self._write():
            self._upsert("devices", record.device_id, record)

    def devices(self) -> list[ApprovedDevice]:
        """Every approved or revoked device, in the order first approved."""
        return self._all("devices", ApprovedDevice)

    def next_device_list_seq(self, at_least: int) -> int:
        """Reserve the ``seq`` of the next signed device list: above every earlier one.

        ``at_least`` (e.g. the clock in ms) keeps numbers rising even where the
        counter was lost (a restore from a version 1 backup, which lacks it).
        """
        with self._write():
            row = self._db.execute(
                "SELECT value FROM wallet_meta WHERE name = 'device_list_seq'"
            ).fetchone()
            seq = max(at_least, int(row[0]) + 1 if row else 0)
            self._db.execute(
                "INSERT INTO wallet_meta (name, value) VALUES ('device_list_seq', ?)"
                " ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                (str(seq),),
            )
        return seq

    # --- backup --------------------------------------------------------------------

    def export(
        self, path: str | os.PathLike[str], passphrase: str, *, scrypt: ScryptParams | None = None
    ) -> backup.BackupContents:
        """Write everything needed to go on elsewhere to one encrypted file; return what.

        That is holder keys, credentials, their last status verdicts, approved and
        revoked devices, the device-list counter, the history and the offers (what
        is never carried: :data:`wallet.backup.NOT_CARRIED`). A record that cannot
        be read is left out and named in the backup and the result
        (``complete`` is False), so the intact ones are still saved.

        The backup has its own passphrase (scrypt, ``scrypt`` or the strong default)
        and is written atomically: a crash leaves either no file or a complete one.

        Raises:
            WeakPassphrase: the backup passphrase is below the strength floor.
            StoreError: the file cannot be written.
        """
        records: dict[str, list[BaseModel]] = {}
        damaged: list[DamagedRecord] = []
        for table, model in _BACKUP_TABLES.items():
            readable, lost = self._scan(table, model)
            records[table] = list(readable)
            damaged += lost
        contents = backup.BackupContents(
            backup.FORMAT_VERSION, records, self._device_list_seq(), tuple(damaged)
        )
        data = backup.build_payload(contents)
        backup.write_backup(Path(path), data, passphrase, scrypt or ScryptParams())
        return contents

    def import_(self, path: str | os.PathLike[str], passphrase: str) -> backup.BackupContents:
        """Restore a backup into this wallet, which must be empty; return what it held.

        Everything is inserted in one transaction: on any error nothing is imported.
        Devices come in as not yet announced, so this wallet (a new Matrix device)
        sends its signed device list on its first run, numbered after the backup's.
        The result's ``damaged`` names what the exporting wallet could not read.

        Raises:
            WalletLocked: wrong backup passphrase.
            BackupInvalid: the file is malformed, truncated or altered.
            StoreError: this wallet already holds data.
        """
        version, data = backup.read_backup(Path(path), passphrase)
        contents = backup.parse_payload(data, _BACKUP_TABLES, version=version)
        with self._write():
            for table in SEALED_TABLES:
                if self._db.execute(f"SELECT 1 FROM {table} LIMIT 1").fetchone():  # noqa: S608
                    raise StoreError("import needs an empty wallet")
            for table, items in contents.records.items():
                for record in items:
                    if isinstance(record, ApprovedDevice):
                        record = record.model_copy(update={"announced": False})
                    self._insert(table, backup.record_id(table, record), record)
            if contents.device_list_seq is not None:
                self._db.execute(
                    "INSERT INTO wallet_meta (name, value) VALUES ('device_list_seq', ?)"
                    " ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                    (str(contents.device_list_seq),),
                )
        return contents

    def _device_list_seq(self) -> int | None:
        row = self._db.execute(
            "SELECT value FROM wallet_meta WHERE name = 'device_list_seq'"
        ).fetchone()
        return int(row[0]) if row else None

    # --- internals -----------------------------------------------------------------

    @contextlib.contextmanager
    def _write(self) -> Iterator[None]:
        try:
            self._db.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise StoreError(f"wallet is busy or unwritable: {exc}") from exc
        try:
            yield
            self._db.execute("COMMIT")
        except BaseException as exc:
            self._db.execute("ROLLBACK")
            if isinstance(exc, sqlite3.IntegrityError):
                raise StoreError("a record with that id already exists") from exc
            if isinstance(exc, sqlite3.Error):
                raise StoreError(f"wallet write failed: {exc}") from exc
            raise

    def _insert(self, table: str, row_id: str, record: BaseModel) -> None:
        sealed = self._box.seal(record.model_dump_json().encode(), record_aad(table, row_id))
        column = SEALED_TABLES[table]
        self._db.execute(
            f"INSERT INTO {table} ({column}, sealed) VALUES (?, ?)",  # noqa: S608
            (row_id, sealed),
        )

    def _replace(self, table: str, row_id: str, record: BaseModel) -> None:
        sealed = self._box.seal(record.model_dump_json().encode(), record_aad(table, row_id))
        column = SEALED_TABLES[table]
        self._db.execute(
            f"UPDATE {table} SET sealed = ? WHERE {column} = ?",  # noqa: S608
            (sealed, row_id),
        )

    def _upsert(self, table: str, row_id: str, record: BaseModel) -> None:
        if self._exists(table, row_id):
            self._replace(table, row_id, record)
        else:
            self._insert(table, row_id, record)

    def _exists(self, table: str, row_id: str) -> bool:
        column = SEALED_TABLES[table]
        query = f"SELECT 1 FROM {table} WHERE {column} = ?"  # noqa: S608
        return self._db.execute(query, (row_id,)).fetchone() is not None

    def _get(self, table: str, row_id: str, model: type[_R]) -> _R:
        column = SEALED_TABLES[table]
        query = f"SELECT sealed FROM {table} WHERE {column} = ?"  # noqa: S608
        row = self._db.execute(query, (row_id,)).fetchone()
        if row is None:
            raise StoreError(f"no {table} record {row_id}")
        return self._open(table, row_id, row[0], model)

    def _all(self, table: str, model: type[_R]) -> list[_R]:
        column = SEALED_TABLES[table]
        query = f"SELECT {column}, sealed FROM {table} ORDER BY rowid"  # noqa: S608
        return [self._open(table, rid, sealed, model) for rid, sealed in self._db.execute(query)]

    def _scan(self, table: str, model: type[_R]) -> tuple[list[_R], list[DamagedRecord]]:
        # Like _all, but a damaged row is named instead of failing the whole read.
        column = SEALED_TABLES[table]
        query = f"SELECT {column}, sealed FROM {table} ORDER BY rowid"  # noqa: S608
        readable: list[_R] = []
        damaged: list[DamagedRecord] = []
        for row_id, sealed in self._db.execute(query).fetchall():
            try:
                readable.append(self._open(table, row_id, sealed, model))
            except StoreCorrupt:
                damaged.append(DamagedRecord(table=table, row_id=str(row_id)))
        return readable, damaged

    def _open(self, table: str, row_id: str, sealed: bytes, model: type[_R]) -> _R:
        try:
            record = model.model_validate_json(self._box.open(sealed, record_aad(table, row_id)))
        except (SealBroken, ValidationError) as exc:
            raise StoreCorrupt(f"{table} record {row_id} is damaged or was altered") from exc
        return record


_BACKUP_TABLES: Final[dict[str, type[BaseModel]]] = {
    "holder_keys": HolderKeyRecord,
    "credentials": StoredCredential,
    "credential_status": CredentialStatusRecord,
    "devices": ApprovedDevice,
    "disclosures": DisclosureRecord,
    "offers": PendingOffer,
}
"""Every sealed table, in import order (keys before the credentials bound to them)."""


def _connect(path: Path) -> sqlite3.Connection:
    try:
        db = sqlite3.connect(path, isolation_level=None, timeout=10.0)
        mode = db.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        db.execute("PRAGMA synchronous = FULL")
    except sqlite3.Error as exc:
        raise StoreError(f"{path.name} is not a readable wallet database") from exc
    if str(mode).lower() != "wal":
        db.close()
        raise StoreError(f"{path.name}: cannot enable the WAL journal")
    return db


def _migrate(db: sqlite3.Connection, statements: tuple[str, ...]) -> None:
    # Runs inside the caller's transaction, so a crash mid-migration leaves the old version.
    for statement in statements:
        db.execute(statement)
