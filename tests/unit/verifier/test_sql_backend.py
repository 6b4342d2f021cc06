"""verifier.sql_backend: one interface, both databases; failures are StoreError and roll back."""

from __future__ import annotations

from pathlib import Path

import pytest

from onceonly import errors
from verifier.sql_backend import is_postgres_location, open_sql


class Boom(Exception):
    pass


def test_location_kinds(tmp_path: Path) -> None:
    assert is_postgres_location("postgresql://u@127.0.0.1/db")
    assert is_postgres_location("postgres://u@127.0.0.1/db")
    assert not is_postgres_location(str(tmp_path / "x.sqlite3"))
    assert not is_postgres_location(tmp_path / "postgresql:")


def test_failed_transaction_rolls_back(store_location: str) -> None:
    db = open_sql(store_location)
    try:
        db.execute("CREATE TABLE t (v INTEGER NOT NULL)")
        with pytest.raises(Boom), db.write_transaction():
            db.execute("INSERT INTO t (v) VALUES (?)", (1,))
            raise Boom
        with db.write_transaction():
            db.execute("INSERT INTO t (v) VALUES (?)", (2,))
        assert db.execute("SELECT v FROM t") == [(2,)]
        nested = pytest.raises(errors.StoreError, match="nested")
        with nested, db.write_transaction(), db.snapshot():
            pass
        assert db.execute("SELECT v FROM t") == [(2,)]
    finally:
        db.close()


def test_driver_errors_become_store_errors(store_location: str) -> None:
    db = open_sql(store_location)
    try:
        with pytest.raises(errors.StoreError, match="database error"):
            db.execute("SELECT * FROM no_such_table")
        with pytest.raises(errors.StoreError):
            db.execute("INSERT INTO nowhere VALUES (?)", ("x",))
    finally:
        db.close()


def test_unreachable_postgres_is_store_error() -> None:
    # Port 9 (discard) on loopback: nothing listens, the connection is refused at once.
    with pytest.raises(errors.StoreError, match="cannot connect"):
        open_sql("postgresql://postgres@127.0.0.1:9/test")
