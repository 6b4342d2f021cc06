"""The wallet service against the real issuer services (identity agency, registry office).

Interoperability over E2EE Matrix on a real Synapse, nothing simulated on the
agency side except the eID check itself (which the identity agency simulates):

- after the eID check pins the wallet's device, ``WalletService.request`` gets a
  PID: the identity agency issues it, the wallet verifies and stores it;
- the wallet then asks the registry office for a residence certificate: it sends
  a device list signed with the PID key and a PID presentation in the request;
  the office binds the identity, issues, and the wallet stores the credential;
- the real verifier service asks for the address's locality: the wallet's policy
  approves, the verifier checks everything (status through the office's public
  status room included) and sees exactly that claim; a request the policy does not
  cover is refused, and the verifier records the refusal;
- a request to an agency the trust list does not allow for the type is not sent.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Self

import pytest

from issuer.eid_check import complete_eid_check, start_eid_check
from issuer.service import IssuerService
from onceonly import jose
from onceonly.errors import UntrustedIssuer
from onceonly.matrix.accounts import Credentials
from onceonly.matrix.homeserver import Homeserver
from onceonly.trust import (
    Agency,
    LocalizedText,
    Purpose,
    RequestGrant,
    TrustList,
    sign_trust_list,
)
from onceonly.trust_cache import TrustCache
from tests.integration.test_issuer_service import identity_agency_and_registry_office
from tests.integration.test_transport_support import register
from tests.unit.issuer.issuer_world import (
    IDENTITY_ID,
    PID_VCT,
    REGISTRY_ID,
    RESIDENCE_VCT,
    AgencyUnderTest,
    listed,
    trust_list,
)
from verifier.api import VerifierApi
from verifier.config import init_verifier
from verifier.service import VerifierService
from wallet.crypto_box import FAST_SCRYPT_FOR_TESTS
from wallet.policy import ConsentPolicy, parse_policy
from wallet.service import WalletService
from wallet.store import WalletStore

pytestmark = pytest.mark.integration

WAIT = 120.0
VERIFIER_ID = "https://familienkasse.example"
PURPOSE = "child_benefit_application"


def _verifier(matrix_user_id: str) -> Agency:
    return Agency(
        id=VERIFIER_ID,
        name=LocalizedText(de="Familienkasse", en="Family benefits office"),
        matrix_user_id=matrix_user_id,
        purposes=(Purpose(code=PURPOSE, text=LocalizedText(de="Kindergeld", en="Benefit")),),
        may_request=(
            RequestGrant(
                vct=RESIDENCE_VCT, paths=(("address",), ("birthdate",)), purposes=(PURPOSE,)
            ),
        ),
    )


def _query(*paths: list[str]) -> dict[str, object]:
    credential = {
        "id": "residence",
        "format": "dc+sd-jwt",
        "meta": {"vct_values": [RESIDENCE_VCT]},
        "claims": [{"path": path} for path in paths],
    }
    return {"credentials": [credential]}


async def _until(condition: Callable[[], bool], timeout: float = WAIT) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.2)


@dataclass
class RealIssuers:
    """The identity agency, the registry office, a verifier and a citizen's wallet store.

    The verifier's data dir holds the signed trust list; the wallet's policy approves
    the verifier's purpose for the address's locality only.
    """

    identity: AgencyUnderTest
    office: AgencyUnderTest
    trust: TrustList
    verifier_dir: Path
    citizen: Credentials
    data_dir: Path
    store: WalletStore
    policy: ConsentPolicy
    now: int
    verifier_account: Credentials | None = None
    """The verifier's login (with its password, for tests that add a device)."""

    @classmethod
    def start(cls, synapse: Homeserver, tmp_path: Path, *, verifier: str, citizen: str) -> Self:
        identity, office = identity_agency_and_registry_office(tmp_path, synapse)
        now = int(time.time())
        verifier_creds, verifier_dir = register(synapse, verifier, tmp_path)
        trust = trust_list(
            listed(identity, now=now),
            listed(office, now=now),
            _verifier(verifier_creds.user_id),
            now=now,
        )
        authority = jose.generate_private_key()
        init_verifier(verifier_dir, verifier_id=VERIFIER_ID, anchors=[authority.public()])
        TrustCache.in_data_dir(verifier_dir, [authority.public()]).offer(
            sign_trust_list(trust, authority), now=now
        )
        citizen_creds, data_dir = register(synapse, citizen, tmp_path)
        store = WalletStore.create(
            data_dir / "wallet.db", passphrase="wallet words", scrypt=FAST_SCRYPT_FOR_TESTS
        )
        policy = parse_policy(
            f'[[presentations]]\nverifier = "{VERIFIER_ID}"\npurposes = ["{PURPOSE}"]\n'
            f'vcts = ["{RESIDENCE_VCT}"]\nclaims = ["address.locality"]\n',
            is_json=False,
        )
        return cls(
            identity,
            office,
            trust,
            verifier_dir,
            citizen_creds,
            data_dir,
            store,
            policy,
            now,
            verifier_creds,
        )

    def wallet(self) -> WalletService:
        """A wallet service on the citizen's account and store (a new one per start)."""
        trust = self.trust
        return WalletService(
            data_dir=self.data_dir, store=self.store, trust=lambda _now: trust, policy=self.policy
        )

    def pin_wallet_device(self, id_service: IssuerService) -> None:
        """The (simulated) eID check, done in the identity agency's portal, pins the wallet."""
        stores, now = id_service.stores, self.now
        code = start_eid_check(
            stores.register, stores.ledger, "LXH67HC3V", now=now, random_bytes=secrets.token_bytes
        )
        complete_eid_check(
            stores.register, stores.ledger, card_number="LXH67HC3V", code=code,
            matrix_user_id=self.citizen.user_id, now=now, device_id=self.citizen.device_id,
            devices=stores.devices,
        )  # fmt: skip


async def test_wallet_obtains_pid_and_residence_from_real_issuers(
    synapse: Homeserver, tmp_path: Path
) -> None:
    world = RealIssuers.start(synapse, tmp_path, verifier="familienkasse", citizen="juergen")
    identity, office, trust, citizen, store = (
        world.identity,
        world.office,
        world.trust,
        world.citizen,
        world.store,
    )
    wallet = world.wallet()
    verifier = VerifierService(world.verifier_dir, sweep_interval=1.0)

    def state(exchange_id: str) -> str:
        return store.offer(exchange_id).state

    async with (
        IssuerService(identity.config, trust) as id_service,
        IssuerService(office.config, trust) as office_service,
        verifier,
        wallet,
    ):
        # The (simulated) eID check, done by the citizen in the identity agency's portal,
        # pins the wallet's device.
        world.pin_wallet_device(id_service)

        pid_exchange = await wallet.request(IDENTITY_ID, PID_VCT)
        await _until(lambda: state(pid_exchange) != "requested")
        assert state(pid_exchange) == "accepted", wallet.notices
        [pid] = store.credentials()
        assert (pid.vct, pid.issuer) == (PID_VCT, IDENTITY_ID)
        assert pid.status is not None  # the identity agency gave it a status entry

        residence_exchange = await wallet.request(REGISTRY_ID, RESIDENCE_VCT)
        await _until(lambda: state(residence_exchange) != "requested")
        assert state(residence_exchange) == "accepted", wallet.notices
        residence = next(c for c in store.credentials() if c.vct == RESIDENCE_VCT)
        assert residence.issuer == REGISTRY_ID
        # One holder key per credential.
        assert residence.holder_key_id != pid.holder_key_id
        # The office bound the identity from the PID presentation.
        assert office_service.stores.register.person_for_matrix_user(citizen.user_id)
        history = [(e.verifier_id, e.purpose) for e in store.disclosure_history()]
        assert history == [(REGISTRY_ID, "identity_binding")]

        # The real verifier: minimal disclosure approved by the policy, verified.
        api = VerifierApi(verifier)
        result = await api.request_proof(
            citizen.user_id, _query(["address", "locality"]), PURPOSE, WAIT
        )
        assert result.verified, (result.error_code, result.message, wallet.notices)
        [accepted] = result.credentials["residence"]
        assert accepted.claims == {"address": {"locality": "Berlin"}}
        # Within the registration, but beyond what the citizen's policy approves.
        refused = await api.request_proof(citizen.user_id, _query(["birthdate"]), PURPOSE, WAIT)
        assert (refused.verified, refused.refused, refused.error_code) == (
            False,
            True,
            "consent_denied",
        )
        outcomes = [(e.verifier_id, e.outcome) for e in store.disclosure_history()]
        assert (VERIFIER_ID, "disclosed") in outcomes and (VERIFIER_ID, "declined") in outcomes

        with pytest.raises(UntrustedIssuer):
            await wallet.request(IDENTITY_ID, RESIDENCE_VCT)
    store.close()
