"""onceonly.sql: one interface on SQLite and PostgreSQL; failures are StoreError and roll back."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from onceonly.errors import StoreError, UnknownSubject
from onceonly.sql import (
    Database,
    Dialect,
    Schema,
    SqlStore,
    is_postgres_location,
    open_database,
    open_schema,
)

STORE = "test store"
COUNTER = Schema(
    "counter",
    1,
    (
        "CREATE TABLE IF NOT EXISTS counter (id INTEGER PRIMARY KEY, n INTEGER NOT NULL)",
        "INSERT INTO counter (id, n) VALUES (1, 0) ON CONFLICT (id) DO NOTHING",
    ),
)


class Boom(Exception):
    pass


@pytest.fixture(params=["sqlite", "postgres"])
def location(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh database: a SQLite file path or a PostgreSQL DSN with its own schema."""
    if request.param == "postgres":
        dsn: str = request.getfixturevalue("postgres_dsn")
        return dsn
    return str(tmp_path / "store.sqlite3")


@pytest.fixture
def db(location: str) -> Iterator[Database]:
    database = open_database(location, store=STORE)
    with database.write() as tx:
        tx.execute("CREATE TABLE t (v INTEGER NOT NULL)")
    yield database
    database.close()


def values(database: Database) -> list[int]:
    with database.read() as tx:
        return [v for (v,) in tx.execute("SELECT v FROM t ORDER BY v").all()]


def run_at_once(work: Callable[[], None], threads: int) -> list[BaseException]:
    """Run ``work`` in ``threads`` threads started together; return what they raised."""
    failures: list[BaseException] = []
    start = threading.Barrier(threads)

    def run() -> None:
        try:
            start.wait()
            work()
        except BaseException as exc:  # handed to the test, which asserts on it
            failures.append(exc)

    workers = [threading.Thread(target=run) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return failures


def test_location_kinds(tmp_path: Path) -> None:
    assert is_postgres_location("postgresql://u@127.0.0.1/db")
    assert is_postgres_location("postgres://u@127.0.0.1/db")
    assert not is_postgres_location(str(tmp_path / "x.sqlite3"))
    assert not is_postgres_location(tmp_path / "postgresql:")


def test_commit_and_rollback(db: Database) -> None:
    with pytest.raises(Boom), db.write() as tx:
        tx.execute("INSERT INTO t (v) VALUES (?)", (1,))
        raise Boom
    with db.write() as tx:
        tx.execute("INSERT INTO t (v) VALUES (?)", (2,))
        tx.execute("INSERT INTO t (v) VALUES (?)", (3,))
    assert values(db) == [2, 3]


def test_typed_errors_pass_through_and_roll_back(db: Database) -> None:
    with pytest.raises(UnknownSubject), db.write() as tx:
        tx.execute("INSERT INTO t (v) VALUES (?)", (7,))
        raise UnknownSubject("nobody")
    assert values(db) == []


def test_nested_transactions_are_refused(db: Database) -> None:
    with pytest.raises(StoreError, match="nested"), db.write() as tx:
        tx.execute("INSERT INTO t (v) VALUES (?)", (1,))
        with db.read():
            pass
    # The outer transaction was rolled back and the connection is usable again.
    assert values(db) == []


def test_driver_errors_become_store_errors_naming_the_store(db: Database) -> None:
    expected = pytest.raises(StoreError, match=r"^store_error: test store database error")
    with expected as caught, db.read() as tx:
        tx.execute("SELECT * FROM no_such_table")
    assert caught.value.code == "store_error"
    with pytest.raises(StoreError), db.write() as tx:
        tx.execute("INSERT INTO t (v) VALUES (?)", (1,))
        tx.execute("INSERT INTO t (v) VALUES (?)", (None,))  # NOT NULL
    assert values(db) == []  # the failed transaction left nothing behind
    with db.write() as tx:
        tx.execute("INSERT INTO t (v) VALUES (?)", (4,))
    assert values(db) == [4]


def test_single_statements_commit_on_their_own(db: Database, location: str) -> None:
    assert db.execute("INSERT INTO t (v) VALUES (?), (?)", (5, 6)) == []
    assert db.execute("UPDATE t SET v = v + 1 WHERE v = ? RETURNING v", (6,)) == [(7,)]
    other = open_database(location, store=STORE)
    try:
        assert other.execute("SELECT v FROM t ORDER BY v") == [(5,), (7,)]
    finally:
        other.close()
    with pytest.raises(StoreError, match="test store database error"):
        db.execute("SELECT * FROM no_such_table")
    with pytest.raises(StoreError, match="use the open transaction"), db.write():
        db.execute("INSERT INTO t (v) VALUES (?)", (8,))
    assert values(db) == [5, 7]


def test_unreachable_postgres_is_store_error() -> None:
    # Port 9 (discard) on loopback: nothing listens, the connection is refused at once.
    with pytest.raises(StoreError, match="cannot open x: cannot connect to PostgreSQL"):
        open_database("postgresql://postgres@127.0.0.1:9/test", store="x")


def test_unopenable_sqlite_file_is_store_error(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match=r"cannot open x: SQLite file 'db\.sqlite3'"):
        open_database(tmp_path / "missing-dir" / "db.sqlite3", store="x")


def test_sqlite_is_durable_and_enforces_foreign_keys(tmp_path: Path) -> None:
    database = open_database(tmp_path / "db.sqlite3", store=STORE)
    try:
        with database.read() as tx:
            assert tx.execute("PRAGMA journal_mode").one() == ("wal",)
            assert tx.execute("PRAGMA synchronous").one() == (2,)  # FULL
            assert tx.execute("PRAGMA foreign_keys").one() == (1,)
        assert not database.postgres
    finally:
        database.close()


def test_read_sees_one_snapshot(db: Database, location: str) -> None:
    other = open_database(location, store=STORE)
    try:
        with db.read() as tx:
            assert tx.execute("SELECT COUNT(*) FROM t").one() == (0,)
            with other.write() as writer:
                writer.execute("INSERT INTO t (v) VALUES (?)", (1,))
            assert tx.execute("SELECT COUNT(*) FROM t").one() == (0,)
        assert values(db) == [1]
    finally:
        other.close()


def test_postgres_read_transactions_are_read_only(postgres_dsn: str) -> None:
    database = open_database(postgres_dsn, store=STORE)
    try:
        with database.write() as tx:
            tx.execute("CREATE TABLE t (v INTEGER NOT NULL)")
        with pytest.raises(StoreError, match="read-only"), database.read() as tx:
            tx.execute("INSERT INTO t (v) VALUES (?)", (1,))
    finally:
        database.close()


def test_postgres_lock_holds_the_row_until_commit(postgres_dsn: str) -> None:
    first = open_schema(postgres_dsn, COUNTER)
    second = open_schema(postgres_dsn, COUNTER)
    try:
        with first.write() as holder:
            holder.execute("SELECT n FROM counter WHERE id = 1", lock=True)
            # A second locker must wait; a short lock timeout turns the wait into an error.
            with pytest.raises(StoreError, match="lock timeout"), second.write() as tx:
                tx.execute("SET LOCAL lock_timeout = '200ms'")
                tx.execute("SELECT n FROM counter WHERE id = 1", lock=True)
        with second.write() as tx:  # released at commit
            assert tx.execute("SELECT n FROM counter WHERE id = 1", lock=True).one() == (0,)
    finally:
        first.close()
        second.close()


def test_write_transactions_serialise_read_modify_write(location: str) -> None:
    """Concurrent increments through separate connections lose no update."""
    threads, rounds = 4, 15
    open_schema(location, COUNTER).close()

    def bump() -> None:
        database = open_schema(location, COUNTER)
        try:
            for _ in range(rounds):
                with database.write() as tx:
                    (n,) = tx.execute("SELECT n FROM counter WHERE id = 1", lock=True).one()
                    tx.execute("UPDATE counter SET n = ? WHERE id = 1", (n + 1,))
        finally:
            database.close()

    assert run_at_once(bump, threads) == []
    database = open_schema(location, COUNTER)
    try:
        with database.read() as tx:
            assert tx.execute("SELECT n FROM counter").one() == (threads * rounds,)
    finally:
        database.close()


# --- schemas ---------------------------------------------------------------------------


def test_schema_is_created_once_and_its_version_checked(location: str) -> None:
    seen: list[Dialect] = []

    def statements(dialect: Dialect) -> list[str]:
        seen.append(dialect)
        blob = "BYTEA" if dialect == "postgres" else "BLOB"
        return [f"CREATE TABLE IF NOT EXISTS blobs (b {blob} NOT NULL)"]

    blobs = Schema("blobs", 3, statements)
    database = open_schema(location, blobs)
    try:
        with database.write() as tx:
            tx.execute("INSERT INTO blobs (b) VALUES (?)", (b"\x00\xff",))
    finally:
        database.close()
    expected: Dialect = "postgres" if is_postgres_location(location) else "sqlite"
    assert seen == [expected]
    # Another store in the same database keeps its own version.
    open_schema(location, COUNTER).close()
    database = open_schema(location, blobs)
    try:
        with database.read() as tx:
            assert bytes(tx.execute("SELECT b FROM blobs").one()[0]) == b"\x00\xff"
    finally:
        database.close()
    assert seen == [expected]  # not run again for an existing schema
    with pytest.raises(StoreError, match=r"blobs schema version 3 is not supported \(expected 4\)"):
        open_schema(location, Schema("blobs", 4, statements))


def test_several_connections_create_one_schema_at_once(location: str) -> None:
    assert run_at_once(lambda: open_schema(location, COUNTER).close(), 4) == []
    database = open_schema(location, COUNTER)
    try:
        with database.read() as tx:
            assert tx.execute("SELECT id, n FROM counter").all() == [(1, 0)]
            assert tx.execute(
                "SELECT version FROM onceonly_schema WHERE component = ?", ("counter",)
            ).all() == [(1,)]
    finally:
        database.close()


class Counter(SqlStore):
    SCHEMA = COUNTER

    def bump(self) -> int:
        with self._db.write() as tx:
            (n,) = tx.execute("UPDATE counter SET n = n + 1 WHERE id = 1 RETURNING n").one()
        return int(n)


def test_sql_store_opens_its_schema_and_closes(location: str) -> None:
    with Counter.open(location) as counter:
        assert counter.bump() == 1
    with Counter.open(location) as counter:
        assert counter.bump() == 2
    with pytest.raises(StoreError, match="counter database error"):
        counter.bump()  # closed
