"""verifier.nonce_store: single-use nonces on SQLite and PostgreSQL, restarts, processes."""

from __future__ import annotations

import json
import random
import time
from pathlib import Path

import pytest

from onceonly import errors
from onceonly.jose import b64url_decode
from onceonly.sql import open_database
from onceonly.types import ExchangeId
from tests.unit.verifier.processes import BARRIER_TIMEOUT_S, race
from verifier.nonce_store import NONCE_BYTES, NonceStore

NOW = 1_800_000_000
EX = ExchangeId("ex-1")
AUD = "did:web:verifier.example"


@pytest.fixture
def store(store_location: str) -> NonceStore:
    with NonceStore.open(store_location) as opened:
        yield opened


def test_consume_once_then_replay(store: NonceStore) -> None:
    issued = store.issue(exchange_id=EX, audience=AUD, now=NOW, ttl=300)
    bound = store.consume(issued.nonce, now=NOW + 10, exchange_id=EX, audience=AUD)
    assert bound == issued
    with pytest.raises(errors.ReplayDetected):
        store.consume(issued.nonce, now=NOW + 11)
    with pytest.raises(errors.ReplayDetected):
        store.consume(issued.nonce, now=NOW + 11, exchange_id=EX, audience=AUD)


def test_nonces_are_random_256_bit(store: NonceStore) -> None:
    nonces = [store.issue(exchange_id=EX, audience=AUD, now=NOW, ttl=60).nonce for _ in range(50)]
    assert len(set(nonces)) == 50
    assert all(len(b64url_decode(n)) == NONCE_BYTES >= 16 for n in nonces)


def test_unknown_nonce_rejected(store: NonceStore) -> None:
    with pytest.raises(errors.NonceMismatch):
        store.consume("bm90LWlzc3VlZA", now=NOW)


def test_expired_nonce_rejected_and_boundary(store: NonceStore) -> None:
    early = store.issue(exchange_id=EX, audience=AUD, now=NOW, ttl=60)
    late = store.issue(exchange_id=EX, audience=AUD, now=NOW, ttl=60)
    assert store.consume(early.nonce, now=NOW + 59).expires_at == NOW + 60
    with pytest.raises(errors.RequestExpired):
        store.consume(late.nonce, now=NOW + 60)
    # Rejection did not consume it, but it stays expired.
    with pytest.raises(errors.RequestExpired):
        store.consume(late.nonce, now=NOW + 61)


def test_binding_mismatch_rejected_without_burning(store: NonceStore) -> None:
    issued = store.issue(exchange_id=EX, audience=AUD, now=NOW, ttl=60)
    with pytest.raises(errors.NonceMismatch):
        store.consume(issued.nonce, now=NOW, exchange_id=ExchangeId("ex-other"))
    with pytest.raises(errors.AudienceMismatch):
        store.consume(issued.nonce, now=NOW, audience="did:web:other.example")
    assert store.consume(issued.nonce, now=NOW, exchange_id=EX, audience=AUD).nonce == issued.nonce


@pytest.mark.parametrize(
    ("bad", "error"),
    [("", errors.MalformedInput), (None, errors.MalformedInput), ("a" * 257, errors.InputTooLarge)],
)
def test_malformed_nonce_rejected(store: NonceStore, bad: object, error: type[Exception]) -> None:
    with pytest.raises(error):
        store.consume(bad, now=NOW)  # type: ignore[arg-type]


def test_invalid_ttl_and_short_random_source(store_location: str) -> None:
    with NonceStore.open(store_location, random_bytes=lambda n: b"\x00" * (n - 1)) as short:
        with pytest.raises(ValueError, match="random source"):
            short.issue(exchange_id=EX, audience=AUD, now=NOW, ttl=60)
        with pytest.raises(ValueError, match="ttl"):
            short.issue(exchange_id=EX, audience=AUD, now=NOW, ttl=0)


def test_state_survives_restart(store_location: str) -> None:
    with NonceStore.open(store_location) as first:
        pending = first.issue(exchange_id=EX, audience=AUD, now=NOW, ttl=600)
        used = first.issue(exchange_id=EX, audience=AUD, now=NOW, ttl=600)
        first.consume(used.nonce, now=NOW + 1)
    with NonceStore.open(store_location) as second:
        with pytest.raises(errors.ReplayDetected):
            second.consume(used.nonce, now=NOW + 2)
        assert second.consume(pending.nonce, now=NOW + 2).exchange_id == EX


def test_purge_removes_only_expired(store: NonceStore) -> None:
    old = store.issue(exchange_id=EX, audience=AUD, now=NOW, ttl=10)
    fresh = store.issue(exchange_id=EX, audience=AUD, now=NOW, ttl=1000)
    assert store.purge(now=NOW + 100) == 1
    with pytest.raises(errors.NonceMismatch):  # purged: unknown, still refused
        store.consume(old.nonce, now=NOW + 100)
    assert store.consume(fresh.nonce, now=NOW + 100).nonce == fresh.nonce


def test_unknown_schema_version_refused(store_location: str) -> None:
    NonceStore.open(store_location).close()
    db = open_database(store_location, store="test")
    db.execute("UPDATE onceonly_schema SET version = 99 WHERE component = 'verifier nonce store'")
    db.close()
    with pytest.raises(errors.StoreError, match="schema version 99"):
        NonceStore.open(store_location)


def test_unopenable_sqlite_is_store_error(tmp_path: Path) -> None:
    with pytest.raises(errors.StoreError):
        NonceStore.open(tmp_path / "missing-dir" / "nonces.sqlite3")


# --- real OS processes racing --------------------------------------------------------


def _race_worker(location: str, nonces: list[str], worker: int, out: str, barrier: object) -> None:
    order = list(nonces)
    random.Random(worker).shuffle(order)
    won, replays, other = [], 0, []
    with NonceStore.open(location) as store:
        barrier.wait(timeout=BARRIER_TIMEOUT_S)  # type: ignore[attr-defined]
        for nonce in order:
            # A real verifier does other work between presentations; without this pause
            # SQLite's busy handler lets whichever process holds the lock win everything.
            time.sleep(0.0005)
            try:
                store.consume(nonce, now=NOW + 1)
                won.append(nonce)
            except errors.ReplayDetected:
                replays += 1
            except errors.OnceOnlyError as exc:
                other.append(exc.code)
    Path(out).write_text(json.dumps({"won": won, "replays": replays, "other": other}))


@pytest.mark.timeout(240)
def test_processes_racing_consume_each_nonce_exactly_once(
    store_location: str, tmp_path: Path
) -> None:
    processes, count = 4, 600
    with NonceStore.open(store_location) as store:
        nonces = [
            store.issue(exchange_id=ExchangeId(f"ex-{i}"), audience=AUD, now=NOW, ttl=600).nonce
            for i in range(count)
        ]
    outs = [tmp_path / f"worker-{i}.json" for i in range(processes)]
    args = [(store_location, nonces, i, str(outs[i])) for i in range(processes)]
    assert race(_race_worker, args, timeout=200) == [0] * processes
    results = [json.loads(out.read_text()) for out in outs]
    winners = [nonce for result in results for nonce in result["won"]]
    assert sorted(winners) == sorted(nonces), "every nonce consumed exactly once"
    assert sum(result["replays"] for result in results) == count * (processes - 1)
    assert all(result["other"] == [] for result in results)
    # Contention really happened: more than one process won some nonces.
    assert sum(1 for result in results if result["won"]) > 1
