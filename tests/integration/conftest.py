"""Real Synapse homeservers on loopback for the integration tests.

``synapse`` (SQLite) and ``synapse_postgres`` (PostgreSQL) are session-scoped: one
start per test run. Both lift Synapse's rate limits for every account (the explicit
``relaxed_rate_limits`` option), because tests create hundreds of accounts, rooms and
logins in seconds; ``onceonly homeserver start`` keeps the defaults. Each runs from a
throw-away data dir on a free 127.0.0.1 port and is stopped at the end of the
session, also when tests fail. A test may ``stop()`` and ``start()`` the
:class:`~onceonly.matrix.homeserver.Homeserver` it gets (same port, same data), but must
leave it running.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator

import pytest

from onceonly.matrix.homeserver import Homeserver
from onceonly.matrix.homeserver_process import free_loopback_port

# Synapse startup takes seconds, more on busy shared cores.
START_TIMEOUT = 180.0

# The same server tests/conftest.py uses; Synapse needs a database of its own.
POSTGRES_ADMIN_DSN = os.environ.get(
    "ONCEONLY_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test"
)


def _run(server: Homeserver) -> Iterator[Homeserver]:
    try:
        server.start(timeout=START_TIMEOUT)
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def synapse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Homeserver]:
    """A running SQLite-backed Synapse (server name ``localhost``) for the whole session."""
    data_dir = tmp_path_factory.mktemp("synapse")
    yield from _run(
        Homeserver.from_data_dir(data_dir, port=free_loopback_port(), relaxed_rate_limits=True)
    )


@pytest.fixture(scope="session")
def synapse_postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Homeserver]:
    """A running PostgreSQL-backed Synapse on a fresh database, dropped afterwards."""
    psycopg = pytest.importorskip("psycopg")
    from psycopg import sql
    from psycopg.conninfo import make_conninfo

    name = f"onceonly_synapse_{secrets.token_hex(6)}"
    try:
        admin = psycopg.connect(POSTGRES_ADMIN_DSN, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:  # pragma: no cover - depends on the machine
        pytest.fail(f"PostgreSQL at {POSTGRES_ADMIN_DSN} is not reachable: {exc}")
    with admin:
        # C collation and template0, as Synapse's documentation asks for.
        admin.execute(
            sql.SQL(
                "CREATE DATABASE {} TEMPLATE template0 ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C'"
            ).format(sql.Identifier(name))
        )
        try:
            dsn = make_conninfo(POSTGRES_ADMIN_DSN, dbname=name)
            server = Homeserver.from_data_dir(
                tmp_path_factory.mktemp("synapse-pg"),
                port=free_loopback_port(),
                postgres_dsn=dsn,
                relaxed_rate_limits=True,
            )
            yield from _run(server)
        finally:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
