"""A revoked credential is never presented: the wallet reads the issuer's status room first.

On a real Synapse, with the real registry office, wallet and verifier services:

- the wallet obtains a PID and then two residence certificates from the office;
- the office revokes the first and republishes its status list (public status room);
- the verifier asks for the address: the wallet checks the status list through
  Matrix, records the first as revoked, presents the second, and the verifier
  (which checks the status itself) accepts it;
- the office revokes the second as well; a wallet whose cached list is gone (here:
  restarted) learns it, refuses (``consent_denied``, as for any "no"), and tells the citizen
  that only revoked credentials would have answered.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from issuer.issuance_log import credential_digest
from issuer.service import IssuerService
from onceonly.matrix.homeserver import Homeserver
from tests.integration.test_wallet_issuers import PURPOSE, WAIT, RealIssuers, _query, _until
from tests.unit.issuer.issuer_world import (
    IDENTITY_ID,
    PID_VCT,
    REGISTRY_ID,
    RESIDENCE_VCT,
)
from verifier.api import VerifierApi
from verifier.service import VerifierService
from wallet.records import StoredCredential
from wallet.service import WalletService

pytestmark = pytest.mark.integration


async def test_wallet_skips_revoked_and_refuses_when_all_are_revoked(
    synapse: Homeserver, tmp_path: Path
) -> None:
    world = RealIssuers.start(synapse, tmp_path, verifier="jobcenter", citizen="erika_rev")
    store, citizen = world.store, world.citizen

    def state(exchange_id: str) -> str:
        return store.offer(exchange_id).state

    async def obtain(wallet: WalletService, issuer_id: str, vct: str) -> StoredCredential:
        exchange_id = await wallet.request(issuer_id, vct)
        await _until(lambda: state(exchange_id) != "requested")
        assert state(exchange_id) == "accepted", wallet.notices
        credential_id = store.offer(exchange_id).credential_id
        assert credential_id is not None
        return store.credential(credential_id)

    first_wallet = world.wallet()
    async with (
        IssuerService(world.identity.config, world.trust) as id_service,
        IssuerService(world.office.config, world.trust) as office_service,
        VerifierService(world.verifier_dir, sweep_interval=1.0) as verifier,
    ):

        async def revoke(credential: StoredCredential) -> None:
            record = office_service.stores.log.by_digest(credential_digest(credential.sd_jwt))
            assert record is not None
            assert await office_service.revoke(credential_id=record.credential_id) == [record]

        api = VerifierApi(verifier)
        async with first_wallet:
            world.pin_wallet_device(id_service)
            await obtain(first_wallet, IDENTITY_ID, PID_VCT)
            first = await obtain(first_wallet, REGISTRY_ID, RESIDENCE_VCT)
            second = await obtain(first_wallet, REGISTRY_ID, RESIDENCE_VCT)
            assert first.status is not None and second.status is not None
            assert first.status.idx != second.status.idx

            await revoke(first)
            result = await api.request_proof(
                citizen.user_id, _query(["address", "locality"]), PURPOSE, WAIT
            )
            assert result.verified, (result.error_code, result.message, first_wallet.notices)
            [accepted] = result.credentials["residence"]
            assert accepted.status is not None
            assert accepted.status.idx == second.status.idx
            statuses = store.credential_statuses()
            assert statuses[first.credential_id].state == "revoked"
            assert statuses[second.credential_id].state == "valid"

        await revoke(second)
        # A wallet that has not read the list since (restarted; or its cached copy
        # aged out) learns of the revocation before it answers.
        second_wallet = world.wallet()
        async with second_wallet:
            refused = await api.request_proof(
                citizen.user_id, _query(["address", "locality"]), PURPOSE, WAIT
            )
        # The verifier is told what any "no" tells it; the citizen's notice says why.
        assert (refused.verified, refused.refused, refused.error_code) == (
            False,
            True,
            "consent_denied",
        )
        [told] = [notice for notice in second_wallet.notices if notice.kind == "refused"]
        assert told.detail["code"] == "query_not_satisfied"
        assert "revoked" in told.detail["reason"]
        statuses = store.credential_statuses()
        assert {statuses[c.credential_id].state for c in (first, second)} == {"revoked"}
        assert store.disclosure_history()[-1].outcome == "failed"
    store.close()
