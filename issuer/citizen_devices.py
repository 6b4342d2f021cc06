"""Which of a citizen's devices may read what the agency sends (spec section 12).

The wallet signs the list of the citizen's approved devices (``device.list``)
with the holder key bound in the citizen's PID. The agency learns that key only
when the citizen binds their identity (the PID presentation in a request; for the
identity agency, the key the new PID is bound to), so a list that arrives first
is kept *pending* and verified as soon as the key is known.

The identity agency cannot wait for a list (there is no PID key yet): its
(simulated) eID check pins the wallet device the citizen names, and the PID goes
to that device only.

:class:`CitizenDevices` persists the PID keys, the newest verified list per
account and the pins (SQLite or PostgreSQL, in the issuer database);
:class:`SignedDeviceListPolicy` is the transport's
:class:`~onceonly.matrix.devices.DevicePolicy` over an in-memory copy of it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Self

from onceonly import jose
from onceonly.errors import OnceOnlyError, StoreCorrupt
from onceonly.matrix.devices import DeviceInfo
from onceonly.protocol import verify_device_list
from onceonly.sql import Database, Schema, SqlStore

SCHEMA_VERSION: Final = 1
_STORE: Final = "citizen devices"
PINNED: Final = ""
"""Stand-in Ed25519 key of an eID-pinned device: its keys are taken as first seen."""


_SCHEMA: Final = Schema(
    _STORE,
    SCHEMA_VERSION,
    (
        "CREATE TABLE IF NOT EXISTS issuer_citizen_devices ("
        " matrix_user_id TEXT PRIMARY KEY,"
        " pid_jwk TEXT,"
        " seq BIGINT,"
        " devices TEXT NOT NULL DEFAULT '{}',"
        " pending_list TEXT,"
        " updated_at BIGINT NOT NULL)",
    ),
)


class CitizenDevices(SqlStore):
    """Per Matrix account: PID key, verified device list (or eID pin), pending list.

    Open with :meth:`open`. Keeps an in-memory copy of the allowed devices, which
    :class:`SignedDeviceListPolicy` consults synchronously at key-share time.
    """

    SCHEMA = _SCHEMA

    def __init__(self, database: Database) -> None:
        super().__init__(database)
        self.allowed: dict[str, dict[str, str]] = {}

    @classmethod
    def open(cls, location: str | os.PathLike[str]) -> Self:
        """Open (creating the table if needed) the store at ``location`` and load it.

        Raises:
            StoreError: the database cannot be opened or has another schema version.
        """
        store = super().open(location)
        try:
            store.reload()
        except BaseException:
            store.close()
            raise
        return store

    def reload(self) -> None:
        """Refresh the in-memory copy (another process may have changed the table)."""
        with self._db.read() as tx:
            rows = tx.execute("SELECT matrix_user_id, devices FROM issuer_citizen_devices").all()
        self.allowed = {str(user): _devices(text) for user, text in rows}

    def pin_device(self, matrix_user_id: str, device_id: str, *, now: int) -> None:
        """Allow ``device_id`` of ``matrix_user_id`` (the eID check's wallet device)."""
        self._upsert(matrix_user_id, now, devices={device_id: PINNED})

    def learn_pid_key(self, matrix_user_id: str, key: jose.PublicKey, *, now: int) -> None:
        """Record the citizen's PID key and verify a pending device list with it.

        A pending list that fails verification is dropped (the wallet resends on change).
        """
        row = self._row(matrix_user_id)
        self._upsert(matrix_user_id, now, pid_jwk=key.to_jwk())
        if row is not None and row["pending_list"]:
            try:
                self.accept_device_list(matrix_user_id, row["pending_list"], now=now)
            except OnceOnlyError:  # a bad pending list only means: no list yet
                self._upsert(matrix_user_id, now, pending_list=None)

    def accept_device_list(self, matrix_user_id: str, device_list: str, *, now: int) -> bool:
        """Verify and store a ``device.list`` JWS from ``matrix_user_id``.

        Returns:
            True when verified and stored; False when kept pending (no PID key yet).

        Raises:
            InvalidSignature, InvalidTokenType, MalformedInput, InvalidClaim,
            NotYetValid, ReplayDetected: see :func:`onceonly.protocol.verify_device_list`.
        """
        row = self._row(matrix_user_id)
        if row is None or row["pid_jwk"] is None:
            self._upsert(matrix_user_id, now, pending_list=device_list)
            return False
        payload = verify_device_list(
            device_list,
            jose.public_key_from_jwk(json.loads(row["pid_jwk"])),
            user_id=matrix_user_id,
            newer_than=row["seq"],
            now=now,
        )
        devices = {entry.device_id: entry.ed25519 for entry in payload.devices}
        self._upsert(matrix_user_id, now, devices=devices, seq=payload.seq, pending_list=None)
        return True

    def purge_unverified(self, *, before: int) -> int:
        """Forget accounts that only ever sent a device list, last before ``before``.

        Anyone can send a ``device.list``; it is kept pending until a PID key
        arrives with the account's first credential request, which follows within
        seconds. A row with neither PID key nor devices (eID pin or verified list)
        is such a leftover, from a stranger or an abandoned attempt; the wallet sends
        its list again before its next request.

        Returns:
            How many accounts were forgotten.
        """
        with self._db.write() as tx:
            rows = tx.execute(
                "DELETE FROM issuer_citizen_devices WHERE pid_jwk IS NULL AND devices = '{}'"
                " AND updated_at < ? RETURNING matrix_user_id",
                (before,),
            ).all()
        return len(rows)

    def devices_of(self, matrix_user_id: str) -> Mapping[str, str]:
        """The allowed devices (id -> Ed25519 key, :data:`PINNED` for an eID pin)."""
        return self.allowed.get(matrix_user_id, {})

    def _row(self, matrix_user_id: str) -> dict[str, Any] | None:
        with self._db.read() as tx:
            row = tx.execute(
                "SELECT pid_jwk, seq, devices, pending_list FROM issuer_citizen_devices"
                " WHERE matrix_user_id = ?",
                (matrix_user_id,),
            ).one()
        if row is None:
            return None
        return {"pid_jwk": row[0], "seq": row[1], "devices": row[2], "pending_list": row[3]}

    def _upsert(self, matrix_user_id: str, now: int, **changes: Any) -> None:
        encoded = {
            name: json.dumps(value) if name in {"devices", "pid_jwk"} and value is not None
            else value
            for name, value in changes.items()
        }  # fmt: skip
        # Constant column names from this module only (never input).
        assignments = ", ".join(f"{name} = excluded.{name}" for name in encoded)
        columns = ", ".join(["matrix_user_id", "updated_at", *encoded])
        marks = ", ".join("?" for _ in range(2 + len(encoded)))
        with self._db.write() as tx:
            tx.execute(
                f"INSERT INTO issuer_citizen_devices ({columns}) VALUES ({marks})"  # noqa: S608
                f" ON CONFLICT (matrix_user_id) DO UPDATE SET updated_at = excluded.updated_at"
                f"{', ' + assignments if assignments else ''}",
                (matrix_user_id, now, *encoded.values()),
            )
        if "devices" in changes:
            self.allowed[matrix_user_id] = dict(changes["devices"])


def _devices(text: str) -> dict[str, str]:
    try:
        value = json.loads(text)
    except ValueError:
        raise StoreCorrupt("citizen device record does not decode") from None
    if not isinstance(value, dict):
        raise StoreCorrupt("citizen device record is not an object")
    return {str(k): str(v) for k, v in value.items()}


@dataclass(frozen=True)
class SignedDeviceListPolicy:
    """Room keys go only to a citizen's listed (or eID-pinned) devices once a list is held.

    Before the agency holds a list for a citizen it sends only contents without
    personal data (offers, errors, which never echo values; spec section 12), so
    every device of that citizen may read them. Once a list exists, only its
    devices (with the listed Ed25519 key) do; the transport then starts a new
    Megolm session for the room, so earlier receivers cannot read what follows.
    The agency's own other devices get nothing: an agency runs one device, and a
    device a homeserver admin adds to the agency's account must not read citizens' data.

    Attributes:
        devices: The citizen device store.
        agency_user_id: The agency's own account.
    """

    devices: CitizenDevices
    agency_user_id: str

    def allows(self, device: DeviceInfo) -> bool:
        """Return True if ``device`` may receive room keys (see the class docstring)."""
        if device.user_id == self.agency_user_id:
            return False
        listed = self.devices.devices_of(device.user_id)
        if not listed:
            return True
        key = listed.get(device.device_id)
        return key is not None and key in (PINNED, device.ed25519)
