"""The one SQL layer of the stores: SQLite (a file) or PostgreSQL (a DSN), same SQL on both.

A location that starts with ``postgresql://`` (or ``postgres://``) is a
PostgreSQL DSN; anything else is a SQLite file path. SQLite suits one process;
PostgreSQL lets several processes share a store.

Statements are written once with ``?`` placeholders; :class:`Tx` rewrites them
for psycopg and appends ``FOR UPDATE`` where a caller asks for a row lock. Both
drivers run in autocommit mode and every transaction is an explicit
``BEGIN``/``COMMIT`` issued here, so no driver opens one behind a store's back.

Every driver error becomes a :class:`~onceonly.errors.StoreError` naming the
store, so a database problem never escapes as a driver-specific exception.

A store declares a :class:`Schema` (its name, version and ``CREATE``
statements) and its queries; :class:`SqlStore` supplies opening, schema
creation, version checking and closing (:class:`SqlHandle` just closing, for a
store whose ``open`` takes more than a location). Schema versions are kept per
store in one shared table, so several stores can live in one database.

This module does I/O and is not part of the pure core.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal, Self

from onceonly.errors import OnceOnlyError, StoreError

Dialect = Literal["sqlite", "postgres"]

_POSTGRES_PREFIXES: Final = ("postgresql://", "postgres://")
_SQLITE_BUSY_TIMEOUT_SECONDS: Final = 60.0
_SQLITE_BUSY_CODES: Final = frozenset({sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED})
_POSTGRES_CONNECT_TIMEOUT_SECONDS: Final = 10
# Every store takes this advisory lock while creating its tables: concurrent
# CREATE TABLE IF NOT EXISTS can still collide on PostgreSQL's catalog index.
_SCHEMA_LOCK_KEY: Final = 0x6F6E63656F6E6C79  # "onceonly"
_VERSION_TABLE: Final = (
    "CREATE TABLE IF NOT EXISTS onceonly_schema"
    " (component TEXT PRIMARY KEY, version INTEGER NOT NULL)"
)


def is_postgres_location(location: str | os.PathLike[str]) -> bool:
    """Return whether ``location`` is a PostgreSQL DSN rather than a SQLite path."""
    return isinstance(location, str) and location.startswith(_POSTGRES_PREFIXES)


def _driver_errors() -> tuple[type[Exception], ...]:
    errors: list[type[Exception]] = [sqlite3.Error]
    try:
        import psycopg
    except ImportError:  # pragma: no cover - psycopg is a declared dependency
        return tuple(errors)
    errors.append(psycopg.Error)
    return tuple(errors)


DRIVER_ERRORS: Final = _driver_errors()
"""The driver exception classes this layer turns into :class:`StoreError`."""


@dataclass(frozen=True)
class Schema:
    """What a store keeps in the database.

    Attributes:
        name: Human name of the store; names it in errors and keys its version.
        version: The schema version this code writes and reads.
        statements: The ``CREATE ... IF NOT EXISTS`` statements (and any seed
            rows), or a function of the dialect returning them where column
            types differ between SQLite and PostgreSQL.
    """

    name: str
    version: int
    statements: Sequence[str] | Callable[[Dialect], Sequence[str]]

    def statements_for(self, dialect: Dialect) -> Sequence[str]:
        """The statements to run on ``dialect``."""
        return self.statements(dialect) if callable(self.statements) else self.statements


class Tx:
    """A cursor inside one transaction, speaking ``?`` placeholders on both databases."""

    def __init__(self, cursor: Any, *, dialect: Dialect) -> None:
        self._cursor = cursor
        self.dialect: Dialect = dialect

    @property
    def postgres(self) -> bool:
        """Whether the database is PostgreSQL."""
        return self.dialect == "postgres"

    def execute(self, sql: str, params: Sequence[Any] = (), *, lock: bool = False) -> Tx:
        """Run ``sql``; ``lock`` row-locks the selected rows until the transaction ends.

        SQLite has no row locks; its write transactions begin with ``BEGIN
        IMMEDIATE``, which already holds the database's write lock.
        """
        if self.postgres:
            sql = sql.replace("?", "%s")
            if lock:
                sql += " FOR UPDATE"
        self._cursor.execute(sql, tuple(params))
        return self

    def one(self) -> Any:
        """The next row of the last statement, or ``None``."""
        return self._cursor.fetchone()

    def all(self) -> list[Any]:
        """All remaining rows of the last statement."""
        return list(self._cursor.fetchall())


class Database:
    """One connection to a store's database. Not safe to share between threads.

    Use :func:`open_database`; the constructor only stores its arguments.

    Attributes:
        store: Human name of the store, for error messages.
        dialect: ``"sqlite"`` or ``"postgres"``.
    """

    def __init__(self, raw: Any, *, dialect: Dialect, store: str) -> None:
        self._raw = raw
        self.dialect: Dialect = dialect
        self.store = store
        self._in_transaction = False

    @property
    def postgres(self) -> bool:
        """Whether the database is PostgreSQL."""
        return self.dialect == "postgres"

    def write(self) -> AbstractContextManager[Tx]:
        """A transaction for reads and writes; commits on success, rolls back on error.

        Writers serialise: on SQLite ``BEGIN IMMEDIATE`` takes the write lock at
        once (a deferred transaction that reads and then writes could fail with
        ``SQLITE_BUSY`` instead of waiting its turn); on PostgreSQL callers lock
        the rows they will change with ``execute(..., lock=True)``.

        Returns:
            A context manager yielding a :class:`Tx`; driver errors inside it
            surface as :class:`StoreError` after the rollback.
        """
        return self._transaction("BEGIN IMMEDIATE", "BEGIN")

    def read(self) -> AbstractContextManager[Tx]:
        """A read-only transaction that sees one consistent snapshot for all its reads.

        Returns:
            A context manager yielding a :class:`Tx` (see :meth:`write`).
        """
        return self._transaction("BEGIN", "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")

    @contextmanager
    def _transaction(self, sqlite_begin: str, postgres_begin: str) -> Iterator[Tx]:
        if self._in_transaction:
            raise StoreError(f"{self.store}: nested transactions are not supported")
        self._in_transaction = True
        try:
            cursor = self._raw.cursor()
            tx = Tx(cursor, dialect=self.dialect)
            tx.execute(postgres_begin if self.postgres else sqlite_begin)
            try:
                yield tx
                tx.execute("COMMIT")
            except BaseException:
                # Also after a failed COMMIT, which can leave a SQLite transaction open.
                with suppress(*DRIVER_ERRORS):  # the original error is the one to report
                    cursor.execute("ROLLBACK")
                raise
        except OnceOnlyError:
            raise
        except DRIVER_ERRORS as exc:
            raise StoreError(f"{self.store} database error: {exc}") from exc
        finally:
            self._in_transaction = False

    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Run one statement as its own transaction and return its rows (if it has any).

        A single statement is atomic by itself (e.g. a conditional ``UPDATE ...
        RETURNING``), so it needs no ``BEGIN``; inside :meth:`write` or
        :meth:`read` use the :class:`Tx` instead.

        Raises:
            StoreError: the database failed, or a transaction is open on this connection.
        """
        if self._in_transaction:
            raise StoreError(f"{self.store}: use the open transaction, not execute()")
        try:
            cursor = self._raw.cursor()
            Tx(cursor, dialect=self.dialect).execute(sql, params)
            rows = cursor.fetchall() if cursor.description is not None else []
        except DRIVER_ERRORS as exc:
            raise StoreError(f"{self.store} database error: {exc}") from exc
        return [tuple(row) for row in rows]

    def ensure_schema(self, schema: Schema) -> None:
        """Create ``schema``'s tables if this database lacks them, and check its version.

        Safe when several processes open the same database at once.

        Raises:
            StoreError: the database failed or holds another version of the schema.
        """
        with self.write() as tx:
            if self.postgres:
                tx.execute("SELECT pg_advisory_xact_lock(?)", (_SCHEMA_LOCK_KEY,))
            tx.execute(_VERSION_TABLE)
            row = tx.execute(
                "SELECT version FROM onceonly_schema WHERE component = ?", (schema.name,)
            ).one()
            if row is not None and row[0] != schema.version:
                raise StoreError(
                    f"{schema.name} schema version {row[0]} is not supported"
                    f" (expected {schema.version})"
                )
            if row is None:
                for statement in schema.statements_for(self.dialect):
                    tx.execute(statement)
                tx.execute(
                    "INSERT INTO onceonly_schema (component, version) VALUES (?, ?)",
                    (schema.name, schema.version),
                )

    def close(self) -> None:
        """Close the connection.

        Raises:
            StoreError: the driver failed to close it.
        """
        try:
            self._raw.close()
        except DRIVER_ERRORS as exc:
            raise StoreError(f"{self.store} database error on close: {exc}") from exc


def open_database(location: str | os.PathLike[str], *, store: str) -> Database:
    """Connect to a SQLite file or a PostgreSQL DSN.

    SQLite files use WAL (readers do not block the writer), ``synchronous=FULL``
    (an acknowledged write survives power loss) and foreign keys; waiting for
    another process's write lock is bounded by a busy timeout.

    Args:
        location: A ``postgresql://``/``postgres://`` DSN, else a SQLite file path.
        store: Human name of the store, for error messages.

    Raises:
        StoreError: the database cannot be opened.
    """
    if is_postgres_location(location):
        return _open_postgres(str(location), store)
    return _open_sqlite(Path(location), store)


def _open_postgres(dsn: str, store: str) -> Database:
    import psycopg  # here, so SQLite-only use never loads it

    try:
        raw = psycopg.connect(
            dsn, autocommit=True, connect_timeout=_POSTGRES_CONNECT_TIMEOUT_SECONDS
        )
    except psycopg.Error as exc:
        raise StoreError(f"cannot open {store}: cannot connect to PostgreSQL: {exc}") from exc
    return Database(raw, dialect="postgres", store=store)


def _open_sqlite(path: Path, store: str) -> Database:
    try:
        raw = sqlite3.connect(path, timeout=_SQLITE_BUSY_TIMEOUT_SECONDS, isolation_level=None)
        try:
            raw.execute("PRAGMA foreign_keys=ON")
            _enable_wal(raw)
            raw.execute("PRAGMA synchronous=FULL")
        except BaseException:
            raw.close()
            raise
    except sqlite3.Error as exc:
        raise StoreError(f"cannot open {store}: SQLite file {path.name!r}: {exc}") from exc
    return Database(raw, dialect="sqlite", store=store)


def _enable_wal(raw: sqlite3.Connection) -> None:
    # Switching the journal mode does not wait on the busy timeout, so two
    # processes opening a fresh file at once can see SQLITE_BUSY: retry a while.
    deadline = time.monotonic() + _SQLITE_BUSY_TIMEOUT_SECONDS
    while True:
        try:
            raw.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            busy = getattr(exc, "sqlite_errorcode", None) in _SQLITE_BUSY_CODES
            if not busy or time.monotonic() > deadline:
                raise
            time.sleep(0.02)


def open_schema(location: str | os.PathLike[str], schema: Schema) -> Database:
    """Open ``location`` for the store ``schema`` describes and ensure its tables.

    Raises:
        StoreError: the database cannot be opened, fails, or holds another schema version.
    """
    database = open_database(location, store=schema.name)
    try:
        database.ensure_schema(schema)
    except BaseException:
        database.close()
        raise
    return database


class SqlHandle:
    """Owns one :class:`Database` and closes it: the base of every store.

    The constructor only stores the connection; a store opens itself with a
    classmethod (see :class:`SqlStore`).
    """

    def __init__(self, database: Database) -> None:
        self._db = database

    def close(self) -> None:
        """Close the database connection."""
        self._db.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class SqlStore(SqlHandle):
    """A store opened by location alone: a subclass sets :attr:`SCHEMA` and writes its queries.

    Attributes:
        SCHEMA: The store's tables, created on :meth:`open` if missing.
    """

    SCHEMA: Schema

    @classmethod
    def open(cls, location: str | os.PathLike[str]) -> Self:
        """Open (creating its tables if needed) the store at ``location``.

        Args:
            location: A ``postgresql://`` (or ``postgres://``) DSN, or a SQLite file path.

        Raises:
            StoreError: the database cannot be opened or holds another schema version.
        """
        return cls(open_schema(location, cls.SCHEMA))
