"""The verifier against the citizen's real wallet service on Synapse.

The verifier reads the trust list from the authority's public room. The wallet
holds the residence credential (bound to one of its own holder keys)
and a consent policy that approves this verifier and purpose for address claims.
It checks the request against the trust list, matches the query, and answers
with exactly the disclosures the query needs; the verifier accepts, and the
wallet is told. A query outside the policy is refused by the wallet, which the
verifier records as a refusal.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from onceonly.matrix.homeserver import Homeserver
from onceonly.matrix.state_rooms import (
    ensure_public_room,
    publish_trust_list,
    state_client,
    trust_room_alias,
)
from onceonly.query import parse_query
from onceonly.trust import TrustList
from onceonly.types import UserId
from tests.integration.test_transport_support import register
from tests.unit.verifier.verification_world import (
    ISSUER_ID,
    PURPOSE,
    RESIDENCE,
    STATUS_URI,
    VERIFIER_ID,
    World,
    address_query,
)
from verifier.api import VerifierApi
from verifier.config import init_verifier
from verifier.service import VerifierService
from wallet.crypto_box import FAST_SCRYPT_FOR_TESTS
from wallet.policy import ConsentPolicy, PresentationRule
from wallet.records import StatusReference
from wallet.service import WalletService
from wallet.store import WalletStore

pytestmark = pytest.mark.integration

WAIT = 120.0


async def test_real_wallet_answers_with_minimal_disclosure(
    synapse: Homeserver, tmp_path: Path
) -> None:
    verifier_creds, verifier_dir = register(synapse, "vwallet", tmp_path)
    citizen_creds, citizen_dir = register(synapse, "cwallet", tmp_path)
    store = WalletStore.create(
        tmp_path / "wallet.sqlite3", passphrase="correct horse", scrypt=FAST_SCRYPT_FOR_TESTS
    )
    key_id = store.new_holder_key()
    world = World(
        now=int(time.time()),
        verifier_matrix_id=verifier_creds.user_id,
        holder=store.holder_key(key_id),
    )
    store.add_credential(
        sd_jwt=world.credential(),
        vct=RESIDENCE,
        issuer=ISSUER_ID,
        holder_key_id=key_id,
        status=StatusReference(idx=3, uri=STATUS_URI),
    )
    trust = world.verified_trust()

    def wallet_trust(_now: int) -> TrustList:
        return trust.trust_list

    policy = ConsentPolicy(
        presentations=(
            PresentationRule(
                verifier=VERIFIER_ID, purposes=(PURPOSE,), vcts=(RESIDENCE,), claims=(("address",),)
            ),
        )
    )
    # The verifier takes the trust list from the authority's public room on start.
    authority_creds, _ = register(synapse, "authority", tmp_path)
    alias = trust_room_alias(authority_creds.user_id)
    async with state_client(authority_creds) as client:
        room_id, _created = await ensure_public_room(client, alias, name="Trust", topic="t")
        await publish_trust_list(client, room_id, world.trust_token(), trust.trust_list)
    init_verifier(
        verifier_dir, verifier_id=VERIFIER_ID, anchors=[world.authority.public()], trust_room=alias
    )
    assert not (verifier_dir / "trust-list.jwt").exists()
    wallet = WalletService(data_dir=citizen_dir, store=store, trust=wallet_trust, policy=policy)
    service = VerifierService(verifier_dir, status_fetch=world.fetch, sweep_interval=1.0)
    citizen = UserId(citizen_creds.user_id)
    try:
        async with service, wallet:
            api = VerifierApi(service)
            result = await api.request_proof(citizen, address_query(), PURPOSE, WAIT)
            assert result.verified, result.message
            (accepted,) = result.credentials["residence"]
            assert accepted.claims == {"address": {"locality": "Köln"}}
            assert "given_name" not in accepted.claims
            assert accepted.status is not None and accepted.status.idx == 3

            # The registration allows the birth date, the citizen's policy does not.
            birthdate = parse_query(
                {
                    "credentials": [
                        {
                            "id": "residence",
                            "format": "dc+sd-jwt",
                            "meta": {"vct_values": [RESIDENCE]},
                            "claims": [{"path": ["birthdate"]}],
                        }
                    ]
                }
            )
            refused = await api.request_proof(citizen, birthdate, PURPOSE, WAIT)
            assert (refused.verified, refused.refused, refused.error_code) == (
                False,
                True,
                "consent_denied",
            )
            # The wallet was told the verdict on what it presented.
            told = []
            for _ in range(int(WAIT * 10)):
                told = [n for n in wallet.notices if n.kind == "status"]
                if told:
                    break
                await asyncio.sleep(0.1)
            assert [(n.exchange_id, n.detail["outcome"]) for n in told] == [
                (result.exchange_id, "verified")
            ]
            kinds = [notice.kind for notice in wallet.notices]
            assert "presented" in kinds and "refused" in kinds
    finally:
        store.close()
