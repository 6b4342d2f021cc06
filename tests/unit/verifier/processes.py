"""Run real OS processes that start a racing section together, and never leave one behind."""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Callable, Sequence
from typing import Any

BARRIER_TIMEOUT_S = 60.0
"""A worker that waits longer than this for its peers fails instead of hanging."""


def race(
    target: Callable[..., None], per_worker_args: Sequence[tuple[Any, ...]], *, timeout: float
) -> list[int | None]:
    """Start one spawned process per args tuple and return their exit codes.

    Each process gets a shared barrier as its last argument and should call
    ``barrier.wait(timeout=BARRIER_TIMEOUT_S)`` right before the racing section.
    Processes still alive after ``timeout`` are killed (exit code then non-zero).
    """
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(len(per_worker_args))
    processes = [
        context.Process(target=target, args=(*args, barrier), daemon=True)
        for args in per_worker_args
    ]
    deadline = time.monotonic() + timeout
    try:
        for process in processes:
            process.start()
        for process in processes:
            process.join(max(0.0, deadline - time.monotonic()))
        return [process.exitcode for process in processes]
    finally:
        for process in processes:
            if process.is_alive():
                process.kill()
                process.join(5)
