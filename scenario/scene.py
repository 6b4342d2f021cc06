"""What the steps of the scenario share: options, the world, the running services, results."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from onceonly.errors import ExchangeTimeout
from scenario.narrator import Narrator
from scenario.world import World

if TYPE_CHECKING:  # the parties' modules import this one
    from scenario.parties import Services
    from wallet.service import Notice

DEFAULT_DATA_DIR: Final = Path("var") / "demo"


@dataclass(frozen=True)
class DemoOptions:
    """How to run the demo.

    Attributes:
        data_dir: The demo data directory (replaced if it holds an earlier run).
        port: Synapse's loopback port (``None``: 8008 if free, else any free port).
        keep_running: Leave Synapse running at the end (for logging in with Element).
        step_timeout: Seconds one step may take.
        start_timeout: Seconds Synapse may take to start.
        wait_for_element: Seconds to wait after the setup for the citizen to log in
            with a Matrix client (0: do not wait).
    """

    data_dir: Path = DEFAULT_DATA_DIR
    port: int | None = None
    keep_running: bool = False
    step_timeout: float = 180.0
    start_timeout: float = 180.0
    wait_for_element: float = 0.0


@dataclass
class Scene:
    """The shared state of one run.

    Attributes:
        world: What the setup created.
        narrator: Where steps print and record.
        options: The run's options.
        stack: Stops the services (and closes their stores) when the run ends.
        services: The running party services (a :class:`~scenario.parties.Services`),
            started by the first step that needs them.
        notices: What the citizen's wallet reported, in order.
        results: Values later steps use (credential ids, exchange ids).
    """

    world: World
    narrator: Narrator
    options: DemoOptions
    stack: AsyncExitStack
    services: Services | None = None
    notices: list[Notice] = field(default_factory=list)
    results: dict[str, Any] = field(default_factory=dict)
    _noticed: asyncio.Event = field(default_factory=asyncio.Event)

    def keep_notice(self, notice: Notice) -> None:
        """The wallet's ``notify`` hook: remember the notice and wake waiters."""
        self.notices.append(notice)
        self._noticed.set()

    async def wallet_notice(
        self, kinds: set[str], exchange_id: str, timeout: float | None = None
    ) -> Notice:
        """Wait for the wallet's first notice of one of ``kinds`` about ``exchange_id``.

        Raises:
            ExchangeTimeout: none arrived in time.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + (timeout or self.options.step_timeout)
        while True:
            for notice in self.notices:
                if notice.kind in kinds and notice.exchange_id == exchange_id:
                    return notice
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise ExchangeTimeout(
                    f"the wallet reported no {sorted(kinds)} for exchange {exchange_id}",
                    detail={"exchange_id": exchange_id},
                )
            self._noticed.clear()
            try:
                await asyncio.wait_for(self._noticed.wait(), remaining)
            except TimeoutError:
                continue


StepRun = Callable[[Scene], Awaitable[None]]


@dataclass(frozen=True)
class Step:
    """One step of the story.

    Attributes:
        number: Its number in the story.
        title: Its title.
        needs: Modules that must exist (the party services it drives).
        run: ``module:function`` of the step, imported only when ``needs`` are present.
    """

    number: int
    title: str
    needs: tuple[str, ...]
    run: str
