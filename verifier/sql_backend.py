"""One small SQL interface over SQLite (a file) and PostgreSQL (a DSN) for the verifier's stores.

The nonce store and the audit log run on either database with the same SQL: a
location that starts with ``postgresql://`` (or ``postgres://``) is a PostgreSQL
DSN, anything else is a SQLite file path. SQLite is the default for a single
verifier process; PostgreSQL is for several verifier processes sharing state.

Statements are written with ``?`` placeholders and translated for psycopg.
Every driver error is turned into :class:`~onceonly.errors.StoreError`, so a
database problem never escapes as a driver-specific exception.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any, Literal

from onceonly.errors import StoreError

Dialect = Literal["sqlite", "postgres"]

_POSTGRES_PREFIXES = ("postgresql://", "postgres://")
_SQLITE_BUSY_TIMEOUT_S = 30.0
_POSTGRES_CONNECT_TIMEOUT_S = 10
# All verifier components share one advisory lock while creating tables: concurrent
# ``CREATE TABLE IF NOT EXISTS`` in PostgreSQL can still fail on the catalog's unique index.
_SCHEMA_LOCK_KEY = 0x6F6E6365  # "once"

_VERSION_TABLE = (
    "CREATE TABLE IF NOT EXISTS verifier_schema "
    "(component TEXT PRIMARY KEY, version INTEGER NOT NULL)"
)


def is_postgres_location(location: str | os.PathLike[str]) -> bool:
    """Return whether ``location`` is a PostgreSQL DSN (rather than a SQLite path)."""
    return isinstance(location, str) and location.startswith(_POSTGRES_PREFIXES)


def _driver_errors() -> tuple[type[BaseException], ...]:
    errors: list[type[BaseException]] = [sqlite3.Error]
    try:
        import psycopg
    except ImportError:  # pragma: no cover - psycopg is a hard dependency
        return tuple(errors)
    errors.append(psycopg.Error)
    return tuple(errors)


_DRIVER_ERRORS = _driver_errors()


class SqlConnection:
    """A connection in autocommit mode with explicit, dialect-aware transactions.

    Use :func:`open_sql` to create one. Not safe to share between threads.

    Attributes:
        dialect: ``"sqlite"`` or ``"postgres"``.
    """

    def __init__(self, raw: Any, dialect: Dialect) -> None:
        self._raw = raw
        self.dialect: Dialect = dialect
        self._in_transaction = False

    def _sql(self, statement: str) -> str:
        return statement.replace("?", "%s") if self.dialect == "postgres" else statement

    def execute(self, statement: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Run one statement and return all its rows (empty for statements without rows).

        Raises:
            StoreError: the database refused or failed the statement.
        """
        try:
            cursor = self._raw.execute(self._sql(statement), tuple(params))
            rows = cursor.fetchall() if cursor.description is not None else []
        except _DRIVER_ERRORS as exc:
            raise StoreError(f"database error: {exc}") from exc
        return [tuple(row) for row in rows]

    @contextmanager
    def write_transaction(self) -> Iterator[None]:
        """A transaction that holds the write lock from its first statement.

        SQLite: ``BEGIN IMMEDIATE`` takes the database's write lock at once, so two
        processes never both read the same chain head. PostgreSQL: a plain
        transaction; callers lock the rows they update (``FOR UPDATE``).

        Raises:
            StoreError: the transaction could not begin or commit.
        """
        with self._transaction("BEGIN IMMEDIATE", None):
            yield

    @contextmanager
    def snapshot(self) -> Iterator[None]:
        """A read-only transaction that sees one consistent state for all its reads."""
        with self._transaction(
            "BEGIN", "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY"
        ):
            yield

    @contextmanager
    def _transaction(self, sqlite_begin: str, postgres_first: str | None) -> Iterator[None]:
        # Both drivers run in autocommit mode, so BEGIN/COMMIT here are the only
        # transaction boundaries: no driver opens one behind our back.
        if self._in_transaction:
            raise StoreError("nested transactions are not supported")
        self._in_transaction = True
        try:
            self.execute(sqlite_begin if self.dialect == "sqlite" else "BEGIN")
            try:
                if self.dialect == "postgres" and postgres_first is not None:
                    self.execute(postgres_first)
                yield
            except BaseException:
                with suppress(*_DRIVER_ERRORS):  # the original error is the one to report
                    self._raw.execute("ROLLBACK")
                raise
            self.execute("COMMIT")
        finally:
            self._in_transaction = False

    def ensure_schema(self, component: str, version: int, statements: Sequence[str]) -> None:
        """Create ``component``'s tables once and check its schema version.

        Raises:
            StoreError: the database holds a different schema version of ``component``.
        """
        with self.write_transaction():
            if self.dialect == "postgres":
                self.execute("SELECT pg_advisory_xact_lock(?)", (_SCHEMA_LOCK_KEY,))
            self.execute(_VERSION_TABLE)
            rows = self.execute(
                "SELECT version FROM verifier_schema WHERE component = ?", (component,)
            )
            if rows and rows[0][0] != version:
                raise StoreError(
                    f"{component} schema version {rows[0][0]} is not the supported {version}"
                )
            if not rows:
                for statement in statements:
                    self.execute(statement)
                self.execute(
                    "INSERT INTO verifier_schema (component, version) VALUES (?, ?)",
                    (component, version),
                )

    def close(self) -> None:
        """Close the connection (idempotent)."""
        try:
            self._raw.close()
        except _DRIVER_ERRORS as exc:
            raise StoreError(f"database error on close: {exc}") from exc


def open_sql(location: str | os.PathLike[str]) -> SqlConnection:
    """Connect to a SQLite file or a PostgreSQL DSN.

    SQLite files use WAL (readers do not block the writer) and ``synchronous=FULL``
    (an acknowledged write survives power loss); waiting for another process's
    write lock is bounded by a busy timeout.

    Raises:
        StoreError: the database cannot be opened.
    """
    if is_postgres_location(location):
        return _open_postgres(str(location))
    return _open_sqlite(Path(location))


def _open_postgres(dsn: str) -> SqlConnection:
    import psycopg

    try:
        raw = psycopg.connect(dsn, autocommit=True, connect_timeout=_POSTGRES_CONNECT_TIMEOUT_S)
    except psycopg.Error as exc:
        raise StoreError(f"cannot connect to PostgreSQL: {exc}") from exc
    return SqlConnection(raw, "postgres")


def _open_sqlite(path: Path) -> SqlConnection:
    try:
        raw = sqlite3.connect(path, timeout=_SQLITE_BUSY_TIMEOUT_S, isolation_level=None)
    except sqlite3.Error as exc:
        raise StoreError(f"cannot open SQLite database {path.name!r}: {exc}") from exc
    connection = SqlConnection(raw, "sqlite")
    try:
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=FULL")
    except StoreError:
        raw.close()
        raise
    return connection
