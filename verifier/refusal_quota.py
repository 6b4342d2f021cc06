"""How many refused events of one sender the verifier records: a quota per sender and window.

Any Matrix account can send the verifier events it will refuse (junk, replays,
answers to no request of ours). Each refusal is worth an audit entry, but the
audit log is append-only, so without a bound a hostile account decides how much
an agency stores. :class:`RefusalQuota` counts refusals per sender in fixed
windows (``window`` seconds): the first ``limit`` of a window are recorded, the
rest only counted. Once a window has ended, :meth:`RefusalQuota.ended_windows`
hands out what was counted and not recorded, so the service records one entry
with the count instead (:meth:`RefusalQuota.forget` then drops the window).

The counts are in the verifier's database (SQLite or PostgreSQL), so they hold
across restarts and are shared by several verifier processes: each decision is
one conditional ``UPDATE``, so concurrent processes never record more than
``limit`` refusals of a sender in a window between them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Final, Self

from onceonly.errors import ConfigError
from onceonly.sql import Database, Schema, SqlHandle, open_schema

_SCHEMA: Final = Schema(
    "verifier refusal quota",
    1,
    (
        """
    CREATE TABLE IF NOT EXISTS verifier_refusal_counts (
        sender TEXT NOT NULL,
        window_start BIGINT NOT NULL,
        recorded BIGINT NOT NULL,
        suppressed BIGINT NOT NULL,
        PRIMARY KEY (sender, window_start)
    )
    """,
        "CREATE INDEX IF NOT EXISTS verifier_refusal_counts_window"
        " ON verifier_refusal_counts (window_start)",
    ),
)


@dataclass(frozen=True)
class SuppressedRefusals:
    """Refusals of one sender in one ended window that were counted, not recorded.

    Attributes:
        sender: Who sent them.
        window_start: First second of the window (epoch seconds).
        window_end: First second after it.
        recorded: How many of the sender's refusals in the window were recorded.
        suppressed: How many more were only counted.
    """

    sender: str
    window_start: int
    window_end: int
    recorded: int
    suppressed: int


class RefusalQuota(SqlHandle):
    """Per-sender counts of refused events. Create with :meth:`open`."""

    def __init__(self, database: Database, *, limit: int, window: int) -> None:
        super().__init__(database)
        if limit < 0 or window <= 0:
            raise ConfigError("the refusal quota needs limit >= 0 and window > 0")
        self._limit = limit
        self._window = window

    @classmethod
    def open(cls, location: str | os.PathLike[str], *, limit: int, window: int) -> Self:
        """Open (and create if needed) the quota's table.

        Args:
            location: SQLite file path or ``postgresql://`` DSN.
            limit: Refusals of one sender recorded per window (0: none, only counted).
            window: Window length in seconds.

        Raises:
            ConfigError: ``limit`` < 0 or ``window`` <= 0.
            StoreError: the database failed.
        """
        database = open_schema(location, _SCHEMA)
        try:
            return cls(database, limit=limit, window=window)
        except BaseException:
            database.close()
            raise

    def admit(self, sender: str, *, now: int) -> bool:
        """Count one refusal of ``sender``; whether it may be recorded in full.

        Raises:
            StoreError: the database failed.
        """
        start = now - now % self._window
        with self._db.write() as tx:
            tx.execute(
                "INSERT INTO verifier_refusal_counts (sender, window_start, recorded, suppressed)"
                " VALUES (?, ?, 0, 0) ON CONFLICT (sender, window_start) DO NOTHING",
                (sender, start),
            )
            admitted = tx.execute(
                "UPDATE verifier_refusal_counts SET recorded = recorded + 1"
                " WHERE sender = ? AND window_start = ? AND recorded < ? RETURNING recorded",
                (sender, start, self._limit),
            ).one()
            if admitted is None:
                tx.execute(
                    "UPDATE verifier_refusal_counts SET suppressed = suppressed + 1"
                    " WHERE sender = ? AND window_start = ?",
                    (sender, start),
                )
        return admitted is not None

    def ended_windows(self, *, now: int, limit: int = 100) -> list[SuppressedRefusals]:
        """Up to ``limit`` ended windows in which refusals were counted but not recorded."""
        rows = self._db.execute(
            "SELECT sender, window_start, recorded, suppressed FROM verifier_refusal_counts"
            " WHERE window_start <= ? AND suppressed > 0 ORDER BY window_start, sender LIMIT ?",
            (now - self._window, limit),
        )
        return [
            SuppressedRefusals(
                sender=str(sender),
                window_start=int(start),
                window_end=int(start) + self._window,
                recorded=int(recorded),
                suppressed=int(suppressed),
            )
            for sender, start, recorded, suppressed in rows
        ]

    def forget(self, window: SuppressedRefusals) -> bool:
        """Drop a window once its count is recorded; False if another process did first."""
        rows = self._db.execute(
            "DELETE FROM verifier_refusal_counts WHERE sender = ? AND window_start = ?"
            " AND suppressed = ? RETURNING sender",
            (window.sender, window.window_start, window.suppressed),
        )
        return bool(rows)

    def purge(self, *, now: int) -> int:
        """Delete ended windows with nothing left to record; returns how many."""
        rows = self._db.execute(
            "DELETE FROM verifier_refusal_counts WHERE window_start <= ? AND suppressed = 0"
            " RETURNING sender",
            (now - self._window,),
        )
        return len(rows)
