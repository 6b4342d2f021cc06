"""The party runtime between an agency and a citizen on a real Synapse.

Two toy services: an agency that offers and issues a credential, and a citizen's
wallet that asks for it. They show, over real E2EE Matrix: a protocol exchange
running to its end in both state stores, an invalid event answered with an
``error`` event, and a handler exception that is answered as ``internal_error``
without stopping the service.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from onceonly.matrix.client import PartyClient
from onceonly.matrix.devices import AllDevicesOf
from onceonly.matrix.homeserver import Homeserver
from onceonly.matrix.inbox import AlreadyHandled, InboundHandler
from onceonly.matrix.rooms import InvitesFrom
from onceonly.protocol import NAMESPACE, CredentialOffer, CredentialRequest, ErrorContent, State
from onceonly.protocol.bodies import build_credential_issue, build_credential_request
from onceonly.protocol.envelope import to_wire
from onceonly.protocol.events import CredentialIssue
from onceonly.service import ProtocolService, Received
from onceonly.types import UserId
from tests.integration.test_transport_support import register
from tests.unit.protocol.samples import HOLDER_JWK, JWS, REGISTRY, RESIDENCE, SD_JWT, samples

pytestmark = pytest.mark.integration

WAIT = 120.0
VCT = "urn:onceonly:credential:residence:1"
OFFERED = "offer_exchange_0001"
FAILING = "failing_exchange_01"
AFTER = "after_failure_00001"
LARGE = "large_credential_01"
# Big enough that the transport sends the whole message as an encrypted attachment.
LARGE_SD_JWT = JWS + "~" + "A" * 46_000 + "~"


def _service(
    data_dir: Path, peer: str, *, agency: bool, handlers: dict[type, Any], keep: dict[str, Any]
) -> ProtocolService:
    def factory(handler: InboundHandler, hook: AlreadyHandled) -> PartyClient:
        # Kept so the test can also send raw (invalid) events through the same account.
        keep["transport"] = PartyClient(
            data_dir,
            device_policy=AllDevicesOf([peer]),
            handler=handler,
            invite_policy=InvitesFrom([peer]),
            already_handled=hook,
        )
        return keep["transport"]

    return ProtocolService(
        data_dir=data_dir,
        handlers=handlers,
        agency=agency,
        device_policy=AllDevicesOf([peer]),
        transport_factory=factory,
        sweep_interval=1.0,
    )


def _request(exchange_id: str) -> CredentialRequest:
    return build_credential_request(
        exchange_id=exchange_id,
        vct=VCT,
        holder_jwk=HOLDER_JWK,
        proof=JWS,
        credential_name=RESIDENCE,
    )


async def test_agency_and_wallet_services_over_synapse(synapse: Homeserver, tmp_path: Path) -> None:
    agency_creds, agency_dir = register(synapse, "agency_svc", tmp_path)
    citizen_creds, citizen_dir = register(synapse, "citizen_svc", tmp_path)
    agency_user, citizen_user = agency_creds.user_id, citizen_creds.user_id
    errors_at_wallet: list[Received] = []
    issued_at_wallet: list[Received] = []
    requests_at_agency: list[str] = []
    agency_keep: dict[str, Any] = {}
    wallet_keep: dict[str, Any] = {}
    holder: dict[str, ProtocolService] = {}

    async def agency_on_request(item: Received) -> None:
        assert isinstance(item.content, CredentialRequest)
        requests_at_agency.append(item.content.exchange_id)
        if item.content.exchange_id == FAILING:
            raise RuntimeError("register database exploded at /srv/secret")
        credential = build_credential_issue(
            exchange_id=item.content.exchange_id,
            vct=VCT,
            credential_name=RESIDENCE,
            issuer_name=REGISTRY,
            credential=LARGE_SD_JWT if item.content.exchange_id == LARGE else SD_JWT,
        )
        await holder["agency"].send(item.room_id, credential)

    async def wallet_on_offer(item: Received) -> None:
        assert isinstance(item.content, CredentialOffer)
        await holder["wallet"].send(item.room_id, _request(item.content.exchange_id))

    async def wallet_on_issue(item: Received) -> None:
        issued_at_wallet.append(item)

    async def wallet_on_error(item: Received) -> None:
        errors_at_wallet.append(item)

    agency = _service(
        agency_dir,
        citizen_user,
        agency=True,
        handlers={CredentialRequest: agency_on_request},
        keep=agency_keep,
    )
    wallet = _service(
        citizen_dir,
        agency_user,
        agency=False,
        handlers={
            CredentialOffer: wallet_on_offer,
            CredentialIssue: wallet_on_issue,
            ErrorContent: wallet_on_error,
        },
        keep=wallet_keep,
    )
    holder["agency"], holder["wallet"] = agency, wallet
    async with agency, wallet:
        assert agency.user_id == agency_user and wallet.user_id == citizen_user
        room = await agency.room_for(UserId(citizen_user))
        assert await wallet.room_for(UserId(agency_user)) == room

        # 1. A handler exception: answered as internal_error, nothing leaks, both close.
        await wallet.send(room, _request(FAILING))
        closed = await wallet.wait_for(FAILING, WAIT)
        assert closed.state is State.REJECTED
        [error] = [e.content for e in errors_at_wallet]
        assert isinstance(error, ErrorContent)
        assert (error.code, error.exchange_id) == ("internal_error", FAILING)
        assert "secret" not in error.message and "secret" not in error.body
        agency_side = await agency.wait_for(FAILING, WAIT)
        assert agency_side.state is State.REJECTED

        # 2. The service keeps running: a whole offer -> request -> issue exchange.
        offer = samples()[NAMESPACE + "credential.offer"].model_copy(
            update={"exchange_id": OFFERED, "offer_expires_at": agency.now() + 3600}
        )
        offer_event = await agency.send(room, offer)
        issued = await wallet.wait_for(OFFERED, WAIT, states={State.ISSUED})
        assert issued.state is State.ISSUED
        assert requests_at_agency == [FAILING, OFFERED]
        [delivered] = issued_at_wallet
        assert isinstance(delivered.content, CredentialIssue)
        assert (delivered.content.exchange_id, delivered.sender) == (OFFERED, agency_user)
        agency_record = agency.exchanges.record(OFFERED)
        assert agency_record is not None
        assert agency_record.exchange.state is State.ISSUED
        assert (agency_record.peer, agency_record.room_id) == (citizen_user, room)
        wallet_record = wallet.exchanges.record(OFFERED)
        assert wallet_record is not None and wallet_record.created_at > 0
        assert wallet.exchanges.is_handled(offer_event)

        # 3. An invalid event (a credential.request without its proof), sent raw through
        # the wallet's own transport, is answered by the agency with an error event.
        event_type, bad = to_wire(_request(AFTER))
        del bad["proof"]
        raw: PartyClient = wallet_keep["transport"]
        bad_id = await (await raw.send(room, event_type, bad)).event_id(timeout=WAIT)
        await _until(lambda: len(errors_at_wallet) == 2)
        answer = errors_at_wallet[1].content
        assert isinstance(answer, ErrorContent)
        assert (answer.code, answer.event_id, answer.exchange_id) == ("malformed", bad_id, AFTER)
        assert "proof" in answer.message
        assert agency.exchanges.get(AFTER) is None  # nothing was opened by it
        assert errors_at_wallet[1].exchange is None  # no such exchange at the wallet either

        # 4. A message too large for one event goes as an attachment and still arrives
        # as the protocol message it is (the receiver sees the restored msgtype).
        await agency.send(
            room,
            offer.model_copy(update={"exchange_id": LARGE, "offer_expires_at": agency.now() + 600}),
        )
        assert (await wallet.wait_for(LARGE, WAIT, states={State.ISSUED})).state is State.ISSUED
        big = issued_at_wallet[-1].content
        assert isinstance(big, CredentialIssue)
        assert (big.exchange_id, big.credential) == (LARGE, LARGE_SD_JWT)
        assert len(errors_at_wallet) == 2


async def _until(condition: Any, timeout: float = WAIT) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.1)
