"""The encrypted wallet backup file: one file, its own passphrase, all or nothing.

Layout::

    b"ONCEONLY-WALLET-BACKUP\\n"  magic
    1 byte                       format version (2; 1 is still read)
    4 bytes, big-endian          header length
    header                       JSON: scrypt parameters, salt, key check
    sealed payload               AES-256-GCM(nonce || ciphertext || tag)

The payload (JSON) carries everything a wallet needs to go on elsewhere: holder
keys, credentials, what their status lists last said (a revoked one stays
known as revoked), the approved and revoked devices, the device-list sequence
number, the disclosure history and the offers. Version 1 carried only holder
keys, credentials, history and offers; it still imports. What a backup never
carries is listed in :data:`NOT_CARRIED`. A record that could not be read when
exporting is named in the payload's ``damaged`` list, so a backup of a damaged
wallet says it is incomplete and which records it lacks.

The payload's associated data is everything before it, so the header cannot
be altered (e.g. weaker scrypt parameters) without the payload failing. The
key check (an empty message sealed under the derived key) tells a wrong
passphrase (:class:`~onceonly.errors.WalletLocked`) apart from a damaged file
(:class:`~onceonly.errors.BackupInvalid`).
"""

from __future__ import annotations

import base64
import binascii
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from pydantic import BaseModel, ValidationError

from onceonly.errors import BackupInvalid, OnceOnlyError, StoreError, WalletLocked
from onceonly.jose import private_key_from_jwk, strict_json_loads
from wallet.crypto_box import (
    ScryptParams,
    SealBroken,
    SecretBox,
    key_from_passphrase,
    new_salt,
)
from wallet.passphrase import require_strong
from wallet.records import DamagedRecord
from wallet.schema import SEALED_TABLES

MAGIC: Final = b"ONCEONLY-WALLET-BACKUP\n"
FORMAT_VERSION: Final = 2
"""The version written; :data:`READABLE_VERSIONS` are read."""
READABLE_VERSIONS: Final = (1, 2)
V1_TABLES: Final = ("holder_keys", "credentials", "disclosures", "offers")
"""The tables a version 1 backup holds (no statuses, devices or device-list counter)."""
NOT_CARRIED: Final = (
    "the wallet passphrase (the restored wallet keeps its own)",
    "the Matrix login and this device's encryption keys (account.json and the transport"
    " store): the restored wallet logs in as a new device of the same account",
    "the trust anchors, the cached trust list and the consent policy file"
    " (give --authority-key to init and run 'onceonly trust fetch' again)",
)
"""What a backup never holds, as told by ``wallet export`` and ``import``."""
MAX_HEADER_BYTES: Final = 4096
MAX_BACKUP_BYTES: Final = 512 * 1024 * 1024
_PAYLOAD_DEPTH: Final = 9  # payload > tables > table > record > claim_paths > path
_KEY_CHECK_AAD: Final = b"onceonly-wallet-backup\x00key-check"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii")


def write_backup(path: Path, payload: bytes, passphrase: str, scrypt: ScryptParams) -> None:
    """Encrypt ``payload`` under ``passphrase`` and write it atomically to ``path``.

    Raises:
        WeakPassphrase: the backup passphrase is below the strength floor.
        StoreError: the file cannot be written.
    """
    require_strong(passphrase, what="backup passphrase")
    salt = new_salt()
    box = SecretBox(key_from_passphrase(passphrase, salt, scrypt))
    header = {
        "kdf": scrypt.to_json(),
        "salt": _b64(salt),
        "key_check": _b64(box.seal(b"", _KEY_CHECK_AAD)),
    }
    header_bytes = json.dumps(header, sort_keys=True).encode("ascii")
    version = bytes([FORMAT_VERSION])
    prefix = MAGIC + version + len(header_bytes).to_bytes(4, "big") + header_bytes
    blob = prefix + box.seal(payload, prefix)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            _write_all(fd, blob)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temporary, path)
        _fsync_directory(path.parent)
    except OSError as exc:
        temporary.unlink(missing_ok=True)
        raise StoreError(f"cannot write backup {path.name}: {exc.strerror}") from exc


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _fsync_directory(directory: Path) -> None:
    # The rename is only durable once the directory entry is on disk too.
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def read_backup(
    path: Path, passphrase: str, *, max_bytes: int = MAX_BACKUP_BYTES
) -> tuple[int, bytes]:
    """Read, authenticate and decrypt a backup file; return its format version and payload.

    The version byte is covered by the payload's seal: a version-2 backup relabelled
    as version 1 (to drop what it carries) fails as altered.

    Raises:
        WalletLocked: the passphrase is wrong.
        BackupInvalid: not a backup, unknown version, oversized, truncated or altered.
        StoreError: the file cannot be read.
    """
    try:
        size = path.stat().st_size
        if size > max_bytes:
            raise BackupInvalid(f"backup is larger than {max_bytes} bytes")
        blob = path.read_bytes()
    except OSError as exc:
        raise StoreError(f"cannot read backup {path.name}: {exc.strerror}") from exc
    header, prefix = _parse_prefix(blob)
    try:
        scrypt = ScryptParams.from_json(header.get("kdf"))
        salt = base64.urlsafe_b64decode(_text(header, "salt"))
        key_check = base64.urlsafe_b64decode(_text(header, "key_check"))
    except (OnceOnlyError, binascii.Error, ValueError) as exc:
        raise BackupInvalid("backup header is invalid") from exc
    box = SecretBox(key_from_passphrase(passphrase, salt, scrypt))
    try:
        box.open(key_check, _KEY_CHECK_AAD)
    except SealBroken:
        raise WalletLocked("wrong backup passphrase") from None
    try:
        return prefix[len(MAGIC)], box.open(blob[len(prefix) :], prefix)
    except SealBroken:
        raise BackupInvalid("backup is truncated or was altered") from None


def _text(header: Mapping[str, Any], name: str) -> str:
    value = header.get(name)
    if not isinstance(value, str):
        raise BackupInvalid(f"backup header lacks {name}")
    return value


def _parse_prefix(blob: bytes) -> tuple[dict[str, Any], bytes]:
    fixed = len(MAGIC) + 1 + 4
    if len(blob) < fixed or not blob.startswith(MAGIC):
        raise BackupInvalid("not a onceonly wallet backup")
    if blob[len(MAGIC)] not in READABLE_VERSIONS:
        raise BackupInvalid(f"unsupported backup format version {blob[len(MAGIC)]}")
    length = int.from_bytes(blob[len(MAGIC) + 1 : fixed], "big")
    if length > MAX_HEADER_BYTES or len(blob) < fixed + length:
        raise BackupInvalid("backup header is truncated or oversized")
    try:
        header = strict_json_loads(blob[fixed : fixed + length], max_depth=4)
    except OnceOnlyError as exc:
        raise BackupInvalid("backup header is not valid JSON") from exc
    if not isinstance(header, dict):
        raise BackupInvalid("backup header is not a JSON object")
    return header, blob[: fixed + length]


@dataclass(frozen=True)
class BackupContents:
    """What a backup holds (or held, once imported).

    Attributes:
        version: The file's format version.
        records: Per table, its records.
        device_list_seq: The last signed device list's sequence number (None: none yet,
            or a version 1 backup).
        damaged: The records the exporting wallet could not read (empty: complete).
    """

    version: int
    records: dict[str, list[BaseModel]]
    device_list_seq: int | None
    damaged: tuple[DamagedRecord, ...]

    @property
    def counts(self) -> dict[str, int]:
        """Records per table."""
        return {table: len(items) for table, items in self.records.items()}

    @property
    def complete(self) -> bool:
        """False when the exporting wallet had records it could not read."""
        return not self.damaged


def build_payload(contents: BackupContents) -> bytes:
    """The JSON payload of a current-version backup."""
    payload = {
        "tables": {
            table: [record.model_dump(mode="json") for record in items]
            for table, items in contents.records.items()
        },
        "device_list_seq": contents.device_list_seq,
        "damaged": [record.model_dump(mode="json") for record in contents.damaged],
    }
    return json.dumps(payload, separators=(",", ":")).encode("utf-8")


def parse_payload(
    data: bytes, tables: Mapping[str, type[BaseModel]], *, version: int = FORMAT_VERSION
) -> BackupContents:
    """Validate a decrypted payload into records per table, checking ids and references.

    Args:
        data: The decrypted payload.
        tables: Every table a current backup holds, with its record model.
        version: The file's format version (a version 1 payload holds :data:`V1_TABLES`).

    Raises:
        BackupInvalid: wrong structure, invalid record, duplicate id, bad key, or a
            credential bound to a holder key the backup neither holds nor names as damaged.
    """
    try:
        payload = strict_json_loads(data, max_bytes=len(data) + 1, max_depth=_PAYLOAD_DEPTH)
    except OnceOnlyError as exc:
        raise BackupInvalid("backup payload is not valid JSON") from exc
    if version == 1:
        expected = {table: tables[table] for table in V1_TABLES}
        body, seq, damaged = payload, None, []
    else:
        expected = dict(tables)
        if not isinstance(payload, dict) or set(payload) != {
            "tables",
            "device_list_seq",
            "damaged",
        }:
            raise BackupInvalid("backup payload does not have the expected members")
        body, seq, damaged = payload["tables"], payload["device_list_seq"], payload["damaged"]
        if seq is not None and (type(seq) is not int or seq < 0):
            raise BackupInvalid("backup device_list_seq is not a non-negative integer")
    if not isinstance(body, dict) or set(body) != set(expected):
        raise BackupInvalid("backup payload does not have the expected tables")
    records = {table: _records(table, model, body[table]) for table, model in expected.items()}
    lost = tuple(
        record
        for record in _records("damaged", DamagedRecord, damaged, with_ids=False)
        if isinstance(record, DamagedRecord)
    )
    _check_keys_and_references(records, lost)
    return BackupContents(version, records, seq, lost)


def _records(
    table: str, model: type[BaseModel], items: object, *, with_ids: bool = True
) -> list[BaseModel]:
    if not isinstance(items, list):
        raise BackupInvalid(f"backup table {table} is not a list")
    try:
        records = [model.model_validate(item) for item in items]
    except ValidationError as exc:
        raise BackupInvalid(f"backup table {table} holds an invalid record") from exc
    if with_ids:
        ids = [record_id(table, record) for record in records]
        if len(ids) != len(set(ids)):
            raise BackupInvalid(f"backup table {table} repeats an id")
    return records


def _check_keys_and_references(
    records: Mapping[str, list[BaseModel]], damaged: Sequence[DamagedRecord]
) -> None:
    # A credential whose key was damaged in the exporting wallet still comes along
    # (the citizen keeps its content); one bound to a key nobody mentions is altered.
    key_ids = {lost.row_id for lost in damaged if lost.table == "holder_keys"}
    for record in records.get("holder_keys", ()):
        try:
            private_key_from_jwk(getattr(record, "private_jwk", {}))
        except OnceOnlyError as exc:
            raise BackupInvalid("backup holds an invalid holder key") from exc
        key_ids.add(record_id("holder_keys", record))
    for record in records.get("credentials", ()):
        bound = getattr(record, "holder_key_id", None)
        if bound is not None and bound not in key_ids:
            raise BackupInvalid("a credential in the backup is bound to a missing holder key")


def record_id(table: str, record: BaseModel) -> str:
    """The row id of ``record`` in ``table``."""
    value = getattr(record, SEALED_TABLES[table])
    assert isinstance(value, str)
    return value
