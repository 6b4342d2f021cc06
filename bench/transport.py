"""Benchmark: encrypted protocol events through onceonly's transport vs plain nio messages.

Starts its own Synapse on a free loopback port (through onceonly's homeserver API), then
measures in the same run, between two parties on that server:

* one-way latency (p50/p95): time from queuing an event at the sender to the receiver's
  handler being called, one event at a time;
* throughput: events per second when N events are queued at once, until the last one
  reached the receiver's handler.

"onceonly" = PartyClient on both sides (Megolm encryption, durable outbox/inbox in SQLite,
device policy). "plain nio" = two nio AsyncClients exchanging unencrypted
``m.room.message`` events (the floor a Matrix transport can reach on this machine).

Usage: ``python bench/transport.py [--events 200] [--latency-samples 50] [--rounds 3]``
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import secrets
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from nio import AsyncClient, MatrixRoom, RoomMessageText, RoomSendResponse, SyncResponse

from onceonly.matrix.accounts import Credentials, save_credentials
from onceonly.matrix.client import PartyClient
from onceonly.matrix.devices import AllDevicesOf
from onceonly.matrix.homeserver import Homeserver
from onceonly.matrix.homeserver_process import free_loopback_port
from onceonly.matrix.inbox import Inbound
from onceonly.matrix.rooms import InvitesFrom

EVENT_TYPE = "org.onceonly.bench.ping"


class Arrivals:
    """Records when each numbered event reached the receiver."""

    def __init__(self) -> None:
        self.at: dict[int, float] = {}
        self._changed = asyncio.Event()

    def note(self, n: int) -> None:
        self.at[n] = time.perf_counter()
        self._changed.set()

    async def wait(self, n: int, timeout: float = 120.0) -> float:
        deadline = time.perf_counter() + timeout
        while n not in self.at:
            if time.perf_counter() > deadline:
                raise TimeoutError(f"event {n} never arrived")
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), 1.0)
        return self.at[n]


async def measure(
    send: Callable[[int], Awaitable[None]], arrivals: Arrivals, samples: int, events: int
) -> dict[str, float]:
    """Latency over ``samples`` one-at-a-time sends, then throughput over ``events``."""
    latencies = []
    for n in range(samples):
        start = time.perf_counter()
        await send(n)
        latencies.append(await arrivals.wait(n) - start)
    first = samples
    start = time.perf_counter()
    for n in range(first, first + events):
        await send(n)
    await arrivals.wait(first + events - 1, timeout=600)
    elapsed = time.perf_counter() - start
    missing = [n for n in range(first, first + events) if n not in arrivals.at]
    assert not missing, f"lost events: {missing[:5]}"
    quantiles = statistics.quantiles(latencies, n=20)
    return {
        "p50_ms": statistics.median(latencies) * 1000,
        "p95_ms": quantiles[18] * 1000,
        "throughput": events / elapsed,
    }


async def bench_onceonly(
    agency: Credentials, citizen: Credentials, root: Path, samples: int, events: int
) -> dict[str, float]:
    arrivals = Arrivals()

    async def receive(item: Inbound) -> None:
        content = getattr(item, "content", {})
        if isinstance(content.get("n"), int):
            arrivals.note(content["n"])

    async def ignore(_item: Inbound) -> None:
        return None

    dirs = {}
    for name, creds in (("agency", agency), ("citizen", citizen)):
        dirs[name] = root / name
        save_credentials(dirs[name], creds)
    async with (
        PartyClient(
            dirs["agency"],
            device_policy=AllDevicesOf([citizen.user_id]),
            handler=ignore,
        ) as sender,
        PartyClient(
            dirs["citizen"],
            device_policy=AllDevicesOf([agency.user_id]),
            handler=receive,
            invite_policy=InvitesFrom([agency.user_id]),
        ),
    ):
        room_id = await sender.ensure_direct_room(citizen.user_id)

        async def send(n: int) -> None:
            await sender.send(room_id, EVENT_TYPE, {"body": f"ping {n}", "n": n})

        return await measure(send, arrivals, samples, events)


async def bench_plain_nio(
    agency: Credentials, citizen: Credentials, samples: int, events: int
) -> dict[str, float]:
    arrivals = Arrivals()
    sender = AsyncClient(agency.homeserver, agency.user_id, agency.device_id)
    sender.restore_login(agency.user_id, agency.device_id, agency.access_token)
    receiver = AsyncClient(citizen.homeserver, citizen.user_id, citizen.device_id)
    receiver.restore_login(citizen.user_id, citizen.device_id, citizen.access_token)

    async def on_message(_room: MatrixRoom, event: RoomMessageText) -> None:
        n = event.source.get("content", {}).get("n")
        if isinstance(n, int):
            arrivals.note(n)

    receiver.add_event_callback(on_message, RoomMessageText)  # type: ignore[arg-type]
    created = await sender.room_create(invite=[citizen.user_id])
    room_id = created.room_id  # type: ignore[union-attr]
    await receiver.join(room_id)
    first = await receiver.sync(timeout=0)
    assert isinstance(first, SyncResponse)
    sync_task = asyncio.create_task(receiver.sync_forever(timeout=10_000))
    queue: asyncio.Queue[int] = asyncio.Queue()

    async def sending_worker() -> None:
        # One sender task, sequential sends: the same ordering guarantee as the outbox.
        while True:
            n = await queue.get()
            response = await sender.room_send(
                room_id, "m.room.message", {"msgtype": "m.text", "body": f"ping {n}", "n": n}
            )
            assert isinstance(response, RoomSendResponse), response

    worker = asyncio.create_task(sending_worker())

    async def send(n: int) -> None:
        queue.put_nowait(n)

    try:
        return await measure(send, arrivals, samples, events)
    finally:
        for task in (worker, sync_task):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await sender.close()
        await receiver.close()


def _table(encrypted: dict[str, float], plain: dict[str, float]) -> str:
    rows = [
        ("one-way latency p50 (ms)", "p50_ms", "{:.1f}"),
        ("one-way latency p95 (ms)", "p95_ms", "{:.1f}"),
        ("throughput (events/s)", "throughput", "{:.1f}"),
    ]
    lines = [
        f"{'metric':<28}{'onceonly E2EE':>16}{'plain nio':>14}{'ratio':>10}",
        "-" * 68,
    ]
    for label, key, fmt in rows:
        ratio = encrypted[key] / plain[key] if plain[key] else float("nan")
        lines.append(
            f"{label:<28}{fmt.format(encrypted[key]):>16}{fmt.format(plain[key]):>14}{ratio:>9.2f}x"
        )
    return "\n".join(lines)


async def main(events: int, samples: int, rounds: int) -> None:
    with tempfile.TemporaryDirectory(prefix="onceonly-bench-") as tmp:
        root = Path(tmp)
        hs = Homeserver.from_data_dir(
            root / "synapse", port=free_loopback_port(), relaxed_rate_limits=True
        )
        print(f"starting Synapse at {hs.base_url} ...", flush=True)
        await asyncio.to_thread(hs.start, 180.0)
        try:
            plain_runs, encrypted_runs = [], []
            # Alternate the two sides so machine load and Synapse warm-up hit both alike.
            for round_no in range(rounds):
                tag = f"{round_no}-{secrets.token_hex(3)}"
                users = {
                    name: hs.register(f"bench-{name}-{tag}", unlimited=True)
                    for name in ("agency", "citizen", "plainsender", "plainreceiver")
                }
                plain_runs.append(
                    await bench_plain_nio(
                        users["plainsender"], users["plainreceiver"], samples, events
                    )
                )
                encrypted_runs.append(
                    await bench_onceonly(
                        users["agency"], users["citizen"], root / f"parties-{tag}", samples, events
                    )
                )
                print(f"round {round_no + 1}/{rounds} done", flush=True)
        finally:
            await asyncio.to_thread(hs.stop)
    print(
        f"\n{rounds} alternating rounds x ({samples} latency samples, {events} events for"
        " throughput), one local Synapse; medians over rounds\n"
    )
    print(_table(_median(encrypted_runs), _median(plain_runs)))


def _median(runs: list[dict[str, float]]) -> dict[str, float]:
    return {key: statistics.median(run[key] for run in runs) for key in runs[0]}


def _args() -> Any:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=200)
    parser.add_argument("--latency-samples", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=3)
    return parser.parse_args()


if __name__ == "__main__":
    args = _args()
    asyncio.run(main(args.events, args.latency_samples, args.rounds))
