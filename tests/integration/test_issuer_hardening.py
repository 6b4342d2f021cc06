"""Identity binding of namesakes, a stranger's requests, and pending status publication on Synapse.

- Two men named Thomas Schmidt were born on 1975-08-08 (Berlin and Köln); the
  vehicle register knows only the one from Berlin. The one from Köln, withholding
  his place of birth, gets ``ambiguous_subject`` and is bound to nobody; the one
  from Berlin gets exactly his own registration. A stranger's requests leave the
  office's nonce ledger as it was, and the office keeps serving.
- ``issuer revoke`` while the homeserver is down records the revocation and says
  the publication is pending; once the homeserver is back, the running issuer
  publishes it and a verifier reading the status room sees the revocation.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from issuer.api import IssuerApi
from issuer.eid_check import complete_eid_check, start_eid_check
from issuer.issuance import handle_credential_request
from issuer.nonce_ledger import NonceLedger
from issuer.service import IssuerService
from issuer.status_pending import StatusPublication
from onceonly.cli import cli
from onceonly.errors import IdentityNotBound, Revoked
from onceonly.matrix.homeserver import Homeserver
from onceonly.protocol import State
from onceonly.status_fetch import check_status_via_matrix
from onceonly.trust import Agency, TrustList
from onceonly.types import UserId
from tests.integration.conftest import START_TIMEOUT
from tests.integration.test_issuer_service import (
    WAIT,
    Wallet,
    agency_in,
    obtain_pid,
    until,
    verify,
)
from tests.integration.test_transport_support import register
from tests.unit.issuer.issuer_world import (
    IDENTITY_ID,
    PID_VCT,
    VEHICLE_VCT,
    Citizen,
    listed,
    local_status_check,
    trust_list,
)

pytestmark = pytest.mark.integration

VEHICLE_ID = "https://zulassung.berlin.example"
THOMAS_BERLIN_CARD = "LLF9LMGGG"
THOMAS_COLOGNE_CARD = "L7H2TH6CV"
WITHOUT_BIRTHPLACE = (("given_name",), ("family_name",), ("birthdate",))
JUNK = 8


async def ask_vehicle(wallet: Wallet, office: IssuerService, **kwargs: Any) -> tuple[State, str]:
    room = await wallet.service.room_for(UserId(office.config.matrix_user_id))
    await wallet.service.send(room, wallet.device_list())
    request = wallet.request(audience=VEHICLE_ID, vct=VEHICLE_VCT, **kwargs)
    state = await wallet.ask(room, request)
    codes = [e.code for e in wallet.errors if e.exchange_id == request.exchange_id]
    return state, (codes[0] if codes else request.exchange_id)


async def test_namesakes_and_strangers_over_synapse(synapse: Homeserver, tmp_path: Path) -> None:
    identity, _ = agency_in(
        tmp_path, synapse, "ausweis", agency_id=IDENTITY_ID, credentials=[PID_VCT],
        name=("Ausweisbehörde", "ID authority"), register_file="identity_agency.json",
    )  # fmt: skip
    vehicle, _ = agency_in(
        tmp_path, synapse, "zulassung", agency_id=VEHICLE_ID, credentials=[VEHICLE_VCT],
        name=("Zulassungsbehörde", "Vehicle office"), register_file="vehicle_register.csv",
    )  # fmt: skip
    identity.close()
    vehicle.close()
    now = int(time.time())
    trust = trust_list(listed(identity, now=now), listed(vehicle, now=now), now=now)
    agencies = [identity.config.matrix_user_id, vehicle.config.matrix_user_id]
    wallets = {}
    for name in ("thomas_koeln", "thomas_berlin", "stranger"):
        creds, data_dir = register(synapse, name, tmp_path)
        wallets[name] = Wallet(creds, data_dir)
        wallets[name].build(agencies)
    cologne, berlin, stranger = (
        wallets["thomas_koeln"],
        wallets["thomas_berlin"],
        wallets["stranger"],
    )
    id_service = IssuerService(identity.config, trust)
    office = IssuerService(vehicle.config, trust)

    async with id_service, office, cologne.service, berlin.service, stranger.service:
        await obtain_pid(cologne, id_service, THOMAS_COLOGNE_CARD)
        await obtain_pid(berlin, id_service, THOMAS_BERLIN_CARD)

        # Thomas from Köln, withholding his birthplace: refused, bound to nobody.
        state, code = await ask_vehicle(
            cologne, office, with_pid=True, identity_paths=WITHOUT_BIRTHPLACE
        )
        assert (state, code) == (State.REJECTED, "ambiguous_subject")
        # In full he is simply not in this register.
        state, code = await ask_vehicle(cologne, office, with_pid=True)
        assert (state, code) == (State.REJECTED, "unknown_subject")
        with pytest.raises(IdentityNotBound):
            office.stores.register.person_for_matrix_user(cologne.user_id)
        assert office.issued == []

        # A stranger's junk: typed errors, and the nonce ledger does not grow.
        stored = office.stores.ledger.count()
        for _ in range(JUNK):
            state, code = await ask_vehicle(stranger, office)
            assert (state, code) == (State.REJECTED, "identity_not_bound")
        assert office.stores.ledger.count() == stored

        # Thomas from Berlin gets exactly his own registration.
        state, exchange_id = await ask_vehicle(berlin, office, with_pid=True)
        assert state is State.ISSUED
        credential = berlin.issued[exchange_id].credential
        assert credential is not None
        claims = verify(trust, credential, berlin.key)
        assert claims["registration_plate"] == "B-TS 808"
        assert office.stores.register.person_for_matrix_user(berlin.user_id) == "KFZ-0009"
        assert [r.person_id for r in office.issued] == ["KFZ-0009"]


def invoke(*args: str) -> tuple[int, Any]:
    result = CliRunner().invoke(cli, [*args], obj={}, catch_exceptions=False)
    return result.exit_code, result.output


async def pid_status(verifier: Any, agency: Agency, reference: Any) -> int:
    return await check_status_via_matrix(verifier, reference, agency=agency, now=int(time.time()))


def issue_pid(identity: Any, trust: TrustList) -> Any:
    """The identity agency issues a PID (its stores are open in this process)."""
    citizen = Citizen(UserId("@thomas:localhost"))
    now = int(time.time())
    code = start_eid_check(
        identity.register, identity.ledger, THOMAS_BERLIN_CARD, now=now,
        random_bytes=secrets.token_bytes,
    )  # fmt: skip
    complete_eid_check(
        identity.register, identity.ledger, card_number=THOMAS_BERLIN_CARD, code=code,
        matrix_user_id=citizen.user_id, now=now,
    )  # fmt: skip
    ctx = identity.make_context(trust, local_status_check(identity))
    request = citizen.request(audience=IDENTITY_ID, vct=PID_VCT, iat=now)
    issued = asyncio.run(handle_credential_request(ctx, request, sender=citizen.user_id, now=now))
    return issued.record


def test_revoke_while_the_homeserver_is_down_is_published_when_it_is_back(
    synapse: Homeserver, tmp_path: Path
) -> None:
    identity, _ = agency_in(
        tmp_path, synapse, "ausweis", agency_id=IDENTITY_ID, credentials=[PID_VCT],
        name=("Ausweisbehörde", "ID authority"), register_file="identity_agency.json",
    )  # fmt: skip
    now = int(time.time())
    trust = trust_list(listed(identity, now=now), now=now)
    record = issue_pid(identity, trust)
    identity.close()
    config = str(identity.config.path)
    verifier, _ = register(synapse, "verifier", tmp_path)
    agency = listed(identity, now=now)

    code, output = invoke("issuer", "publish", "--config", config)
    assert code == 0, output
    assert asyncio.run(pid_status(verifier, agency, record.status_reference)) == 0

    revoke = ("issuer", "revoke", "--config", config, "--credential", record.credential_id)
    assert synapse.stop() is True
    try:
        code, output = invoke(*revoke)
        assert code == 0, output
        assert "revoked 1 credential(s); recorded; publishing pending" in output
        code, output = invoke(*revoke)  # nothing new to revoke; still pending
        assert code == 0, output
        assert "revoked 0 credential(s); recorded; publishing pending" in output
    finally:
        synapse.start(timeout=START_TIMEOUT)

    # Back up: the verifier still reads the old list until the issuer publishes.
    assert asyncio.run(pid_status(verifier, agency, record.status_reference)) == 0
    with NonceLedger.open(identity.config.issuer_database) as ledger:
        ledger.consume_wallet_nonce(
            "long-expired-nonce-000000", matrix_user_id="@x:localhost", now=now - 86_400, window=60
        )
        held = ledger.count()  # the eID code, the PID request's nonce and the stale one

    async def run_issuer() -> None:
        service = IssuerService(
            identity.config, trust, publish_status=False, maintenance_interval=0.5
        )
        async with service:
            await until(lambda: not service.stores.publication.pending, timeout=WAIT)
            assert IssuerApi(service).status()["publication_pending"] is False
            assert service.stores.ledger.count() == held - 1  # the stale one purged
        with pytest.raises(Revoked):
            await pid_status(verifier, agency, record.status_reference)

    asyncio.run(run_issuer())
    with StatusPublication.open(identity.config.issuer_database) as publication:
        assert not publication.pending
