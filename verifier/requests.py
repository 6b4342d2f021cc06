"""Presentation requests: build them, refuse over-asking, and remember the open ones.

:func:`prepare_request` turns a DCQL query and a registered purpose into a
``presentation.request`` content: it first checks the verifier's own trust-list
registration (:meth:`~onceonly.trust.TrustList.may_request_query`), so the
verifier never sends a query a wallet would have to refuse, then takes a fresh
single-use nonce from the :class:`~verifier.nonce_store.NonceStore` (bound to the
exchange, the audience and the expiry) and writes the bilingual body with the
claims' human labels from the shipped credential types.

:class:`RequestStore` keeps each open request (who was asked, what, with which
nonce, until when) and its final result, in SQLite or PostgreSQL, so a response
is checked against the query *we* sent even after a restart or by another
verifier process.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from onceonly.credential_types import get_type
from onceonly.errors import ConfigError, MalformedInput, StoreError, UnknownExchange
from onceonly.jose import b64url_encode, json_dumps_compact
from onceonly.protocol import LocalizedText, PresentationRequest, Purpose
from onceonly.protocol.bodies import build_presentation_request
from onceonly.query import DcqlQuery, parse_query
from onceonly.sdjwt import format_path
from onceonly.sql import Schema, SqlStore
from onceonly.trust import TrustList
from onceonly.types import ExchangeId, UserId
from verifier.nonce_store import NonceStore

EXCHANGE_ID_BYTES: Final = 18
"""144 random bits per exchange id (24 base64url characters)."""

DEFAULT_REQUEST_TTL: Final = 15 * 60
MAX_REQUEST_TTL: Final = 7 * 24 * 3600


def new_exchange_id(random_bytes: Callable[[int], bytes] = secrets.token_bytes) -> ExchangeId:
    """A fresh, unguessable exchange id."""
    return ExchangeId("vx_" + b64url_encode(random_bytes(EXCHANGE_ID_BYTES)))


def claim_labels(query: DcqlQuery) -> list[LocalizedText]:
    """Human names of every claim the query asks for, in query order, without repeats.

    Labels come from the credential type metadata of the first acceptable ``vct``
    the project ships; other types (or unlabelled paths) show the dotted path.
    A credential query without claims is listed by the credential's name.
    """
    labels: list[LocalizedText] = []
    for credential in query.credentials:
        vct = credential.meta.vct_values[0]
        try:
            ctype = get_type(vct)
        except ConfigError:
            ctype = None
        if not credential.claims:
            name = (ctype.name_de, ctype.name_en) if ctype else (vct, vct)
            labels.append(LocalizedText(de=name[0], en=name[1]))
            continue
        for claim in credential.claims:
            path = tuple(claim.path)
            if ctype is not None:
                label = LocalizedText(de=ctype.label(path, "de"), en=ctype.label(path, "en"))
            else:
                label = LocalizedText(de=format_path(path), en=format_path(path))
            if label not in labels:
                labels.append(label)
    return labels


@dataclass(frozen=True)
class PendingRequest:
    """A presentation request the verifier sent and has not settled yet.

    Attributes:
        exchange_id: The exchange.
        citizen: The Matrix user asked.
        verifier_id: Our trust-list id (the KB-JWT ``aud`` we require).
        nonce: The single-use nonce we issued for it.
        query: The query we sent.
        purpose: The registered purpose code.
        created_at: When the request was made (epoch seconds).
        expires_at: First second at which a response is refused.
    """

    exchange_id: ExchangeId
    citizen: UserId
    verifier_id: str
    nonce: str
    query: DcqlQuery
    purpose: str
    created_at: int
    expires_at: int

    def query_json(self) -> str:
        """The query as compact JSON (as stored and audited)."""
        return json_dumps_compact(self.query.to_json_dict())


@dataclass(frozen=True)
class PreparedRequest:
    """What :func:`prepare_request` produced: the content to send and what to remember."""

    content: PresentationRequest
    pending: PendingRequest


def prepare_request(
    *,
    trust_list: TrustList,
    verifier_id: str,
    citizen: UserId,
    query: DcqlQuery,
    purpose: str,
    nonces: NonceStore,
    now: int,
    ttl: int = DEFAULT_REQUEST_TTL,
    exchange_id: ExchangeId | None = None,
) -> PreparedRequest:
    """Build a ``presentation.request`` for ``citizen`` and issue its nonce.

    Args:
        trust_list: The current (verified) trust list.
        verifier_id: Our agency id on the trust list.
        citizen: Who is asked.
        query: What to ask for.
        purpose: A purpose code registered for us, covering every requested claim.
        nonces: Where the single-use nonce is recorded.
        now: Current time, epoch seconds.
        ttl: Seconds until the request (and its nonce) expires.
        exchange_id: The exchange id (a fresh random one by default).

    Raises:
        NotAuthorizedToRequest: our registration does not allow this query or purpose
            (nothing is recorded).
        ValueError: ``ttl`` is out of range.
        StoreError: the nonce store failed.
    """
    if not 0 < ttl <= MAX_REQUEST_TTL:
        raise ValueError(f"request ttl must be within 1..{MAX_REQUEST_TTL} seconds")
    registered = trust_list.may_request_query(verifier_id, query, purpose)
    agency = trust_list.agency(verifier_id)
    assert agency is not None  # may_request_query found it
    exchange = exchange_id or new_exchange_id()
    issued = nonces.issue(exchange_id=exchange, audience=verifier_id, now=now, ttl=ttl)
    content = build_presentation_request(
        exchange_id=exchange,
        verifier_id=verifier_id,
        verifier_name=LocalizedText(de=agency.name.de, en=agency.name.en),
        query=query,
        claim_labels=claim_labels(query),
        purpose=Purpose(
            code=registered.code,
            text=LocalizedText(de=registered.text.de, en=registered.text.en),
        ),
        nonce=issued.nonce,
        expires_at=issued.expires_at,
    )
    pending = PendingRequest(
        exchange_id=exchange,
        citizen=citizen,
        verifier_id=verifier_id,
        nonce=issued.nonce,
        query=query,
        purpose=registered.code,
        created_at=now,
        expires_at=issued.expires_at,
    )
    return PreparedRequest(content=content, pending=pending)


@dataclass(frozen=True)
class StoredRequest:
    """A request as stored, with where it was sent and how it ended.

    Attributes:
        pending: The request.
        room_id: The mailbox it was sent to (once sent).
        event_id: The request event (once sent).
        outcome: ``None`` while open; then ``verified``, ``rejected``, ``refused`` or
            ``expired``.
        result: The result as JSON (verified claims or the error), once settled.
        settled_at: When it was settled.
    """

    pending: PendingRequest
    room_id: str | None
    event_id: str | None
    outcome: str | None
    result: dict[str, Any] | None
    settled_at: int | None


_SCHEMA: Final = Schema(
    "verifier requests",
    1,
    (
        """
    CREATE TABLE IF NOT EXISTS verifier_requests (
        exchange_id TEXT PRIMARY KEY,
        citizen TEXT NOT NULL,
        verifier_id TEXT NOT NULL,
        nonce TEXT NOT NULL,
        query TEXT NOT NULL,
        purpose TEXT NOT NULL,
        created_at BIGINT NOT NULL,
        expires_at BIGINT NOT NULL,
        room_id TEXT,
        event_id TEXT,
        outcome TEXT,
        result TEXT,
        settled_at BIGINT
    )
    """,
    ),
)
_SELECT: Final = (
    "SELECT exchange_id, citizen, verifier_id, nonce, query, purpose, created_at, expires_at,"
    " room_id, event_id, outcome, result, settled_at FROM verifier_requests"
)


class RequestStore(SqlStore):
    """Open and settled presentation requests. Create with :meth:`open`."""

    SCHEMA = _SCHEMA

    def add(self, pending: PendingRequest) -> None:
        """Record a new request.

        Raises:
            StoreError: the database failed or the exchange id exists already.
        """
        self._db.execute(
            "INSERT INTO verifier_requests (exchange_id, citizen, verifier_id, nonce, query,"
            " purpose, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                pending.exchange_id,
                pending.citizen,
                pending.verifier_id,
                pending.nonce,
                pending.query_json(),
                pending.purpose,
                pending.created_at,
                pending.expires_at,
            ),
        )

    def mark_sent(self, exchange_id: str, *, room_id: str, event_id: str) -> None:
        """Remember where the request went."""
        self._db.execute(
            "UPDATE verifier_requests SET room_id = ?, event_id = ? WHERE exchange_id = ?",
            (room_id, event_id, exchange_id),
        )

    def settle(self, exchange_id: str, *, outcome: str, result: dict[str, Any], now: int) -> bool:
        """Record how the request ended; only the first settlement counts.

        Returns:
            Whether this call settled it (``False``: it was settled already).
        """
        rows = self._db.execute(
            "UPDATE verifier_requests SET outcome = ?, result = ?, settled_at = ?"
            " WHERE exchange_id = ? AND outcome IS NULL RETURNING exchange_id",
            (outcome, json_dumps_compact(result), now, exchange_id),
        )
        return bool(rows)

    def get(self, exchange_id: str) -> StoredRequest:
        """The request with this exchange id.

        Raises:
            UnknownExchange: no such request (e.g. an event naming a foreign exchange).
            StoreError: the database failed or holds an unreadable row.
        """
        if not isinstance(exchange_id, str) or len(exchange_id) > 128:
            raise UnknownExchange("no presentation request with this exchange id")
        rows = self._db.execute(_SELECT + " WHERE exchange_id = ?", (exchange_id,))
        if not rows:
            raise UnknownExchange(
                "no presentation request with this exchange id",
                detail={"exchange_id": exchange_id},
            )
        return _row_to_request(rows[0])

    def purge(self, *, now: int, retention: int) -> int:
        """Delete requests whose expiry passed more than ``retention`` seconds ago.

        Any answer to such a request is late anyway (and its nonce is past its
        expiry, so it cannot be accepted whatever the nonce store still holds): an
        answer that comes later is refused as naming no request of ours. The audit
        log keeps the request and its verdict.

        Returns:
            The number of requests deleted.

        Raises:
            ValueError: ``retention`` is negative.
            StoreError: the database failed.
        """
        if retention < 0:
            raise ValueError("request retention must be >= 0")
        rows = self._db.execute(
            "DELETE FROM verifier_requests WHERE expires_at <= ? RETURNING exchange_id",
            (now - retention,),
        )
        return len(rows)

    def open_requests(self, *, limit: int = 1000) -> list[StoredRequest]:
        """Requests not settled yet, oldest first."""
        rows = self._db.execute(
            _SELECT + " WHERE outcome IS NULL ORDER BY created_at LIMIT ?",
            (limit,),
        )
        return [_row_to_request(row) for row in rows]


def _row_to_request(row: tuple[Any, ...]) -> StoredRequest:
    (exchange, citizen, verifier_id, nonce, query, purpose, created, expires) = row[:8]
    room_id, event_id, outcome, result, settled_at = row[8:]
    try:
        pending = PendingRequest(
            exchange_id=ExchangeId(exchange),
            citizen=UserId(citizen),
            verifier_id=verifier_id,
            nonce=nonce,
            query=parse_query(query),
            purpose=purpose,
            created_at=int(created),
            expires_at=int(expires),
        )
        parsed_result = None if result is None else json.loads(result)
    except (MalformedInput, ValueError) as exc:
        raise StoreError(f"unreadable stored request {exchange!r}") from exc
    return StoredRequest(
        pending=pending,
        room_id=room_id,
        event_id=event_id,
        outcome=outcome,
        result=parsed_result,
        settled_at=None if settled_at is None else int(settled_at),
    )
