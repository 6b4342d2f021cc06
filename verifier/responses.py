"""How the verifier service reacts to the citizen's answers (a mixin of the service).

* ``presentation.response`` with presentations: verified by
  :class:`~verifier.verification.Verifier`, settled, and answered with
  ``exchange.status`` ``verified`` or ``rejected`` (the error code as ``reason_code``);
  a ``vp_token_file`` is downloaded, decrypted and held to the inline bounds first;
* a refusal: recorded and settled as refused;
* an answer refused before any verdict (e.g. an unreadable file): recorded and
  settled as rejected, while the runtime tells the citizen with an ``error``;
* an ``error`` from the citizen in one of our exchanges: recorded and settled;
* an answer the runtime refused before this handler saw it (malformed, a second
  answer, a late one, one naming no request of ours): recorded as a ``response``
  entry with the code the sender was told and a digest of the content as received
  (SHA-256, size and the first :data:`MAX_RECORDED_PREFIX` bytes), through the
  runtime's refusal hook; a request that the refusal ended is settled with it.
  Any account can send such events, and the audit log only grows, so each sender
  gets a quota per window (:class:`~verifier.refusal_quota.RefusalQuota`): beyond
  it refusals are only counted, and once the window has ended one entry records
  the count (``refused_by`` ``quota``);
* a handler re-run after a restart: the stored verdict stands and is told again
  if the citizen has not been told yet (the nonce is used up, so verifying again
  would turn a verified answer into a replay).
"""

from __future__ import annotations

import contextlib
import hashlib
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from pydantic import ValidationError

from onceonly.errors import MalformedInput, OnceOnlyError, UnknownExchange, UntrustedParty
from onceonly.matrix import attachments
from onceonly.matrix.accounts import load_credentials
from onceonly.protocol import NAMESPACE, ErrorContent, Outcome, PresentationResponse, State
from onceonly.protocol.bodies import build_exchange_status
from onceonly.service import ProtocolService, Received, Refused
from onceonly.types import ExchangeId, RoomId
from verifier.audit_format import EntryKind, VerificationOutcome
from verifier.audit_log import AuditLog
from verifier.config import VerifierConfig
from verifier.nonce_store import NonceStore
from verifier.refusal_quota import RefusalQuota
from verifier.requests import PendingRequest, RequestStore, StoredRequest
from verifier.verification import VerificationResult, Verifier, request_details

MAX_RECORDED_PREFIX: Final = 512
"""Bytes (UTF-8) of a refused event's raw content kept in its audit entry, beside the
SHA-256 and size of the whole: enough to tell what it was, too little to make the
agency store what a sender likes."""

_RESPONSE_TYPE: Final = NAMESPACE + PresentationResponse.EVENT_TYPE


class ResponseHandlers:
    """The response side of :class:`~verifier.service.VerifierService`."""

    if TYPE_CHECKING:
        # Provided by VerifierService.
        _data_dir: Path
        _requests: RequestStore
        _nonces: NonceStore
        _audit: AuditLog
        _verifier: Verifier
        _refusals: RefusalQuota

        @property
        def config(self) -> VerifierConfig: ...

        @property
        def runtime(self) -> ProtocolService: ...

        def _settle(self, result: VerificationResult, outcome: str, now: int) -> None: ...

        def _announce(self, exchange_id: str) -> None: ...

        def _settle_expired(self, pending: PendingRequest) -> None: ...

    async def _on_response(self, item: Received) -> None:
        content = item.content
        assert isinstance(content, PresentationResponse)
        stored = self._requests.get(content.exchange_id)
        if item.sender != stored.pending.citizen:
            raise UntrustedParty("only the citizen asked may answer this request")
        if stored.outcome is not None and stored.outcome != "expired":
            # The runtime re-runs a handler that a restart cut short: the verdict
            # stands (the nonce is used up), only telling the citizen may be missing.
            # (An answer in the last second before the runtime's deadline, after we
            # gave up waiting, is judged normally: the nonce store calls it expired.)
            await self._tell_again(stored.outcome, stored.result or {}, item)
            return
        try:
            await self._judge(content, stored.pending, item)
        except OnceOnlyError as exc:
            # Refused before a verdict (e.g. an unreadable vp_token_file): the runtime
            # answers the error and closes the exchange; the request ends with it.
            self._reject_unjudged(stored.pending, exc.code, exc.message, item.now)
            raise
        finally:
            self._announce(content.exchange_id)

    def _reject_unjudged(self, pending: PendingRequest, code: str, message: str, now: int) -> None:
        if self._requests.get(pending.exchange_id).outcome is not None:
            return
        with contextlib.suppress(OnceOnlyError):  # no later answer may use the nonce
            self._nonces.consume(pending.nonce, now=now, exchange_id=pending.exchange_id)
        entry = self._audit.append(
            kind=EntryKind.VERIFICATION,
            exchange_id=pending.exchange_id,
            now=now,
            outcome=VerificationOutcome.rejected(code),
            details=request_details(pending),
        )
        result = VerificationResult(
            exchange_id=pending.exchange_id,
            verified=False,
            error_code=code,
            message=message,
            audit_seq=entry.seq,
            audit_hash=entry.entry_hash,
        )
        self._settle(result, "rejected", now)

    async def _judge(
        self, content: PresentationResponse, pending: PendingRequest, item: Received
    ) -> None:
        if content.refusal is not None:
            code = content.refusal.code.value
            result = self._verifier.record_refusal(pending, code, now=item.now)
            self._settle(result, "refused", item.now)
            return
        vp_token = content.vp_token or await self._download_vp_token(content)
        result = await self._verifier.verify_response(pending, vp_token, now=item.now)
        self._settle(result, "verified" if result.verified else "rejected", item.now)
        await self._tell(content.exchange_id, result.error_code, item)

    async def _download_vp_token(self, content: PresentationResponse) -> dict[str, Any]:
        """Fetch, decrypt and validate a ``vp_token_file`` (a vp_token too large to inline)."""
        assert content.vp_token_file is not None  # the model requires one of the two
        login = load_credentials(self._data_dir)
        data = await attachments.fetch(
            login.homeserver,
            login.access_token,
            content.vp_token_file.model_dump(mode="json"),
            max_bytes=content.vp_token_file.size,
        )
        try:
            # The same bounds as an inline vp_token: validate it in the response model.
            inline = content.model_copy(update={"vp_token_file": None}).model_dump(mode="json")
            checked = PresentationResponse.model_validate(inline | {"vp_token": data})
        except ValidationError as exc:
            raise MalformedInput("vp_token_file does not hold a valid vp_token") from exc
        assert checked.vp_token is not None
        return {qid: list(items) for qid, items in checked.vp_token.items()}

    async def _tell(self, exchange_id: str, error_code: str | None, item: Received) -> None:
        status = build_exchange_status(
            exchange_id=exchange_id,
            outcome=Outcome.REJECTED if error_code else Outcome.VERIFIED,
            reason_code=error_code,
            related_event_id=item.event_id,
        )
        await self.runtime.send(RoomId(item.room_id), status)
        self._audit.append(
            kind=EntryKind.STATUS_SENT,
            exchange_id=exchange_id,
            now=self.runtime.now(),
            details={"outcome": status.outcome.value, "reason_code": error_code or ""},
        )

    async def _tell_again(self, outcome: str, result: dict[str, Any], item: Received) -> None:
        exchange = self.runtime.exchanges.get(getattr(item.content, "exchange_id", ""))
        if outcome not in ("verified", "rejected") or exchange is None or exchange.is_terminal:
            return
        code = result.get("error_code")
        await self._tell(exchange.exchange_id, code if isinstance(code, str) else None, item)

    async def _on_error(self, item: Received) -> None:
        content = item.content
        assert isinstance(content, ErrorContent)
        if item.exchange is None or content.exchange_id is None:
            return
        try:
            pending = self._requests.get(content.exchange_id).pending
        except UnknownExchange:
            return
        result = VerificationResult(
            exchange_id=ExchangeId(content.exchange_id),
            verified=False,
            error_code=content.code,
            message=content.message,
            refused=True,
        )
        self._audit.append(
            kind=EntryKind.RESPONSE,
            exchange_id=pending.exchange_id,
            now=item.now,
            outcome=VerificationOutcome.rejected(content.code),
            details=request_details(pending) | {"remote_error": content.code},
        )
        self._settle(result, "rejected", item.now)
        self._announce(pending.exchange_id)

    def _on_refused(self, refused: Refused) -> None:
        """Audit a presentation response the runtime refused (its answer is already out)."""
        if refused.protocol_type != _RESPONSE_TYPE:
            return
        stored = self._request_of(refused)
        if refused.handler_ran and (stored is None or stored.outcome is not None):
            return  # the handler recorded its own verdict
        self._record_refused(refused, stored)
        exchange = self.runtime.exchanges.get(refused.exchange_id or "")
        if stored is None or stored.outcome is not None or exchange is None:
            return
        if exchange.is_terminal:
            # The refusal ended the exchange (e.g. an unencrypted answer): so does the request.
            if exchange.state is State.EXPIRED:
                self._settle_expired(stored.pending)
            else:
                self._reject_unjudged(stored.pending, refused.code, refused.message, refused.now)
            self._announce(stored.pending.exchange_id)

    def _record_refused(self, refused: Refused, stored: StoredRequest | None) -> None:
        """The refusal's audit entry, within the sender's quota (beyond it: counted)."""
        self._record_suppressed(refused.now)
        if not self._refusals.admit(refused.sender, now=refused.now):
            return
        details = received_details(refused)
        if stored is not None:
            details = request_details(stored.pending) | details
        self._audit.append(
            kind=EntryKind.RESPONSE,
            exchange_id=refused.exchange_id or "",
            now=refused.now,
            outcome=VerificationOutcome.rejected(refused.code),
            details=details,
        )

    def _record_suppressed(self, now: int) -> None:
        """One entry per ended window in which a sender's refusals were only counted."""
        for window in self._refusals.ended_windows(now=now):
            # Recorded first, then forgotten: a crash in between repeats the entry
            # (same sender and window) rather than losing the count.
            self._audit.append(
                kind=EntryKind.RESPONSE,
                exchange_id="",
                now=now,
                details={
                    "refused_by": "quota",
                    "sender": window.sender,
                    "window_start": str(window.window_start),
                    "window_end": str(window.window_end),
                    "recorded": str(window.recorded),
                    "suppressed": str(window.suppressed),
                },
            )
            self._refusals.forget(window)

    async def purge(self) -> None:
        """Record ended quota windows and drop what retention allows (also run every
        ``purge_interval`` seconds by the service)."""
        config, now = self.config, self.runtime.now()
        self._record_suppressed(now)
        self._refusals.purge(now=now)
        self._nonces.purge(now=now, grace=config.nonce_retention_seconds)
        self._requests.purge(now=now, retention=config.request_retention_seconds)

    def _request_of(self, refused: Refused) -> StoredRequest | None:
        """Our request the refused answer names, if its sender is the citizen we asked."""
        if refused.exchange_id is None:
            return None
        try:
            stored = self._requests.get(refused.exchange_id)
        except UnknownExchange:
            return None
        return stored if stored.pending.citizen == refused.sender else None


def received_details(refused: Refused) -> dict[str, str]:
    """Audit details of a refused event: who sent it, and a digest of what (bounded)."""
    raw = refused.raw_content.encode("utf-8")
    return {
        "refused_by": "handler" if refused.handler_ran else "runtime",
        "sender": refused.sender,
        "event_id": refused.event_id,
        "received_sha256": hashlib.sha256(raw).hexdigest(),
        "received_bytes": str(len(raw)),
        # A character cut in two at the end is dropped, so the prefix stays text.
        "received_prefix": raw[:MAX_RECORDED_PREFIX].decode("utf-8", errors="ignore"),
    }
