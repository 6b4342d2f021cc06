"""A background loop that repeats one piece of work at an interval and survives its failures."""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable


async def repeat_every(
    interval: float,
    work: Callable[[], Awaitable[object] | object],
    *,
    what: str,
    log: logging.Logger,
) -> None:
    """Run ``work`` every ``interval`` seconds (first after one interval) until cancelled.

    A failure is logged with its traceback and the loop goes on: a service must not
    lose its expiry sweep or its refresh because one round hit a transient error.

    Args:
        interval: Seconds between two rounds.
        work: The round; may be a coroutine function.
        what: Names the work in the log (``"expiry sweep"``).
        log: The logger of the module that owns the work.
    """
    while True:
        await asyncio.sleep(interval)
        try:
            result = work()
            if inspect.isawaitable(result):
                await result
        except Exception:
            log.exception("%s failed; retrying at the next interval", what)
