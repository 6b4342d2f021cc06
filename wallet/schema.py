"""The wallet database's schema and its forward migrations.

``PRAGMA user_version`` holds the schema version. Migration ``k`` (0-based)
takes the database from version ``k`` to ``k + 1``; a new wallet runs all of
them. Migrations only ever add: old code refuses a newer file rather than
guessing, and every version's rows stay readable by the code that follows.

Only ids are stored in the clear; every row's content is one sealed blob (see
:mod:`wallet.crypto_box`), so even the types of credentials a citizen holds do
not leak from a stolen file.
"""

from __future__ import annotations

from typing import Final

MIGRATIONS: Final[tuple[tuple[str, ...], ...]] = (
    # v1: key slots, holder keys, credentials.
    (
        """CREATE TABLE wallet_meta (
            name TEXT PRIMARY KEY,
            value TEXT NOT NULL
        )""",
        """CREATE TABLE key_slots (
            kind TEXT PRIMARY KEY CHECK (kind IN ('passphrase', 'raw')),
            params TEXT NOT NULL,
            salt BLOB NOT NULL,
            wrapped_key BLOB NOT NULL
        )""",
        """CREATE TABLE holder_keys (
            key_id TEXT PRIMARY KEY,
            sealed BLOB NOT NULL
        )""",
        """CREATE TABLE credentials (
            credential_id TEXT PRIMARY KEY,
            sealed BLOB NOT NULL
        )""",
    ),
    # v2: the citizen's disclosure history and pending offers.
    (
        """CREATE TABLE disclosures (
            entry_id TEXT PRIMARY KEY,
            sealed BLOB NOT NULL
        )""",
        """CREATE TABLE offers (
            offer_id TEXT PRIMARY KEY,
            sealed BLOB NOT NULL
        )""",
    ),
    # v3: the citizen's other devices she approved (or revoked) for her mailboxes.
    (
        """CREATE TABLE devices (
            device_id TEXT PRIMARY KEY,
            sealed BLOB NOT NULL
        )""",
    ),
    # v4: what each credential's status list last said (a sealed row per credential,
    # not a clear column: even "this wallet holds a revoked credential" stays private).
    (
        """CREATE TABLE credential_status (
            credential_id TEXT PRIMARY KEY,
            sealed BLOB NOT NULL
        )""",
    ),
)

CURRENT_VERSION: Final = len(MIGRATIONS)

SEALED_TABLES: Final[dict[str, str]] = {
    "holder_keys": "key_id",
    "credentials": "credential_id",
    "disclosures": "entry_id",
    "offers": "offer_id",
    "devices": "device_id",
    "credential_status": "credential_id",
}
"""Table name to its id column, for every table whose rows are sealed records."""
