"""Where the verifier's outside facts come from over Matrix: status lists and the trust list.

Both are public, signed documents in public rooms; the room only transports
them. Status List Tokens are verified by :mod:`onceonly.status_cache` with the
issuer's key from the trust list, and a trust list by the
:class:`~onceonly.trust_cache.TrustCache` against the configured anchors.
"""

from __future__ import annotations

import logging

from onceonly.matrix.accounts import Credentials
from onceonly.matrix.devices import DeviceInfo
from onceonly.matrix.state_rooms import read_trust_list, state_client
from onceonly.trust_cache import RefreshOutcome, TrustCache

logger = logging.getLogger(__name__)


class AnyDevice:
    """Device policy for the verifier's own messages (no personal data in them)."""

    def allows(self, device: DeviceInfo) -> bool:
        """Every device may read requests and statuses."""
        return True


async def refresh_trust_list(
    cache: TrustCache, credentials: Credentials, room: str, *, now: int
) -> RefreshOutcome:
    """Offer the trust list published in ``room`` to the cache (kept on any failure).

    Raises:
        StoreError: the cached file itself does not verify.
    """
    async with state_client(credentials) as client:
        outcome = await cache.refresh(lambda: read_trust_list(client, room), now=now)
    if outcome.error is not None:
        logger.warning("trust list from %s not taken: %s", room, outcome.error)
    elif outcome.updated and outcome.current is not None:
        logger.info("trust list %s now in force", outcome.current.trust_list.seq)
    return outcome
