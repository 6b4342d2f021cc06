"""SQL plumbing shared by the issuer's own stores (the register and the issuance log).

Built on the status registry's connection layer (:mod:`issuer.status_registry.database`),
so every issuer store speaks the same ``?``-placeholder dialect on SQLite and
PostgreSQL. What this module adds is error wording that names the store at fault
and a schema-creation step that records a per-store schema version.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from issuer.status_registry.database import Database, Tx, connect, database_errors
from onceonly.errors import OnceOnlyError, StoreError

_IDENTIFIER = re.compile(r"[a-z_][a-z0-9_]*")

__all__ = ["Database", "Tx", "create_versioned_schema", "guarded", "open_database"]


def open_database(target: str, *, store: str) -> Database:
    """Open ``target``: a ``postgresql://``/``postgres://`` DSN, else a SQLite file path.

    Args:
        target: DSN or file path.
        store: Human name of the store, used in error messages.

    Raises:
        StoreError: the database cannot be opened.
    """
    try:
        return connect(target)
    except StoreError as exc:
        # The shared helper words its error for the status registry; say which store failed.
        raise StoreError(f"cannot open {store}: {exc.__cause__ or exc.message}") from exc


@contextmanager
def guarded(database: Database, *, store: str, write: bool = True) -> Iterator[Tx]:
    """A transaction whose driver errors surface as :class:`StoreError` naming ``store``.

    Args:
        database: The open database.
        store: Human name of the store, for error messages.
        write: ``False`` promises only reads, so SQLite need not take its write lock.
    """
    try:
        with database.transaction(write=write) as tx:
            yield tx
    except OnceOnlyError:
        raise
    except database_errors() as exc:
        raise StoreError(f"{store} database error: {exc}") from exc


def create_versioned_schema(
    database: Database,
    *,
    store: str,
    meta_table: str,
    version: int,
    create_tables: Callable[[Tx], None],
) -> None:
    """Create a store's tables if missing and check its schema version.

    Safe when several processes open the same database at once: on PostgreSQL a
    transaction-scoped advisory lock (derived from ``meta_table``) serializes the
    ``CREATE TABLE IF NOT EXISTS`` statements, which can otherwise collide.

    Args:
        database: The open database.
        store: Human name of the store, for error messages.
        meta_table: Name of the one-row table holding the schema version.
        version: The schema version this code writes and reads.
        create_tables: Issues the store's ``CREATE TABLE IF NOT EXISTS`` statements.

    Raises:
        StoreError: the database fails or holds another schema version.
    """
    if not _IDENTIFIER.fullmatch(meta_table):
        raise ValueError(f"not a plain SQL table name: {meta_table!r}")
    with guarded(database, store=store) as tx:
        if database.postgres:
            tx.execute("SELECT pg_advisory_xact_lock(?)", (zlib.crc32(meta_table.encode()),))
        tx.execute(
            f"CREATE TABLE IF NOT EXISTS {meta_table} ("
            " id INTEGER PRIMARY KEY CHECK (id = 1),"
            " schema_version INTEGER NOT NULL)"
        )
        create_tables(tx)
        tx.execute(
            f"INSERT INTO {meta_table} (id, schema_version) VALUES (1, ?)"  # noqa: S608 - checked name
            " ON CONFLICT (id) DO NOTHING",
            (version,),
        )
        query = f"SELECT schema_version FROM {meta_table}"  # noqa: S608 - checked name
        (found,) = tx.execute(query).one()
    if found != version:
        raise StoreError(f"{store} schema version {found} is not supported (expected {version})")
