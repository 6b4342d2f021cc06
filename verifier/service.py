"""The verifier agency's service: send presentation requests, judge the answers, tell the citizen.

:class:`VerifierService` runs on the shared :class:`~onceonly.service.ProtocolService`
(E2EE mailbox per citizen, durable exchange states, error answers). It

* sends ``presentation.request`` contents built by :func:`~verifier.requests.prepare_request`
  (recorded in the request store and the audit log first);
* verifies each ``presentation.response`` with :class:`~verifier.verification.Verifier`
  and answers ``exchange.status`` ``verified``, or ``rejected`` with the error code as
  ``reason_code``; a refusal is recorded as such (:mod:`verifier.responses`);
* settles every request exactly once (verified, rejected, refused, expired) so the
  agency's code can wait for the result (:meth:`VerifierService.wait`).

Events the runtime refuses before they reach the verifier (a second response in a
finished exchange, a response after the deadline, malformed content, a response
naming no request of ours) are answered by the runtime with an ``error`` event
carrying the code; the runtime's refusal hook records each in the audit log as a
digest, within the sender's quota
(:meth:`~verifier.responses.ResponseHandlers._on_refused`). Expired nonces and
requests are purged after their retention (:meth:`~verifier.responses.ResponseHandlers.purge`).

Room keys for what *we* send may go to every device of the citizen: requests and
statuses carry no personal data (the query and purpose are public by the trust
list). The personal data travels the other way, encrypted by the citizen's wallet.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from pathlib import Path
from typing import Final, TypeVar

from onceonly.errors import (
    ExchangeTimeout,
    TrustError,
)
from onceonly.matrix.accounts import load_credentials
from onceonly.protocol import ErrorContent, PresentationResponse, State
from onceonly.query import DcqlQuery
from onceonly.service import PartyService, ProtocolService, TransportFactory
from onceonly.status_cache import StatusCache, StatusFetcher
from onceonly.status_fetch import matrix_status_fetch
from onceonly.trust import VerifiedTrustList
from onceonly.trust_cache import TrustCache
from onceonly.types import UserId
from verifier.audit_format import EntryKind, VerificationOutcome
from verifier.audit_log import AuditLog
from verifier.config import VerifierConfig, load_config
from verifier.evidence import EvidenceArchive
from verifier.nonce_store import NonceStore
from verifier.refusal_quota import RefusalQuota
from verifier.requests import PendingRequest, RequestStore, prepare_request
from verifier.responses import ResponseHandlers
from verifier.sources import AnyDevice, refresh_trust_list
from verifier.verification import (
    VerificationResult,
    Verifier,
    VerifierOptions,
    request_details,
)

_Store = TypeVar("_Store", NonceStore, RequestStore, AuditLog, RefusalQuota)

_POLL_SECONDS: Final = 1.0


def _expired_result(exchange_id: str) -> VerificationResult:
    return VerificationResult(
        exchange_id=exchange_id,
        verified=False,
        error_code="request_expired",
        message="no answer before the request expired",
    )


class VerifierService(ResponseHandlers, PartyService):
    """One verifier agency on its Matrix account. Use ``async with`` or start/stop.

    Args:
        data_dir: The verifier's data directory (see :mod:`verifier.config`).
        config: The configuration (read from ``data_dir`` by default).
        status_fetch: How Status List Tokens are obtained (the issuers' status rooms
            through our Matrix account by default).
        clock: Wall clock in epoch seconds.
        transport_factory: Transport for the runtime (tests pass their own PartyClient).
        options: Verification policy.
        sweep_interval: Seconds between the runtime's expiry sweeps.
        trust_refresh_interval: Seconds between trust list refreshes from the
            configured ``trust_room`` (none without one).
        purge_interval: Seconds between purges of expired nonces and requests (after
            the configured retention) and the recording of ended refusal quotas.
    """

    label = "verifier service"

    def __init__(
        self,
        data_dir: Path,
        *,
        config: VerifierConfig | None = None,
        status_fetch: StatusFetcher | None = None,
        clock: Callable[[], float] = time.time,
        transport_factory: TransportFactory | None = None,
        options: VerifierOptions | None = None,
        sweep_interval: float = 30.0,
        trust_refresh_interval: float = 300.0,
        purge_interval: float = 600.0,
    ) -> None:
        super().__init__(clock=clock)
        self._data_dir = data_dir
        self._config = config
        self._status_fetch = status_fetch
        self._transport_factory = transport_factory
        self._options = options
        self._sweep_interval = sweep_interval
        self._closers: list[Callable[[], None]] = []
        self._results: dict[str, VerificationResult] = {}
        self._settled: dict[str, asyncio.Event] = {}
        self._trust_refresh_interval = trust_refresh_interval
        self._purge_interval = purge_interval

    def _lock_dir(self) -> Path:
        return self._data_dir

    async def _open(self) -> ProtocolService:
        """Open the stores, refresh the trust list and build the runtime.

        Raises:
            ConfigError, StoreError, AccountError: as the parts raise them.
        """
        config = self._config or load_config(self._data_dir)
        location = config.store_location(self._data_dir)
        self._nonces = self._keep(NonceStore.open(location))
        self._requests = self._keep(RequestStore.open(location))
        self._audit = self._keep(
            AuditLog.open(
                location,
                signing_key=config.signing_key(self._data_dir),
                head_every=config.head_every,
            )
        )
        self._refusals = self._keep(
            RefusalQuota.open(
                location, limit=config.refused_per_sender, window=config.refused_window_seconds
            )
        )
        self._trust = TrustCache.in_data_dir(self._data_dir, config.anchors())
        if config.trust_room is not None:
            await self._refresh_trust(config.trust_room)
        fetch = self._status_fetch or matrix_status_fetch(load_credentials(self._data_dir))
        self._verifier = Verifier(
            verifier_id=config.verifier_id,
            trust=self._current_trust,
            nonces=self._nonces,
            audit=self._audit,
            status=StatusCache(
                fetch, max_age=(self._options or VerifierOptions()).status_max_age_seconds
            ),
            evidence=EvidenceArchive(self._data_dir / config.evidence_dir),
            options=self._options,
        )
        self._config = config
        return ProtocolService(
            data_dir=self._data_dir,
            handlers={PresentationResponse: self._on_response, ErrorContent: self._on_error},
            agency=True,
            device_policy=AnyDevice(),
            clock=self._clock,
            transport_factory=self._transport_factory,
            sweep_interval=self._sweep_interval,
            on_refused=self._on_refused,
        )

    async def _started(self) -> None:
        self._every(self._purge_interval, self.purge, what="verifier store purge")
        room = self.config.trust_room
        if room is not None:
            self._every(
                self._trust_refresh_interval,
                lambda: self._refresh_trust(room),
                what="verifier trust list refresh",
            )

    async def _refresh_trust(self, room: str) -> None:
        await refresh_trust_list(
            self._trust, load_credentials(self._data_dir), room, now=self.now()
        )

    def _keep(self, store: _Store) -> _Store:
        self._closers.append(store.close)
        return store

    async def _runtime_stopped(self) -> None:
        self._audit.sign_head(now=self.now())

    def _close(self) -> None:
        for close in reversed(self._closers):
            with contextlib.suppress(Exception):
                close()
        self._closers.clear()

    @property
    def config(self) -> VerifierConfig:
        """The configuration in use (started)."""
        self.runtime  # noqa: B018 - raises when not started
        assert self._config is not None
        return self._config

    @property
    def requests(self) -> RequestStore:
        """The request store (started)."""
        self.runtime  # noqa: B018 - raises when not started
        return self._requests

    @property
    def audit(self) -> AuditLog:
        """The audit log (started)."""
        self.runtime  # noqa: B018 - raises when not started
        return self._audit

    def _current_trust(self, now: int) -> VerifiedTrustList | None:
        return self._trust.current(now=now)

    # --- requests -------------------------------------------------------------------

    async def request(
        self, citizen: UserId, query: DcqlQuery, purpose: str, *, ttl: int | None = None
    ) -> PendingRequest:
        """Ask ``citizen`` for the claims in ``query`` (for a registered ``purpose``).

        Raises:
            NotAuthorizedToRequest: our trust-list registration does not allow it.
            TrustError: no valid trust list is cached.
            TransportError: the request could not be sent.
        """
        runtime = self.runtime
        assert self._config is not None
        now = runtime.now()
        trust = self._current_trust(now)
        if trust is None:
            raise TrustError("the verifier holds no valid trust list; run 'onceonly trust fetch'")
        prepared = prepare_request(
            trust_list=trust.trust_list,
            verifier_id=self._config.verifier_id,
            citizen=citizen,
            query=query,
            purpose=purpose,
            nonces=self._nonces,
            now=now,
            ttl=ttl or self._config.request_ttl,
        )
        pending = prepared.pending
        self._requests.add(pending)
        self._settled.setdefault(pending.exchange_id, asyncio.Event())
        self._audit.append(
            kind=EntryKind.REQUEST,
            exchange_id=pending.exchange_id,
            now=now,
            details=request_details(pending),
        )
        room = await runtime.room_for(citizen)
        event_id = await runtime.send(room, prepared.content)
        self._requests.mark_sent(pending.exchange_id, room_id=room, event_id=event_id)
        return pending

    async def wait(self, exchange_id: str, timeout: float) -> VerificationResult:
        """The result of a request of this process, once settled.

        An unanswered request counts as expired once its deadline has passed.

        Raises:
            ExchangeTimeout: not settled within ``timeout`` seconds.
            UnknownExchange: no such request.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        settled = self._settled.setdefault(exchange_id, asyncio.Event())
        while not (settled.is_set() and exchange_id in self._results):
            pending = self._requests.get(exchange_id).pending
            state = getattr(self.runtime.exchanges.get(exchange_id), "state", None)
            # An answer that arrived in time is being judged (RESPONDED): its verdict
            # counts even if the deadline passes meanwhile.
            unanswered = state in (None, State.REQUESTED)
            if state is State.EXPIRED or (unanswered and self.runtime.now() >= pending.expires_at):
                self._settle_expired(pending)
                break
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise ExchangeTimeout(
                    "the citizen has not answered yet", detail={"exchange_id": exchange_id}
                )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(settled.wait(), min(remaining, _POLL_SECONDS))
        return self._results[exchange_id]

    def _settle(self, result: VerificationResult, outcome: str, now: int) -> None:
        # Waiters are woken by _announce, once the citizen has been told as well: a
        # caller that stops the service as soon as it has its result must not cut the
        # handler short (the runtime would then run it again after a restart).
        if self._requests.settle(
            result.exchange_id, outcome=outcome, result=result.to_json(), now=now
        ):
            self._results[result.exchange_id] = result

    def _announce(self, exchange_id: str) -> None:
        self._settled.setdefault(exchange_id, asyncio.Event()).set()

    def _settle_expired(self, pending: PendingRequest) -> None:
        now = self.runtime.now()
        result = _expired_result(pending.exchange_id)
        if self._requests.get(pending.exchange_id).outcome is None:
            self._audit.append(
                kind=EntryKind.VERIFICATION,
                exchange_id=pending.exchange_id,
                now=now,
                outcome=VerificationOutcome.rejected("request_expired"),
                details=request_details(pending),
            )
        self._settle(result, "expired", now)
        self._results.setdefault(pending.exchange_id, result)
        self._announce(pending.exchange_id)
