"""The wallet asks its own credentials' status lists before presenting one.

An issuer that revokes a credential flips its entry in a public Token Status
List; a wallet that presented the old credential anyway would only collect a
``revoked`` verdict (and disclose claims for nothing). So before answering a
presentation request the wallet checks every credential that could answer it,
through the same :class:`~onceonly.status_cache.StatusCache` verifiers use (the
token verified with the issuer's key from the trust list, kept for its ``ttl``
and never longer than a bounded maximum age), and records the verdict in the
store (:meth:`~wallet.store.WalletStore.record_status`), where
:func:`wallet.present.usable_holdings` and ``onceonly wallet list`` read it.

What happens when the status list cannot be read (the issuer's room is
unreachable, the token does not verify): the credential is presented anyway.
The verifier checks the status itself and refuses a revoked credential, so
presenting one whose status the wallet could not learn discloses no more than
asking would; refusing instead would make every outage of one issuer's room
block every answer. A credential the wallet *knows* is revoked (from this or
any earlier check) is never presented: ``revoked`` is final in the store. A
``suspended`` one is left out until a later check says ``valid`` again.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final, Literal

from onceonly.errors import OnceOnlyError, Revoked, StoreError, Suspended
from onceonly.protocol.events import PresentationRequest
from onceonly.status_cache import StatusCache, StatusFetcher, status_key_resolver
from onceonly.status_list import check_status, status_reference_from_claims
from onceonly.trust import TrustList
from wallet.present import Holding, current_holdings
from wallet.records import CredentialStatusRecord, KnownStatus
from wallet.store import WalletStore

WALLET_FETCH_TIMEOUT_SECONDS: Final = 5.0
"""A wallet answers a person waiting at a desk: give up on a status room sooner."""

WALLET_MAX_AGE_SECONDS: Final = 900
"""Never rely on a status list fetched longer ago than this, whatever its ``ttl``."""

CheckedState = KnownStatus | Literal["unknown", "unchecked"]


@dataclass(frozen=True)
class StatusOutcome:
    """What one check found.

    Attributes:
        credential_id: The credential.
        state: ``valid``, ``revoked`` or ``suspended`` (recorded in the store);
            ``unknown`` when the list could not be read or used (``cause`` says
            why); ``unchecked`` for a credential without a ``status`` claim.
        cause: The error code behind ``unknown``.
    """

    credential_id: str
    state: CheckedState
    cause: str | None = None


def wallet_status_cache(fetch: StatusFetcher) -> StatusCache:
    """A status cache with the wallet's bounds (short fetch timeout, bounded age)."""
    return StatusCache(
        fetch, fetch_timeout=WALLET_FETCH_TIMEOUT_SECONDS, max_age=WALLET_MAX_AGE_SECONDS
    )


class CredentialStatusChecker:
    """Checks the wallet's credentials against their issuers' status lists.

    Args:
        cache: Where verified status list tokens come from (one per process, shared
            by every request so a list is fetched once per ``ttl``).
    """

    def __init__(self, cache: StatusCache) -> None:
        self._cache = cache

    async def check(
        self, store: WalletStore, holdings: Iterable[Holding], *, trust: TrustList, now: int
    ) -> list[StatusOutcome]:
        """Check ``holdings`` (concurrently) and record every verdict in ``store``.

        Never raises for an unreachable or unusable status list: that credential's
        outcome is ``unknown``. Credentials already known revoked are not fetched again.
        """
        holdings = list(holdings)
        known = store.credential_statuses()
        revoked = {cid for cid, record in known.items() if record.state == "revoked"}
        todo = [holding for holding in holdings if holding.stored.credential_id not in revoked]
        found = await asyncio.gather(*(self._one(h, trust=trust, now=now) for h in todo))
        by_id = {outcome.credential_id: outcome for outcome in found}
        for holding, outcome in zip(todo, found, strict=True):
            if outcome.state in ("valid", "revoked", "suspended"):
                _record(store, holding, outcome.state, now)
        return [
            by_id.get(holding.stored.credential_id)
            or StatusOutcome(holding.stored.credential_id, "revoked")
            for holding in holdings
        ]

    async def check_for_request(
        self,
        store: WalletStore,
        request: PresentationRequest,
        *,
        trust: TrustList,
        now: int,
        cache: dict[str, Holding] | None = None,
    ) -> list[StatusOutcome]:
        """Check the credentials whose type the request's query accepts (never raises).

        Only those: the lists of unrelated credentials need not be fetched now.
        """
        wanted = {vct for query in request.query.credentials for vct in query.meta.vct_values}
        try:
            holdings = [
                holding
                for holding in current_holdings(store, trust=trust, now=now, cache=cache)
                if holding.held.vct in wanted
            ]
            return await self.check(store, holdings, trust=trust, now=now)
        except StoreError:
            # An unreadable store: answering refuses on the same error, with a response.
            return []

    async def recheck_presented(
        self,
        store: WalletStore,
        exchange_id: str,
        *,
        trust: TrustList,
        now: int,
        cache: dict[str, Holding] | None = None,
    ) -> list[StatusOutcome]:
        """Fetch the lists again for the credentials presented in ``exchange_id`` (never raises).

        Called when a verifier rejected that presentation as revoked or suspended:
        the wallet's cached list may predate the revocation. The verifier's word is
        only the reason to look again; what is recorded comes from the signed list.
        """
        try:
            presented = {
                entry.credential_id
                for entry in store.disclosure_history()
                if entry.exchange_id == exchange_id and entry.outcome == "disclosed"
            }
            holdings = [
                holding
                for holding in current_holdings(store, trust=trust, now=now, cache=cache)
                if holding.stored.credential_id in presented
            ]
            for holding in holdings:
                with contextlib.suppress(OnceOnlyError):
                    self._cache.forget(status_reference_from_claims(holding.sd_jwt.payload).uri)
            return await self.check(store, holdings, trust=trust, now=now)
        except StoreError:
            return []

    async def _one(self, holding: Holding, *, trust: TrustList, now: int) -> StatusOutcome:
        credential_id = holding.stored.credential_id
        try:
            reference = status_reference_from_claims(holding.sd_jwt.payload)
        except OnceOnlyError:
            return StatusOutcome(credential_id, "unchecked")
        issuer = trust.agency(holding.stored.issuer)
        if issuer is None:
            return StatusOutcome(credential_id, "unknown", "untrusted_issuer")
        try:
            cached = await self._cache.get(
                reference.uri,
                signer=issuer,
                key=status_key_resolver(trust, issuer.id),
                trust_version=f"{trust.iss}#{trust.seq}",
                now=now,
            )
            check_status(reference, cached.verified, issuer_key=cached.key, now=now)
        except Suspended:  # before Revoked: a subclass of it
            return StatusOutcome(credential_id, "suspended")
        except Revoked:
            return StatusOutcome(credential_id, "revoked")
        except OnceOnlyError as exc:
            cause = exc.detail.get("cause") if isinstance(exc.detail.get("cause"), str) else None
            return StatusOutcome(credential_id, "unknown", cause or exc.code)
        return StatusOutcome(credential_id, "valid")


def _record(store: WalletStore, holding: Holding, state: KnownStatus, now: int) -> None:
    reference = status_reference_from_claims(holding.sd_jwt.payload)
    record = CredentialStatusRecord(
        credential_id=holding.stored.credential_id,
        state=state,
        checked_at=now,
        list_uri=reference.uri,
    )
    # Deleted meanwhile (the citizen's other terminal): nothing left to mark.
    with contextlib.suppress(StoreError):
        store.record_status(record)
