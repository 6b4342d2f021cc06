"""On a real Synapse: a verifier cannot tell "nothing matched" from "she said no".

A trust-listed family office asks the wallet service three times over E2EE
Matrix: once with a ``values`` constraint the citizen's birthdate does not meet
(a probe of her data), once for a claim her policy does not approve and she
declines, once for what the policy approves. The two refusals must be the same
event content (code, no message, same body) and both must have gone through the
citizen's decision; only her own notices keep the precise reason.
"""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path
from typing import Any

import pytest

from onceonly import jose
from onceonly.matrix.devices import AllDevicesOf
from onceonly.matrix.homeserver import Homeserver
from onceonly.matrix.rooms import InvitesFrom
from onceonly.protocol.bodies import bilingual_body
from onceonly.protocol.events import PresentationRequest, PresentationResponse, RefusalCode
from onceonly.service import ProtocolService, Received
from onceonly.types import UserId
from tests.integration.test_transport_support import register
from tests.unit.wallet.agencies import (
    CHILD_BENEFIT,
    FAMILY_ID,
    REGISTRY_ID,
    RESIDENCE,
    RESIDENCE_CLAIMS,
    issue,
    make_world,
)
from wallet.crypto_box import FAST_SCRYPT_FOR_TESTS
from wallet.policy import parse_policy
from wallet.present import DisclosurePlan
from wallet.service import Notice, WalletService
from wallet.store import WalletStore

pytestmark = pytest.mark.integration

WAIT = 120.0
PROBE, DECLINED, APPROVED = (
    "xch_probe_birthdate_01",
    "xch_declined_birth_01",
    "xch_approved_addr_001",
)


class FamilyOffice:
    """Sends residence queries and keeps the responses."""

    def __init__(self, data_dir: Path, citizen: str) -> None:
        self.citizen = citizen
        self.responses: dict[str, PresentationResponse] = {}
        self.service = ProtocolService(
            data_dir=data_dir,
            handlers={PresentationResponse: self.on_response},
            agency=True,
            device_policy=AllDevicesOf([citizen]),
            invite_policy=InvitesFrom([citizen]),
            sweep_interval=1.0,
        )

    async def ask(self, exchange_id: str, claims: list[dict[str, Any]]) -> None:
        room = await self.service.room_for(UserId(self.citizen))
        query = {
            "credentials": [
                {
                    "id": "residence",
                    "format": "dc+sd-jwt",
                    "meta": {"vct_values": [RESIDENCE]},
                    "claims": claims,
                }
            ]
        }
        request = PresentationRequest.model_validate(
            {
                **bilingual_body("Familienkasse fragt nach", "Family office asks"),
                "exchange_id": exchange_id,
                "verifier_id": FAMILY_ID,
                "verifier_name": {"de": "Familienkasse", "en": "Family office"},
                "query": query,
                "purpose": {"code": CHILD_BENEFIT, "text": {"de": "Kindergeld", "en": "benefit"}},
                "nonce": jose.b64url_encode(os.urandom(16)),
                "expires_at": self.service.now() + 600,
            }
        )
        await self.service.send(room, request)

    async def on_response(self, item: Received) -> None:
        assert isinstance(item.content, PresentationResponse)
        self.responses[item.content.exchange_id] = item.content


async def _until(condition: Any, timeout: float = WAIT) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.2)


def _as_the_verifier_sees_it(response: PresentationResponse) -> dict[str, Any]:
    content = response.model_dump(mode="json", exclude_none=True)
    for per_exchange in ("exchange_id", "request_event_id"):
        content.pop(per_exchange, None)
    return content


async def test_no_match_and_no_consent_look_the_same(synapse: Homeserver, tmp_path: Path) -> None:
    family_creds, family_dir = register(synapse, "familyprobe", tmp_path)
    citizen_creds, wallet_dir = register(synapse, "probedcitizen", tmp_path)
    now = int(time.time())
    world = make_world(family_user=family_creds.user_id, now=now)
    store = WalletStore.create(
        wallet_dir / "wallet.db", passphrase="refusal test passphrase", scrypt=FAST_SCRYPT_FOR_TESTS
    )
    key_id = store.new_holder_key()
    text = issue(
        world.registry_key,
        issuer=REGISTRY_ID,
        vct=RESIDENCE,
        claims=RESIDENCE_CLAIMS,
        holder=store.holder_public_key(key_id),
        now=now - 60,
        expires_at=now + 86_400,
    )
    store.add_credential(sd_jwt=text, vct=RESIDENCE, issuer=REGISTRY_ID, holder_key_id=key_id)
    # The policy approves the address only; anything else is put to the citizen.
    policy = parse_policy(
        f"""
[[presentations]]
verifier = "{FAMILY_ID}"
purposes = ["{CHILD_BENEFIT}"]
vcts = ["{RESIDENCE}"]
claims = ["address"]
""",
        is_json=False,
    )
    asked: list[DisclosurePlan] = []

    def citizen_says_no(plan: DisclosurePlan) -> bool:
        asked.append(plan)
        return False

    notices: list[Notice] = []
    wallet = WalletService(
        data_dir=wallet_dir,
        store=store,
        trust=lambda _now: world.trust,
        policy=policy,
        consent=citizen_says_no,
        poll_interval=0.5,
        notify=notices.append,
    )
    family = FamilyOffice(family_dir, citizen_creds.user_id)
    async with family.service, wallet:
        # A probe: is her birthdate 1900-01-01? (It is not.)
        await family.ask(PROBE, [{"path": ["birthdate"], "values": ["1900-01-01"]}])
        await _until(lambda: PROBE in family.responses)
        # Her real birthdate, which she declines to give.
        await family.ask(DECLINED, [{"path": ["birthdate"]}])
        await _until(lambda: DECLINED in family.responses)
        # The approved claim still flows after both refusals.
        await family.ask(APPROVED, [{"path": ["address"]}])
        await _until(lambda: APPROVED in family.responses)

    probe, declined = family.responses[PROBE], family.responses[DECLINED]
    assert probe.refusal is not None and probe.refusal.code is RefusalCode.CONSENT_DENIED
    assert probe.refusal.message is None and probe.vp_token is None
    assert _as_the_verifier_sees_it(probe) == _as_the_verifier_sees_it(declined)
    assert family.responses[APPROVED].vp_token is not None
    # The citizen decided both: the probe reached her too (shown as unanswerable).
    assert [plan.request.exchange_id for plan in asked] == [PROBE, DECLINED]
    assert asked[0].unanswerable is not None and asked[0].presentations == ()
    assert asked[1].unanswerable is None and asked[1].presentations
    # Only her own notices keep which was which.
    refused = {n.exchange_id: n.detail.get("code") for n in notices if n.kind == "refused"}
    assert refused == {PROBE: "query_not_satisfied", DECLINED: "consent_denied"}
    store.close()
