"""SQL plumbing for the status registry: one interface over SQLite and PostgreSQL.

Only this module and :mod:`issuer.status_registry.registry` touch SQL. Queries
are written once with ``?`` placeholders; :class:`Tx` rewrites them for
psycopg and adds ``FOR UPDATE`` where a caller asks for a row lock.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Final, Protocol

from onceonly.errors import OnceOnlyError, StoreError

SCHEMA_VERSION: Final = 1
_SQLITE_BUSY_TIMEOUT_SECONDS: Final = 60.0
_SQLITE_BUSY_CODES: Final = frozenset({sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED})
# Arbitrary constant naming this schema's advisory lock on PostgreSQL.
_PG_SCHEMA_LOCK: Final = 0x5354415455534C
_FOR_UPDATE: Final = " FOR UPDATE"


class _Cursor(Protocol):
    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any: ...
    def fetchone(self) -> Any: ...
    def fetchall(self) -> list[Any]: ...


class Tx:
    """A cursor inside a transaction, speaking ``?`` placeholders on both backends."""

    def __init__(self, cursor: _Cursor, *, postgres: bool) -> None:
        self._cursor = cursor
        self._postgres = postgres

    def execute(self, sql: str, params: Sequence[Any] = (), *, lock: bool = False) -> Tx:
        """Run ``sql``; ``lock`` row-locks the selected rows where the backend can.

        SQLite has no row locks; its transactions start with ``BEGIN IMMEDIATE``,
        which already holds the database write lock.
        """
        if self._postgres:
            sql = sql.replace("?", "%s")
            if lock:
                sql += _FOR_UPDATE
        self._cursor.execute(sql, params)
        return self

    def one(self) -> Any:
        """The next row, or ``None``."""
        return self._cursor.fetchone()

    def all(self) -> list[Any]:
        """All remaining rows."""
        return list(self._cursor.fetchall())


class Database(Protocol):
    """What the registry needs from a connection."""

    postgres: bool

    def transaction(self, *, write: bool) -> Any:
        """Context manager yielding a :class:`Tx`; commits on success, rolls back on error."""

    def close(self) -> None:
        """Close the connection."""


class _SqliteDatabase:
    postgres = False

    def __init__(self, path: str) -> None:
        self._conn = sqlite3.connect(
            path, timeout=_SQLITE_BUSY_TIMEOUT_SECONDS, isolation_level=None
        )
        self._conn.execute("PRAGMA foreign_keys=ON")
        self._enable_wal()

    def _enable_wal(self) -> None:
        # Switching the journal mode does not wait on the busy timeout, so two
        # processes opening a fresh file at once would see SQLITE_BUSY; retry.
        deadline = time.monotonic() + _SQLITE_BUSY_TIMEOUT_SECONDS
        while True:
            try:
                self._conn.execute("PRAGMA journal_mode=WAL")
                return
            except sqlite3.OperationalError as exc:
                busy = getattr(exc, "sqlite_errorcode", None) in _SQLITE_BUSY_CODES
                if not busy or time.monotonic() > deadline:
                    raise
                time.sleep(0.02)

    @contextmanager
    def transaction(self, *, write: bool) -> Iterator[Tx]:
        cursor = self._conn.cursor()
        # Writers take the write lock up front: a deferred transaction that reads
        # and then writes can fail with SQLITE_BUSY instead of waiting its turn.
        cursor.execute("BEGIN IMMEDIATE" if write else "BEGIN")
        try:
            yield Tx(cursor, postgres=False)
        except BaseException:
            # A failed statement may already have ended the transaction.
            if self._conn.in_transaction:
                cursor.execute("ROLLBACK")
            raise
        cursor.execute("COMMIT")

    def close(self) -> None:
        self._conn.close()


class _PostgresDatabase:
    postgres = True

    def __init__(self, dsn: str) -> None:
        import psycopg  # imported here so SQLite-only use never loads it

        self._conn = psycopg.connect(dsn, autocommit=True, connect_timeout=10)

    @contextmanager
    def transaction(self, *, write: bool) -> Iterator[Tx]:
        del write  # PostgreSQL locks rows on demand (FOR UPDATE)
        with self._conn.transaction(), self._conn.cursor() as cursor:
            yield Tx(cursor, postgres=True)

    def close(self) -> None:
        self._conn.close()


def database_errors() -> tuple[type[Exception], ...]:
    """The driver exception classes to translate into :class:`StoreError`."""
    errors: list[type[Exception]] = [sqlite3.Error]
    try:
        import psycopg
    except ImportError:  # pragma: no cover - psycopg is a declared dependency
        pass
    else:
        errors.append(psycopg.Error)
    return tuple(errors)


@contextmanager
def transaction(database: Database, *, write: bool = True) -> Iterator[Tx]:
    """A transaction whose driver errors surface as :class:`StoreError`.

    ``write=False`` promises only reads, which lets SQLite run it without the write lock.
    """
    try:
        with database.transaction(write=write) as tx:
            yield tx
    except OnceOnlyError:
        raise
    except database_errors() as exc:
        raise StoreError(f"status registry database error: {exc}") from exc


def connect(target: str) -> Database:
    """Open a ``postgresql://``/``postgres://`` DSN with psycopg, anything else as a SQLite file.

    Raises:
        StoreError: the database cannot be opened.
    """
    try:
        if target.startswith(("postgresql://", "postgres://")):
            return _PostgresDatabase(target)
        return _SqliteDatabase(target)
    except database_errors() as exc:
        raise StoreError(f"cannot open status registry: {exc}") from exc


def create_schema(database: Database) -> None:
    """Create the tables if missing (safe when several processes do it at once).

    Raises:
        StoreError: the database fails or holds another schema version.
    """
    blob = "BYTEA" if database.postgres else "BLOB"
    with transaction(database) as tx:
        if database.postgres:
            # Concurrent CREATE TABLE IF NOT EXISTS can still collide on PostgreSQL.
            tx.execute("SELECT pg_advisory_xact_lock(?)", (_PG_SCHEMA_LOCK,))
        tx.execute(
            "CREATE TABLE IF NOT EXISTS status_registry_meta ("
            " id INTEGER PRIMARY KEY CHECK (id = 1),"
            " schema_version INTEGER NOT NULL,"
            " active_list_id INTEGER)"
        )
        tx.execute(
            "CREATE TABLE IF NOT EXISTS status_lists ("
            " list_id INTEGER PRIMARY KEY,"
            " uri TEXT NOT NULL UNIQUE,"
            " bits INTEGER NOT NULL,"
            " size INTEGER NOT NULL,"
            f" permutation_key {blob} NOT NULL,"
            " allocated INTEGER NOT NULL,"
            " created_at BIGINT NOT NULL)"
        )
        tx.execute(
            "CREATE TABLE IF NOT EXISTS status_entries ("
            " list_id INTEGER NOT NULL REFERENCES status_lists (list_id),"
            " idx INTEGER NOT NULL,"
            " status INTEGER NOT NULL,"
            " vct TEXT NOT NULL,"
            " issued_at BIGINT NOT NULL,"
            " updated_at BIGINT NOT NULL,"
            " PRIMARY KEY (list_id, idx))"
        )
        tx.execute(
            "INSERT INTO status_registry_meta (id, schema_version, active_list_id)"
            " VALUES (1, ?, NULL) ON CONFLICT (id) DO NOTHING",
            (SCHEMA_VERSION,),
        )
        (version,) = tx.execute("SELECT schema_version FROM status_registry_meta").one()
    if version != SCHEMA_VERSION:
        raise StoreError(f"status registry schema version {version} is not supported")
