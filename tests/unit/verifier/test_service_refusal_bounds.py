"""A hostile sender cannot make the verifier store what it likes; honest answers still count.

The verifier service runs with its real stores, auditor and runtime; only the Matrix
transport is the in-memory stand-in of the transport interface (the same service over
a real Synapse is in tests/integration/test_verifier_synapse.py).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from onceonly.matrix.inbox import AlreadyHandled, InboundEvent, InboundHandler
from onceonly.protocol import NAMESPACE, PresentationRequest
from onceonly.protocol.bodies import build_presentation_response
from onceonly.protocol.envelope import to_wire
from onceonly.protocol.fields import LocalizedText
from onceonly.trust_cache import TrustCache
from onceonly.types import UserId
from tests.unit.test_service_runtime import ROOM, MemoryTransport
from verifier.audit import audit_file
from verifier.audit_format import EntryKind
from verifier.config import init_verifier, load_config
from verifier.evidence import EvidenceArchive
from verifier.reverify import Reverifier, nonce_consumers, read_export_entries, recorded_requests
from verifier.service import VerifierService

from .verification_world import CITIZEN, NOW, PURPOSE, VERIFIER_ID, World, address_query

JUNK_EVENTS = 200
QUOTA = 20
MALLORY = "@mallory:localhost"


@dataclass
class Office:
    service: VerifierService
    transport: MemoryTransport
    clock: list[float]
    world: World
    data_dir: Path
    delivered: int = 0

    async def deliver(self, sender: str, event_type: str, content: dict[str, object]) -> None:
        self.delivered += 1
        await self.transport.handler(
            InboundEvent(
                event_id=f"$in{self.delivered}",
                room_id=ROOM,
                sender=sender,
                type=event_type,
                content=content,
                origin_server_ts=int(self.clock[0]) * 1000,
                encrypted=True,
                redelivered=False,
            )
        )

    def audit_bytes(self) -> int:
        """The size of the audit log's entries as exported (what an agency keeps)."""
        total, after = 0, 0
        while batch := self.service.audit.entries(after_seq=after):
            total += sum(len(json.dumps(entry.to_json())) for entry in batch)
            after = batch[-1].seq
        return total


@pytest.fixture
async def office(tmp_path: Path, store_location: str) -> AsyncIterator[Office]:
    """The verifier service with its nonces, requests, quota and audit log in
    ``store_location`` (SQLite or PostgreSQL)."""
    world = World()
    data_dir = tmp_path / "verifier"
    init_verifier(data_dir, verifier_id=VERIFIER_ID, anchors=[world.authority.public()])
    config = load_config(data_dir).model_copy(
        update={"refused_per_sender": QUOTA, "store": store_location}
    )
    TrustCache.in_data_dir(data_dir, [world.authority.public()]).offer(
        world.trust_token(), now=world.now
    )
    clock = [float(NOW)]
    box: dict[str, MemoryTransport] = {}

    def factory(handler: InboundHandler, hook: AlreadyHandled) -> MemoryTransport:
        box["t"] = MemoryTransport(world.verifier_matrix_id, handler, hook)
        return box["t"]

    service = VerifierService(
        data_dir,
        config=config,
        status_fetch=world.fetch,
        clock=lambda: clock[0],
        transport_factory=factory,
        sweep_interval=3600,
        purge_interval=3600,
    )
    async with service:
        yield Office(service, box["t"], clock, world, data_dir)


def junk(number: int) -> dict[str, object]:
    """A presentation response naming no request of ours, padded to ~60 KB."""
    return {
        "exchange_id": f"junk{number:020d}",
        "body": "x" * 60_000,
        "vp_token": {"residence": ["not.a.presentation~"]},
    }


async def test_junk_from_one_sender_is_bounded_and_honest_answers_still_count(
    office: Office,
) -> None:
    response_type = NAMESPACE + "presentation.response"
    before = office.audit_bytes()
    for number in range(JUNK_EVENTS):
        await office.deliver(MALLORY, response_type, junk(number))
    grown = office.audit_bytes() - before
    refused = [e for e in office.service.audit.entries() if e.details.get("sender") == MALLORY]
    assert len(refused) == QUOTA  # the rest only counted
    # Each recorded refusal is a digest: hash, size and a bounded prefix of the content.
    sample = refused[0]
    assert int(sample.details["received_bytes"]) > 60_000
    assert len(sample.details["received_prefix"].encode("utf-8")) <= 512
    assert len(sample.details["received_sha256"]) == 64
    # 200 events of ~60 KB each (12 MB) grew the log by a few KB.
    assert grown < QUOTA * 2048, grown

    # An honest request and answer after the flood: verified, audited in full.
    pending = await office.service.request(UserId(CITIZEN), address_query(), PURPOSE)
    [request] = [c for c in office.transport.sent_contents() if isinstance(c, PresentationRequest)]
    presentation = office.world.present(office.world.credential(), nonce=request.nonce)
    answer = build_presentation_response(
        exchange_id=pending.exchange_id,
        verifier_name=LocalizedText(de="Familienkasse", en="Family benefits office"),
        vp_token={"residence": (presentation,)},
    )
    await office.deliver(str(CITIZEN), *to_wire(answer))
    result = await office.service.wait(pending.exchange_id, 30)
    assert result.verified, result.message
    [verdict] = [
        e
        for e in office.service.audit.entries()
        if e.exchange_id == pending.exchange_id and e.kind is EntryKind.VERIFICATION
    ]
    assert verdict.presentation is not None and presentation in verdict.presentation

    # Once the window has ended the count is recorded, once.
    office.clock[0] += 3600
    await office.service.purge()
    await office.service.purge()
    entries = office.service.audit.entries()
    [counted] = [e for e in entries if e.details.get("refused_by") == "quota"]
    assert counted.details["sender"] == MALLORY
    assert (counted.details["recorded"], counted.details["suppressed"]) == (
        str(QUOTA),
        str(JUNK_EVENTS - QUOTA),
    )

    # The auditor finds the whole log clean and re-verifies the honest verdict.
    log = office.service.audit
    log.sign_head(now=int(office.clock[0]))
    export = office.data_dir / "audit.jsonl"
    log.export(export, now=int(office.clock[0]))
    entries = read_export_entries(export)
    report = audit_file(
        export,
        verifier_key=office.service.config.signing_key(office.data_dir).public(),
        reverify=Reverifier(
            evidence=EvidenceArchive(office.data_dir / "evidence"),
            anchors=[office.world.authority.public()],
            consumers=nonce_consumers(entries),
            requests=recorded_requests(entries),
        ),
    )
    assert report.clean, [f.message for f in report.findings]
    assert report.reverified == 1
