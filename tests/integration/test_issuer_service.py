"""The identity agency and a registry office issuing to a citizen over a real Synapse.

What this shows, end to end over E2EE Matrix with the real issuer services:

- the simulated eID check binds the citizen's account and pins the wallet device;
  the citizen asks for a PID and gets one that verifies against the trust list;
- the citizen sends a device list signed with the PID key and asks the registry
  office for a residence credential with a PID presentation: issued and verified;
- a registered move becomes a proactive offer that the wallet accepts: issued;
  the agency's own code does the same through ``IssuerApi.issue_to``;
- the office revokes a credential and a verifier sees it through the status room;
- bad requests (unknown citizen, unbound identity, bad proof, unknown type,
  malformed) each get their typed error event back, nothing is issued, and the
  service keeps answering afterwards.

The citizen side is a minimal wallet made of protocol and SD-JWT library calls.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from pydantic import TypeAdapter

from issuer.api import IssuerApi
from issuer.eid_check import complete_eid_check, start_eid_check
from issuer.offers import new_exchange_id, new_nonce
from issuer.service import IssuerService
from onceonly import jose
from onceonly.errors import Revoked
from onceonly.matrix.accounts import Credentials, save_credentials
from onceonly.matrix.client import PartyClient
from onceonly.matrix.devices import AllDevicesOf
from onceonly.matrix.homeserver import Homeserver
from onceonly.matrix.inbox import AlreadyHandled, InboundHandler
from onceonly.matrix.rooms import InvitesFrom
from onceonly.protocol import (
    CredentialIssue,
    CredentialOffer,
    DeviceEntry,
    DeviceListPayload,
    ErrorContent,
    LocalizedText,
    State,
    make_key_proof,
    sign_device_list,
)
from onceonly.protocol.bodies import build_credential_request, build_device_list
from onceonly.protocol.envelope import to_wire
from onceonly.protocol.events import PublicJwk
from onceonly.protocol.proofs import IDENTITY_BINDING_CONTEXT
from onceonly.sdjwt import VerificationPolicy, parse_sd_jwt, present, verify_presentation
from onceonly.service import ProtocolService, Received
from onceonly.status_fetch import check_status_via_matrix
from onceonly.status_list import status_reference_from_claims
from onceonly.trust import TrustList
from onceonly.types import RoomId, UserId
from tests.integration.test_transport_support import register
from tests.unit.issuer.issuer_world import (
    IDENTITY_ID,
    PID_IDENTITY_PATHS,
    PID_VCT,
    REGISTRY_ID,
    RESIDENCE_VCT,
    VEHICLE_VCT,
    AgencyUnderTest,
    listed,
    make_agency,
    trust_list,
)

pytestmark = pytest.mark.integration

WAIT = 120.0
_JWK: TypeAdapter[Any] = TypeAdapter(PublicJwk)
NAME = LocalizedText(de="Nachweis", en="credential")


@dataclass
class Wallet:
    """A minimal citizen wallet: one holder key, a PID, a runtime with recording handlers."""

    credentials: Credentials
    data_dir: Path
    key: jose.PrivateKey = field(default_factory=lambda: jose.generate_private_key(jose.ES256))
    pid: str | None = None
    issued: dict[str, CredentialIssue] = field(default_factory=dict)
    errors: list[ErrorContent] = field(default_factory=list)
    offers: list[Received] = field(default_factory=list)
    keep: dict[str, Any] = field(default_factory=dict)
    runtime: ProtocolService | None = None
    on_offer: Callable[[Received], Any] | None = None

    @property
    def user_id(self) -> UserId:
        return self.credentials.user_id

    @property
    def service(self) -> ProtocolService:
        assert self.runtime is not None
        return self.runtime

    def build(self, agencies: list[str]) -> ProtocolService:
        async def on_issue(item: Received) -> None:
            assert isinstance(item.content, CredentialIssue)
            self.issued[item.content.exchange_id] = item.content

        async def on_error(item: Received) -> None:
            assert isinstance(item.content, ErrorContent)
            self.errors.append(item.content)

        async def on_offer(item: Received) -> None:
            self.offers.append(item)
            if self.on_offer is not None:
                await self.on_offer(item)

        def factory(handler: InboundHandler, hook: AlreadyHandled) -> PartyClient:
            self.keep["transport"] = PartyClient(
                self.data_dir,
                device_policy=AllDevicesOf(agencies),
                handler=handler,
                invite_policy=InvitesFrom(agencies),
                already_handled=hook,
            )
            return self.keep["transport"]  # type: ignore[no-any-return]

        self.runtime = ProtocolService(
            data_dir=self.data_dir,
            handlers={CredentialIssue: on_issue, ErrorContent: on_error, CredentialOffer: on_offer},
            agency=False,
            device_policy=AllDevicesOf(agencies),
            transport_factory=factory,
        )
        return self.runtime

    def request(
        self,
        *,
        audience: str,
        vct: str,
        nonce: str | None = None,
        exchange_id: str | None = None,
        with_pid: bool = False,
        proof_key: jose.PrivateKey | None = None,
        offer_event_id: str | None = None,
        identity_paths: tuple[tuple[str, ...], ...] = PID_IDENTITY_PATHS,
    ) -> Any:
        nonce = nonce or new_nonce(secrets.token_bytes)
        now = int(time.time())
        presentation = None
        if with_pid:
            assert self.pid is not None
            presentation = present(
                parse_sd_jwt(self.pid),
                disclose=identity_paths,
                holder_key=self.key,
                aud=audience,
                nonce=nonce,
                now=now,
                context=IDENTITY_BINDING_CONTEXT,
            )
        return build_credential_request(
            exchange_id=exchange_id or new_exchange_id(secrets.token_bytes),
            vct=vct,
            holder_jwk=_JWK.validate_python(self.key.public().to_jwk()),
            proof=make_key_proof(proof_key or self.key, audience=audience, nonce=nonce, now=now),
            credential_name=NAME,
            offer_event_id=offer_event_id,
            identity_presentation=presentation,
        )

    def device_list(self) -> Any:
        transport: PartyClient = self.keep["transport"]
        keys = transport.nio.olm.account.identity_keys  # type: ignore[union-attr]
        payload = DeviceListPayload(
            sub=self.user_id,
            seq=1,
            iat=int(time.time()),
            devices=(
                DeviceEntry(
                    device_id=transport.device_id,
                    ed25519=keys["ed25519"],
                    curve25519=keys["curve25519"],
                ),
            ),
        )
        return build_device_list(device_list=sign_device_list(payload, self.key), device_count=1)

    async def ask(self, room: RoomId, request: Any) -> State:
        await self.service.send(room, request)
        exchange = await self.service.wait_for(
            request.exchange_id, WAIT, states={State.ISSUED, State.REJECTED}
        )
        return exchange.state


def agency_in(
    tmp_path: Path, synapse: Homeserver, account: str, **kwargs: Any
) -> tuple[AgencyUnderTest, Credentials]:
    credentials = synapse.register(f"{account}_{secrets.token_hex(3)}", unlimited=True)
    agency = make_agency(tmp_path / account, user_id=credentials.user_id, **kwargs)
    save_credentials(agency.config.matrix_data_dir, credentials)
    return agency, credentials


def identity_agency_and_registry_office(
    tmp_path: Path, synapse: Homeserver
) -> tuple[AgencyUnderTest, AgencyUnderTest]:
    """The two sample agencies with Matrix accounts; their stores closed for a service to open."""
    identity, _ = agency_in(
        tmp_path, synapse, "ausweis", agency_id=IDENTITY_ID, credentials=[PID_VCT],
        name=("Ausweisbehörde", "ID authority"), register_file="identity_agency.json",
    )  # fmt: skip
    office, _ = agency_in(
        tmp_path, synapse, "meldeamt", agency_id=REGISTRY_ID, credentials=[RESIDENCE_VCT],
        name=("Meldebehörde", "Registration office"), register_file="registry_office.json",
    )  # fmt: skip
    identity.close()
    office.close()
    return identity, office


async def obtain_pid(wallet: Wallet, id_service: IssuerService, card: str) -> str:
    """The simulated eID check (pinning the wallet device), then a PID over Matrix."""
    stores, now = id_service.stores, int(time.time())
    code = start_eid_check(
        stores.register, stores.ledger, card, now=now, random_bytes=secrets.token_bytes
    )
    complete_eid_check(
        stores.register, stores.ledger, card_number=card, code=code,
        matrix_user_id=wallet.user_id, now=now,
        device_id=wallet.keep["transport"].device_id, devices=stores.devices,
    )  # fmt: skip
    room = await wallet.service.room_for(UserId(id_service.config.matrix_user_id))
    request = wallet.request(audience=IDENTITY_ID, vct=PID_VCT)
    assert await wallet.ask(room, request) is State.ISSUED
    pid = wallet.issued[request.exchange_id].credential
    assert pid is not None
    wallet.pid = pid
    return pid


def verify(trust: TrustList, credential: str, holder: jose.PrivateKey) -> dict[str, Any]:
    """What a verifier would do with a full presentation of ``credential``."""
    sd_jwt = parse_sd_jwt(credential)
    presentation = present(
        sd_jwt,
        disclose=sorted(sd_jwt.claim_paths, key=len)[:40],
        holder_key=holder,
        aud="https://verifier.example",
        nonce="verifier-nonce-000000000",
        now=int(time.time()),
    )
    verified = verify_presentation(
        presentation,
        issuer_key=trust.issuer_key_resolver(),
        policy=VerificationPolicy(
            expected_audience="https://verifier.example", expected_nonce="verifier-nonce-000000000"
        ),
        now=int(time.time()),
    )
    return verified.claims


async def test_issuers_request_offer_revoke_and_refuse_over_synapse(
    synapse: Homeserver, tmp_path: Path
) -> None:
    identity, office = identity_agency_and_registry_office(tmp_path, synapse)
    now = int(time.time())
    trust = trust_list(listed(identity, now=now), listed(office, now=now), now=now)
    creds, data_dir = register(synapse, "juergen", tmp_path)
    wallet = Wallet(creds, data_dir)
    agencies = [identity.config.matrix_user_id, office.config.matrix_user_id]
    id_service = IssuerService(identity.config, trust)
    office_service = IssuerService(office.config, trust)
    wallet.build(agencies)

    async with id_service, office_service, wallet.service:
        # --- PID after the simulated eID check --------------------------------------------
        pid = await obtain_pid(wallet, id_service, "LXH67HC3V")
        claims = verify(trust, pid, wallet.key)
        assert (claims["given_name"], claims["family_name"]) == ("Jürgen", "Müller")
        reference = status_reference_from_claims(claims)
        assert await check_status_via_matrix(
            creds, reference, agency=listed(identity, now=now), now=int(time.time())
        ) == 0  # fmt: skip

        # --- residence with a PID presentation, after the signed device list -----------
        office_room = await wallet.service.room_for(UserId(office.config.matrix_user_id))
        await wallet.service.send(office_room, wallet.device_list())
        residence_request = wallet.request(audience=REGISTRY_ID, vct=RESIDENCE_VCT, with_pid=True)
        assert await wallet.ask(office_room, residence_request) is State.ISSUED
        residence = wallet.issued[residence_request.exchange_id].credential
        assert residence is not None
        assert verify(trust, residence, wallet.key)["address"]["locality"] == "Berlin"

        # --- the registered move becomes an offer the wallet accepts --------------------
        async def accept(item: Received) -> None:
            assert isinstance(item.content, CredentialOffer)
            answer = wallet.request(
                audience=item.content.issuer_id, vct=item.content.vct, nonce=item.content.nonce,
                exchange_id=item.content.exchange_id, with_pid=True,
                offer_event_id=item.event_id,
            )  # fmt: skip
            await wallet.service.send(item.room_id, answer)

        wallet.on_offer = accept
        (offer,) = await office_service.send_pending_offers()
        assert offer.matrix_user_id == wallet.user_id
        offered = await wallet.service.wait_for(
            offer.content.exchange_id, WAIT, states={State.ISSUED, State.REJECTED}
        )
        assert offered.state is State.ISSUED
        moved = wallet.issued[offer.content.exchange_id].credential
        assert moved is not None
        assert verify(trust, moved, wallet.key)["address"]["street_address"] == (
            "Karl-Marx-Allee 140"
        )
        assert office_service.stores.register.pending_life_events()[0].person_id != "MB-0001"

        # --- the agency's own IT issues from code: offer, accepted by the wallet ---------
        api = IssuerApi(office_service)
        record = await api.issue_to(wallet.user_id, RESIDENCE_VCT, timeout=WAIT)
        assert record.person_id == "MB-0001" and record.matrix_user_id == wallet.user_id
        assert api.status()["issued_by_vct"][RESIDENCE_VCT] == len(office_service.issued)

        # --- revocation reaches a verifier through the status room ---------------------
        record = office_service.issued[0]
        assert await office_service.revoke(credential_id=record.credential_id) == [record]
        with pytest.raises(Revoked):
            await check_status_via_matrix(
                creds, record.status_reference, agency=listed(office, now=now),
                now=int(time.time()),
            )  # fmt: skip
        still_valid = office_service.issued[1].status_reference
        assert await check_status_via_matrix(
            creds, still_valid, agency=listed(office, now=now), now=int(time.time())
        ) == 0  # fmt: skip

        # --- bad requests: a typed error each, nothing issued, the service keeps going ---
        issued_before = len(office_service.issued)
        bad = {
            "identity_not_bound": wallet.request(audience=REGISTRY_ID, vct=RESIDENCE_VCT),
            "invalid_signature": wallet.request(
                audience=REGISTRY_ID, vct=RESIDENCE_VCT, with_pid=True,
                proof_key=jose.generate_private_key(jose.ES256),
            ),
            "unsupported_credential_type": wallet.request(
                audience=REGISTRY_ID, vct=VEHICLE_VCT, with_pid=True
            ),
        }  # fmt: skip
        for code_expected, request in bad.items():
            assert await wallet.ask(office_room, request) is State.REJECTED
            (error,) = [e for e in wallet.errors if e.exchange_id == request.exchange_id]
            assert error.code == code_expected
        # Malformed: a request without its proof, sent raw through the wallet's transport.
        event_type, raw = to_wire(wallet.request(audience=REGISTRY_ID, vct=RESIDENCE_VCT))
        del raw["proof"]
        transport: PartyClient = wallet.keep["transport"]
        raw_id = await (await transport.send(office_room, event_type, raw)).event_id(WAIT)
        await until(lambda: any(e.event_id == raw_id for e in wallet.errors))
        assert [e.code for e in wallet.errors if e.event_id == raw_id] == ["malformed"]
        assert len(office_service.issued) == issued_before
        # ... and the service still issues.
        again = wallet.request(audience=REGISTRY_ID, vct=RESIDENCE_VCT, with_pid=True)
        assert await wallet.ask(office_room, again) is State.ISSUED

    # An unknown citizen: Sören holds a PID but is not registered at the office.
    await unknown_citizen_is_refused(synapse, tmp_path, identity, office, trust)


async def unknown_citizen_is_refused(
    synapse: Homeserver,
    tmp_path: Path,
    identity: AgencyUnderTest,
    office: AgencyUnderTest,
    trust: TrustList,
) -> None:
    creds, data_dir = register(synapse, "soeren", tmp_path)
    wallet = Wallet(creds, data_dir)
    wallet.build([identity.config.matrix_user_id, office.config.matrix_user_id])
    id_service = IssuerService(identity.config, trust)
    office_service = IssuerService(office.config, trust)
    async with id_service, office_service, wallet.service:
        await obtain_pid(wallet, id_service, "LVVNP3M5M")
        office_room = await wallet.service.room_for(UserId(office.config.matrix_user_id))
        request = wallet.request(audience=REGISTRY_ID, vct=RESIDENCE_VCT, with_pid=True)
        assert await wallet.ask(office_room, request) is State.REJECTED
        (error,) = [e for e in wallet.errors if e.exchange_id == request.exchange_id]
        assert error.code == "unknown_subject"
        assert office_service.issued == []


async def until(condition: Callable[[], bool], timeout: float = WAIT) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.1)
