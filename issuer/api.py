"""The Python API an agency's own IT calls: issue to a citizen, offer, revoke, report.

A credential is always bound to a key the citizen's wallet holds, so "issue to
``@erika:example``" is an offer the wallet answers with a key proof; the API
waits for that exchange to end::

    async with IssuerApi.running(config_path, trust_list) as api:
        record = await api.issue_to("@erika:example", RESIDENCE_VCT)
        await api.revoke(credential_id=record.credential_id)

Every failure is a typed :class:`~onceonly.errors.OnceOnlyError`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from issuer.config import load_config
from issuer.issuance_log import IssuanceRecord
from issuer.service import IssuerService
from onceonly.errors import ExchangeError
from onceonly.protocol import LocalizedText, State
from onceonly.trust import TrustList
from onceonly.types import UserId, Vct

DEFAULT_ISSUE_TIMEOUT = 600.0
"""Seconds :meth:`IssuerApi.issue_to` waits for the citizen's wallet to answer."""


class IssuerApi:
    """Calls into a running :class:`~issuer.service.IssuerService`.

    Args:
        service: A started issuer service.
    """

    def __init__(self, service: IssuerService) -> None:
        self.service = service

    @classmethod
    @asynccontextmanager
    async def running(cls, config_path: Path, trust_list: TrustList) -> AsyncIterator[IssuerApi]:
        """Start the agency of ``config_path`` for the block and stop it afterwards.

        Raises:
            ConfigError, StoreError, AccountError, TransportError: it cannot start.
        """
        async with IssuerService(load_config(config_path), trust_list) as service:
            yield cls(service)

    async def offer(
        self,
        user_id: str,
        vct: str,
        *,
        reason_code: str = "available",
        reason: LocalizedText | None = None,
    ) -> str:
        """Offer ``vct`` to a Matrix account bound to a register person; return the exchange id.

        Raises:
            IdentityNotBound: the account is bound to nobody in the register.
            UnsupportedCredentialType: the agency does not issue ``vct``.
            TransportError: the offer could not be sent.
        """
        offer = await self.service.offer(
            UserId(user_id), Vct(vct), reason_code=reason_code, reason=reason
        )
        return offer.content.exchange_id

    async def issue_to(
        self, user_id: str, vct: str, *, timeout: float = DEFAULT_ISSUE_TIMEOUT
    ) -> IssuanceRecord:
        """Offer ``vct`` to ``user_id`` and wait until the wallet's request was answered.

        Returns:
            The issuance record of the delivered credential.

        Raises:
            IdentityNotBound, UnsupportedCredentialType, TransportError: see :meth:`offer`.
            ExchangeTimeout: the wallet did not answer within ``timeout``.
            ExchangeError: the exchange ended otherwise (declined, refused, expired);
                ``detail`` names the state and, when known, the reason.
        """
        exchange_id = await self.offer(user_id, vct)
        exchange = await self.service.runtime.wait_for(
            exchange_id, timeout, states={State.ISSUED, State.REJECTED, State.EXPIRED}
        )
        record = self.service.issued_in.get(exchange_id)
        if exchange.state is not State.ISSUED or record is None:
            raise ExchangeError(
                "the citizen's wallet did not obtain the credential",
                detail={"exchange_id": exchange_id, "state": exchange.state.value},
            )
        return record

    async def revoke(
        self,
        *,
        credential_id: str | None = None,
        person_id: str | None = None,
        vct: str | None = None,
    ) -> list[IssuanceRecord]:
        """Revoke one credential or a person's credentials (of one type) and republish.

        With the homeserver unreachable the revocation is still recorded; the
        publication stays pending (``status()["publication_pending"]``) and the
        service's maintenance round publishes it.
        """
        return await self.service.revoke(credential_id=credential_id, person_id=person_id, vct=vct)

    async def send_pending_offers(self) -> int:
        """Offer credentials for the register's pending life events; return how many went out."""
        return len(await self.service.send_pending_offers())

    def status(self) -> dict[str, Any]:
        """What the agency has issued and published (no personal data)."""
        stores = self.service.stores
        return {
            "agency_id": self.service.config.agency_id,
            "issued_by_vct": dict(stores.log.count_by_vct()),
            "status_lists": stores.registry.list_uris(),
            "pending_life_events": len(stores.register.pending_life_events()),
            "publication_pending": stores.publication.pending,
        }
