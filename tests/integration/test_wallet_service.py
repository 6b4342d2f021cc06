"""The wallet service on a real Synapse, against two small agencies written here.

A registry office offers residence certificates and issues them (one good, one
tampered, one signed by an agency not allowed to issue the type); a family
benefits office asks for claims. Over real E2EE Matrix the wallet must: accept
the offer by policy, prove its identity with its PID, receive, verify and store
the good credential and reject (and report) the others without storing them,
keep everything across a restart, present with minimal disclosure, and refuse
an over-asking request with a refusal event.
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
from onceonly.protocol.bodies import (
    bilingual_body,
    build_credential_issue,
    build_credential_offer,
)
from onceonly.protocol.events import (
    CredentialDisplay,
    CredentialRequest,
    ErrorContent,
    ExchangeStatus,
    PresentationRequest,
    PresentationResponse,
    RefusalCode,
)
from onceonly.protocol.exchange import State
from onceonly.protocol.fields import LocalizedText
from onceonly.protocol.proofs import verify_device_list, verify_key_proof
from onceonly.protocol.rooms import DeviceList
from onceonly.sdjwt import VerificationPolicy, verify_presentation
from onceonly.service import ProtocolService, Received
from onceonly.types import UserId
from tests.integration.test_transport_support import register
from tests.unit.wallet.agencies import (
    CHILD_BENEFIT,
    FAMILY_ID,
    IDENTITY_ID,
    PID,
    PID_CLAIMS,
    REGISTRY_ID,
    RESIDENCE,
    RESIDENCE_CLAIMS,
    ROGUE_ID,
    World,
    issue,
    make_world,
)
from wallet.crypto_box import FAST_SCRYPT_FOR_TESTS
from wallet.policy import ConsentPolicy, parse_policy
from wallet.requests import approve_offer, decline_offer
from wallet.service import WalletService
from wallet.store import WalletStore

pytestmark = pytest.mark.integration

WAIT = 120.0
PASSPHRASE = "integration wallet passphrase"
NAME = LocalizedText(de="Meldebescheinigung", en="Residence registration")
GOOD, TAMPERED, UNTRUSTED = "xch_good_offer_000001", "xch_tampered_offer_01", "xch_untrusted_offer1"
ASK, OVER_ASK = "xch_family_request_01", "xch_family_overask_01"
LATER, DECLINED = "xch_later_offer_000001", "xch_declined_offer_001"


def _policy() -> str:
    return f"""
[[offers]]
issuer = "{REGISTRY_ID}"
vcts = ["{RESIDENCE}"]

[[presentations]]
verifier = "{FAMILY_ID}"
purposes = ["{CHILD_BENEFIT}"]
vcts = ["{RESIDENCE}"]
claims = ["address", "birthdate"]
"""


class Registry:
    """Offers residence certificates; issues good, tampered or untrusted ones by exchange id."""

    def __init__(self, world: World, data_dir: Path, citizen: str) -> None:
        self.world = world
        self.citizen = citizen
        self.nonces: dict[str, str] = {}
        self.identities: list[dict[str, Any]] = []
        self.device_lists: list[DeviceList] = []
        self.statuses: list[ExchangeStatus] = []
        self.errors: list[ErrorContent] = []
        self.service = ProtocolService(
            data_dir=data_dir,
            handlers={
                CredentialRequest: self.on_request,
                DeviceList: self.on_device_list,
                ExchangeStatus: self.on_status,
                ErrorContent: self.on_error,
            },
            agency=True,
            device_policy=AllDevicesOf([citizen]),
            invite_policy=InvitesFrom([citizen]),
            sweep_interval=1.0,
        )

    async def offer(self, exchange_id: str) -> None:
        nonce = jose.b64url_encode(os.urandom(16))
        self.nonces[exchange_id] = nonce
        room = await self.service.room_for(UserId(self.citizen))
        content = build_credential_offer(
            exchange_id=exchange_id,
            issuer_id=REGISTRY_ID,
            vct=RESIDENCE,
            display=CredentialDisplay(name=NAME, issuer_name=NAME),
            reason_code="registered_move",
            reason=LocalizedText(de="Umzug gemeldet", en="registered move"),
            offer_expires_at=self.service.now() + 3600,
            nonce=nonce,
        )
        await self.service.send(room, content)

    async def on_request(self, item: Received) -> None:
        request = item.content
        assert isinstance(request, CredentialRequest)
        # Without an offer the wallet chose the nonce (a real issuer checks it is fresh).
        nonce = self.nonces.get(request.exchange_id) or str(
            jose.parse_compact(request.proof).payload["nonce"]
        )
        holder_jwk = request.holder_jwk.model_dump(exclude_none=True)
        verify_key_proof(request.proof, holder_jwk, audience=REGISTRY_ID, nonce=nonce, now=item.now)
        assert request.identity_presentation is not None
        identity = verify_presentation(
            request.identity_presentation,
            issuer_key=self.world.trust.issuer_key_resolver(),
            policy=VerificationPolicy(
                expected_audience=REGISTRY_ID, expected_nonce=nonce, expected_vct=PID
            ),
            now=item.now,
        )
        self.identities.append(identity.claims)
        signer, issuer = self.world.registry_key, REGISTRY_ID
        if request.exchange_id == UNTRUSTED:
            signer, issuer = self.world.rogue_key, ROGUE_ID
        text = issue(
            signer,
            issuer=issuer,
            vct=RESIDENCE,
            claims=RESIDENCE_CLAIMS,
            holder=jose.public_key_from_jwk(holder_jwk),
            now=item.now,
            expires_at=item.now + 86_400,
        )
        if request.exchange_id == TAMPERED:
            jwt, rest = text.split("~", 1)
            head, payload, signature = jwt.split(".")
            flipped = signature[:-2] + ("AA" if signature[-2:] != "AA" else "BB")
            text = f"{head}.{payload}.{flipped}~{rest}"
        content = build_credential_issue(
            exchange_id=request.exchange_id,
            vct=RESIDENCE,
            credential_name=NAME,
            issuer_name=NAME,
            credential=text,
            request_event_id=item.event_id,
        )
        await self.service.send(item.room_id, content)

    async def on_device_list(self, item: Received) -> None:
        assert isinstance(item.content, DeviceList)
        self.device_lists.append(item.content)

    async def on_status(self, item: Received) -> None:
        assert isinstance(item.content, ExchangeStatus)
        self.statuses.append(item.content)

    async def on_error(self, item: Received) -> None:
        assert isinstance(item.content, ErrorContent)
        self.errors.append(item.content)


class FamilyOffice:
    """Asks for claims and keeps the responses."""

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

    async def ask(self, exchange_id: str, nonce: str, *paths: list[Any]) -> None:
        room = await self.service.room_for(UserId(self.citizen))
        query = {
            "credentials": [
                {
                    "id": "residence",
                    "format": "dc+sd-jwt",
                    "meta": {"vct_values": [RESIDENCE]},
                    "claims": [{"path": path} for path in paths],
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
                "nonce": nonce,
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


def _state(store: WalletStore, exchange_id: str) -> str | None:
    return next((o.state for o in store.offers() if o.offer_id == exchange_id), None)


@pytest.mark.xfail(reason="context_mismatch after the wave-two merge; to fix", strict=False)
async def test_wallet_service_on_synapse(synapse: Homeserver, tmp_path: Path) -> None:
    registry_creds, registry_dir = register(synapse, "registry", tmp_path)
    family_creds, family_dir = register(synapse, "familyoffice", tmp_path)
    citizen_creds, wallet_dir = register(synapse, "citizen", tmp_path)
    citizen = citizen_creds.user_id
    now = int(time.time())
    world = make_world(
        registry_user=registry_creds.user_id, family_user=family_creds.user_id, now=now
    )
    wallet_file = wallet_dir / "wallet.db"
    store = WalletStore.create(wallet_file, passphrase=PASSPHRASE, scrypt=FAST_SCRYPT_FOR_TESTS)
    # The PID came earlier from the identity agency (its eID check is out of band).
    pid_key = store.new_holder_key()
    pid_text = issue(
        world.identity_key,
        issuer=IDENTITY_ID,
        vct=PID,
        claims=PID_CLAIMS,
        holder=store.holder_public_key(pid_key),
        now=now - 60,
        expires_at=now + 86_400,
    )
    store.add_credential(sd_jwt=pid_text, vct=PID, issuer=IDENTITY_ID, holder_key_id=pid_key)

    registry = Registry(world, registry_dir, citizen)
    family = FamilyOffice(family_dir, citizen)
    policy = parse_policy(_policy(), is_json=False)

    def wallet_service(opened: WalletStore, chosen: ConsentPolicy = policy) -> WalletService:
        return WalletService(
            data_dir=wallet_dir,
            store=opened,
            trust=lambda _now: world.trust,
            policy=chosen,
            poll_interval=0.5,
        )

    async with registry.service, family.service:
        wallet = wallet_service(store)
        async with wallet:
            # 1. Offer -> accepted by policy -> request with PID -> verified, stored.
            await registry.offer(GOOD)
            await _until(lambda: _state(store, GOOD) == "accepted")
            [stored] = [c for c in store.credentials() if c.vct == RESIDENCE]
            assert stored.issuer == REGISTRY_ID
            assert _state(store, GOOD) == "accepted"
            assert registry.identities[0]["family_name"] == PID_CLAIMS["family_name"]
            assert "address" not in registry.identities[0]
            await _until(lambda: any(s.exchange_id == GOOD for s in registry.statuses))
            assert [s.outcome.value for s in registry.statuses] == ["accepted"]
            # The device list the wallet sent verifies under its PID key.
            assert registry.device_lists
            listed = verify_device_list(
                registry.device_lists[-1].device_list,
                store.holder_public_key(pid_key),
                user_id=citizen,
                now=int(time.time()),
            )
            assert [d.device_id for d in listed.devices] == [citizen_creds.device_id]

            # 2. A tampered and an untrusted credential: reported, never stored.
            for exchange_id, code in (
                (TAMPERED, "invalid_signature"),
                (UNTRUSTED, "untrusted_issuer"),
            ):
                await registry.offer(exchange_id)
                closed = await registry.service.wait_for(exchange_id, WAIT)
                assert closed.state is State.REJECTED
                error = next(e for e in registry.errors if e.exchange_id == exchange_id)
                assert error.code == code
                assert _state(store, exchange_id) == "failed"
            assert len(store.credentials()) == 2

        # 3. Restart: a new process would reopen the file and the same data dir.
        store.close()
        store = WalletStore.open(wallet_file, passphrase=PASSPHRASE)
        assert sorted(c.vct for c in store.credentials()) == sorted([PID, RESIDENCE])
        # Offers are no longer accepted by policy: one waits for the citizen.
        wallet = wallet_service(store, policy.model_copy(update={"offers": ()}))
        async with wallet:
            await registry.offer(LATER)
            await _until(lambda: _state(store, LATER) == "pending")
            await asyncio.sleep(1.0)
            assert _state(store, LATER) == "pending"
            # 'onceonly wallet accept' in another process writes just this:
            approve_offer(store, LATER, now=int(time.time()))
            await _until(lambda: _state(store, LATER) == "accepted")
            assert len(store.credentials()) == 3
            # ... and 'wallet accept --decline' this: the agency is told, once.
            await registry.offer(DECLINED)
            await _until(lambda: _state(store, DECLINED) == "pending")
            decline_offer(store, DECLINED, now=int(time.time()))
            ended = await registry.service.wait_for(DECLINED, WAIT)
            assert ended.state is State.REJECTED
            [told] = [s for s in registry.statuses if s.exchange_id == DECLINED]
            assert (told.outcome.value, told.reason_code) == ("rejected", "consent_denied")
            assert len(store.credentials()) == 3

            # 4. Presentation with minimal disclosure.
            nonce = jose.b64url_encode(os.urandom(16))
            await family.ask(ASK, nonce, ["address"], ["birthdate"])
            await _until(lambda: ASK in family.responses)
            response = family.responses[ASK]
            assert response.refusal is None and response.vp_token is not None
            [presentation] = response.vp_token["residence"]  # one, though two are held
            verified = verify_presentation(
                presentation,
                issuer_key=world.trust.issuer_key_resolver(),
                policy=VerificationPolicy(expected_audience=FAMILY_ID, expected_nonce=nonce),
                now=int(time.time()),
            )
            visible = set(verified.claims) - {"iss", "iat", "exp", "vct", "cnf", "nbf", "status"}
            assert visible == {"address", "birthdate"}
            assert verified.claims["address"] == RESIDENCE_CLAIMS["address"]

            # 5. Over-asking: refused with a refusal event, nothing disclosed.
            await family.ask(OVER_ASK, jose.b64url_encode(os.urandom(16)), ["given_name"])
            refused = await family.service.wait_for(OVER_ASK, WAIT)
            assert refused.state is State.REFUSED
            refusal = family.responses[OVER_ASK].refusal
            assert refusal is not None and refusal.code is RefusalCode.NOT_AUTHORIZED_TO_REQUEST
            assert family.responses[OVER_ASK].vp_token is None

        history = [(e.verifier_id, e.outcome, e.purpose) for e in store.disclosure_history()]
        assert (FAMILY_ID, "disclosed", CHILD_BENEFIT) in history
        assert (FAMILY_ID, "failed", CHILD_BENEFIT) in history
        assert (REGISTRY_ID, "disclosed", "identity_binding") in history
    store.close()
