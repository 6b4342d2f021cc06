"""How the verifier service reacts to the citizen's answers (a mixin of the service).

* ``presentation.response`` with presentations: verified by
  :class:`~verifier.verification.Verifier`, settled, and answered with
  ``exchange.status`` ``verified`` or ``rejected`` (the error code as ``reason_code``);
  a ``vp_token_file`` is downloaded, decrypted and held to the inline bounds first;
* a refusal: recorded and settled as refused;
* an answer refused before any verdict (e.g. an unreadable file): recorded and
  settled as rejected, while the runtime tells the citizen with an ``error``;
* an ``error`` from the citizen in one of our exchanges: recorded and settled;
* a handler re-run after a restart: the stored verdict stands and is told again
  if the citizen has not been told yet (the nonce is used up, so verifying again
  would turn a verified answer into a replay).
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from onceonly.errors import MalformedInput, OnceOnlyError, UnknownExchange, UntrustedParty
from onceonly.matrix import attachments
from onceonly.matrix.accounts import load_credentials
from onceonly.protocol import ErrorContent, Outcome, PresentationResponse
from onceonly.protocol.bodies import build_exchange_status
from onceonly.service import ProtocolService, Received
from onceonly.types import ExchangeId, RoomId
from verifier.audit_format import EntryKind, VerificationOutcome
from verifier.audit_log import AuditLog
from verifier.nonce_store import NonceStore
from verifier.requests import PendingRequest, RequestStore
from verifier.verification import VerificationResult, Verifier, request_details


class ResponseHandlers:
    """The response side of :class:`~verifier.service.VerifierService`."""

    if TYPE_CHECKING:
        # Provided by VerifierService.
        _data_dir: Path
        _requests: RequestStore
        _nonces: NonceStore
        _audit: AuditLog
        _verifier: Verifier

        @property
        def runtime(self) -> ProtocolService: ...

        def _settle(self, result: VerificationResult, outcome: str, now: int) -> None: ...

        def _announce(self, exchange_id: str) -> None: ...

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
            self._reject_unjudged(stored.pending, exc, item.now)
            raise
        finally:
            self._announce(content.exchange_id)

    def _reject_unjudged(self, pending: PendingRequest, error: OnceOnlyError, now: int) -> None:
        if self._requests.get(pending.exchange_id).outcome is not None:
            return
        with contextlib.suppress(OnceOnlyError):  # no later answer may use the nonce
            self._nonces.consume(pending.nonce, now=now, exchange_id=pending.exchange_id)
        entry = self._audit.append(
            kind=EntryKind.VERIFICATION,
            exchange_id=pending.exchange_id,
            now=now,
            outcome=VerificationOutcome.rejected(error.code),
            details=request_details(pending),
        )
        result = VerificationResult(
            exchange_id=pending.exchange_id,
            verified=False,
            error_code=error.code,
            message=error.message,
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
