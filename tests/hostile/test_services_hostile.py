"""Hostile events against the issuer, wallet and verifier services on a real Synapse.

Each party gets every variant of :mod:`tests.hostile.variants` (all protocol event types
and plain ``m.room.message``, malformed in depth, size, types, fields, tokens, encoding),
encrypted by a plain nio device, plus replays, a foreign exchange id and a wrong room id.
The variants go in batches (one per event type); after each batch an honest request must
get its honest answer, and at the end every hostile event must have been handled by the
party (none pending, none parked).

Attackers: against the issuer, any Matrix user (it opens a mailbox itself); against the
wallet, a rogue device of the verifier's account; against the verifier, a rogue device of
the citizen's account. The latter two write into the real wallet-verifier mailbox.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from nio import RoomCreateResponse, RoomPreset, RoomVisibility

from issuer.service import IssuerService
from onceonly.matrix.accounts import Credentials, login
from onceonly.matrix.client import TRANSPORT_DB
from onceonly.matrix.homeserver import Homeserver
from onceonly.matrix.rooms import MEGOLM
from tests.hostile.hostile_client import HostileClient
from tests.hostile.variants import Variant, all_variants, base_contents
from tests.integration.test_transport_rooms import membership
from tests.integration.test_transport_support import register
from tests.integration.test_wallet_issuers import PURPOSE, WAIT, RealIssuers, _query, _until
from tests.unit.issuer.issuer_world import IDENTITY_ID, PID_VCT, REGISTRY_ID, RESIDENCE_VCT
from verifier.api import VerifierApi
from verifier.service import VerifierService
from wallet.service import WalletService

pytestmark = pytest.mark.integration

REQUEST = "eu.onceonly.v1.credential.request"


@dataclass
class World:
    real: RealIssuers
    wallet: WalletService
    verifier: VerifierService
    identity: IssuerService

    async def issue_probe(self) -> None:
        """The honest citizen asks the identity agency for a PID and gets it."""
        exchange = await self.wallet.request(IDENTITY_ID, PID_VCT)
        await _until(lambda: self.real.store.offer(exchange).state != "requested")
        assert self.real.store.offer(exchange).state == "accepted", self.wallet.notices

    async def present_probe(self) -> None:
        """The verifier asks the honest citizen for the locality and verifies it."""
        api = VerifierApi(self.verifier)
        result = await api.request_proof(
            self.real.citizen.user_id, _query(["address", "locality"]), PURPOSE, WAIT
        )
        assert result.verified, (result.error_code, result.message, self.wallet.notices)


@asynccontextmanager
async def world(synapse: Homeserver, tmp_path: Path, *, residence: bool) -> AsyncIterator[World]:
    real = RealIssuers.start(synapse, tmp_path, verifier="familienkasse", citizen="erika")
    wallet = real.wallet()
    verifier = VerifierService(real.verifier_dir, sweep_interval=1.0)
    try:
        async with (
            IssuerService(real.identity.config, real.trust) as id_service,
            IssuerService(real.office.config, real.trust),
            verifier,
            wallet,
        ):
            real.pin_wallet_device(id_service)
            running = World(real, wallet, verifier, id_service)
            await running.issue_probe()
            if residence:
                exchange = await wallet.request(REGISTRY_ID, RESIDENCE_VCT)
                await _until(lambda: real.store.offer(exchange).state != "requested")
                assert real.store.offer(exchange).state == "accepted", wallet.notices
                await running.present_probe()
            yield running
    finally:
        real.store.close()


def inbox_states(data_dir: Path) -> dict[str, str]:
    """Event id -> inbox state of a party's transport store (read-only)."""
    uri = f"file:{data_dir / TRANSPORT_DB}?mode=ro"
    with sqlite3.connect(uri, uri=True) as db:
        return dict(db.execute("SELECT event_id, state FROM inbox").fetchall())


async def send_variant(hostile: HostileClient, room_id: str, variant: Variant) -> str:
    if variant.plaintext is not None:
        return await hostile.send_plaintext(room_id, variant.plaintext)
    assert variant.content is not None
    return await hostile.send_content(room_id, variant.event_type, variant.content)


async def session_variants(hostile: HostileClient, room_id: str, exchange_id: str) -> list[str]:
    """Replays, a foreign exchange id (wrong sender) and a payload naming another room."""
    request = {**base_contents()[REQUEST], "exchange_id": exchange_id}
    sent = [
        await hostile.send_content(room_id, "m.room.message", request),
        await hostile.send_content(room_id, "m.room.message", request),  # protocol replay
    ]
    sent.append(await hostile.put_event(room_id, "m.room.encrypted", hostile.last_encrypted))
    wrong_room = {"type": "m.room.message", "content": request, "room_id": "!elsewhere:localhost"}
    sent.append(await hostile.send_plaintext(room_id, json.dumps(wrong_room)))
    sent.append(await hostile.put_event(room_id, "m.room.encrypted", hostile.last_encrypted))
    return sent


async def attack(
    hostile: HostileClient,
    room_id: str,
    probe: Callable[[], Awaitable[None]],
    party_dir: Path,
    exchange_id: str,
) -> int:
    """Send every batch, probe after each; check that each hostile event was handled."""
    sent: list[str] = []
    started = time.monotonic()
    for batch in all_variants().values():
        for variant in batch:
            sent.append(await send_variant(hostile, room_id, variant))
        await probe()
    sent += await session_variants(hostile, room_id, exchange_id)
    await probe()
    states = inbox_states(party_dir)
    unhandled = {e: states.get(e) for e in sent if states.get(e) != "handled"}
    assert not unhandled, f"{len(unhandled)} hostile events not handled: {unhandled}"
    print(f"{len(sent)} hostile events in {time.monotonic() - started:.0f} s")
    return len(sent)


async def test_the_issuer_serves_honest_requests_through_every_hostile_variant(
    synapse: Homeserver, tmp_path: Path
) -> None:
    async with world(synapse, tmp_path, residence=False) as w:
        agency = w.identity.config.matrix_user_id
        creds, _ = register(synapse, "stranger", tmp_path)
        hostile = HostileClient(creds, tmp_path / "stranger-store")
        try:
            created = await hostile.client.room_create(
                visibility=RoomVisibility.private,
                preset=RoomPreset.trusted_private_chat,
                is_direct=True,
                invite=[agency],
                initial_state=[
                    {"type": "m.room.encryption", "state_key": "", "content": {"algorithm": MEGOLM}}
                ],
            )
            assert isinstance(created, RoomCreateResponse), created
            room_id = str(created.room_id)
            for _ in range(300):
                if await membership(synapse, creds, room_id, agency) == "join":
                    break
                await hostile.sync_once(timeout_ms=200)
            honest_exchange = next(o.offer_id for o in w.real.store.offers())
            count = await attack(
                hostile, room_id, w.issue_probe, w.identity.config.matrix_data_dir, honest_exchange
            )
            assert count > 400
        finally:
            await hostile.close()


async def rogue_device(synapse: Homeserver, account: Credentials, store_dir: Path) -> HostileClient:
    """Another device logged into ``account`` (a stolen password), as a hostile client."""
    assert account.password is not None
    device = login(synapse.base_url, account.user_id, account.password)
    return HostileClient(device, store_dir)


async def test_the_wallet_and_the_verifier_serve_honest_requests_through_every_variant(
    synapse: Homeserver, tmp_path: Path
) -> None:
    async with world(synapse, tmp_path, residence=True) as w:
        verifier_account = w.real.verifier_account
        assert verifier_account is not None
        room_id = await w.verifier.runtime.room_for(w.real.citizen.user_id)
        exchange_id = next(o.offer_id for o in w.real.store.offers())
        for account, party_dir in (
            (verifier_account, w.real.data_dir),  # a rogue verifier device attacks the wallet
            (w.real.citizen, w.real.verifier_dir),  # a rogue citizen device, the verifier
        ):
            hostile = await rogue_device(synapse, account, tmp_path / f"rogue-{account.user_id}")
            try:
                await hostile.sync_once(timeout_ms=0)
                count = await attack(hostile, room_id, w.present_probe, party_dir, exchange_id)
                assert count > 400
            finally:
                await hostile.close()
