"""The durable state of one party's Matrix transport, in one SQLite file.

What lives here (and why it must survive a crash):

* ``meta``: the sync token. It is written in the *same* transaction as the inbox rows of
  the sync response it follows, so a crash can never advance the token past events that
  were not recorded.
* ``inbox``: every received event (or problem) in arrival order, keyed by event id, so an
  event is recorded once however often the homeserver hands it out, and re-delivered to
  the handler after a restart until it is acknowledged.
* ``undecrypted``: Megolm events whose room key has not arrived yet, kept as raw JSON and
  retried whenever keys arrive.
* ``outbox``: events to send, with the transaction id that makes retries idempotent.
* ``rooms``: the direct room of each peer.

The store is synchronous on purpose: every statement is a few microseconds on a local
file, and a single connection used from one event loop needs no locking.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from onceonly.errors import StoreError

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS inbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id TEXT NOT NULL UNIQUE,
    payload TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending',   -- pending | handled | parked
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT
);
CREATE TABLE IF NOT EXISTS undecrypted (
    event_id TEXT PRIMARY KEY,
    room_id TEXT NOT NULL,
    source TEXT NOT NULL,
    first_seen REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    txn_id TEXT NOT NULL UNIQUE,
    room_id TEXT NOT NULL,
    event_type TEXT NOT NULL,
    content TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'queued',    -- queued | sent | failed
    event_id TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT
);
CREATE INDEX IF NOT EXISTS outbox_queued_by_room ON outbox(state, room_id, seq);
CREATE TABLE IF NOT EXISTS rooms (peer TEXT PRIMARY KEY, room_id TEXT NOT NULL);
"""


@dataclass(frozen=True)
class InboxRow:
    """One recorded inbound item awaiting (or past) delivery."""

    seq: int
    event_id: str
    payload: dict[str, Any]
    attempts: int


@dataclass(frozen=True)
class OutboxRow:
    """One queued outbound event."""

    seq: int
    txn_id: str
    room_id: str
    event_type: str
    content: dict[str, Any]
    attempts: int


@dataclass(frozen=True)
class UndecryptedRow:
    """A Megolm event kept until its room key arrives."""

    event_id: str
    room_id: str
    source: dict[str, Any]
    first_seen: float


class TransportStore:
    """SQLite-backed transport state. Create with :meth:`open`; close with :meth:`close`."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self._db = connection

    @classmethod
    def open(cls, path: Path) -> TransportStore:
        """Open (creating if needed) the store at ``path``.

        Raises:
            StoreError: The file is unreadable or has an unknown schema version.
        """
        try:
            db = sqlite3.connect(path, isolation_level=None)
            # WAL + synchronous=FULL: a committed transaction survives SIGKILL and power loss.
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            db.execute("PRAGMA busy_timeout=5000")
            db.executescript(_SCHEMA)
            row = db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
            if row is None:
                db.execute(
                    "INSERT INTO meta(key, value) VALUES ('schema_version', ?)",
                    (str(SCHEMA_VERSION),),
                )
            elif int(row[0]) != SCHEMA_VERSION:
                raise StoreError(
                    "unknown transport store schema version",
                    detail={"found": row[0], "expected": SCHEMA_VERSION},
                )
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open transport store: {exc}") from exc
        return cls(db)

    def close(self) -> None:
        """Close the connection."""
        self._db.close()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Group several writes into one atomic commit."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    # --- sync token -------------------------------------------------------------

    def sync_token(self) -> str | None:
        """Return the stored sync token, or None before the first sync."""
        row = self._db.execute("SELECT value FROM meta WHERE key='sync_token'").fetchone()
        return None if row is None else str(row[0])

    def set_sync_token(self, token: str) -> None:
        """Store the sync token (call inside the transaction that records its events)."""
        self._db.execute(
            "INSERT INTO meta(key, value) VALUES ('sync_token', ?) "
            "ON CONFLICT(key) DO UPDATE SET value=excluded.value",
            (token,),
        )

    # --- inbox --------------------------------------------------------------------

    def record_inbound(self, event_id: str, payload: dict[str, Any]) -> bool:
        """Record an inbound item unless its event id was seen before.

        Returns:
            True if the item is new, False if it is a duplicate (it is then ignored).
        """
        cursor = self._db.execute(
            "INSERT OR IGNORE INTO inbox(event_id, payload) VALUES (?, ?)",
            (event_id, json.dumps(payload, separators=(",", ":"))),
        )
        return cursor.rowcount == 1

    def seen(self, event_id: str) -> bool:
        """Whether ``event_id`` is already in the inbox or waiting for its key."""
        row = self._db.execute(
            "SELECT 1 FROM inbox WHERE event_id=? UNION ALL "
            "SELECT 1 FROM undecrypted WHERE event_id=?",
            (event_id, event_id),
        ).fetchone()
        return row is not None

    def pending_inbound(self) -> list[InboxRow]:
        """Return the undelivered items, oldest first."""
        rows = self._db.execute(
            "SELECT seq, event_id, payload, attempts FROM inbox WHERE state='pending' ORDER BY seq"
        ).fetchall()
        return [InboxRow(r[0], r[1], json.loads(r[2]), r[3]) for r in rows]

    def note_delivery_attempt(self, event_id: str) -> None:
        """Count a delivery attempt durably *before* the handler runs."""
        self._db.execute("UPDATE inbox SET attempts=attempts+1 WHERE event_id=?", (event_id,))

    def mark_handled(self, event_id: str) -> None:
        """Acknowledge an item: it is never delivered again."""
        self._db.execute("UPDATE inbox SET state='handled' WHERE event_id=?", (event_id,))

    def mark_failed(self, event_id: str, error: str, *, park: bool) -> None:
        """Record a handler failure; ``park`` stops further automatic retries."""
        self._db.execute(
            "UPDATE inbox SET last_error=?, state=? WHERE event_id=?",
            (error, "parked" if park else "pending", event_id),
        )

    def parked_inbound(self) -> list[InboxRow]:
        """Return the items whose handler kept failing (for an operator to inspect)."""
        rows = self._db.execute(
            "SELECT seq, event_id, payload, attempts FROM inbox WHERE state='parked' ORDER BY seq"
        ).fetchall()
        return [InboxRow(r[0], r[1], json.loads(r[2]), r[3]) for r in rows]

    def requeue_parked(self, event_id: str) -> None:
        """Put a parked item back into delivery."""
        self._db.execute(
            "UPDATE inbox SET state='pending', attempts=0 WHERE event_id=? AND state='parked'",
            (event_id,),
        )

    # --- undecrypted --------------------------------------------------------------

    def keep_undecrypted(self, event_id: str, room_id: str, source: dict[str, Any]) -> None:
        """Keep a Megolm event whose room key is missing."""
        self._db.execute(
            "INSERT OR IGNORE INTO undecrypted(event_id, room_id, source, first_seen) "
            "VALUES (?, ?, ?, ?)",
            (event_id, room_id, json.dumps(source), time.time()),
        )

    def undecrypted(self) -> list[UndecryptedRow]:
        """Return the events still waiting for their room key."""
        rows = self._db.execute(
            "SELECT event_id, room_id, source, first_seen FROM undecrypted ORDER BY first_seen"
        ).fetchall()
        return [UndecryptedRow(r[0], r[1], json.loads(r[2]), r[3]) for r in rows]

    def drop_undecrypted(self, event_id: str) -> None:
        """Forget a kept Megolm event (it was decrypted or given up on)."""
        self._db.execute("DELETE FROM undecrypted WHERE event_id=?", (event_id,))

    # --- outbox ---------------------------------------------------------------------

    def enqueue(self, txn_id: str, room_id: str, event_type: str, content: dict[str, Any]) -> int:
        """Queue an event for sending; returns its queue position."""
        cursor = self._db.execute(
            "INSERT INTO outbox(txn_id, room_id, event_type, content) VALUES (?, ?, ?, ?)",
            (txn_id, room_id, event_type, json.dumps(content, separators=(",", ":"))),
        )
        return int(cursor.lastrowid or 0)

    def queued(self) -> list[OutboxRow]:
        """Return the unsent events, oldest first."""
        rows = self._db.execute(
            "SELECT seq, txn_id, room_id, event_type, content, attempts FROM outbox "
            "WHERE state='queued' ORDER BY seq"
        ).fetchall()
        return [OutboxRow(r[0], r[1], r[2], r[3], json.loads(r[4]), r[5]) for r in rows]

    def queued_rooms(self) -> list[str]:
        """Return the rooms with unsent events, the one waiting longest first."""
        rows = self._db.execute(
            "SELECT room_id FROM outbox WHERE state='queued' GROUP BY room_id ORDER BY MIN(seq)"
        ).fetchall()
        return [r[0] for r in rows]

    def queued_in(self, room_id: str) -> list[OutboxRow]:
        """Return the unsent events of one room, oldest first."""
        rows = self._db.execute(
            "SELECT seq, txn_id, room_id, event_type, content, attempts FROM outbox "
            "WHERE state='queued' AND room_id=? ORDER BY seq",
            (room_id,),
        ).fetchall()
        return [OutboxRow(r[0], r[1], r[2], r[3], json.loads(r[4]), r[5]) for r in rows]

    def mark_sent(self, txn_id: str, event_id: str) -> None:
        """Record the server's event id; the content is dropped (it may be personal data)."""
        self._db.execute(
            "UPDATE outbox SET state='sent', event_id=?, content='{}' WHERE txn_id=?",
            (event_id, txn_id),
        )

    def mark_send_failed(self, txn_id: str, error: str, *, final: bool) -> None:
        """Count a failed attempt; ``final`` gives up on the event."""
        self._db.execute(
            "UPDATE outbox SET attempts=attempts+1, last_error=?, state=? WHERE txn_id=?",
            (error, "failed" if final else "queued", txn_id),
        )

    def outbox_status(self, txn_id: str) -> tuple[str, str | None, str | None] | None:
        """Return ``(state, event_id, last_error)`` of a queued event, or None if unknown."""
        row = self._db.execute(
            "SELECT state, event_id, last_error FROM outbox WHERE txn_id=?", (txn_id,)
        ).fetchone()
        return None if row is None else (row[0], row[1], row[2])

    # --- rooms ----------------------------------------------------------------------

    def direct_room(self, peer: str) -> str | None:
        """Return the direct room recorded for ``peer``."""
        row = self._db.execute("SELECT room_id FROM rooms WHERE peer=?", (peer,)).fetchone()
        return None if row is None else str(row[0])

    def set_direct_room(self, peer: str, room_id: str) -> None:
        """Record the direct room of ``peer``."""
        self._db.execute(
            "INSERT INTO rooms(peer, room_id) VALUES (?, ?) "
            "ON CONFLICT(peer) DO UPDATE SET room_id=excluded.room_id",
            (peer, room_id),
        )

    def direct_rooms(self) -> dict[str, str]:
        """Return every recorded direct room, peer -> room id."""
        rows = self._db.execute("SELECT peer, room_id FROM rooms").fetchall()
        return {str(r[0]): str(r[1]) for r in rows}

    def forget_direct_room(self, room_id: str) -> None:
        """Forget ``room_id`` as anyone's direct room (it was left)."""
        self._db.execute("DELETE FROM rooms WHERE room_id=?", (room_id,))
