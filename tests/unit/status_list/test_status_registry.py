"""The issuer's status registry on SQLite and PostgreSQL, including two-process allocation."""

from __future__ import annotations

import multiprocessing
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from issuer.status_registry import StatusRegistry
from onceonly.errors import (
    ConfigError,
    Revoked,
    StatusChangeForbidden,
    StoreError,
    Suspended,
    UnknownStatusEntry,
)
from onceonly.jose import PrivateKey
from onceonly.status_list import (
    INVALID,
    SUSPENDED,
    VALID,
    StatusReference,
    check_status,
    verify_status_list_cwt,
    verify_status_list_jwt,
)
from onceonly.types import Vct

BASE = "https://issuer.example/status"
PID = Vct("urn:eu.europa.ec.eudi:pid:1")
NOW = 1_800_000_000


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return str(tmp_path / "status.sqlite3")
    return str(request.getfixturevalue("postgres_dsn"))


@pytest.fixture
def registry(target: str) -> Iterator[StatusRegistry]:
    with StatusRegistry.open(target, base_uri=BASE, bits=2, list_size=64) as opened:
        yield opened


def test_allocate_records_entry(registry: StatusRegistry) -> None:
    reference = registry.allocate(vct=PID, issued_at=NOW)
    assert reference.uri == f"{BASE}/1"
    assert 0 <= reference.idx < 64
    entry = registry.entry(reference)
    assert (entry.status, entry.vct, entry.issued_at, entry.updated_at) == (VALID, PID, NOW, NOW)


def test_indices_are_shuffled_and_lists_roll_over(registry: StatusRegistry) -> None:
    references = [registry.allocate(vct=PID, issued_at=NOW + i) for i in range(150)]
    first = [r.idx for r in references[:64]]
    assert sorted(first) == list(range(64))  # the first list is filled completely
    assert first != sorted(first)  # ...but not in order
    assert {r.uri for r in references[:64]} == {f"{BASE}/1"}
    assert {r.uri for r in references[64:128]} == {f"{BASE}/2"}
    assert {r.uri for r in references[128:]} == {f"{BASE}/3"}
    assert len({(r.uri, r.idx) for r in references}) == 150
    assert registry.list_uris() == [f"{BASE}/1", f"{BASE}/2", f"{BASE}/3"]


def test_status_changes_and_token(registry: StatusRegistry, issuer_key: PrivateKey) -> None:
    valid, revoked, suspended, restored = (
        registry.allocate(vct=PID, issued_at=NOW) for _ in range(4)
    )
    registry.revoke(revoked, now=NOW + 1)
    registry.suspend(suspended, now=NOW + 2)
    registry.suspend(restored, now=NOW + 3)
    registry.reinstate(restored, now=NOW + 4)
    assert registry.entry(revoked).status == INVALID
    assert registry.entry(revoked).updated_at == NOW + 1
    assert registry.entry(suspended).status == SUSPENDED

    status_list = registry.build_status_list(f"{BASE}/1")
    assert status_list.size == 64
    assert dict(status_list.non_valid()) == {revoked.idx: INVALID, suspended.idx: SUSPENDED}

    public = issuer_key.public()
    for token in (
        registry.sign_jwt(f"{BASE}/1", issuer_key, now=NOW, ttl=300),
        registry.sign_cwt(f"{BASE}/1", issuer_key, now=NOW, ttl=300),
    ):
        assert check_status(valid, token, issuer_key=public, now=NOW + 10) == VALID
        assert check_status(restored, token, issuer_key=public, now=NOW + 10) == VALID
        with pytest.raises(Suspended):
            check_status(suspended, token, issuer_key=public, now=NOW + 10)
        with pytest.raises(Revoked):
            check_status(revoked, token, issuer_key=public, now=NOW + 10)
    jwt = verify_status_list_jwt(
        registry.sign_jwt(f"{BASE}/1", issuer_key, now=NOW), public, uri=f"{BASE}/1", now=NOW
    )
    cwt = verify_status_list_cwt(
        registry.sign_cwt(f"{BASE}/1", issuer_key, now=NOW), public, uri=f"{BASE}/1", now=NOW
    )
    assert jwt.status_list == cwt.status_list == status_list
    assert jwt.expires_at == NOW + 24 * 3600


def test_revocation_is_final(registry: StatusRegistry) -> None:
    reference = registry.allocate(vct=PID, issued_at=NOW)
    registry.revoke(reference, now=NOW)
    for change in (registry.reinstate, registry.suspend):
        with pytest.raises(StatusChangeForbidden):
            change(reference, now=NOW + 1)
    registry.revoke(reference, now=NOW + 2)  # revoking again is harmless
    assert registry.entry(reference).status == INVALID


def test_status_must_fit_bits(registry: StatusRegistry) -> None:
    reference = registry.allocate(vct=PID, issued_at=NOW)
    with pytest.raises(StatusChangeForbidden):
        registry.set_status(reference, 4, now=NOW)
    registry.set_status(reference, 3, now=NOW)  # application-specific, fits in 2 bits
    assert registry.entry(reference).status == 3


def test_unknown_entries(registry: StatusRegistry) -> None:
    reference = registry.allocate(vct=PID, issued_at=NOW)
    other_idx = (reference.idx + 1) % 64  # allocated lists hold only what was allocated
    with pytest.raises(UnknownStatusEntry):
        registry.revoke(StatusReference(idx=other_idx, uri=reference.uri), now=NOW)
    with pytest.raises(UnknownStatusEntry):
        registry.revoke(StatusReference(idx=0, uri=f"{BASE}/99"), now=NOW)
    with pytest.raises(UnknownStatusEntry):
        registry.entry(StatusReference(idx=other_idx, uri=reference.uri))
    with pytest.raises(UnknownStatusEntry):
        registry.build_status_list(f"{BASE}/99")


def test_reopen_keeps_state(target: str) -> None:
    with StatusRegistry.open(target, base_uri=BASE, list_size=64) as first:
        references = [first.allocate(vct=PID, issued_at=NOW) for _ in range(10)]
        first.revoke(references[0], now=NOW)
    with StatusRegistry.open(target, base_uri=BASE, list_size=64) as second:
        more = [second.allocate(vct=PID, issued_at=NOW) for _ in range(10)]
        assert second.entry(references[0]).status == INVALID
    pairs = {(r.uri, r.idx) for r in references + more}
    assert len(pairs) == 20


def test_bad_configuration(tmp_path: Path) -> None:
    path = str(tmp_path / "x.sqlite3")
    with pytest.raises(ConfigError):
        StatusRegistry.open(path, base_uri=BASE, bits=3)
    with pytest.raises(ConfigError):
        StatusRegistry.open(path, base_uri=BASE, list_size=100)
    with pytest.raises(ConfigError):
        StatusRegistry.open(path, base_uri="status/relative")


def test_unopenable_database(tmp_path: Path) -> None:
    with pytest.raises(StoreError):
        StatusRegistry.open(str(tmp_path / "missing-dir" / "x.sqlite3"), base_uri=BASE)
    garbage = tmp_path / "garbage.sqlite3"
    garbage.write_bytes(b"this is not a database" * 100)
    with pytest.raises(StoreError):
        StatusRegistry.open(str(garbage), base_uri=BASE)


# --- two OS processes allocating from one database ------------------------------------

ALLOCATIONS_PER_PROCESS = 500
CONCURRENT_LIST_SIZE = 256  # small, so both processes also race over list roll-over


@dataclass(frozen=True)
class _WorkerResult:
    pid: int
    started_ns: int
    finished_ns: int
    entries: list[tuple[str, int]]


def _allocate_many(target: str, start: Any) -> _WorkerResult:
    with StatusRegistry.open(target, base_uri=BASE, list_size=CONCURRENT_LIST_SIZE) as registry:
        start.wait(timeout=60)  # a barrier: both workers are connected and ready
        started = time.monotonic_ns()  # CLOCK_MONOTONIC is shared by all processes
        entries = []
        for _ in range(ALLOCATIONS_PER_PROCESS):
            reference = registry.allocate(vct=PID, issued_at=NOW)
            entries.append((reference.uri, reference.idx))
        return _WorkerResult(os.getpid(), started, time.monotonic_ns(), entries)


def test_two_processes_never_share_an_index(target: str) -> None:
    # Create the schema first, as a deployment would; the workers race on the rest.
    StatusRegistry.open(target, base_uri=BASE, list_size=CONCURRENT_LIST_SIZE).close()
    context = multiprocessing.get_context("spawn")
    with context.Manager() as manager:
        start = manager.Barrier(2)
        with context.Pool(2) as pool:
            pending = [pool.apply_async(_allocate_many, (target, start)) for _ in range(2)]
            one, two = (result.get(timeout=240) for result in pending)
    assert len({one.pid, two.pid, os.getpid()}) == 3  # two distinct worker processes
    # The allocation windows overlap: the processes really competed.
    assert one.started_ns < two.finished_ns and two.started_ns < one.finished_ns
    first, second = one.entries, two.entries
    assert len(first) == len(second) == ALLOCATIONS_PER_PROCESS
    assert set(first).isdisjoint(second)
    every = set(first) | set(second)
    assert len(every) == 2 * ALLOCATIONS_PER_PROCESS
    # No gaps either: the lists were filled in order, each one completely before the next.
    by_list: dict[str, set[int]] = {}
    for uri, idx in every:
        by_list.setdefault(uri, set()).add(idx)
    full_lists, remainder = divmod(2 * ALLOCATIONS_PER_PROCESS, CONCURRENT_LIST_SIZE)
    for number in range(1, full_lists + 1):
        assert by_list[f"{BASE}/{number}"] == set(range(CONCURRENT_LIST_SIZE))
    assert len(by_list[f"{BASE}/{full_lists + 1}"]) == remainder


def _open_and_allocate(target: str, start: Any) -> list[tuple[str, int]]:
    start.wait(timeout=60)  # both processes open the fresh database at the same moment
    with StatusRegistry.open(target, base_uri=BASE, list_size=CONCURRENT_LIST_SIZE) as registry:
        return [
            (reference.uri, reference.idx)
            for reference in (registry.allocate(vct=PID, issued_at=NOW) for _ in range(50))
        ]


def test_two_processes_create_the_schema_together(target: str) -> None:
    context = multiprocessing.get_context("spawn")
    with context.Manager() as manager:
        start = manager.Barrier(2)
        with context.Pool(2) as pool:
            pending = [pool.apply_async(_open_and_allocate, (target, start)) for _ in range(2)]
            first, second = (result.get(timeout=240) for result in pending)
    assert set(first).isdisjoint(second)
    assert len(set(first) | set(second)) == 100
    with StatusRegistry.open(target, base_uri=BASE) as registry:
        assert registry.list_uris() == [f"{BASE}/1"]
