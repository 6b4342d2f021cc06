"""Fixtures every test layer shares."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

# PostgreSQL on loopback with trust auth, database `test` (the machine's service).
POSTGRES_DSN = os.environ.get("ONCEONLY_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")


@pytest.fixture
def postgres_dsn() -> Iterator[str]:
    """A DSN whose ``search_path`` is a fresh schema, dropped after the test.

    Tests that share one database stay isolated, and several processes given the
    same DSN share the same schema (which is what the multi-process tests want).
    """
    psycopg = pytest.importorskip("psycopg")
    schema = f"t_{uuid.uuid4().hex[:12]}"
    try:
        admin = psycopg.connect(POSTGRES_DSN, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:  # pragma: no cover - depends on the machine
        pytest.fail(f"PostgreSQL at {POSTGRES_DSN} is not reachable: {exc}")
    with admin:
        admin.execute(f'CREATE SCHEMA "{schema}"')
        sep = "&" if "?" in POSTGRES_DSN else "?"
        yield f"{POSTGRES_DSN}{sep}options=-csearch_path%3D{schema}"
        admin.execute(f'DROP SCHEMA "{schema}" CASCADE')
