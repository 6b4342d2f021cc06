"""The start/stop skeleton every party service (issuer, wallet, verifier) shares.

A party service owns one :class:`~onceonly.service.ProtocolService` plus its own
resources (stores, caches) and background loops. :class:`PartyService` does the
part that is the same for all of them, so that each service keeps only its own
logic:

* :meth:`~PartyService.start`: the :class:`~onceonly.service.instance_lock.InstanceLock`
  on ``_lock_dir()`` (a second process on the same data directory and Matrix
  device fails here with :class:`~onceonly.errors.AlreadyRunning`), ``_open()``
  (the subclass opens its resources and builds the runtime), the runtime started,
  then ``_started()`` (publish, start loops with :meth:`~PartyService._every`); a
  failure anywhere undoes what was done;
* :meth:`~PartyService.stop`: the loops cancelled, the runtime stopped,
  ``_runtime_stopped()`` (e.g. sign an audit head), ``_close()``, then the lock
  released;
* ``async with``, the started :attr:`~PartyService.runtime` and the clock.

Nothing happens in a constructor; a service may be started again after a stop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import ClassVar, Self

from onceonly.service.instance_lock import InstanceLock
from onceonly.service.periodic import repeat_every
from onceonly.service.runtime import ProtocolService

logger = logging.getLogger(__name__)


class PartyService:
    """Base of the party services. Subclasses implement :meth:`_lock_dir`, :meth:`_open`
    and :meth:`_close`.

    Args:
        clock: Wall clock in epoch seconds (injected for tests).
    """

    label: ClassVar[str] = "party service"
    """Names the service in errors ("the verifier service is not started")."""

    def __init__(self, *, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._runtime: ProtocolService | None = None
        self._loops: list[asyncio.Task[None]] = []
        self._lock: InstanceLock | None = None

    # --- what a subclass provides ------------------------------------------------

    def _lock_dir(self) -> Path:
        """The directory holding the party's Matrix device (locked while it runs)."""
        raise NotImplementedError

    async def _open(self) -> ProtocolService:
        """Open the service's own resources and build (not start) its runtime."""
        raise NotImplementedError

    def _close(self) -> None:
        """Release what :meth:`_open` opened; must cope with a partial open."""

    async def _started(self) -> None:
        """Called once the runtime runs (e.g. publish, start loops with :meth:`_every`)."""

    async def _runtime_stopped(self) -> None:
        """Called on stop after a running runtime stopped, before :meth:`_close`."""

    # --- lifecycle -----------------------------------------------------------------

    async def start(self) -> None:
        """Open the resources, start the runtime and the background work.

        Raises:
            AlreadyRunning: another process (or service object) runs on the same
                data directory; nothing was opened.
            OnceOnlyError: as the parts raise it (ConfigError, StoreError,
                AccountError, TransportError, ...); nothing stays open.
        """
        self._acquire_lock()
        try:
            runtime = await self._open()
            await runtime.start()
        except BaseException:
            self._close()
            self._release_lock()
            raise
        self._runtime = runtime
        try:
            await self._started()
        except BaseException:
            await self.stop()
            raise

    async def stop(self) -> None:
        """Stop the background work and the runtime, then release the resources."""
        for loop in reversed(self._loops):
            loop.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await loop
        self._loops.clear()
        if self._runtime is not None:
            await self._runtime.stop()
            self._runtime = None
            await self._runtime_stopped()
        self._close()
        self._release_lock()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    def _acquire_lock(self) -> None:
        directory = self._lock_dir()
        if not directory.is_dir():
            # Nothing there to share yet; _open fails (no account) or creates it.
            return
        lock = InstanceLock(directory, what=f"the {self.label}")
        lock.acquire()
        self._lock = lock

    def _release_lock(self) -> None:
        lock, self._lock = self._lock, None
        if lock is not None:
            lock.release()

    # --- shared helpers ------------------------------------------------------------

    @property
    def runtime(self) -> ProtocolService:
        """The running protocol runtime (exchange states, ``room_for``, ``send``, ``wait_for``)."""
        if self._runtime is None:
            raise RuntimeError(f"the {self.label} is not started")
        return self._runtime

    def now(self) -> int:
        """The service's clock, in whole epoch seconds."""
        return int(self._clock())

    def _every(
        self, interval: float, work: Callable[[], Awaitable[object] | object], *, what: str
    ) -> None:
        """Repeat ``work`` every ``interval`` seconds until the service stops."""
        task = asyncio.create_task(
            repeat_every(interval, work, what=what, log=logger), name=f"onceonly-{what}"
        )
        self._loops.append(task)
