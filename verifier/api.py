"""The verifier's Python API for an agency's own code.

::

    async with open_verifier(Path("verifier-data")) as verifier:
        result = await verifier.request_proof(
            UserId("@erika:gov.example"), query, "child_benefit_application", timeout=600
        )
        if result.verified:
            address = result.credentials["residence"][0].claims["address"]

The result carries the verified claims per credential query id, the issuer,
``vct``, disclosed paths and status checked of each credential, and the audit
entry that records the verdict; a failure has ``verified`` false and the stable
``error_code`` (the citizen has been told the same code).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from onceonly.query import DcqlQuery, parse_query
from onceonly.types import UserId
from verifier.service import VerifierService
from verifier.verification import VerificationResult


class VerifierApi:
    """Ask citizens for proofs through a started :class:`~verifier.service.VerifierService`."""

    def __init__(self, service: VerifierService) -> None:
        self._service = service

    @property
    def service(self) -> VerifierService:
        """The underlying service."""
        return self._service

    async def request_proof(
        self,
        user_id: UserId | str,
        query: DcqlQuery | Mapping[str, Any] | str,
        purpose: str,
        timeout: float,
        *,
        ttl: int | None = None,
    ) -> VerificationResult:
        """Send a presentation request and wait for its verified result.

        Args:
            user_id: The citizen's Matrix user id.
            query: A DCQL query (model, JSON object or JSON text).
            purpose: A purpose code registered for us on the trust list.
            timeout: Seconds to wait for the answer.
            ttl: Seconds the request stays answerable (the configured default otherwise).

        Returns:
            The result; ``verified`` false with an ``error_code`` when the answer
            failed a check, was refused, or never came before the request expired.

        Raises:
            NotAuthorizedToRequest: our registration does not allow this query.
            MalformedInput: the query is not a valid DCQL query.
            ExchangeTimeout: no result within ``timeout`` (the request stays open).
            TransportError, TrustError: the request could not be sent.
        """
        parsed = query if isinstance(query, DcqlQuery) else parse_query(query)
        pending = await self._service.request(UserId(user_id), parsed, purpose, ttl=ttl)
        return await self._service.wait(pending.exchange_id, timeout)


@asynccontextmanager
async def open_verifier(data_dir: Path, **options: Any) -> AsyncIterator[VerifierApi]:
    """Start the verifier service of ``data_dir`` for the duration of the block.

    Args:
        data_dir: The verifier's data directory.
        **options: Passed to :class:`~verifier.service.VerifierService`.
    """
    async with VerifierService(data_dir, **options) as service:
        yield VerifierApi(service)
