"""Several verifier processes on one database: each response is accepted exactly once.

Real OS processes, each with its own Verifier, status cache and connections, all
given the same responses at the same moment. Per response exactly one process
may say "verified"; every other must say ``replay``. The audit log they share
records every verdict in one unforked chain.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from onceonly import jose
from onceonly.query import parse_query
from onceonly.status_cache import StatusCache
from onceonly.trust import Agency, verify_trust_list_signature
from onceonly.types import ExchangeId, UserId
from tests.unit.verifier.processes import BARRIER_TIMEOUT_S, race
from verifier.audit import audit_file
from verifier.audit_log import AuditLog
from verifier.evidence import EvidenceArchive
from verifier.nonce_store import NonceStore
from verifier.requests import PendingRequest
from verifier.reverify import Reverifier, nonce_consumers
from verifier.verification import Verifier

from .verification_world import CITIZEN, NOW, PURPOSE, VERIFIER_ID, World, address_query

PROCESSES = 3
RESPONSES = 8


def _worker(job: dict[str, Any], out: str, barrier: Any) -> None:
    trust = verify_trust_list_signature(job["trust"], [jose.public_key_from_jwk(job["authority"])])

    async def fetch(_uri: str, _agency: Agency) -> str:
        return str(job["status"])

    async def run() -> list[dict[str, Any]]:
        with NonceStore.open(job["store"]) as nonces, AuditLog.open(job["store"]) as audit:
            verifier = Verifier(
                verifier_id=VERIFIER_ID,
                trust=lambda _now: trust,
                nonces=nonces,
                audit=audit,
                status=StatusCache(fetch),
                evidence=EvidenceArchive(Path(job["evidence"])),
            )
            barrier.wait(timeout=BARRIER_TIMEOUT_S)
            results = []
            for item in job["responses"]:
                pending = PendingRequest(
                    exchange_id=ExchangeId(item["exchange_id"]),
                    citizen=UserId(CITIZEN),
                    verifier_id=VERIFIER_ID,
                    nonce=item["nonce"],
                    query=parse_query(job["query"]),
                    purpose=PURPOSE,
                    created_at=NOW,
                    expires_at=item["expires_at"],
                )
                result = await verifier.verify_response(
                    pending, {"residence": [item["presentation"]]}, now=NOW + 5
                )
                results.append({"exchange_id": pending.exchange_id, "code": result.error_code})
            return results

    Path(out).write_text(json.dumps(asyncio.run(run())), encoding="utf-8")


def test_each_response_is_accepted_by_exactly_one_process(
    postgres_dsn: str, tmp_path: Path
) -> None:
    world = World()
    credential = world.credential()
    responses = []
    with NonceStore.open(postgres_dsn) as nonces:
        for n in range(RESPONSES):
            exchange = ExchangeId(f"race-exchange-{n:06d}")
            issued = nonces.issue(exchange_id=exchange, audience=VERIFIER_ID, now=NOW, ttl=600)
            responses.append(
                {
                    "exchange_id": exchange,
                    "nonce": issued.nonce,
                    "expires_at": issued.expires_at,
                    "presentation": world.present(credential, nonce=issued.nonce),
                }
            )
    job = {
        "store": postgres_dsn,
        "evidence": str(tmp_path / "evidence"),
        "trust": world.trust_token(),
        "authority": world.authority.public().to_jwk(),
        "status": world.status_token(),
        "query": address_query().to_json_dict(),
        "responses": responses,
    }
    outs = [tmp_path / f"worker-{i}.json" for i in range(PROCESSES)]
    assert race(_worker, [(job, str(out)) for out in outs], timeout=200) == [0] * PROCESSES
    verdicts: dict[str, list[str | None]] = {}
    for out in outs:
        for result in json.loads(out.read_text(encoding="utf-8")):
            verdicts.setdefault(result["exchange_id"], []).append(result["code"])
    assert len(verdicts) == RESPONSES
    for codes in verdicts.values():
        assert sorted(codes, key=str) == sorted([None] + ["replay"] * (PROCESSES - 1), key=str)
    with AuditLog.open(postgres_dsn, signing_key=world.verifier) as audit:
        entries = audit.entries()
        audit.sign_head(now=NOW + 10)
        audit.export(tmp_path / "audit.jsonl", now=NOW + 10)
    assert [entry.seq for entry in entries] == list(range(1, PROCESSES * RESPONSES + 1))
    assert sum(1 for entry in entries if entry.outcome and entry.outcome.verified) == RESPONSES
    # The auditor reproduces every verdict, whichever process appended first.
    reverifier = Reverifier(
        evidence=EvidenceArchive(tmp_path / "evidence"),
        anchors=[world.authority.public()],
        consumers=nonce_consumers(entries),
    )
    report = audit_file(
        tmp_path / "audit.jsonl", verifier_key=world.verifier.public(), reverify=reverifier
    )
    assert report.reverified == PROCESSES * RESPONSES
    assert report.clean, [finding.message for finding in report.findings]
