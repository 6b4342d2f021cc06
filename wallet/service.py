"""The citizen's wallet on Matrix: offers, credentials and presentation requests as they arrive.

:class:`WalletService` puts the wallet's domain logic behind the shared
:class:`~onceonly.service.ProtocolService` runtime (which owns the transport, the
wire envelope and the per-exchange state machines):

* ``credential.offer`` - checked and kept ``pending``; requested at once when the
  policy file accepts offers of that type from that agency (or the citizen says
  yes at the terminal), otherwise it waits for ``onceonly wallet accept``;
* ``credential.issue`` - verified completely, stored only if it passes, answered
  with ``exchange.status`` ``accepted`` or a value-free ``error``;
* ``presentation.request`` - trust and over-asking checks, matching, consent
  (policy first, then the terminal if one is attached; unattended means no),
  minimal presentation or a refusal - always an answer;
* offers the citizen approved or declined from another process (``wallet accept
  [--decline]``) are picked up by a poll: requested, or the agency is told no.

Before each credential request the wallet sends a fresh ``device.list`` signed
with its PID key (when it holds a PID), naming this wallet's own device.

Room keys go only to the devices of the agencies' accounts the trust list names
(and the citizen's own), and invites are accepted only from those accounts.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from onceonly.errors import MalformedInput, OnceOnlyError, QueryNotSatisfied
from onceonly.matrix.accounts import Credentials, load_credentials
from onceonly.matrix.client import PartyClient
from onceonly.matrix.devices import AllDevicesOf
from onceonly.matrix.inbox import AlreadyHandled, InboundHandler
from onceonly.matrix.rooms import InvitesFrom
from onceonly.protocol.bodies import build_exchange_status
from onceonly.protocol.events import (
    CredentialIssue,
    CredentialOffer,
    ErrorContent,
    ExchangeStatus,
    Outcome,
    PresentationRequest,
)
from onceonly.protocol.exchange import State
from onceonly.protocol.fields import Content
from onceonly.protocol.rooms import DeviceEntry
from onceonly.service import ProtocolService, Received
from onceonly.service.transport import Transport
from onceonly.trust import TrustList
from onceonly.types import RoomId, UserId
from wallet.policy import DENY_ALL, ConsentPolicy
from wallet.present import Answer, Consent, Holding, complete_answer, prepare_answer
from wallet.receive import receive_credential, rejection
from wallet.records import PendingOffer
from wallet.requests import (
    approve_offer,
    device_list,
    record_offer,
    request_credential,
    request_for_offer,
)
from wallet.store import WalletStore

logger = logging.getLogger(__name__)

TrustSource = Callable[[int], TrustList]
"""Returns the current verified trust list for time ``now`` (raises a ``TrustError`` if none)."""

OfferConsent = Callable[[PendingOffer, str], bool]
"""Asks the citizen whether to request an offered credential (offer, agency name)."""


@dataclass(frozen=True)
class Notice:
    """Something the citizen should hear about (printed by ``wallet run``).

    Attributes:
        kind: ``offer``, ``stored``, ``rejected``, ``presented``, ``refused``,
            ``requested``, ``declined``, ``status`` or ``error``.
        exchange_id: The exchange, when there is one.
        detail: Safe, human-readable facts (ids, codes, names; no claim values).
    """

    kind: str
    exchange_id: str | None
    detail: dict[str, Any] = field(default_factory=dict)


class WalletService:
    """The wallet party: one Matrix account, one wallet store, one trust list source.

    Nothing happens in the constructor; :meth:`start` (or ``async with``) starts the
    runtime. The store stays owned by the caller (open it before, close it after).

    Args:
        data_dir: The wallet's data directory (``account.json``, transport and exchange stores).
        store: The open wallet store.
        trust: The trust list source.
        policy: Unattended consent (default: deny everything).
        consent: Interactive consent for presentations the policy does not approve.
        offer_consent: Interactive consent for offers the policy does not accept.
        clock: Wall clock (epoch seconds).
        random_bytes: Randomness for exchange ids and nonces.
        poll_interval: Seconds between looks for offers approved by another process.
        login: Matrix login to use instead of ``data_dir/account.json``.
        transport_factory: For tests that need the transport; default a ``PartyClient``.
    """

    def __init__(
        self,
        *,
        data_dir: Path,
        store: WalletStore,
        trust: TrustSource,
        policy: ConsentPolicy = DENY_ALL,
        consent: Consent | None = None,
        offer_consent: OfferConsent | None = None,
        clock: Callable[[], float] = time.time,
        random_bytes: Callable[[int], bytes] = os.urandom,
        poll_interval: float = 5.0,
        login: Credentials | None = None,
        notify: Callable[[Notice], None] | None = None,
    ) -> None:
        self.data_dir = data_dir
        self.store = store
        self._trust = trust
        self._policy = policy
        self._consent = consent
        self._offer_consent = offer_consent
        self._clock = clock
        self._random_bytes = random_bytes
        self._poll_interval = poll_interval
        self._login = login
        self._notify = notify
        self.notices: list[Notice] = []
        self._holdings: dict[str, Holding] = {}
        self._runtime: ProtocolService | None = None
        self._transport: PartyClient | None = None
        self._poller: asyncio.Task[None] | None = None
        # One question at a time at the terminal, and one writer of approved requests.
        self._prompt_lock = asyncio.Lock()
        self._request_lock = asyncio.Lock()

    # --- lifecycle ------------------------------------------------------------------

    async def start(self) -> None:
        """Start the runtime and the poll for approved offers.

        Raises:
            TrustError, StoreError: no usable trust list.
            AccountError: no stored login.
        """
        trust = self._trust(self.now())
        agencies = [agency.matrix_user_id for agency in trust.agencies]
        login = self._login or load_credentials(self.data_dir)
        devices = AllDevicesOf([*agencies, login.user_id])
        invites = InvitesFrom(agencies)

        def factory(handler: InboundHandler, already_handled: AlreadyHandled) -> Transport:
            self._transport = PartyClient(
                self.data_dir,
                device_policy=devices,
                handler=handler,
                login=login,
                invite_policy=invites,
                already_handled=already_handled,
            )
            return self._transport

        handlers: dict[type[Content], Any] = {
            CredentialOffer: self._on_offer,
            CredentialIssue: self._on_issue,
            PresentationRequest: self._on_presentation_request,
            ExchangeStatus: self._on_status,
            ErrorContent: self._on_error,
        }
        self._runtime = ProtocolService(
            data_dir=self.data_dir,
            handlers=handlers,
            agency=False,
            device_policy=devices,
            invite_policy=invites,
            login=login,
            clock=self._clock,
            transport_factory=factory,
        )
        await self._runtime.start()
        self._poller = asyncio.create_task(self._poll_forever(), name="wallet-approved-offers")

    async def stop(self) -> None:
        """Stop polling and the runtime."""
        if self._poller is not None:
            self._poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poller
            self._poller = None
        if self._runtime is not None:
            await self._runtime.stop()
            self._runtime = None

    async def __aenter__(self) -> WalletService:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    @property
    def runtime(self) -> ProtocolService:
        """The running protocol runtime (exchange states, ``wait_for``)."""
        if self._runtime is None:
            raise RuntimeError("the wallet service is not started")
        return self._runtime

    def now(self) -> int:
        """The wallet's clock, in whole epoch seconds."""
        return int(self._clock())

    # --- actions the citizen starts --------------------------------------------------

    async def request(self, issuer_id: str, vct: str) -> str:
        """Ask an agency for a credential (no offer); return the exchange id.

        Raises:
            UntrustedIssuer: the agency may not issue ``vct``.
            QueryNotSatisfied: a PID is needed first.
            TransportError: the request could not be sent.
        """
        now = self.now()
        trust = self._trust(now)
        content = request_credential(
            self.store,
            issuer_id=issuer_id,
            vct=vct,
            trust=trust,
            now=now,
            random_bytes=self._random_bytes,
        )
        agency = trust.agency(issuer_id)
        assert agency is not None  # request_credential checked it
        room = await self.runtime.room_for(UserId(agency.matrix_user_id))
        await self._send_device_list(room, trust, now)
        await self.runtime.send(room, content)
        self._tell("requested", content.exchange_id, issuer=issuer_id, vct=vct)
        return content.exchange_id

    async def send_approved(self) -> list[str]:
        """Act on the citizen's decisions about offers; return the exchange ids requested.

        Approved offers are requested; declined ones are announced to the agency
        (``exchange.status`` ``rejected``, once: the exchange store shows whether the
        offer is still open); pending ones past their deadline are marked expired.
        """
        sent = []
        now = self.now()
        async with self._request_lock:
            for record in self.store.offers():
                if record.state == "approved":
                    if await self._request_offer(record):
                        sent.append(record.offer_id)
                elif record.state == "declined":
                    await self._announce_decline(record)
                elif record.state == "pending" and (record.expires_at or now + 1) <= now:
                    self.store.set_offer_state(record.offer_id, "expired")
        return sent

    # --- handlers --------------------------------------------------------------------

    async def _on_offer(self, item: Received) -> None:
        assert isinstance(item.content, CredentialOffer)
        trust = self._trust(item.now)
        record = record_offer(
            self.store,
            item.content,
            sender=item.sender,
            trust=trust,
            now=item.now,
            event_id=item.event_id,
        )
        agency = trust.agency(record.issuer)
        name = agency.name.de if agency else record.issuer
        self._tell("offer", record.offer_id, issuer=record.issuer, vct=record.vct, name=name)
        if self._policy.accepts_offer(record) or await self._ask_offer(record, name):
            approve_offer(self.store, record.offer_id, now=item.now)
            await self.send_approved()

    async def _on_issue(self, item: Received) -> None:
        content = item.content
        assert isinstance(content, CredentialIssue)
        trust = self._trust(item.now)
        if content.credential is None:
            # The transport moves whole oversized contents into attachments; a
            # credential_file reference inside a content is not fetched here.
            error = MalformedInput("credential_file is not supported by this wallet")
            reply: Content = rejection(
                error, exchange_id=content.exchange_id, event_id=item.event_id
            )
            await self.runtime.send(item.room_id, reply)
            self._tell("rejected", content.exchange_id, code=error.code)
            return
        receipt = receive_credential(
            self.store,
            content,
            credential_text=content.credential,
            sender=item.sender,
            trust=trust,
            now=item.now,
            event_id=item.event_id,
        )
        await self.runtime.send(item.room_id, receipt.reply)
        if receipt.accepted:
            self._tell("stored", content.exchange_id, credential_id=receipt.credential_id)
        else:
            assert receipt.error is not None
            logger.warning("credential rejected: %s", receipt.error)
            self._tell(
                "rejected", content.exchange_id, code=receipt.error.code, why=receipt.error.message
            )

    async def _on_presentation_request(self, item: Received) -> None:
        request = item.content
        assert isinstance(request, PresentationRequest)
        trust = self._trust(item.now)
        prepared = prepare_answer(
            self.store,
            request,
            sender=item.sender,
            trust=trust,
            now=item.now,
            request_event_id=item.event_id,
            cache=self._holdings,
        )
        if not isinstance(prepared, Answer):
            approved = self._policy.approves(prepared)
            if not approved and self._consent is not None:
                consent = self._consent
                async with self._prompt_lock:
                    # The terminal blocks; the event loop must not.
                    approved = await asyncio.to_thread(consent, prepared)
            prepared = complete_answer(
                self.store,
                prepared,
                approved=approved,
                sender=item.sender,
                trust=trust,
                now=self.now(),
                request_event_id=item.event_id,
            )
        await self.runtime.send(item.room_id, prepared.response)
        if prepared.presented:
            self._tell("presented", request.exchange_id, verifier=request.verifier_id)
        else:
            code = prepared.error.code if prepared.error else None
            self._tell("refused", request.exchange_id, verifier=request.verifier_id, code=code)

    async def _on_status(self, item: Received) -> None:
        status = item.content
        assert isinstance(status, ExchangeStatus)
        self._settle(status.exchange_id, status.outcome)
        self._tell(
            "status", status.exchange_id, outcome=status.outcome.value, code=status.reason_code
        )

    async def _on_error(self, item: Received) -> None:
        error = item.content
        assert isinstance(error, ErrorContent)
        if error.exchange_id is not None and item.exchange is not None:
            self._settle(error.exchange_id, Outcome.REJECTED)
        self._tell("error", error.exchange_id, code=error.code, message=error.message)

    # --- internals -------------------------------------------------------------------

    def _settle(self, exchange_id: str, outcome: Outcome) -> None:
        # An issuance the agency ended: our exchange record follows.
        try:
            record = self.store.offer(exchange_id)
        except OnceOnlyError:
            return
        if outcome in (Outcome.REJECTED, Outcome.EXPIRED) and record.state in (
            "pending",
            "approved",
            "requested",
        ):
            self.store.set_offer_state(
                exchange_id, "failed" if outcome is Outcome.REJECTED else "expired"
            )

    async def _ask_offer(self, record: PendingOffer, name: str) -> bool:
        if self._offer_consent is None:
            return False
        ask = self._offer_consent
        async with self._prompt_lock:
            return await asyncio.to_thread(ask, record, name)

    async def _request_offer(self, record: PendingOffer) -> bool:
        now = self.now()
        try:
            trust = self._trust(now)
            if record.issuer_user is None:
                raise MalformedInput("the offer has no agency account to answer")
            content = request_for_offer(self.store, record.offer_id, trust=trust, now=now)
            room = await self.runtime.room_for(UserId(record.issuer_user))
            await self._send_device_list(room, trust, now)
            await self.runtime.send(room, content)
        except OnceOnlyError as exc:
            logger.warning("cannot request offer %s: %s", record.offer_id, exc)
            with contextlib.suppress(OnceOnlyError):
                if self.store.offer(record.offer_id).state in ("approved", "requested"):
                    self.store.set_offer_state(record.offer_id, "failed")
            self._tell("error", record.offer_id, code=exc.code, message=exc.message)
            return False
        self._tell("requested", record.offer_id, issuer=record.issuer, vct=record.vct)
        return True

    async def _announce_decline(self, record: PendingOffer) -> None:
        exchange = self.runtime.exchanges.get(record.offer_id)
        if exchange is None or exchange.state is not State.OFFERED or record.issuer_user is None:
            return
        status = build_exchange_status(
            exchange_id=record.offer_id, outcome=Outcome.REJECTED, reason_code="consent_denied"
        )
        try:
            room = await self.runtime.room_for(UserId(record.issuer_user))
            await self.runtime.send(room, status)
        except OnceOnlyError as exc:
            logger.warning("cannot announce the declined offer %s: %s", record.offer_id, exc)
            return
        self._tell("declined", record.offer_id, issuer=record.issuer, vct=record.vct)

    async def _send_device_list(self, room: RoomId, trust: TrustList, now: int) -> None:
        own = self._own_device()
        if own is None:
            return
        try:
            content = device_list(
                self.store,
                user_id=self.runtime.user_id,
                devices=[own],
                # Wall-clock milliseconds: strictly increasing across restarts without
                # keeping a counter (two lists in one millisecond do not happen here).
                seq=int(self._clock() * 1000),
                trust=trust,
                now=now,
            )
        except QueryNotSatisfied:
            return  # no PID yet: the PID issuer pins this device during the eID check
        await self.runtime.send(room, content)

    def _own_device(self) -> DeviceEntry | None:
        transport = self._transport
        if transport is None or transport.nio.olm is None:
            return None
        keys = transport.nio.olm.account.identity_keys
        return DeviceEntry(
            device_id=transport.device_id, ed25519=keys["ed25519"], curve25519=keys["curve25519"]
        )

    async def _poll_forever(self) -> None:
        while True:
            await asyncio.sleep(self._poll_interval)
            try:
                await self.send_approved()
            except Exception:
                logger.exception("sending approved offers failed; retrying")

    def _tell(self, kind: str, exchange_id: str | None, **detail: Any) -> None:
        notice = Notice(kind, exchange_id, {k: v for k, v in detail.items() if v is not None})
        self.notices.append(notice)
        if self._notify is not None:
            self._notify(notice)
