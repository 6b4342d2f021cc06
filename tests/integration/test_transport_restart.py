"""Exactly-once across SIGKILL: a receiving or sending party killed mid-stream and restarted.

Run as a module, this file is the party process itself:

* ``python -m tests.integration.test_transport_restart receive DATA_DIR PEER OUT`` appends
  every handled event id to ``OUT`` (fsynced) and tells the transport, through the
  ``already_handled`` hook, which ids its own durable record already holds. Every delivery
  (including re-deliveries) is logged to ``OUT.deliveries`` so the test can show how
  often the crash window was hit.
* ``python -m tests.integration.test_transport_restart send DATA_DIR PEER COUNT FLAG``
  queues COUNT numbered events once (then writes FLAG) and keeps sending from its outbox.
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


async def _send_forever(data_dir: Path, peer: str, count: int, flag: Path) -> None:
    async with party(data_dir, Collector(), peers=[peer]) as sender:
        room_id = await sender.ensure_direct_room(peer, wait_for_join=120)
        if not flag.exists():
            for n in range(count):
                await sender.send(room_id, EVENT_TYPE, {"body": f"event {n}", "n": n})
            flag.write_text("queued")
        await asyncio.Event().wait()


# --- the tests --------------------------------------------------------------------------


def _spawn(role: str, data_dir: Path, *args: str) -> subprocess.Popen[bytes]:
    log = (data_dir / f"{role}.log").open("ab")
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.integration.test_transport_restart",
            role,
            str(data_dir),
            *args,
        ],
        cwd=REPO_ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
    )


def _spawn_receiver(data_dir: Path, peer: str, out: Path) -> subprocess.Popen[bytes]:
    return _spawn("receive", data_dir, peer, str(out))


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


@pytest.mark.integration
async def test_sender_killed_mid_stream_resumes_its_outbox_without_duplicates(
    synapse: Homeserver, tmp_path: Path
) -> None:
    agency_creds, agency_dir = register(synapse, "agency", tmp_path)
    citizen_creds, citizen_dir = register(synapse, "citizen", tmp_path)
    flag = tmp_path / "queued.flag"
    total = 60
    at_citizen = Collector()

    def spawn_sender() -> subprocess.Popen[bytes]:
        return _spawn("send", agency_dir, citizen_creds.user_id, str(total), str(flag))

    sender = spawn_sender()
    try:
        async with party(citizen_dir, at_citizen, peers=[agency_creds.user_id]):
            for kill_at in (5, 0, 20, 40):
                if kill_at == 0:
                    await asyncio.sleep(0.5)  # during start-up of the restarted sender
                else:
                    await at_citizen.wait_for(
                        lambda k=kill_at: flag.exists() and len(at_citizen.events) >= k,
                        timeout=120,
                    )
                sender.send_signal(signal.SIGKILL)
                sender.wait()
                sender = spawn_sender()
            await at_citizen.wait_for(lambda: len(at_citizen.events) >= total, timeout=180)
            await asyncio.sleep(3)  # a duplicate sent by a retry would arrive now
    finally:
        sender.send_signal(signal.SIGKILL)
        sender.wait()

    numbers = [e.content["n"] for e in at_citizen.events]
    assert numbers == list(range(total)), "each queued event exactly once, in order"
    assert len({e.event_id for e in at_citizen.events}) == total
    assert all(e.encrypted for e in at_citizen.events)


if __name__ == "__main__":
    role, data_dir, peer, *rest = sys.argv[1:]
    if role == "receive":
        asyncio.run(_receive_forever(Path(data_dir), peer, Path(rest[0])))
    else:
        asyncio.run(_send_forever(Path(data_dir), peer, int(rest[0]), Path(rest[1])))
