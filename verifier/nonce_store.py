"""Single-use nonces for presentation requests, durable and shared between verifier processes.

The verifier puts a fresh nonce in every presentation request; the wallet's
Key Binding JWT must echo it. A nonce is bound to one exchange, one audience
(the verifier's identifier) and an expiry, and it can be consumed exactly once:
a second presentation carrying it is a replay.

"Exactly once" holds across restarts (the state is in a SQLite file) and across
several verifier processes on one PostgreSQL database: consumption is a single
conditional ``UPDATE ... WHERE consumed_at IS NULL ... RETURNING``, so of any
number of concurrent attempts the database lets exactly one change the row.

Times are integer seconds since the epoch, passed in by the caller (``now``).
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, Self

from onceonly.errors import (
    AudienceMismatch,
    InputTooLarge,
    MalformedInput,
    NonceMismatch,
    ReplayDetected,
    RequestExpired,
)
from onceonly.jose import b64url_encode
from onceonly.sql import Database, Schema, SqlStore, open_schema
from onceonly.types import ExchangeId

NONCE_BYTES: Final = 32
"""256 random bits per nonce (the minimum we accept is 128)."""

MAX_NONCE_CHARS: Final = 256
"""Longer nonces are rejected before touching the database: they can't be ours."""

_SCHEMA: Final = Schema(
    "verifier nonce store",
    1,
    (
        """
    CREATE TABLE IF NOT EXISTS verifier_nonces (
        nonce TEXT PRIMARY KEY,
        exchange_id TEXT NOT NULL,
        audience TEXT NOT NULL,
        issued_at BIGINT NOT NULL,
        expires_at BIGINT NOT NULL,
        consumed_at BIGINT
    )
    """,
        "CREATE INDEX IF NOT EXISTS verifier_nonces_expiry ON verifier_nonces (expires_at)",
    ),
)


@dataclass(frozen=True)
class IssuedNonce:
    """A nonce and what it is bound to.

    Attributes:
        nonce: The nonce, unpadded base64url.
        exchange_id: The exchange whose presentation request carries it.
        audience: The verifier identifier the presentation must be addressed to.
        issued_at: When it was issued (epoch seconds).
        expires_at: First second at which it is no longer accepted.
    """

    nonce: str
    exchange_id: ExchangeId
    audience: str
    issued_at: int
    expires_at: int


class NonceStore(SqlStore):
    """Issues nonces and consumes each one at most once.

    Create with :meth:`open`; one instance per process (or thread), all sharing one
    database. The same interface works on SQLite and PostgreSQL.
    """

    SCHEMA = _SCHEMA

    def __init__(
        self, database: Database, random_bytes: Callable[[int], bytes] = secrets.token_bytes
    ) -> None:
        super().__init__(database)
        self._random_bytes = random_bytes

    @classmethod
    def open(
        cls,
        location: str | os.PathLike[str],
        *,
        random_bytes: Callable[[int], bytes] = secrets.token_bytes,
    ) -> Self:
        """Open (and create if needed) the nonce store.

        Args:
            location: A SQLite file path or a ``postgresql://`` DSN.
            random_bytes: Source of randomness for new nonces (the OS CSPRNG by default;
                tests may pass a deterministic one).

        Raises:
            StoreError: the database cannot be opened or has another schema version.
        """
        return cls(open_schema(location, _SCHEMA), random_bytes)

    def issue(self, *, exchange_id: ExchangeId, audience: str, now: int, ttl: int) -> IssuedNonce:
        """Create and record a fresh nonce for one exchange.

        Args:
            exchange_id: The exchange the nonce belongs to.
            audience: The verifier identifier the wallet must address (``aud``).
            now: Current time, epoch seconds.
            ttl: Seconds the nonce stays valid (> 0).

        Raises:
            ValueError: ``ttl`` is not positive or the random source is too short.
            StoreError: the database failed.
        """
        if ttl <= 0:
            raise ValueError("nonce ttl must be positive")
        raw = self._random_bytes(NONCE_BYTES)
        if len(raw) < NONCE_BYTES:
            raise ValueError(f"random source returned {len(raw)} bytes, need {NONCE_BYTES}")
        issued = IssuedNonce(
            nonce=b64url_encode(raw),
            exchange_id=exchange_id,
            audience=audience,
            issued_at=now,
            expires_at=now + ttl,
        )
        self._db.execute(
            "INSERT INTO verifier_nonces (nonce, exchange_id, audience, issued_at, expires_at)"
            " VALUES (?, ?, ?, ?, ?)",
            (issued.nonce, exchange_id, audience, issued.issued_at, issued.expires_at),
        )
        return issued

    def consume(
        self,
        nonce: str,
        *,
        now: int,
        exchange_id: ExchangeId | None = None,
        audience: str | None = None,
    ) -> IssuedNonce:
        """Mark ``nonce`` used; succeeds for exactly one caller, ever.

        Args:
            nonce: The nonce from the presentation (untrusted input).
            now: Current time, epoch seconds.
            exchange_id: When given, the nonce must belong to this exchange.
            audience: When given, the nonce must have been issued for this audience.

        Returns:
            What the nonce was bound to.

        Raises:
            MalformedInput: ``nonce`` is not a non-empty string.
            InputTooLarge: ``nonce`` is longer than any nonce we issue.
            NonceMismatch: the nonce was never issued here, or belongs to another exchange.
            AudienceMismatch: the nonce was issued for another audience.
            RequestExpired: the nonce's expiry has passed.
            ReplayDetected: the nonce was already consumed.
            StoreError: the database failed.
        """
        if not isinstance(nonce, str) or not nonce:
            raise MalformedInput("nonce must be a non-empty string")
        if len(nonce) > MAX_NONCE_CHARS:
            raise InputTooLarge(f"nonce longer than {MAX_NONCE_CHARS} characters")
        # One statement decides: only an unconsumed, unexpired, matching row changes,
        # and the database serialises concurrent updates of the same row.
        statement = (
            "UPDATE verifier_nonces SET consumed_at = ?"
            " WHERE nonce = ? AND consumed_at IS NULL AND expires_at > ?"
        )
        params: list[object] = [now, nonce, now]
        if exchange_id is not None:
            statement += " AND exchange_id = ?"
            params.append(exchange_id)
        if audience is not None:
            statement += " AND audience = ?"
            params.append(audience)
        statement += " RETURNING exchange_id, audience, issued_at, expires_at"
        rows = self._db.execute(statement, params)
        if rows:
            bound_exchange, bound_audience, issued_at, expires_at = rows[0]
            return IssuedNonce(
                nonce=nonce,
                exchange_id=ExchangeId(bound_exchange),
                audience=bound_audience,
                issued_at=int(issued_at),
                expires_at=int(expires_at),
            )
        raise self._why_not_consumed(nonce, now=now, exchange_id=exchange_id, audience=audience)

    def _why_not_consumed(
        self, nonce: str, *, now: int, exchange_id: str | None, audience: str | None
    ) -> Exception:
        # Only explains a refusal the UPDATE already made; it never grants anything.
        rows = self._db.execute(
            "SELECT exchange_id, audience, expires_at, consumed_at"
            " FROM verifier_nonces WHERE nonce = ?",
            (nonce,),
        )
        if not rows:
            return NonceMismatch("nonce was not issued by this verifier")
        bound_exchange, bound_audience, expires_at, consumed_at = rows[0]
        if consumed_at is not None:
            return ReplayDetected("nonce was already used", detail={"exchange_id": bound_exchange})
        if now >= expires_at:
            return RequestExpired(
                "nonce has expired",
                detail={"exchange_id": bound_exchange, "expired_at": expires_at},
            )
        if exchange_id is not None and bound_exchange != exchange_id:
            return NonceMismatch(
                "nonce belongs to another exchange", detail={"exchange_id": exchange_id}
            )
        if audience is not None and bound_audience != audience:
            return AudienceMismatch("nonce was issued for another audience")
        # The row changed between the UPDATE and this SELECT only if it was consumed.
        return ReplayDetected("nonce was already used", detail={"exchange_id": bound_exchange})

    def purge(self, *, now: int, grace: int = 0) -> int:
        """Delete nonces that expired more than ``grace`` seconds before ``now``.

        Safe at any time: a purged nonce that comes back is unknown, which is
        still a rejection (:class:`NonceMismatch`).

        Returns:
            The number of nonces deleted.
        """
        rows = self._db.execute(
            "DELETE FROM verifier_nonces WHERE expires_at <= ? RETURNING nonce", (now - grace,)
        )
        return len(rows)
