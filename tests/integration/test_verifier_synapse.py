"""The verifier agency against a citizen's responder on a real Synapse (E2EE mailbox).

The verifier runs as in production (``VerifierService``: request store, nonce store,
audit log, evidence archive, trust list cache in its data directory). The citizen's
side is a small responder on the same runtime that answers each request with an
SD-JWT presentation built by ``onceonly.sdjwt.present`` (minimal disclosure), or
deliberately wrong: another nonce, another audience, a revoked or untrusted
credential, too late, a replay (of an answer, or of a presentation in another
exchange). Each bad answer must be rejected with its code,
and the citizen must be told (``exchange.status`` or ``error``). The status list
token reaches the verifier through an injected fetch function (the issuer's
status-room publishing is the issuer's part).
"""

from __future__ import annotations

import asyncio
import hashlib
import inspect
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from onceonly.cli import cli
from onceonly.matrix import attachments
from onceonly.matrix.client import PartyClient
from onceonly.matrix.devices import AllDevicesOf
from onceonly.matrix.homeserver import Homeserver
from onceonly.matrix.inbox import AlreadyHandled, InboundHandler
from onceonly.matrix.rooms import InvitesFrom
from onceonly.matrix.state_rooms import state_client
from onceonly.protocol import (
    ErrorContent,
    ExchangeStatus,
    PresentationRequest,
    PresentationResponse,
    Refusal,
)
from onceonly.protocol.bodies import build_presentation_response
from onceonly.protocol.envelope import to_wire
from onceonly.protocol.fields import Attachment, LocalizedText
from onceonly.service import ProtocolService, Received
from onceonly.service.refused import raw_json
from onceonly.trust_cache import TrustCache
from onceonly.types import UserId
from tests.integration.test_transport_support import register
from tests.unit.verifier.verification_world import VERIFIER_ID, World, address_query
from verifier.api import VerifierApi
from verifier.audit import audit_file
from verifier.audit_format import AuditEntry, EntryKind, VerificationOutcome
from verifier.config import init_verifier, load_config
from verifier.evidence import EvidenceArchive
from verifier.reverify import Reverifier
from verifier.service import VerifierService

pytestmark = pytest.mark.integration

WAIT = 120.0
PURPOSE = "child_benefit_application"
NAME = LocalizedText(de="Familienkasse", en="Family benefits office")

Answer = Callable[[PresentationRequest], Any]
"""Builds the response fields for a request, or an awaitable of them (None: no answer)."""


class Citizen:
    """A wallet stand-in on the real runtime that answers as the test says."""

    def __init__(self, data_dir: Path, verifier_user: str) -> None:
        self.answer: Answer = lambda _request: None
        self.requests: dict[str, tuple[PresentationRequest, str]] = {}
        self.told: dict[str, list[Any]] = {}
        self.sent: dict[str, dict[str, Any]] = {}
        self.keep: dict[str, PartyClient] = {}

        def factory(handler: InboundHandler, hook: AlreadyHandled) -> PartyClient:
            self.keep["transport"] = PartyClient(
                data_dir,
                device_policy=AllDevicesOf([verifier_user]),
                handler=handler,
                invite_policy=InvitesFrom([verifier_user]),
                already_handled=hook,
            )
            return self.keep["transport"]

        self.runtime = ProtocolService(
            data_dir=data_dir,
            handlers={
                PresentationRequest: self._on_request,
                ExchangeStatus: self._on_told,
                ErrorContent: self._on_told,
            },
            agency=False,
            device_policy=AllDevicesOf([verifier_user]),
            transport_factory=factory,
            sweep_interval=1.0,
        )

    async def _on_request(self, item: Received) -> None:
        request = item.content
        assert isinstance(request, PresentationRequest)
        self.requests[request.exchange_id] = (request, item.room_id)
        fields = self.answer(request)
        if inspect.isawaitable(fields):
            fields = await fields
        if fields is None:
            return
        response = build_presentation_response(
            exchange_id=request.exchange_id,
            verifier_name=NAME,
            request_event_id=item.event_id,
            **fields,
        )
        self.sent[request.exchange_id] = to_wire(response)[1]
        await self.runtime.send(item.room_id, response)

    async def _on_told(self, item: Received) -> None:
        exchange_id = getattr(item.content, "exchange_id", None)
        self.told.setdefault(str(exchange_id), []).append(item.content)

    async def send_raw(self, room_id: str, content: dict[str, Any]) -> None:
        """Send a response outside the wallet's own state machine (late or replayed)."""
        handle = await self.keep["transport"].send(room_id, "m.room.message", content)
        await handle.event_id(WAIT)

    async def wait_answered(self, exchange_id: str) -> None:
        """Wait until the citizen has sent its answer to the request."""
        await until(lambda: exchange_id in self.sent, f"the citizen never answered {exchange_id}")

    async def wait_requested(self, exchange_id: str) -> None:
        """Wait until the verifier's request has arrived."""
        await until(lambda: exchange_id in self.requests, f"no request {exchange_id} arrived")

    async def wait_told(self, exchange_id: str, number: int = 1) -> Any:
        """The ``number``-th message the citizen got about the exchange (waiting for it)."""
        await until(
            lambda: len(self.told.get(exchange_id, ())) >= number,
            f"the citizen was never told about {exchange_id}",
        )
        return self.told[exchange_id][number - 1]


async def until(condition: Callable[[], bool], failure: str) -> None:
    """Poll ``condition`` for up to WAIT seconds; fail with ``failure`` if it never holds."""
    for _ in range(int(WAIT * 10)):
        if condition():
            return
        await asyncio.sleep(0.1)
    raise AssertionError(failure)


def presentation(world: World, **credential: Any) -> Answer:
    """Answer with one minimal presentation of a residence credential."""

    def build(request: PresentationRequest, **overrides: Any) -> dict[str, Any]:
        arguments = {"nonce": request.nonce, "aud": request.verifier_id} | overrides
        text = world.present(world.credential(**credential), now=int(time.time()), **arguments)
        return {"vp_token": {"residence": (text,)}}

    return build


async def test_verifier_requests_and_judges_answers_over_synapse(
    synapse: Homeserver, tmp_path: Path
) -> None:
    verifier_creds, verifier_dir = register(synapse, "familienkasse", tmp_path)
    citizen_creds, citizen_dir = register(synapse, "erika", tmp_path)
    world = World(now=int(time.time()), verifier_matrix_id=verifier_creds.user_id)
    world.revoke(9)
    init_verifier(verifier_dir, verifier_id=VERIFIER_ID, anchors=[world.authority.public()])
    TrustCache.in_data_dir(verifier_dir, [world.authority.public()]).offer(
        world.trust_token(), now=world.now
    )
    citizen = Citizen(citizen_dir, verifier_creds.user_id)
    service = VerifierService(verifier_dir, status_fetch=world.fetch, sweep_interval=1.0)
    api = VerifierApi(service)
    user = UserId(citizen_creds.user_id)
    async with service, citizen.runtime:
        # 1. Minimal disclosure, verified; the citizen is told.
        citizen.answer = presentation(world)
        result = await api.request_proof(user, address_query(), PURPOSE, WAIT)
        assert result.verified, result.message
        assert result.credentials["residence"][0].claims == {"address": {"locality": "Köln"}}
        told = await citizen.wait_told(result.exchange_id)
        assert isinstance(told, ExchangeStatus) and told.outcome.value == "verified"
        good_exchange = result.exchange_id

        # 2-5. Wrong answers: each rejected with its code, the citizen told the same code.
        wrong: list[tuple[Answer, str]] = [
            (
                lambda r: presentation(world)(r, nonce="AAAAAAAAAAAAAAAAAAAAAAAAAAAA"),
                "nonce_mismatch",
            ),
            (lambda r: presentation(world)(r, aud="https://other.example"), "audience_mismatch"),
            (presentation(world, idx=9), "revoked"),
            (
                presentation(world, signer=World().issuer, issuer_id="https://rogue.example"),
                "untrusted_issuer",
            ),
        ]
        for answer, code in wrong:
            citizen.answer = answer
            result = await api.request_proof(user, address_query(), PURPOSE, WAIT)
            assert (result.verified, result.error_code) == (False, code)
            told = await citizen.wait_told(result.exchange_id)
            assert isinstance(told, ExchangeStatus)
            assert (told.outcome.value, told.reason_code) == ("rejected", code)

        # A vp_token too large to inline travels as an encrypted file.
        async def as_file(request: PresentationRequest) -> dict[str, Any]:
            vp_token = presentation(world)(request)["vp_token"]
            async with state_client(citizen_creds) as client:
                small = await attachments.pack(client, {k: list(v) for k, v in vp_token.items()})
            return {"vp_token_file": Attachment.model_validate(small[attachments.ATTACHMENT_KEY])}

        citizen.answer = as_file
        result = await api.request_proof(user, address_query(), PURPOSE, WAIT)
        assert result.verified, result.message
        assert result.credentials["residence"][0].claims == {"address": {"locality": "Köln"}}

        # A file that holds no vp_token: refused as malformed, and the citizen told.
        async def junk_file(request: PresentationRequest) -> dict[str, Any]:
            async with state_client(citizen_creds) as client:
                small = await attachments.pack(client, {"residence": "not a list"})
            return {"vp_token_file": Attachment.model_validate(small[attachments.ATTACHMENT_KEY])}

        citizen.answer = junk_file
        result = await api.request_proof(user, address_query(), PURPOSE, WAIT)
        assert (result.verified, result.error_code) == (False, "malformed")
        error = await citizen.wait_told(result.exchange_id)
        assert isinstance(error, ErrorContent) and error.code == "malformed"

        # 6. A refusal is a refusal.
        citizen.answer = lambda r: {"refusal": Refusal(code="consent_denied")}
        result = await api.request_proof(user, address_query(), PURPOSE, WAIT)
        assert (result.verified, result.refused, result.error_code) == (
            False,
            True,
            "consent_denied",
        )

        # 7. Replay: the verified response sent again is refused and the citizen told,
        # and the audit log records what arrived and the code it got.
        room = citizen.requests[good_exchange][1]
        await citizen.send_raw(room, citizen.sent[good_exchange])
        error = await citizen.wait_told(good_exchange, 2)
        assert isinstance(error, ErrorContent) and error.code == "replay"
        [replayed] = refused_entries(service, good_exchange)
        assert replayed.outcome == VerificationOutcome.rejected("replay")
        assert_digest_of(replayed, citizen.sent[good_exchange])
        assert replayed.details["nonce"] == citizen.requests[good_exchange][0].nonce
        assert replayed.details["sender"] == citizen_creds.user_id
        assert service.requests.get(good_exchange).outcome == "verified"  # the verdict stands

        # The presentation captured from that exchange, sent as the answer to a new
        # request: its key binding names the old nonce.
        captured = citizen.sent[good_exchange]["vp_token"]
        citizen.answer = lambda r: {"vp_token": {k: tuple(v) for k, v in captured.items()}}
        result = await api.request_proof(user, address_query(), PURPOSE, WAIT)
        assert (result.verified, result.error_code) == (False, "nonce_mismatch")
        told = await citizen.wait_told(result.exchange_id)
        assert isinstance(told, ExchangeStatus)
        assert (told.outcome.value, told.reason_code) == ("rejected", "nonce_mismatch")

        # Content that is no valid response, to an open request: the runtime refuses it
        # (malformed), the audit keeps it raw, and the request ends with that code.
        citizen.answer = lambda r: None
        pending = await service.request(user, address_query(), PURPOSE)
        await citizen.wait_requested(pending.exchange_id)
        junk = to_wire(presentation_answer(world, citizen.requests[pending.exchange_id][0]))[1]
        del junk["vp_token"]  # neither vp_token nor refusal
        await citizen.send_raw(citizen.requests[pending.exchange_id][1], junk)
        result = await service.wait(pending.exchange_id, WAIT)
        assert (result.verified, result.error_code) == (False, "malformed")
        error = await citizen.wait_told(pending.exchange_id)
        assert isinstance(error, ErrorContent) and error.code == "malformed"
        [refused] = refused_entries(service, pending.exchange_id)
        assert_digest_of(refused, junk)
        assert refused.outcome == VerificationOutcome.rejected("malformed")

        # An answer naming no request of ours is audited too (nothing to settle).
        stray = dict(junk, exchange_id="S" * 22)
        stray["vp_token"] = citizen.sent[good_exchange]["vp_token"]
        await citizen.send_raw(citizen.requests[pending.exchange_id][1], stray)
        error = await citizen.wait_told("S" * 22)
        assert isinstance(error, ErrorContent) and error.code == "unknown_exchange"
        [unknown] = refused_entries(service, "S" * 22)
        assert_digest_of(unknown, stray)
        assert "nonce" not in unknown.details

        # 8. An answer after the request expired.
        citizen.answer = lambda r: None
        pending = await service.request(user, address_query(), PURPOSE, ttl=3)
        await citizen.wait_requested(pending.exchange_id)
        late_request, late_room = citizen.requests[pending.exchange_id]
        expired = await service.wait(pending.exchange_id, WAIT)
        assert expired.error_code == "request_expired"
        while time.time() <= pending.expires_at + 1:  # the runtime's deadline is exclusive
            await asyncio.sleep(0.2)
        late = presentation_answer(world, late_request)
        await citizen.send_raw(late_room, to_wire(late)[1])
        error = await citizen.wait_told(pending.exchange_id)
        # request_expired, also when the runtime's expiry sweep came first.
        assert isinstance(error, ErrorContent) and error.code == "request_expired"
        [late_entry] = refused_entries(service, pending.exchange_id)
        assert late_entry.outcome == VerificationOutcome.rejected("request_expired")
        assert_digest_of(late_entry, to_wire(late)[1])
        assert service.requests.get(pending.exchange_id).outcome == "expired"

        # The audit log holds every verdict, and an auditor reproduces each offline.
        audit_log = service.audit
        audit_log.sign_head(now=int(time.time()))
        export = tmp_path / "audit.jsonl"
        audit_log.export(export, now=int(time.time()))
        reverifier = Reverifier(
            evidence=EvidenceArchive(verifier_dir / "evidence"),
            anchors=[world.authority.public()],
        )
        keys = service.config.signing_key(verifier_dir).public()
        report = audit_file(export, verifier_key=keys, reverify=reverifier)
        assert report.reverified == 7
        assert report.clean, [finding.message for finding in report.findings]
        # The auditor's command agrees, re-verifying from the evidence (exit 0: no finding).
        key_file, anchor_file = tmp_path / "verifier.pub.jwk", tmp_path / "anchor.jwk"
        key_file.write_text(json.dumps(keys.to_jwk()))
        anchor_file.write_text(json.dumps(world.authority.public().to_jwk()))
        arguments = ["audit", "log", str(export), "--verifier-key", str(key_file)]
        arguments += ["--evidence", str(verifier_dir / "evidence")]
        outcome = CliRunner().invoke(
            cli, [*arguments, "--trust-anchor", str(anchor_file), "--json"]
        )
        assert outcome.exit_code == 0, outcome.output
        assert json.loads(outcome.output)["clean"] is True


def presentation_answer(world: World, request: PresentationRequest) -> PresentationResponse:
    """A correct answer to ``request``, built outside the citizen's runtime."""
    return build_presentation_response(
        exchange_id=request.exchange_id, verifier_name=NAME, **presentation(world)(request)
    )


def assert_digest_of(entry: AuditEntry, sent: dict[str, Any]) -> None:
    """``entry`` records a bounded digest of the content ``sent``, never the content."""
    raw = raw_json(sent).encode("utf-8")
    assert entry.details["received_sha256"] == hashlib.sha256(raw).hexdigest()
    assert entry.details["received_bytes"] == str(len(raw))
    prefix = entry.details["received_prefix"].encode("utf-8")
    assert len(prefix) <= 512 and raw.startswith(prefix)
    assert "received" not in entry.details


def refused_entries(service: VerifierService, exchange_id: str) -> list[AuditEntry]:
    """The audit entries of answers the runtime refused in one exchange."""
    return [
        entry
        for entry in service.audit.entries()
        if entry.exchange_id == exchange_id
        and entry.kind is EntryKind.RESPONSE
        and entry.details.get("refused_by") == "runtime"
    ]


JUNK_EVENTS = 40
JUNK_QUOTA = 5


async def test_junk_from_a_citizen_is_bounded_over_synapse(
    synapse: Homeserver, tmp_path: Path
) -> None:
    verifier_creds, verifier_dir = register(synapse, "elterngeldstelle", tmp_path)
    citizen_creds, citizen_dir = register(synapse, "mallory", tmp_path)
    world = World(now=int(time.time()), verifier_matrix_id=verifier_creds.user_id)
    init_verifier(verifier_dir, verifier_id=VERIFIER_ID, anchors=[world.authority.public()])
    config = load_config(verifier_dir).model_copy(update={"refused_per_sender": JUNK_QUOTA})
    TrustCache.in_data_dir(verifier_dir, [world.authority.public()]).offer(
        world.trust_token(), now=world.now
    )
    citizen = Citizen(citizen_dir, verifier_creds.user_id)
    service = VerifierService(
        verifier_dir, config=config, status_fetch=world.fetch, sweep_interval=1.0
    )
    api = VerifierApi(service)
    user = UserId(citizen_creds.user_id)
    async with service, citizen.runtime:
        citizen.answer = presentation(world)
        first = await api.request_proof(user, address_query(), PURPOSE, WAIT)
        assert first.verified, first.message
        room = citizen.requests[first.exchange_id][1]
        before = audit_bytes(service)
        # A citizen with a mailbox floods it: responses of ~40 KB naming no request.
        wire = citizen.sent[first.exchange_id]
        junk_ids = [f"J{number:021d}" for number in range(JUNK_EVENTS)]
        for exchange_id in junk_ids:
            await citizen.send_raw(room, dict(wire, exchange_id=exchange_id, body="x" * 40_000))
        await until(
            lambda: all(exchange_id in citizen.told for exchange_id in junk_ids),
            "the verifier did not answer every junk event",
        )
        recorded = [
            entry
            for entry in service.audit.entries()
            if entry.details.get("sender") == citizen_creds.user_id
        ]
        assert len(recorded) == JUNK_QUOTA  # the rest are counted, not recorded
        grown = audit_bytes(service) - before
        assert grown < JUNK_QUOTA * 2048, grown  # was ~40 KB per junk event

        # The same citizen, honest now: verified, and the presentation audited in full.
        result = await api.request_proof(user, address_query(), PURPOSE, WAIT)
        assert result.verified, result.message
        [verdict] = [
            entry
            for entry in service.audit.entries()
            if entry.exchange_id == result.exchange_id and entry.kind is EntryKind.VERIFICATION
        ]
        sent = citizen.sent[result.exchange_id]["vp_token"]
        assert verdict.presentation is not None and json.loads(verdict.presentation) == sent


def audit_bytes(service: VerifierService) -> int:
    """The size of the service's audit log entries, as exported."""
    total, after = 0, 0
    while batch := service.audit.entries(after_seq=after):
        total += sum(len(json.dumps(entry.to_json())) for entry in batch)
        after = batch[-1].seq
    return total
