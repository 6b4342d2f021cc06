"""The issuer's single-use nonces: offer nonces, wallet-chosen nonces, eID codes.

The :class:`NonceLedger` is the agency's record of every nonce a key proof may
carry (spec sections 6.2 and 13, "Replay"):

- **offer** nonces, sent in ``credential.offer`` (:mod:`issuer.offers`): bound to
  the exchange, the citizen's Matrix account, the register person and the ``vct``;
  the first request of that exchange consumes the offer, whatever its proof says;
- **wallet** nonces, chosen by the wallet when it asks without an offer:
  recorded as consumed once the request's signatures verified (a stranger's
  request stores nothing), so a second request with the same nonce within the
  proof's acceptance window is a replay;
- **eid** codes of the simulated eID check (:mod:`issuer.eid_check`), stored
  only as a hash.

"Exactly once" holds across processes on one PostgreSQL database: consumption
is one conditional ``UPDATE ... RETURNING`` (or an ``INSERT`` that a primary
key refuses the second time), so concurrent attempts cannot both succeed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

from onceonly.errors import (
    InputTooLarge,
    MalformedInput,
    NonceMismatch,
    ReplayDetected,
    RequestExpired,
    UnknownExchange,
)
from onceonly.sql import Schema, SqlStore
from onceonly.types import UserId, Vct

SCHEMA_VERSION: Final = 1
_STORE: Final = "issuer nonce ledger"
_MAX_NONCE_CHARS: Final = 128
_COLUMNS: Final = "nonce, exchange_id, matrix_user_id, person_id, vct, issued_at, expires_at"


@dataclass(frozen=True)
class OfferRecord:
    """An offer as the ledger keeps it (no claim values).

    Attributes:
        nonce: The challenge the request's key proof must carry.
        exchange_id: The offer's exchange.
        matrix_user_id: The account it was sent to; only it may answer.
        person_id: The register person it is for.
        vct: The credential type offered.
        issued_at: When it was made.
        expires_at: First second at which it is void.
    """

    nonce: str
    exchange_id: str
    matrix_user_id: UserId
    person_id: str
    vct: Vct
    issued_at: int
    expires_at: int


_SCHEMA: Final = Schema(
    _STORE,
    SCHEMA_VERSION,
    (
        "CREATE TABLE IF NOT EXISTS issuer_nonces ("
        " nonce TEXT PRIMARY KEY,"
        " kind TEXT NOT NULL,"
        " exchange_id TEXT UNIQUE,"
        " matrix_user_id TEXT,"
        " person_id TEXT,"
        " vct TEXT,"
        " issued_at BIGINT NOT NULL,"
        " expires_at BIGINT NOT NULL,"
        " consumed_at BIGINT)",
        "CREATE INDEX IF NOT EXISTS issuer_nonces_expiry ON issuer_nonces (expires_at)",
    ),
)


def _offer(row: Sequence[Any]) -> OfferRecord:
    nonce, exchange_id, user, person_id, vct, issued_at, expires_at = row
    return OfferRecord(
        nonce=str(nonce),
        exchange_id=str(exchange_id),
        matrix_user_id=UserId(str(user)),
        person_id=str(person_id),
        vct=Vct(str(vct)),
        issued_at=int(issued_at),
        expires_at=int(expires_at),
    )


def _check_nonce_text(nonce: str) -> None:
    if not isinstance(nonce, str) or not nonce:
        raise MalformedInput("nonce must be a non-empty string")
    if len(nonce) > _MAX_NONCE_CHARS:
        raise InputTooLarge(f"nonce longer than {_MAX_NONCE_CHARS} characters")


class NonceLedger(SqlStore):
    """Offer nonces, wallet nonces and eID codes, each usable once.

    Open with :meth:`open`; the constructor only stores the connection.
    """

    SCHEMA = _SCHEMA

    # --- offers --------------------------------------------------------------------

    def record_offer(self, offer: OfferRecord) -> None:
        """Remember an offer before it is sent.

        Raises:
            StoreError: the nonce or exchange id is already recorded, or the database failed.
        """
        with self._db.write() as tx:
            tx.execute(
                "INSERT INTO issuer_nonces (nonce, kind, exchange_id, matrix_user_id, person_id,"
                " vct, issued_at, expires_at) VALUES (?, 'offer', ?, ?, ?, ?, ?, ?)",
                (
                    offer.nonce,
                    offer.exchange_id,
                    offer.matrix_user_id,
                    offer.person_id,
                    offer.vct,
                    offer.issued_at,
                    offer.expires_at,
                ),
            )

    def offer(self, exchange_id: str) -> OfferRecord | None:
        """The offer of ``exchange_id``, consumed or not, if this agency made one."""
        with self._db.read() as tx:
            row = tx.execute(
                f"SELECT {_COLUMNS} FROM issuer_nonces"  # noqa: S608 - constant columns
                " WHERE exchange_id = ? AND kind = 'offer'",
                (exchange_id,),
            ).one()
        return None if row is None else _offer(row)

    def consume_offer(
        self, exchange_id: str, *, nonce: str, matrix_user_id: str, now: int
    ) -> OfferRecord:
        """Use up the offer of ``exchange_id`` for a request whose proof carries ``nonce``.

        The first request of the exchange consumes the offer even when its nonce
        is wrong: the exchange then ends in an error, and a retry would be a new
        guess at the same nonce.

        Raises:
            UnknownExchange: no offer has this exchange id, or it was made to another account.
            ReplayDetected: the offer was already answered.
            RequestExpired: the offer expired.
            NonceMismatch: the proof's nonce is not the offer's.
        """
        _check_nonce_text(nonce)
        with self._db.write() as tx:
            row = tx.execute(
                f"SELECT {_COLUMNS}, consumed_at FROM issuer_nonces"  # noqa: S608 - constant columns
                " WHERE exchange_id = ? AND kind = 'offer'",
                (exchange_id,),
                lock=True,
            ).one()
            if row is None or row[2] != matrix_user_id:
                raise UnknownExchange("no offer of this agency has this exchange id")
            offer, consumed_at = _offer(row[:-1]), row[-1]
            if consumed_at is not None:
                raise ReplayDetected("the offer was already answered")
            tx.execute(
                "UPDATE issuer_nonces SET consumed_at = ? WHERE nonce = ? AND consumed_at IS NULL",
                (now, offer.nonce),
            )
        if now >= offer.expires_at:
            raise RequestExpired("the offer has expired", detail={"expired_at": offer.expires_at})
        if nonce != offer.nonce:
            raise NonceMismatch("the key proof does not carry the offer's nonce")
        return offer

    # --- wallet-chosen nonces ------------------------------------------------------------

    def consume_wallet_nonce(
        self, nonce: str, *, matrix_user_id: str, now: int, window: int
    ) -> None:
        """Accept a wallet-chosen nonce once (a request without an offer).

        Args:
            nonce: The nonce from the key proof (untrusted).
            matrix_user_id: The requester.
            now: Current Unix time.
            window: How long the nonce must be remembered: the proof's acceptance
                window (a proof older than that is refused anyway).

        Raises:
            ReplayDetected: the nonce was seen before (from anyone, in any role).
        """
        _check_nonce_text(nonce)
        with self._db.write() as tx:
            row = tx.execute(
                "INSERT INTO issuer_nonces (nonce, kind, matrix_user_id, issued_at, expires_at,"
                " consumed_at) VALUES (?, 'wallet', ?, ?, ?, ?)"
                " ON CONFLICT (nonce) DO NOTHING RETURNING nonce",
                (nonce, matrix_user_id, now, now + window, now),
            ).one()
        if row is None:
            raise ReplayDetected("the key proof nonce was used before")

    # --- simulated eID codes ---------------------------------------------------------------

    def record_code(self, code_digest: str, *, person_id: str, now: int, ttl: int) -> None:
        """Store the digest of a one-time eID code for ``person_id`` (:mod:`issuer.eid_check`)."""
        with self._db.write() as tx:
            tx.execute(
                "INSERT INTO issuer_nonces (nonce, kind, person_id, issued_at, expires_at)"
                " VALUES (?, 'eid', ?, ?, ?)",
                (code_digest, person_id, now, now + ttl),
            )

    def consume_code(self, code_digest: str, *, now: int) -> str | None:
        """Use up a one-time eID code; its person, or ``None`` if unknown, used or expired."""
        with self._db.write() as tx:
            row = tx.execute(
                "UPDATE issuer_nonces SET consumed_at = ? WHERE nonce = ? AND kind = 'eid'"
                " AND consumed_at IS NULL AND expires_at > ? RETURNING person_id",
                (now, code_digest, now),
            ).one()
        return None if row is None else str(row[0])

    def void_codes(self, person_id: str, *, now: int) -> int:
        """Use up every outstanding eID code of ``person_id`` (after a wrong guess)."""
        with self._db.write() as tx:
            rows = tx.execute(
                "UPDATE issuer_nonces SET consumed_at = ? WHERE kind = 'eid' AND person_id = ?"
                " AND consumed_at IS NULL RETURNING nonce",
                (now, person_id),
            ).all()
        return len(rows)

    def purge(self, *, now: int, retention: int = 0) -> int:
        """Delete every entry that expired more than ``retention`` seconds before ``now``.

        Safe: an expired offer or code is refused anyway, and a wallet nonce
        outlives the window in which its proof could be accepted. The issuer
        service runs this on a schedule (``nonce_retention_seconds``).

        Returns:
            How many entries were deleted.
        """
        if retention < 0:
            raise ValueError("retention must not be negative")
        with self._db.write() as tx:
            rows = tx.execute(
                "DELETE FROM issuer_nonces WHERE expires_at <= ? RETURNING nonce",
                (now - retention,),
            ).all()
        return len(rows)

    def count(self) -> int:
        """How many entries the ledger holds (offers, wallet nonces and codes)."""
        with self._db.read() as tx:
            row = tx.execute("SELECT COUNT(*) FROM issuer_nonces").one()
        return 0 if row is None else int(row[0])
