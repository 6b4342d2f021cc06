"""Benchmark: credentials issued and delivered per second to N citizens via one local Synapse.

Starts its own Synapse on a free loopback port, creates an identity agency and a
registry office (real configurations, SQLite stores, N synthetic register
persons each), gives every citizen a PID (untimed setup), and then measures in
the same run, separately:

* **signing** - the registry office's full issuance path for N real
  ``credential.request`` contents (nonce ledger, key proof, PID presentation
  verified against the trust list and the PID status list, register lookup,
  status entry allocation, SD-JWT VC signing, schema check, issuance log); next to
  it, the floor: ``issue_sd_jwt_vc`` alone on the same claims (the peer);
* **Matrix** - delivering those N ``credential.issue`` events from the agency's
  E2EE transport into N mailboxes until every citizen's own E2EE client has
  received and decrypted its credential (mailbox creation is setup, reported
  apart as first-contact cost).

Usage: ``python bench/issuance.py [--citizens 200]``
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter

from issuer.config import init_agency, load_signing_key
from issuer.eid_check import complete_eid_check, start_eid_check
from issuer.issuance import IssuerContext, handle_credential_request
from issuer.issuance_log import IssuanceLog
from issuer.nonce_ledger import NonceLedger
from issuer.offers import new_exchange_id, new_nonce
from issuer.register import PID_VCT, RESIDENCE_VCT, Register, parse_person
from issuer.status_registry import StatusRegistry
from onceonly import jose
from onceonly.credential_types import get_type
from onceonly.matrix.accounts import save_credentials
from onceonly.matrix.client import PartyClient
from onceonly.matrix.devices import AllDevicesOf
from onceonly.matrix.homeserver import Homeserver
from onceonly.matrix.homeserver_process import free_loopback_port
from onceonly.matrix.inbox import Inbound, InboundEvent
from onceonly.matrix.rooms import InvitesFrom
from onceonly.protocol import CredentialRequest, LocalizedText, make_key_proof
from onceonly.protocol.bodies import build_credential_request
from onceonly.protocol.envelope import from_wire, to_wire
from onceonly.protocol.events import CredentialIssue, PublicJwk
from onceonly.protocol.proofs import IDENTITY_BINDING_CONTEXT
from onceonly.sdjwt import issue_sd_jwt_vc, parse_sd_jwt, present
from onceonly.status_list import StatusReference, check_status
from onceonly.trust import Agency, AgencyKey, TrustList
from onceonly.trust import LocalizedText as TrustText

IDENTITY_ID = "https://ausweis.bench.example"
REGISTRY_ID = "https://meldeamt.bench.example"
_JWK: TypeAdapter[Any] = TypeAdapter(PublicJwk)
ADDRESS = {"street_address": "Torstraße 1", "postal_code": "10119", "locality": "Berlin",
           "country": "DE"}  # fmt: skip


def synthetic_person(i: int, *, identity: bool) -> Any:
    """Register record number ``i`` (unique name, so identity matching finds one)."""
    record: dict[str, Any] = {
        "person_id": f"{'ID' if identity else 'MB'}-B{i:05d}",
        "given_name": "Erika",
        "family_name": f"Mustermann-{i:05d}",
        "birthdate": "1980-01-01",
        "place_of_birth": {"locality": "Berlin", "country": "DE"},
    }
    if identity:
        record["eid_card_number"] = f"B{i:08d}"
        record["claims"] = {PID_VCT: {"nationalities": ["DE"], "address": ADDRESS}}
    else:
        record["claims"] = {RESIDENCE_VCT: {"address": ADDRESS, "registered_since": "2020-02-01",
                                            "residence_type": "main"}}  # fmt: skip
    return parse_person(record)


class BenchAgency:
    """An agency's configuration and open stores."""

    def __init__(self, root: Path, agency_id: str, user_id: str, vct: str, n: int) -> None:
        self.config = init_agency(
            root, agency_id=agency_id, name_de=agency_id, name_en=agency_id,
            matrix_user_id=user_id, credentials=[vct],
        )  # fmt: skip
        self.register = Register.open(self.config.register_database)
        for i in range(n):
            self.register.put_person(synthetic_person(i, identity=vct == PID_VCT))
        self.registry = StatusRegistry.open(
            self.config.issuer_database, base_uri=self.config.status_base_uri
        )
        self.log = IssuanceLog.open(self.config.issuer_database)
        self.ledger = NonceLedger.open(self.config.issuer_database)
        self.key = load_signing_key(self.config)

    def listed(self, now: int) -> Agency:
        return Agency(
            id=self.config.agency_id,
            name=TrustText(de=self.config.name_de, en=self.config.name_en),
            matrix_user_id=self.config.matrix_user_id,
            keys=(AgencyKey(jwk=self.key.public().to_jwk(), valid_from=now - 3600),),
            may_issue=self.config.issues(),
        )

    def context(self, trust: TrustList, check: Any) -> IssuerContext:
        return IssuerContext(
            config=self.config, register=self.register, status_registry=self.registry,
            issuance_log=self.log, ledger=self.ledger, signing_key=self.key,
            trust_list=trust, pid_status_check=check,
        )  # fmt: skip


def request(
    key: jose.PrivateKey, *, audience: str, vct: str, now: int, pid: str | None = None
) -> CredentialRequest:
    """What a wallet sends: a key proof over a fresh nonce, optionally a PID presentation."""
    nonce = new_nonce(secrets.token_bytes)
    presentation = None
    if pid is not None:
        presentation = present(
            parse_sd_jwt(pid),
            disclose=[("given_name",), ("family_name",), ("birthdate",), ("place_of_birth",)],
            holder_key=key, aud=audience, nonce=nonce, now=now, context=IDENTITY_BINDING_CONTEXT,
        )  # fmt: skip
    return build_credential_request(
        exchange_id=new_exchange_id(secrets.token_bytes),
        vct=vct,
        holder_jwk=_JWK.validate_python(key.public().to_jwk()),
        proof=make_key_proof(key, audience=audience, nonce=nonce, now=now),
        credential_name=LocalizedText(de="Nachweis", en="credential"),
        identity_presentation=presentation,
    )


async def in_batches(
    items: list[Any], work: Callable[[Any], Awaitable[Any]], size: int
) -> list[Any]:
    """Run ``work`` over ``items`` with at most ``size`` at a time (Synapse has 2 cores too)."""
    results: list[Any] = []
    for start in range(0, len(items), size):
        results += await asyncio.gather(*(work(item) for item in items[start : start + size]))
    return results


async def main(n: int) -> None:
    with tempfile.TemporaryDirectory(prefix="onceonly-bench-issuance-") as tmp:
        root = Path(tmp)
        hs = Homeserver.from_data_dir(
            root / "synapse", port=free_loopback_port(), relaxed_rate_limits=True
        )
        print(f"starting Synapse at {hs.base_url} ...", flush=True)
        await asyncio.to_thread(hs.start, 180.0)
        try:
            await run(hs, root, n)
        finally:
            await asyncio.to_thread(hs.stop)


async def run(hs: Homeserver, root: Path, n: int) -> None:
    now = int(time.time())
    tag = secrets.token_hex(3)
    office_account = hs.register(f"bench-office-{tag}", unlimited=True)
    identity = BenchAgency(root / "identity", IDENTITY_ID, f"@bench-id-{tag}:x", PID_VCT, n)
    office = BenchAgency(root / "office", REGISTRY_ID, office_account.user_id, RESIDENCE_VCT, n)
    trust = TrustList(
        iss="https://trust.bench.example", name=TrustText(de="Vertrauen", en="Trust"), seq=1,
        iat=now - 60, nbf=now - 60, exp=now + 86_400,
        agencies=(identity.listed(now), office.listed(now)),
    )  # fmt: skip

    # --- setup (untimed): N citizens, each with a PID from the identity agency --------------
    print(f"setup: {n} PIDs ...", flush=True)
    keys = [jose.generate_private_key(jose.ES256) for _ in range(n)]
    citizens = [hs.register(f"bench-citizen-{tag}-{i}", unlimited=False) for i in range(n)]
    identity_ctx = identity.context(trust, None)
    pids = []
    for i, (citizen, key) in enumerate(zip(citizens, keys, strict=True)):
        code = start_eid_check(identity.register, identity.ledger, f"B{i:08d}", now=now,
                               random_bytes=secrets.token_bytes)  # fmt: skip
        complete_eid_check(identity.register, identity.ledger, card_number=f"B{i:08d}",
                           code=code, matrix_user_id=citizen.user_id, now=now)  # fmt: skip
        issued = await handle_credential_request(
            identity_ctx, request(key, audience=IDENTITY_ID, vct=PID_VCT, now=now),
            sender=citizen.user_id, now=now,
        )  # fmt: skip
        pids.append(issued.sd_jwt)
    pid_token = identity.registry.sign_jwt(identity.registry.list_uris()[0], identity.key, now=now)

    async def pid_status(reference: StatusReference, issuer_id: str) -> None:
        check_status(reference, pid_token, issuer_key=identity.key.public(), now=now)

    requests = [
        request(key, audience=REGISTRY_ID, vct=RESIDENCE_VCT, now=now, pid=pid)
        for key, pid in zip(keys, pids, strict=True)
    ]

    # --- signing: the full issuance path, then the bare signing floor ----------------------
    office_ctx = office.context(trust, pid_status)
    contents: list[CredentialIssue] = []
    per_credential = []
    start = time.perf_counter()
    for citizen, req in zip(citizens, requests, strict=True):
        t0 = time.perf_counter()
        issued = await handle_credential_request(office_ctx, req, sender=citizen.user_id, now=now)
        per_credential.append(time.perf_counter() - t0)
        contents.append(issued.content)
    signing_seconds = time.perf_counter() - start
    claims = office.register.claims_for("MB-B00000", RESIDENCE_VCT)
    paths = get_type(RESIDENCE_VCT).disclosable_paths
    start = time.perf_counter()
    for key in keys:
        issue_sd_jwt_vc(
            issuer=REGISTRY_ID, vct=RESIDENCE_VCT, claims=claims, disclosable=paths,
            holder_key=key.public(), signing_key=office.key, now=now, expires_at=now + 3600,
            random_bytes=secrets.token_bytes,
        )  # fmt: skip
    floor_seconds = time.perf_counter() - start

    # --- Matrix: N mailboxes, then N encrypted credential.issue events delivered -----------
    print(f"setup: {n} citizen E2EE clients and mailboxes ...", flush=True)
    arrived: dict[str, float] = {}
    everyone = asyncio.Event()

    def receiver(user: str) -> Callable[[Inbound], Awaitable[None]]:
        async def on_inbound(item: Inbound) -> None:
            if isinstance(item, InboundEvent):
                content = from_wire(item.type, item.content)
                if isinstance(content, CredentialIssue) and content.credential:
                    arrived.setdefault(user, time.perf_counter())
                    if len(arrived) == n:
                        everyone.set()

        return on_inbound

    office_user = office_account.user_id
    clients = []
    for citizen in citizens:
        data_dir = root / "citizens" / citizen.user_id.strip("@").replace(":", "_")
        save_credentials(data_dir, citizen)
        clients.append(
            PartyClient(
                data_dir,
                device_policy=AllDevicesOf([office_user]),
                handler=receiver(citizen.user_id),
                invite_policy=InvitesFrom([office_user]),
            )
        )
    agency_dir = root / "office-matrix"
    save_credentials(agency_dir, office_account)
    agency = PartyClient(
        agency_dir,
        device_policy=AllDevicesOf([c.user_id for c in citizens]),
        handler=_ignore,
        invite_policy=InvitesFrom(()),
    )
    started = time.perf_counter()
    await in_batches(clients, lambda c: c.start(), 25)
    await agency.start()
    rooms = await in_batches(
        [c.user_id for c in citizens], lambda user: agency.ensure_direct_room(user), 25
    )
    setup_seconds = time.perf_counter() - started
    try:
        start = time.perf_counter()
        handles = []
        for room, content in zip(rooms, contents, strict=True):
            event_type, wire = to_wire(content)
            handles.append(await agency.send(room, event_type, wire))
        await asyncio.wait_for(everyone.wait(), timeout=900)
        matrix_seconds = time.perf_counter() - start
        accepted = [await h.event_id(60) for h in handles]
        assert len(set(accepted)) == n
    finally:
        await agency.stop()
        await in_batches(clients, lambda c: c.stop(), 50)

    latencies = sorted(arrived[c.user_id] - start for c in citizens)
    total = signing_seconds + matrix_seconds
    print(f"\n{n} citizens, one local Synapse ({hs.base_url}), one issuing process\n")
    rows = [
        ("signing: full issuance path", f"{n / signing_seconds:8.1f} credentials/s",
         f"p50 {statistics.median(per_credential) * 1000:6.2f} ms/credential"),
        ("signing floor (issue_sd_jwt_vc only, peer)", f"{n / floor_seconds:8.1f} credentials/s",
         f"{floor_seconds / n * 1000:6.2f} ms/credential"),
        ("Matrix: E2EE delivery to N mailboxes", f"{n / matrix_seconds:8.1f} credentials/s",
         f"p50 arrival {statistics.median(latencies):6.2f} s, last {latencies[-1]:6.2f} s"),
        ("issued and delivered (signing + Matrix)", f"{n / total:8.1f} credentials/s",
         f"signing {signing_seconds / total:5.1%} / Matrix {matrix_seconds / total:5.1%}"),
        ("first contact (clients + mailboxes, setup)", f"{setup_seconds:8.1f} s", ""),
    ]  # fmt: skip
    width = max(len(r[0]) for r in rows)
    for name, rate, extra in rows:
        print(f"{name:<{width}}  {rate}  {extra}")


async def _ignore(item: Inbound) -> None:
    return None


def _args() -> Any:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--citizens", type=int, default=200)
    return parser.parse_args()


if __name__ == "__main__":
    asyncio.run(main(_args().citizens))
