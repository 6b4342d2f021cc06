"""Durable per-exchange state of one party, in a SQLite file in its data directory.

One row per exchange (keyed by ``exchange_id``): the state machine's value
(kind, state, deadline, history) plus where it runs (peer, room), when it was
opened and last changed, and the last event that moved it. Two tables follow
inbound events: which ones moved an exchange (written with that move) and which
ones were completely processed (what the transport's ``already_handled`` hook
asks after a crash). A last one remembers the mailbox room of each peer.

Times are integer seconds since the epoch, passed in by the caller.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from onceonly.errors import StoreError
from onceonly.protocol.exchange import TERMINAL, Exchange, Kind, Signal, State

_SCHEMA_VERSION: Final = 1
_SCHEMA: Final = (
    """
    CREATE TABLE IF NOT EXISTS exchanges (
        exchange_id TEXT PRIMARY KEY,
        kind TEXT NOT NULL,
        state TEXT NOT NULL,
        expires_at INTEGER,
        history TEXT NOT NULL,
        peer TEXT,
        room_id TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        last_event_id TEXT
    )
    """,
    "CREATE INDEX IF NOT EXISTS exchanges_deadline ON exchanges (state, expires_at)",
    """
    CREATE TABLE IF NOT EXISTS handled_events (
        event_id TEXT PRIMARY KEY,
        handled_at INTEGER NOT NULL
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS applied_events (
        event_id TEXT PRIMARY KEY,
        exchange_id TEXT NOT NULL
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS mailboxes (
        peer TEXT PRIMARY KEY,
        room_id TEXT NOT NULL
    )
    """,
)
_OPEN_STATES: Final = tuple(sorted(state.value for state in set(State) - TERMINAL))


@dataclass(frozen=True)
class ExchangeRecord:
    """An exchange and where it runs.

    Attributes:
        exchange: The state machine's current value.
        peer: The other party's Matrix user id, when known.
        room_id: The mailbox room the exchange runs in.
        created_at: When it was opened (epoch seconds).
        updated_at: When it last changed.
        last_event_id: The event that last moved it (ours or the peer's), when known.
    """

    exchange: Exchange
    peer: str | None
    room_id: str
    created_at: int
    updated_at: int
    last_event_id: str | None


class ExchangeStore:
    """The exchanges of one party. Create with :meth:`open`; close with :meth:`close`."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self._db = connection

    @classmethod
    def open(cls, path: Path) -> ExchangeStore:
        """Open (creating if needed) the store at ``path``.

        Raises:
            StoreError: the file cannot be opened or has an unknown schema version.
        """
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(path, isolation_level=None, timeout=10.0)
            db.execute("PRAGMA journal_mode=WAL")
            version = db.execute("PRAGMA user_version").fetchone()[0]
            if version not in (0, _SCHEMA_VERSION):
                db.close()
                raise StoreError(f"exchange store has unknown schema version {version}")
            with _transaction(db):
                for statement in _SCHEMA:
                    db.execute(statement)
                db.execute(f"PRAGMA user_version={_SCHEMA_VERSION}")
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open the exchange store: {exc}") from exc
        return cls(db)

    def close(self) -> None:
        """Close the database connection."""
        self._db.close()

    # --- exchanges -----------------------------------------------------------------

    def get(self, exchange_id: str) -> Exchange | None:
        """The exchange with this id, or None."""
        record = self.record(exchange_id)
        return record.exchange if record is not None else None

    def record(self, exchange_id: str) -> ExchangeRecord | None:
        """The exchange with this id and where it runs, or None."""
        row = self._db.execute(
            "SELECT * FROM exchanges WHERE exchange_id = ?", (exchange_id,)
        ).fetchone()
        return _record(row) if row is not None else None

    def put(
        self,
        exchange: Exchange,
        *,
        room_id: str,
        peer: str | None,
        now: int,
        last_event_id: str | None = None,
        applied_event_id: str | None = None,
    ) -> None:
        """Insert or replace an exchange (``created_at`` is kept on update).

        Args:
            exchange: The new value.
            room_id: The mailbox room.
            peer: The other party, if known (a known peer is never overwritten by None).
            now: Epoch seconds.
            last_event_id: The event that moved it, if known.
            applied_event_id: An inbound event this move applied; recorded in the same
                transaction, so that a crash cannot apply it twice.
        """
        with _transaction(self._db):
            self._upsert(exchange, room_id, peer, now, last_event_id)
            if applied_event_id is not None:
                self._db.execute(
                    "INSERT OR IGNORE INTO applied_events (event_id, exchange_id) VALUES (?, ?)",
                    (applied_event_id, exchange.exchange_id),
                )

    def applied(self, event_id: str) -> bool:
        """Whether inbound ``event_id`` already moved an exchange."""
        row = self._db.execute(
            "SELECT 1 FROM applied_events WHERE event_id = ?", (event_id,)
        ).fetchone()
        return row is not None

    def _upsert(
        self, exchange: Exchange, room_id: str, peer: str | None, now: int, last: str | None
    ) -> None:
        self._db.execute(
            """
            INSERT INTO exchanges (exchange_id, kind, state, expires_at, history, peer,
                                   room_id, created_at, updated_at, last_event_id)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            ON CONFLICT (exchange_id) DO UPDATE SET
                kind = excluded.kind, state = excluded.state,
                expires_at = excluded.expires_at, history = excluded.history,
                peer = COALESCE(excluded.peer, exchanges.peer), room_id = excluded.room_id,
                updated_at = excluded.updated_at,
                last_event_id = COALESCE(excluded.last_event_id, exchanges.last_event_id)
            """,
            (
                exchange.exchange_id,
                exchange.kind.value,
                exchange.state.value,
                exchange.expires_at,
                json.dumps([signal.value for signal in exchange.history]),
                peer,
                room_id,
                now,
                now,
                last,
            ),
        )

    def set_last_event_id(self, exchange_id: str, event_id: str) -> None:
        """Record the event that moved an exchange (known only after sending)."""
        self._db.execute(
            "UPDATE exchanges SET last_event_id = ? WHERE exchange_id = ?",
            (event_id, exchange_id),
        )

    def due(self, now: int) -> list[ExchangeRecord]:
        """Open exchanges whose deadline passed at ``now``, oldest deadline first."""
        placeholders = ", ".join("?" for _ in _OPEN_STATES)
        rows = self._db.execute(
            f"SELECT * FROM exchanges WHERE state IN ({placeholders}) "  # noqa: S608 - fixed
            "AND expires_at IS NOT NULL AND expires_at < ? ORDER BY expires_at",
            (*_OPEN_STATES, now),
        ).fetchall()
        records = [_record(row) for row in rows]
        return [record for record in records if record.exchange.is_due(now)]

    # --- handled events and mailboxes ----------------------------------------------

    def mark_handled(self, event_id: str, now: int) -> None:
        """Record that processing of inbound ``event_id`` finished."""
        self._db.execute(
            "INSERT OR IGNORE INTO handled_events (event_id, handled_at) VALUES (?, ?)",
            (event_id, now),
        )

    def is_handled(self, event_id: str) -> bool:
        """Whether processing of inbound ``event_id`` finished earlier."""
        row = self._db.execute(
            "SELECT 1 FROM handled_events WHERE event_id = ?", (event_id,)
        ).fetchone()
        return row is not None

    def remember_mailbox(self, peer: str, room_id: str) -> None:
        """Remember ``room_id`` as the mailbox shared with ``peer``."""
        self._db.execute(
            "INSERT INTO mailboxes (peer, room_id) VALUES (?, ?) "
            "ON CONFLICT (peer) DO UPDATE SET room_id = excluded.room_id",
            (peer, room_id),
        )

    def peer_of_room(self, room_id: str) -> str | None:
        """The peer whose mailbox is ``room_id``, if remembered."""
        row = self._db.execute(
            "SELECT peer FROM mailboxes WHERE room_id = ?", (room_id,)
        ).fetchone()
        return str(row[0]) if row is not None else None


@contextmanager
def _transaction(db: sqlite3.Connection) -> Iterator[None]:
    db.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


def _record(row: tuple[object, ...]) -> ExchangeRecord:
    (exchange_id, kind, state, expires_at, history, peer, room_id, created, updated, last) = row
    try:
        exchange = Exchange(
            exchange_id=str(exchange_id),
            kind=Kind(str(kind)),
            state=State(str(state)),
            expires_at=expires_at if isinstance(expires_at, int) else None,
            history=tuple(Signal(value) for value in json.loads(str(history))),
        )
    except (ValueError, TypeError) as exc:
        raise StoreError(f"exchange {exchange_id!s} is stored in an unreadable form") from exc
    return ExchangeRecord(
        exchange=exchange,
        peer=str(peer) if peer is not None else None,
        room_id=str(room_id),
        created_at=int(str(created)),
        updated_at=int(str(updated)),
        last_event_id=str(last) if last is not None else None,
    )
