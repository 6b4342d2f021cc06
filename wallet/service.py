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
with its PID key (when it holds a PID), naming this wallet's own device and the
ones the citizen approved (:mod:`wallet.devices`); a change of approvals is sent
to every agency mailbox on the next poll.

Room keys go only to the devices of the agencies' accounts the trust list names
and to the citizen's approved devices, and invites are accepted only from those
agency accounts.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from onceonly.errors import TransportError
from onceonly.matrix.accounts import Credentials, load_credentials
from onceonly.matrix.client import PartyClient
from onceonly.matrix.inbox import AlreadyHandled, InboundHandler
from onceonly.matrix.own_devices import DeviceKeys
from onceonly.matrix.rooms import InvitesFrom
from onceonly.protocol.events import (
    CredentialIssue,
    CredentialOffer,
    ErrorContent,
    ExchangeStatus,
    Outcome,
    PresentationRequest,
)
from onceonly.protocol.fields import Content
from onceonly.service import PartyService, ProtocolService, Received
from onceonly.service.transport import Transport
from onceonly.status_cache import StatusFetcher
from onceonly.status_fetch import matrix_status_fetch
from wallet.answer import Answer, complete_answer, prepare_answer
from wallet.devices import DeviceAnnouncer, WalletDevicePolicy
from wallet.issuance_side import IssuanceSide, Notice, TrustSource
from wallet.policy import DENY_ALL, ConsentPolicy
from wallet.present import Consent, Holding
from wallet.records import PendingOffer
from wallet.requests import (
    approve_offer,
    record_offer,
)
from wallet.status import CredentialStatusChecker, wallet_status_cache
from wallet.store import WalletStore

__all__ = ["Notice", "OfferConsent", "TrustSource", "WalletService"]

OfferConsent = Callable[[PendingOffer, str], bool]
"""Asks the citizen whether to request an offered credential (offer, agency name)."""


class WalletService(PartyService):
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
        status_fetch: Where status list tokens come from (default: the issuers'
            status rooms, read with this wallet's login); see :mod:`wallet.status`.
        transport_factory: For tests that need the transport; default a ``PartyClient``.
    """

    label = "wallet service"

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
        status_fetch: StatusFetcher | None = None,
    ) -> None:
        super().__init__(clock=clock)
        self.data_dir = data_dir
        self.store = store
        self._trust = trust
        self._policy = policy
        self._consent = consent
        self._offer_consent = offer_consent
        self._random_bytes = random_bytes
        self._poll_interval = poll_interval
        self._login = login
        self._notify = notify
        self.notices: list[Notice] = []
        self._holdings: dict[str, Holding] = {}
        self._status_fetch = status_fetch
        self._statuses: CredentialStatusChecker | None = None
        self._transport: PartyClient | None = None
        self._announcer: DeviceAnnouncer | None = None
        # One question at a time at the terminal.
        self._prompt_lock = asyncio.Lock()
        self._issuance = IssuanceSide(
            store=store,
            trust=trust,
            runtime=lambda: self.runtime,
            own_device=self._own_device,
            clock=clock,
            random_bytes=random_bytes,
            tell=self._report,
        )

    # --- lifecycle (start/stop: PartyService) ----------------------------------------

    def _lock_dir(self) -> Path:
        return self.data_dir

    async def _open(self) -> ProtocolService:
        """Build the runtime for the agencies the trust list names.

        Raises:
            TrustError, StoreError: no usable trust list.
            AccountError: no stored login.
        """
        trust = self._trust(self.now())
        agencies = [agency.matrix_user_id for agency in trust.agencies]
        login = self._login or load_credentials(self.data_dir)
        # Own devices only as the citizen approved them (wallet.devices).
        devices = WalletDevicePolicy(self.store, own_user=login.user_id, agencies=agencies)
        self._announcer = DeviceAnnouncer(
            store=self.store,
            policy=devices,
            own_device=self._own_device,
            mailbox_of=self._mailbox_of,
            send=lambda room, content: self.runtime.send(room, content),
        )
        invites = InvitesFrom(agencies)
        fetch = self._status_fetch or matrix_status_fetch(login)
        self._statuses = CredentialStatusChecker(wallet_status_cache(fetch))

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
        return ProtocolService(
            data_dir=self.data_dir,
            handlers=handlers,
            agency=False,
            device_policy=devices,
            invite_policy=invites,
            login=login,
            clock=self._clock,
            transport_factory=factory,
        )

    async def _started(self) -> None:
        self._every(self._poll_interval, self._poll_once, what="wallet poll for approved offers")

    # --- actions the citizen starts --------------------------------------------------

    async def request(self, issuer_id: str, vct: str) -> str:
        """Ask an agency for a credential without an offer (:meth:`IssuanceSide.request`)."""
        return await self._issuance.request(issuer_id, vct)

    async def send_approved(self) -> list[str]:
        """Act on the citizen's decisions about offers (see :class:`IssuanceSide`)."""
        return await self._issuance.send_approved()

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
        await self._issuance.on_issue(item)

    async def _on_presentation_request(self, item: Received) -> None:
        request = item.content
        assert isinstance(request, PresentationRequest)
        trust = self._trust(item.now)
        if self._statuses is not None:
            # Never raises: a list it cannot read leaves that credential presentable.
            await self._statuses.check_for_request(
                self.store, request, trust=trust, now=item.now, cache=self._holdings
            )
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
            reason = prepared.error.message if prepared.error else None
            verifier = request.verifier_id
            self._tell("refused", request.exchange_id, verifier=verifier, code=code, reason=reason)

    async def _on_status(self, item: Received) -> None:
        status = item.content
        assert isinstance(status, ExchangeStatus)
        self._issuance.settle(status.exchange_id, status.outcome)
        if status.reason_code in ("revoked", "suspended") and self._statuses is not None:
            # Our cached status list may be older than the revocation: look again.
            await self._statuses.recheck_presented(
                self.store, status.exchange_id, trust=self._trust(item.now), now=item.now
            )
        self._tell(
            "status", status.exchange_id, outcome=status.outcome.value, code=status.reason_code
        )

    async def _on_error(self, item: Received) -> None:
        error = item.content
        assert isinstance(error, ErrorContent)
        if error.exchange_id is not None and item.exchange is not None:
            self._issuance.settle(error.exchange_id, Outcome.REJECTED)
        self._tell("error", error.exchange_id, code=error.code, message=error.message)

    # --- internals -------------------------------------------------------------------

    async def _ask_offer(self, record: PendingOffer, name: str) -> bool:
        if self._offer_consent is None:
            return False
        ask = self._offer_consent
        async with self._prompt_lock:
            return await asyncio.to_thread(ask, record, name)

    def _own_device(self) -> DeviceKeys | None:
        if self._transport is None:
            return None
        try:
            return self._transport.own_device_keys()
        except TransportError:
            return None  # not started (yet, or any more)

    def _mailbox_of(self, peer: str) -> str | None:
        try:
            return None if self._transport is None else self._transport.store.direct_room(peer)
        except TransportError:
            return None

    async def announce_devices(self) -> list[str]:
        """Send a new device list to every agency mailbox if the approvals changed."""
        if self._announcer is None:
            return []
        return list(
            await self._announcer.announce_if_changed(
                user_id=self.runtime.user_id,
                trust=self._trust(self.now()),
                now=self.now(),
                clock_ms=int(self._clock() * 1000),
            )
        )

    async def _poll_once(self) -> None:
        await self.announce_devices()
        await self.send_approved()

    def _tell(self, kind: str, exchange_id: str | None, **detail: Any) -> None:
        self._report(Notice(kind, exchange_id, {k: v for k, v in detail.items() if v is not None}))

    def _report(self, notice: Notice) -> None:
        self.notices.append(notice)
        if self._notify is not None:
            self._notify(notice)
