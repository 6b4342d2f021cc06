"""Fixtures for the verifier's stores: every store test runs on SQLite and on PostgreSQL."""

from __future__ import annotations

import pytest


@pytest.fixture(params=["sqlite", "postgres"])
def store_location(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A fresh database location: a SQLite file path or a PostgreSQL DSN (own schema)."""
    if request.param == "postgres":
        dsn: str = request.getfixturevalue("postgres_dsn")
        return dsn
    return str(tmp_path_factory.mktemp("store") / "verifier.sqlite3")
