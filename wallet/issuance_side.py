"""The wallet's side of issuance exchanges, on a running protocol runtime.

Split from :mod:`wallet.service`, which owns the runtime and the citizen's
consent: this part turns the citizen's decisions into protocol messages
(requests, declined offers, device lists) and takes delivered credentials in
(verified by :mod:`wallet.receive` before anything is stored).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from onceonly.errors import MalformedInput, OnceOnlyError, QueryNotSatisfied
from onceonly.matrix.own_devices import DeviceKeys
from onceonly.protocol.bodies import build_exchange_status
from onceonly.protocol.events import CredentialIssue, Outcome
from onceonly.protocol.exchange import State
from onceonly.protocol.fields import Content
from onceonly.service import ProtocolService, Received
from onceonly.trust import TrustList
from onceonly.types import RoomId, UserId
from wallet.devices import signed_device_list
from wallet.receive import receive_credential, rejection
from wallet.records import PendingOffer
from wallet.requests import request_credential, request_for_offer
from wallet.store import WalletStore

logger = logging.getLogger(__name__)

TrustSource = Callable[[int], TrustList]
"""Returns the current verified trust list for time ``now`` (raises a ``TrustError`` if none)."""


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


class IssuanceSide:
    """Requests, declines, device lists and received credentials of one wallet.

    Args:
        store: The open wallet store.
        trust: The trust list source.
        runtime: Returns the running protocol runtime.
        own_device: Returns this wallet's device (``None`` before the transport runs).
        clock: Wall clock (epoch seconds).
        random_bytes: Randomness for exchange ids and nonces.
        tell: Reports a :class:`Notice`.
    """

    def __init__(
        self,
        *,
        store: WalletStore,
        trust: TrustSource,
        runtime: Callable[[], ProtocolService],
        own_device: Callable[[], DeviceKeys | None],
        clock: Callable[[], float],
        random_bytes: Callable[[int], bytes],
        tell: Callable[[Notice], None],
    ) -> None:
        self.store = store
        self._trust = trust
        self._runtime = runtime
        self._own_device = own_device
        self._clock = clock
        self._random_bytes = random_bytes
        self._notify = tell
        # One pass over the citizen's decisions at a time (poll and handlers both start one).
        self._lock = asyncio.Lock()

    @property
    def runtime(self) -> ProtocolService:
        """The running runtime."""
        return self._runtime()

    def now(self) -> int:
        """Whole epoch seconds."""
        return int(self._clock())

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
        async with self._lock:
            for record in self.store.offers():
                if record.state == "approved":
                    if await self._request_offer(record):
                        sent.append(record.offer_id)
                elif record.state == "declined":
                    await self._announce_decline(record)
                elif record.state == "pending" and (record.expires_at or now + 1) <= now:
                    self.store.set_offer_state(record.offer_id, "expired")
        return sent

    async def on_issue(self, item: Received) -> None:
        """Verify and store a delivered credential; answer the agency either way."""
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

    def settle(self, exchange_id: str, outcome: Outcome) -> None:
        """An issuance the agency ended (rejected, expired): our exchange record follows."""
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
            # The wallet's own device and every one the citizen approved; the store
            # keeps seq rising (the clock in ms is only its floor).
            content = signed_device_list(
                self.store,
                user_id=self.runtime.user_id,
                own=own,
                trust=trust,
                now=now,
                clock_ms=int(self._clock() * 1000),
            )
        except QueryNotSatisfied:
            return  # no PID yet: the PID issuer pins this device during the eID check
        await self.runtime.send(room, content)

    def _tell(self, kind: str, exchange_id: str | None, **detail: Any) -> None:
        self._notify(Notice(kind, exchange_id, {k: v for k, v in detail.items() if v is not None}))
