"""Two issuer processes on one PostgreSQL database never hand out the same status index.

The parent prepares real credential requests (citizens with PIDs from the
identity agency, PID presentations bound to each request's nonce); two OS
processes of the registry office then answer their halves at the same time
through the full issuance path (nonce ledger, key proof, PID verification,
register lookup, status allocation, signing, issuance log), all on one
PostgreSQL schema. Every credential must carry its own status entry, and the
log must hold each of them exactly once.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from issuer.config import AgencyConfig, load_config, load_signing_key
from issuer.eid_check import complete_eid_check, start_eid_check
from issuer.issuance import handle_credential_request
from issuer.issuance_log import IssuanceLog
from issuer.nonce_ledger import NonceLedger
from issuer.register import PID_VCT, Register
from issuer.status_registry import StatusRegistry
from onceonly import jose
from onceonly.protocol import CredentialRequest, parse_event, to_content
from onceonly.sdjwt import parse_sd_jwt
from onceonly.status_list import StatusReference, check_status
from onceonly.trust import TrustList
from onceonly.types import UserId
from tests.unit.issuer.issuer_world import (
    IDENTITY_ID,
    IDENTITY_USER,
    NOW,
    REGISTRY_ID,
    REGISTRY_USER,
    RESIDENCE_VCT,
    AgencyUnderTest,
    Citizen,
    listed,
    make_agency,
    trust_list,
)

pytestmark = pytest.mark.integration

# eID cards of people the registry office knows (one register record each).
CARDS = (
    "LXH67HC3V", "LVT05FM6T", "LH3YLYNT5", "L29FZHM3W", "LWW2RK8G4", "LR2MLWCJK", "LLF9LMGGG",
    "L7H2TH6CV", "LCP2V20TR", "LF6F58WYK", "L7223NW7J", "LRY74F27F", "L9G89J0WH", "LCGZXKYG4",
)  # fmt: skip
REQUESTS_PER_CITIZEN = 5
REQUEST_TYPE = "eu.onceonly.v1.credential.request"


def pid_status_checker(token: str, key: jose.PublicKey) -> Any:
    async def check(reference: StatusReference, issuer_id: str) -> None:
        assert issuer_id == IDENTITY_ID
        check_status(reference, token, issuer_key=key, now=NOW)

    return check


async def prepare_jobs(tmp_path: Path, postgres_dsn: str) -> tuple[AgencyUnderTest, list[Path]]:
    identity = make_agency(
        tmp_path / "identity", agency_id=IDENTITY_ID, user_id=IDENTITY_USER,
        name=("Ausweisbehörde", "ID authority"), credentials=[PID_VCT],
        register_file="identity_agency.json",
    )  # fmt: skip
    office = make_agency(
        tmp_path / "office", agency_id=REGISTRY_ID, user_id=REGISTRY_USER,
        name=("Meldebehörde", "Registration office"), credentials=[RESIDENCE_VCT],
        register_file="registry_office.json", issuer_database=postgres_dsn,
        register_database=postgres_dsn,
    )  # fmt: skip
    trust = trust_list(listed(identity), listed(office))
    identity_ctx = identity.make_context(trust, None)
    jobs: list[list[dict[str, Any]]] = [[], []]
    for number, card in enumerate(CARDS):
        citizen = Citizen(UserId(f"@citizen{number}:localhost"))
        code = start_eid_check(identity.register, identity.ledger, card, now=NOW,
                               random_bytes=secrets.token_bytes)  # fmt: skip
        complete_eid_check(identity.register, identity.ledger, card_number=card, code=code,
                           matrix_user_id=citizen.user_id, now=NOW)  # fmt: skip
        pid_request = citizen.request(audience=IDENTITY_ID, vct=PID_VCT)
        issued = await handle_credential_request(
            identity_ctx, pid_request, sender=citizen.user_id, now=NOW
        )
        citizen.pid = issued.sd_jwt
        for _ in range(REQUESTS_PER_CITIZEN):
            request = citizen.request(
                audience=REGISTRY_ID, vct=RESIDENCE_VCT, identity_for=REGISTRY_ID
            )
            jobs[number % 2].append({"sender": citizen.user_id, "content": to_content(request)})
    pid_uri = identity.registry.list_uris()[0]
    shared = {
        "config": str(office.config.path),
        "trust_list": trust.model_dump(mode="json"),
        "pid_status_token": identity.registry.sign_jwt(pid_uri, identity.key, now=NOW),
        "identity_key": identity.key.public().to_jwk(),
    }
    identity.close()
    office.close()
    paths = []
    for index, requests in enumerate(jobs):
        path = tmp_path / f"job{index}.json"
        path.write_text(json.dumps({**shared, "requests": requests}))
        paths.append(path)
    return office, paths


async def test_two_processes_issue_concurrently_without_sharing_a_status_index(
    tmp_path: Path, postgres_dsn: str
) -> None:
    office, jobs = await prepare_jobs(tmp_path, postgres_dsn)
    root = Path(__file__).resolve().parents[2]
    workers = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.integration.test_issuer_postgres", str(job)],
            cwd=root,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for job in jobs
    ]
    deadline = time.monotonic() + 120
    while not all(job.with_suffix(".ready").exists() for job in jobs):
        assert time.monotonic() < deadline, "workers did not get ready"
        assert all(w.poll() is None for w in workers), "a worker exited early"
        time.sleep(0.05)
    (tmp_path / "go").touch()
    results = []
    for worker in workers:
        out, err = worker.communicate(timeout=300)
        assert worker.returncode == 0, err
        results.append(json.loads(out))

    issued = [entry for result in results for entry in result["issued"]]
    assert all(not result["failed"] for result in results), results
    assert len(issued) == len(CARDS) * REQUESTS_PER_CITIZEN
    references = {(entry["uri"], entry["idx"]) for entry in issued}
    assert len(references) == len(issued)  # no status entry was handed out twice
    # Both processes really worked at the same time: their time spans overlap.
    (start_a, end_a), (start_b, end_b) = (r["span"] for r in results)
    assert start_a < end_b and start_b < end_a
    reopened = open_stores(office.config)
    log_entries = [
        r for person in reopened.register.person_ids() for r in reopened.log.by_person(person)
    ]
    assert {(r.status_list_uri, r.status_index) for r in log_entries} == references
    for entry in issued:
        registry_entry = reopened.registry.entry(
            StatusReference(idx=entry["idx"], uri=entry["uri"])
        )
        assert registry_entry.vct == RESIDENCE_VCT
    reopened.close()


def open_stores(config: AgencyConfig) -> AgencyUnderTest:
    """Open the office's PostgreSQL stores (in a worker, or again after the workers)."""
    return AgencyUnderTest(
        config=config,
        register=Register.open(config.register_database),
        registry=StatusRegistry.open(
            config.issuer_database, base_uri=config.status_base_uri, list_size=1024
        ),
        log=IssuanceLog.open(config.issuer_database),
        ledger=NonceLedger.open(config.issuer_database),
        key=load_signing_key(config),
    )


async def work(job_path: Path) -> dict[str, Any]:
    """One issuer process: answer every request of the job through the issuance path."""
    job = json.loads(job_path.read_text())
    office = open_stores(load_config(Path(job["config"])))
    check = pid_status_checker(
        job["pid_status_token"], jose.public_key_from_jwk(job["identity_key"])
    )
    ctx = office.make_context(TrustList.model_validate(job["trust_list"]), check)
    requests = [parse_event(REQUEST_TYPE, item["content"]) for item in job["requests"]]
    # Start together: the parent creates the go file once both workers are ready.
    job_path.with_suffix(".ready").touch()
    go = job_path.parent / "go"
    while not go.exists():
        await asyncio.sleep(0.01)
    issued, failed = [], []
    started = time.monotonic_ns()
    for item, request in zip(job["requests"], requests, strict=True):
        assert isinstance(request, CredentialRequest)
        try:
            result = await handle_credential_request(ctx, request, sender=item["sender"], now=NOW)
        except Exception as exc:  # reported to the parent, which fails the test
            failed.append(repr(exc))
            continue
        issued.append(parse_sd_jwt(result.sd_jwt).claims["status"]["status_list"])
    span = (started, time.monotonic_ns())
    office.close()
    return {"issued": issued, "failed": failed, "span": span}


if __name__ == "__main__":
    print(json.dumps(asyncio.run(work(Path(sys.argv[1])))))
