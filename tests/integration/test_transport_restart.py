"""Exactly-once delivery across SIGKILL: a receiving party killed mid-stream and restarted.

Run as a module (``python -m tests.integration.test_transport_restart DATA_DIR PEER OUT``)
this file is the receiving party itself: it appends every handled event id to ``OUT``
(fsynced) and tells the transport, through the ``already_handled`` hook, which ids its
own durable record already holds. Every delivery (including re-deliveries) is logged to
``OUT.deliveries`` so the test can show how often the crash window was hit.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from onceonly.matrix.client import PartyClient
from onceonly.matrix.homeserver import Homeserver
from onceonly.matrix.inbox import Inbound
from tests.integration.test_transport_support import EVENT_TYPE, Collector, party, register

REPO_ROOT = Path(__file__).resolve().parents[2]


# --- the receiving party (subprocess) -------------------------------------------------


def _read_ids(path: Path) -> list[str]:
    if not path.exists():
        return []
    # A line without its newline was cut by the kill before the record was complete.
    return [line for line in path.read_text().split("\n")[:-1] if line]


async def _receive_forever(data_dir: Path, peer: str, out: Path) -> None:
    deliveries = out.with_suffix(".deliveries")
    handled = set(_read_ids(out))

    async def handler(item: Inbound) -> None:
        with deliveries.open("a") as log:
            log.write(f"{item.event_id} {int(item.redelivered)}\n")
        await asyncio.sleep(0.005)  # some "work", so kills also land inside the handler
        with out.open("a") as record:
            record.write(item.event_id + "\n")
            record.flush()
            os.fsync(record.fileno())
        handled.add(item.event_id)

    async with party(data_dir, handler, peers=[peer], already_handled=handled.__contains__):
        await asyncio.Event().wait()


# --- the test ---------------------------------------------------------------------------


def _spawn_receiver(data_dir: Path, peer: str, out: Path) -> subprocess.Popen[bytes]:
    log = (data_dir / "receiver.log").open("ab")
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.integration.test_transport_restart",
            str(data_dir),
            peer,
            str(out),
        ],
        cwd=REPO_ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
    )


async def _wait_for_lines(out: Path, count: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while len(_read_ids(out)) < count:
        if time.monotonic() > deadline:
            raise AssertionError(f"only {len(_read_ids(out))} of {count} handled in time")
        await asyncio.sleep(0.02)


@pytest.mark.integration
async def test_receiver_killed_mid_stream_handles_every_event_exactly_once(
    synapse: Homeserver, tmp_path: Path
) -> None:
    agency_creds, agency_dir = register(synapse, "agency", tmp_path)
    citizen_creds, citizen_dir = register(synapse, "citizen", tmp_path)
    out = tmp_path / "handled.txt"
    total = 100
    # Kill when this many events are handled; 0 = right after a restart (during start-up).
    kill_points = [15, 0, 40, 41, 70]
    kills = 0
    receiver = _spawn_receiver(citizen_dir, agency_creds.user_id, out)
    try:
        async with party(agency_dir, Collector(), peers=[citizen_creds.user_id]) as agency:
            room_id = await agency.ensure_direct_room(citizen_creds.user_id, wait_for_join=120)
            handles = [
                await agency.send(room_id, EVENT_TYPE, {"body": f"event {n}", "n": n})
                for n in range(total)
            ]
            for point in kill_points:
                if point == 0:
                    await asyncio.sleep(0.3)
                else:
                    await _wait_for_lines(out, point, timeout=120)
                receiver.send_signal(signal.SIGKILL)
                receiver.wait()
                kills += 1
                receiver = _spawn_receiver(citizen_dir, agency_creds.user_id, out)
            sent_ids = [await h.event_id(timeout=120) for h in handles]
            await _wait_for_lines(out, total, timeout=180)
            await asyncio.sleep(2)  # anything extra (a duplicate) would show up now
    finally:
        receiver.send_signal(signal.SIGKILL)
        receiver.wait()

    handled = _read_ids(out)
    assert kills == len(kill_points)
    assert len(handled) == total, "an event was handled twice or lost"
    assert handled == sent_ids, "every event once, in the order it was sent"
    deliveries = _read_ids(out.with_suffix(".deliveries"))
    redelivered = [line for line in deliveries if line.endswith(" 1")]
    print(
        f"\n{total} events, {kills} SIGKILLs: {len(deliveries)} handler calls, "
        f"{len(redelivered)} re-deliveries after a kill"
    )


@pytest.mark.integration
async def test_events_missed_while_offline_beyond_the_timeline_limit_are_backfilled(
    synapse: Homeserver, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="onceonly.matrix.sync")
    agency_creds, agency_dir = register(synapse, "agency", tmp_path)
    citizen_creds, citizen_dir = register(synapse, "citizen", tmp_path)
    at_citizen = Collector()
    offline_count = 60

    def citizen() -> PartyClient:
        return party(citizen_dir, at_citizen, peers=[agency_creds.user_id], sync_timeline_limit=10)

    async with party(agency_dir, Collector(), peers=[citizen_creds.user_id]) as agency:
        async with citizen():
            room_id = await agency.ensure_direct_room(citizen_creds.user_id)
            first = await agency.send(room_id, EVENT_TYPE, {"body": "m", "n": 0})
            await at_citizen.wait_for(lambda: len(at_citizen.events) == 1)
        # The citizen is offline: 60 events pile up, far more than one sync returns (10).
        handles = [
            await agency.send(room_id, EVENT_TYPE, {"body": "m", "n": n})
            for n in range(1, offline_count + 1)
        ]
        sent = [await first.event_id()] + [await h.event_id(timeout=60) for h in handles]
        async with citizen():
            await at_citizen.wait_for(lambda: len(at_citizen.events) == offline_count + 1)
            await asyncio.sleep(1)

    assert [e.event_id for e in at_citizen.events] == sent
    assert [e.content["n"] for e in at_citizen.events] == list(range(offline_count + 1))
    assert all(e.encrypted for e in at_citizen.events)
    backfilled = [
        int(r.getMessage().split()[1]) for r in caplog.records if "backfilled" in r.getMessage()
    ]
    # The gap really was fetched with /messages (not just returned by one big sync).
    assert max(backfilled) >= offline_count - 10


if __name__ == "__main__":
    asyncio.run(_receive_forever(Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3])))
