"""The party services' shared skeleton: start/stop order, undoing failed starts, loops.

The runtime runs on the in-memory transport stand-in of
:mod:`tests.unit.test_service_runtime` (no Matrix involved); the real services on
this skeleton are exercised against Synapse in tests/integration.
"""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path

import pytest

from onceonly.errors import AlreadyRunning, StoreError
from onceonly.matrix.devices import AllDevicesOf
from onceonly.matrix.inbox import AlreadyHandled, InboundHandler
from onceonly.service import PartyService, ProtocolService
from onceonly.service.periodic import repeat_every
from tests.unit.test_service_runtime import CITIZEN, MemoryTransport


class Sample(PartyService):
    """A party service that records what the skeleton asks of it."""

    label = "sample service"

    def __init__(self, data_dir: Path, *, fail_in: str | None = None) -> None:
        super().__init__(clock=lambda: 1_700_000_000.5)
        self.data_dir = data_dir
        self.fail_in = fail_in
        self.calls: list[str] = []
        self.transports: list[MemoryTransport] = []
        self.ticks = 0

    def _factory(self, handler: InboundHandler, hook: AlreadyHandled) -> MemoryTransport:
        self.transports.append(MemoryTransport(CITIZEN, handler, hook))
        return self.transports[-1]

    def _lock_dir(self) -> Path:
        return self.data_dir

    async def _open(self) -> ProtocolService:
        self.calls.append("open")
        if self.fail_in == "open":
            raise StoreError("the store is locked")
        return ProtocolService(
            data_dir=self.data_dir,
            handlers={},
            agency=False,
            device_policy=AllDevicesOf(()),
            transport_factory=self._factory,
            sweep_interval=3600,
        )

    async def _started(self) -> None:
        self.calls.append("started")
        self._every(0.01, self._tick, what="sample tick")
        if self.fail_in == "started":
            raise StoreError("publishing failed")

    def _tick(self) -> None:
        self.ticks += 1

    async def _runtime_stopped(self) -> None:
        self.calls.append("runtime stopped")

    def _close(self) -> None:
        self.calls.append("close")


async def test_start_and_stop_run_the_parts_in_order(tmp_path: Path) -> None:
    service = Sample(tmp_path)
    with pytest.raises(RuntimeError, match="the sample service is not started"):
        service.runtime  # noqa: B018
    async with service as running:
        assert running is service
        assert service.transports[0].started is True
        assert service.runtime.user_id == CITIZEN
        for _ in range(200):
            if service.ticks >= 2:
                break
            await asyncio.sleep(0.01)
        assert service.ticks >= 2  # the loop repeats
        assert service.now() == 1_700_000_000
    assert service.calls == ["open", "started", "runtime stopped", "close"]
    assert service.transports[0].started is False
    ticks = service.ticks
    await asyncio.sleep(0.05)
    assert service.ticks == ticks  # the loop ended with the service
    with pytest.raises(RuntimeError):
        service.runtime  # noqa: B018


async def test_a_failed_open_closes_what_was_opened(tmp_path: Path) -> None:
    service = Sample(tmp_path, fail_in="open")
    with pytest.raises(StoreError):
        await service.start()
    assert service.calls == ["open", "close"]
    with pytest.raises(RuntimeError):
        service.runtime  # noqa: B018


async def test_a_failure_after_the_runtime_started_stops_everything(tmp_path: Path) -> None:
    service = Sample(tmp_path, fail_in="started")
    with pytest.raises(StoreError, match="publishing"):
        await service.start()
    assert service.calls == ["open", "started", "runtime stopped", "close"]
    assert service.transports[0].started is False
    # It can be started again once the cause is gone.
    service.fail_in = None
    async with service:
        assert service.transports[1].started is True


async def test_a_second_service_on_the_same_data_dir_fails_at_once(tmp_path: Path) -> None:
    first = Sample(tmp_path)
    async with first:
        second = Sample(tmp_path)
        with pytest.raises(AlreadyRunning, match="the sample service already runs") as caught:
            await second.start()
        assert caught.value.code == "already_running"
        assert caught.value.detail["pid"] == os.getpid()
        assert second.calls == []  # refused before opening anything (no Matrix device touched)
        assert first.transports[0].started is True  # the running one is unaffected
    # Stopping releases the lock: the next start works.
    async with second:
        assert second.transports[0].started is True


async def test_a_failed_start_releases_the_lock(tmp_path: Path) -> None:
    for fail_in in ("open", "started"):
        failing = Sample(tmp_path, fail_in=fail_in)
        with pytest.raises(StoreError):
            await failing.start()
        async with Sample(tmp_path) as next_one:
            assert next_one.calls == ["open", "started"]


async def test_repeat_every_survives_failing_rounds(caplog: pytest.LogCaptureFixture) -> None:
    rounds: list[int] = []

    async def flaky() -> None:
        rounds.append(len(rounds))
        if len(rounds) == 1:
            raise ValueError("transient")

    log = logging.getLogger("tests.periodic")
    task = asyncio.create_task(repeat_every(0.01, flaky, what="flaky work", log=log))
    for _ in range(200):
        if len(rounds) >= 3:
            break
        await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert len(rounds) >= 3
    assert "flaky work failed; retrying at the next interval" in caplog.text
