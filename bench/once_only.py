"""Benchmark: complete once-only exchanges per second, and what bounds them.

One exchange is what step 3 of the demo does: the family benefits office sends a
``presentation.request``; the citizen's wallet matches it, its consent policy
approves, it presents address and birthdate (SD-JWT + KB-JWT); the office
verifies everything (signature, key binding, nonce, trust list, status list,
query), records it in its audit log and answers ``exchange.status``. Latency is
measured from the office's ``request()`` call to its verified result.

Setup (not timed): the demo's world on a fresh Synapse on a free loopback port
(``scenario.world.build_world``), N citizen accounts, each with a wallet service
(``WalletService``, the real one) holding a residence attestation signed by the
registry office's real issuance code (status entries published in its status
room). The office runs the real ``VerifierService``.

Passes, per size N:

* **first contact**: one exchange with each citizen, all at once. Includes what a
  first exchange costs: the mailbox room is created and joined, Olm sessions are
  set up and Megolm keys shared.
* **returning** (N <= ``--warm-max``): a second exchange with each citizen, same
  rooms and sessions;
* **one at a time** (N <= ``--warm-max``): returning exchanges with 30 citizens, one
  after the other: the latency of one exchange when nothing else runs.

Wallets run ``--wave`` at a time (each is a full Matrix client with its own sync
loop; 1,000 of them at once would measure this machine's memory, not the
protocol). A wave's wallets start, finish their first sync, then the office asks
them all at once.

What bounds it, measured: CPU seconds of the Synapse process and of this process
(which runs the office and every wallet) over each pass, and, inside this
process, the time spent in (a) SD-JWT work of the wallets (match, consent,
presentation incl. KB-JWT signing) and of the office (full verification),
(b) end-to-end encryption in nio's ``Olm`` machine (Megolm encrypt/decrypt,
Olm encrypt of room keys, Olm session setup, to-device decryption), and
(c) HTTP requests to Synapse other than ``/sync`` (wall time, overlapping).

Usage: ``python bench/once_only.py [--sizes 100,1000] [--wave 100] [--json FILE]``
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# This directory holds a script named like the ``wallet`` package; drop it from the
# import path so that ``import wallet`` finds the package.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [entry for entry in sys.path if Path(entry or ".").resolve() != _HERE]

from nio import AsyncClient  # noqa: E402
from nio.crypto import Olm  # noqa: E402

import verifier.verification as verification_module  # noqa: E402
import wallet.service as wallet_service_module  # noqa: E402
from issuer.config import load_signing_key  # noqa: E402
from issuer.issuance import IssuerContext, sign_credential  # noqa: E402
from issuer.register import RESIDENCE_VCT, parse_person  # noqa: E402
from issuer.service import IssuerService, Stores  # noqa: E402
from onceonly.errors import OnceOnlyError  # noqa: E402
from onceonly.matrix.accounts import Credentials, register_with_shared_secret  # noqa: E402
from onceonly.matrix.homeserver_config import read_shared_secret  # noqa: E402
from onceonly.matrix.homeserver_process import free_loopback_port  # noqa: E402
from onceonly.types import UserId, Vct  # noqa: E402
from scenario import cast  # noqa: E402
from scenario.narrator import Narrator  # noqa: E402
from scenario.parties import consent_policy_text, fetch_trust_list  # noqa: E402
from scenario.presenting import child_benefit_query  # noqa: E402
from scenario.world import World, build_world, prepare_data_dir  # noqa: E402
from verifier.service import VerifierService  # noqa: E402
from wallet.policy import parse_policy  # noqa: E402
from wallet.service import WalletService  # noqa: E402
from wallet.store import WalletStore  # noqa: E402

# --- measurement --------------------------------------------------------------------


class Meter:
    """Accumulates seconds per category from wrapped functions (this process only)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)

    def reset(self) -> None:
        self.seconds.clear()
        self.calls.clear()

    def add(self, category: str, seconds: float) -> None:
        self.seconds[category] += seconds
        self.calls[category] += 1

    def wrap_sync(self, owner: Any, name: str, category: str) -> None:
        original = getattr(owner, name)

        @functools.wraps(original)
        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                self.add(category, time.perf_counter() - started)

        setattr(owner, name, timed)

    def wrap_http(self) -> None:
        original = AsyncClient.send

        @functools.wraps(original)
        async def timed(client: AsyncClient, method: str, path: str, *args: Any, **kw: Any) -> Any:
            started = time.perf_counter()
            try:
                return await original(client, method, path, *args, **kw)
            finally:
                # A /sync long-poll waits for news by design; it is not a round trip cost.
                if "/sync" not in path:
                    who = "office" if client.user_id == OFFICE_USER[0] else "wallets"
                    self.add(f"http_non_sync_{who}", time.perf_counter() - started)

        AsyncClient.send = timed  # type: ignore[method-assign]


METER = Meter()
OFFICE_USER = [""]
"""The office's Matrix user id, set once known (HTTP time is split office / wallets)."""


def instrument() -> None:
    """Wrap the functions whose time the report splits out."""
    METER.wrap_sync(wallet_service_module, "prepare_answer", "sdjwt_wallet")
    METER.wrap_sync(wallet_service_module, "complete_answer", "sdjwt_wallet")
    METER.wrap_sync(verification_module, "check_presentations", "sdjwt_verifier")
    METER.wrap_sync(Olm, "group_encrypt", "e2ee_megolm_encrypt")
    METER.wrap_sync(Olm, "decrypt_megolm_event", "e2ee_megolm_decrypt")
    METER.wrap_sync(Olm, "_olm_encrypt", "e2ee_olm_encrypt")
    METER.wrap_sync(Olm, "create_session", "e2ee_olm_session_setup")
    METER.wrap_sync(Olm, "handle_to_device_event", "e2ee_olm_to_device")
    METER.wrap_http()


def process_cpu(pid: int) -> float:
    """CPU seconds (user + system) of process ``pid`` so far, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


@dataclass
class PassResult:
    """One pass over a set of citizens."""

    name: str
    citizens: int
    exchanges: int
    failures: int
    seconds: float
    latencies: list[float]
    synapse_cpu: float
    bench_cpu: float
    wallet_start_seconds: float
    split: dict[str, float]

    def to_json(self) -> dict[str, Any]:
        ordered = sorted(self.latencies)
        return {
            "pass": self.name,
            "citizens": self.citizens,
            "exchanges": self.exchanges,
            "failures": self.failures,
            "exchange_seconds": round(self.seconds, 2),
            "exchanges_per_second": round(self.exchanges / self.seconds, 2) if self.seconds else 0,
            "p50_ms": round(1000 * statistics.median(ordered), 1) if ordered else None,
            "p95_ms": round(1000 * ordered[int(0.95 * (len(ordered) - 1))], 1) if ordered else None,
            "synapse_cpu_s": round(self.synapse_cpu, 2),
            "bench_cpu_s": round(self.bench_cpu, 2),
            "wallet_start_s": round(self.wallet_start_seconds, 2),
            "split_s": {key: round(value, 3) for key, value in sorted(self.split.items())},
        }


# --- setup --------------------------------------------------------------------------


@dataclass
class Citizen:
    """One benchmark citizen: account, wallet data dir and open wallet store."""

    credentials: Credentials
    data_dir: Path
    store: WalletStore


def _person(index: int) -> Any:
    return parse_person(
        {
            "person_id": f"MB-BENCH-{index:05d}",
            "given_name": f"Bench{index}",
            "family_name": "Bürger",
            "birthdate": f"19{50 + index % 50:02d}-0{1 + index % 9}-1{index % 9}",
            "claims": {
                RESIDENCE_VCT: {
                    "address": cast.berlin_address(f"Teststraße {index}", "10115"),
                    "registered_since": "2020-01-01",
                    "residence_type": "main",
                }
            },
        }
    )


async def make_citizens(world: World, count: int, start: int) -> list[Citizen]:
    """Register ``count`` accounts and give each wallet a signed residence attestation."""
    homeserver = world.homeserver
    secret = read_shared_secret(homeserver.shared_secret_file)
    limit = asyncio.Semaphore(8)

    async def account(index: int) -> Credentials:
        async with limit:
            made = await asyncio.to_thread(
                register_with_shared_secret,
                homeserver.base_url,
                secret,
                f"bench-citizen-{index:05d}",
            )
        assert isinstance(made, Credentials)
        return made

    accounts = await asyncio.gather(*(account(start + i) for i in range(count)))
    config = world.agency_configs[cast.REGISTRY_OFFICE.key]
    stores = Stores.open(config, random_bytes=os.urandom)
    try:
        ctx = IssuerContext(
            config=config,
            register=stores.register,
            status_registry=stores.registry,
            issuance_log=stores.log,
            ledger=stores.ledger,
            signing_key=load_signing_key(config),
            trust_list=world.trust_list,
            pid_status_check=_no_pid_check,
        )
        citizens = []
        for offset, credentials in enumerate(accounts):
            person = _person(start + offset)
            stores.register.put_person(person)
            directory = world.data_dir / "bench-citizens" / f"{start + offset:05d}"
            directory.mkdir(parents=True)
            store = WalletStore.create(directory / "wallet.sqlite3", raw_key=os.urandom(32))
            key_id = store.new_holder_key()
            sd_jwt, _reference, _exp = sign_credential(
                ctx,
                person_id=person.person_id,
                vct=Vct(RESIDENCE_VCT),
                holder_key=store.holder_public_key(key_id),
                now=int(time.time()),
            )
            store.add_credential(
                sd_jwt=sd_jwt,
                vct=RESIDENCE_VCT,
                issuer=config.agency_id,
                holder_key_id=key_id,
            )
            citizens.append(Citizen(credentials, directory, store))
    finally:
        stores.close()
    return citizens


async def _no_pid_check(*_args: Any) -> None:
    raise AssertionError("the benchmark issues without PID presentations")


# --- passes -------------------------------------------------------------------------

ONE_AT_A_TIME = "one at a time"
"""A returning pass without concurrency: the latency of a single exchange on an idle system."""
SEQUENTIAL_SAMPLE = 30


@contextlib.contextmanager
def measured(synapse_pid: int) -> Iterator[dict[str, float]]:
    """Measure wall time and both processes' CPU over the block."""
    METER.reset()
    out: dict[str, float] = {}
    synapse_before, bench_before, started = process_cpu(synapse_pid), time.process_time(), 0.0
    started = time.perf_counter()
    yield out
    out["seconds"] = time.perf_counter() - started
    out["synapse_cpu"] = process_cpu(synapse_pid) - synapse_before
    out["bench_cpu"] = time.process_time() - bench_before


async def exchange(office: VerifierService, citizen: UserId, timeout: float) -> float | None:
    """One complete exchange; its latency in seconds, or None if it was not verified."""
    started = time.perf_counter()
    try:
        pending = await office.request(citizen, child_benefit_query(), cast.CHILD_BENEFIT_PURPOSE)
        result = await office.wait(pending.exchange_id, timeout)
    except OnceOnlyError as exc:
        print(f"exchange with {citizen} failed: {exc.code}: {exc.message}")
        return None
    return time.perf_counter() - started if result.verified else None


async def run_wave(
    world: World, office: VerifierService, wave: list[Citizen], passes: list[str], timeout: float
) -> dict[str, tuple[list[float | None], dict[str, float], dict[str, float]]]:
    """Start a wave's wallets, run the passes over them, stop them."""
    policy = parse_policy(consent_policy_text(), is_json=False)
    wallets = [
        WalletService(
            data_dir=citizen.data_dir,
            store=citizen.store,
            trust=lambda _now: world.trust_list,
            policy=policy,
            poll_interval=3600.0,
            login=citizen.credentials,
        )
        for citizen in wave
    ]
    pid = world.homeserver.status().pid
    assert pid is not None
    results = {}
    start = time.perf_counter()
    async with contextlib.AsyncExitStack() as stack:
        await asyncio.gather(*(stack.enter_async_context(wallet) for wallet in wallets))
        started_in = time.perf_counter() - start
        for name in passes:
            with measured(pid) as usage:
                if name == ONE_AT_A_TIME:
                    latencies = [
                        await exchange(office, citizen.credentials.user_id, timeout)
                        for citizen in wave[:SEQUENTIAL_SAMPLE]
                    ]
                else:
                    latencies = await asyncio.gather(
                        *(exchange(office, c.credentials.user_id, timeout) for c in wave)
                    )
            usage["wallet_start"] = started_in
            counted = {f"{key} (calls)": float(n) for key, n in METER.calls.items()}
            results[name] = (list(latencies), usage, {**METER.seconds, **counted})
    return results


async def bench(
    sizes: list[int], wave_size: int, warm_max: int, timeout: float
) -> list[PassResult]:
    instrument()
    root = Path(tempfile.mkdtemp(prefix="onceonly-bench-"))
    narrator = Narrator()
    data_dir = root / "demo"
    prepare_data_dir(data_dir, narrator.progress)
    world = await build_world(
        data_dir, port=free_loopback_port(), progress=narrator.progress, now=int(time.time())
    )
    outcomes: list[PassResult] = []
    try:
        office_data = world.family_benefits
        OFFICE_USER[0] = office_data.user_id
        await fetch_trust_list(office_data.credentials, world, office_data.data_dir)
        next_index = 0
        plan = []
        for size in sizes:
            narrator.progress(f"creating {size} citizens with signed residence attestations...")
            plan.append((size, await make_citizens(world, size, next_index)))
            next_index += size
        registry = IssuerService(world.agency_configs[cast.REGISTRY_OFFICE.key], world.trust_list)
        async with registry, VerifierService(office_data.data_dir) as office:
            for size, citizens in plan:
                passes = ["first contact"]
                if size <= warm_max:
                    passes += ["returning", ONE_AT_A_TIME]
                merged: dict[str, list[Any]] = {name: [] for name in passes}
                for offset in range(0, size, wave_size):
                    wave = citizens[offset : offset + wave_size]
                    narrator.progress(f"N={size}: wave of {len(wave)} wallets from #{offset}")
                    for name, value in (
                        await run_wave(world, office, wave, passes, timeout)
                    ).items():
                        merged[name].append(value)
                for name in passes:
                    outcomes.append(_combine(name, size, merged[name]))
                    print(json.dumps(outcomes[-1].to_json(), ensure_ascii=False))
    finally:
        world.homeserver.stop()
        shutil.rmtree(root, ignore_errors=True)
    return outcomes


def _combine(name: str, size: int, waves: list[Any]) -> PassResult:
    latencies = [lat for values, _u, _s in waves for lat in values if lat is not None]
    failures = sum(1 for values, _u, _s in waves for lat in values if lat is None)
    split: dict[str, float] = defaultdict(float)
    for _values, _usage, seconds in waves:
        for key, value in seconds.items():
            split[key] += value
    return PassResult(
        name=name,
        citizens=size,
        exchanges=len(latencies),
        failures=failures,
        seconds=sum(usage["seconds"] for _v, usage, _s in waves),
        latencies=latencies,
        synapse_cpu=sum(usage["synapse_cpu"] for _v, usage, _s in waves),
        bench_cpu=sum(usage["bench_cpu"] for _v, usage, _s in waves),
        wallet_start_seconds=sum(usage["wallet_start"] for _v, usage, _s in waves),
        split=dict(split),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--sizes", default="100,1000", help="Citizen counts, comma-separated.")
    parser.add_argument("--wave", type=int, default=100, help="Wallets running at once.")
    parser.add_argument("--warm-max", type=int, default=100, help="Largest N with a second pass.")
    parser.add_argument("--timeout", type=float, default=600.0, help="Seconds per exchange.")
    parser.add_argument("--json", type=Path, default=None, help="Write the results here too.")
    args = parser.parse_args()
    sizes = [int(part) for part in args.sizes.split(",") if part]
    results = asyncio.run(bench(sizes, args.wave, args.warm_max, args.timeout))
    rows = [result.to_json() for result in results]
    print("\npass            N     ex/s   p50 ms   p95 ms  synapse cpu  bench cpu  split (s)")
    for row in rows:
        print(
            f"{row['pass']:<14} {row['citizens']:>5} {row['exchanges_per_second']:>8}"
            f" {row['p50_ms']:>8} {row['p95_ms']:>8} {row['synapse_cpu_s']:>12}"
            f" {row['bench_cpu_s']:>10}  {row['split_s']}"
        )
    if args.json is not None:
        args.json.write_text(json.dumps(rows, indent=2, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
