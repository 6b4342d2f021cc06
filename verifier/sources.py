"""Where the verifier's outside facts come from over Matrix: status lists and the trust list.

Both are public, signed documents in public rooms; the room only transports
them. Status List Tokens are verified by :mod:`verifier.status_cache` with the
issuer's key from the trust list, and a trust list by the
:class:`~onceonly.trust_cache.TrustCache` against the configured anchors.
"""

from __future__ import annotations

import logging

from onceonly.errors import StatusUnavailable
from onceonly.matrix.accounts import Credentials
from onceonly.matrix.devices import DeviceInfo
from onceonly.matrix.state_rooms import read_trust_list, state_client
from onceonly.status_fetch import fetch_status_state, status_room_alias
from onceonly.trust import Agency
from onceonly.trust_cache import RefreshOutcome, TrustCache
from verifier.status_cache import StatusFetcher

logger = logging.getLogger(__name__)


class AnyDevice:
    """Device policy for the verifier's own messages (no personal data in them)."""

    def allows(self, device: DeviceInfo) -> bool:
        """Every device may read requests and statuses."""
        return True


def matrix_status_fetch(credentials: Credentials) -> StatusFetcher:
    """Status List Tokens from the issuer's public status room (:mod:`onceonly.status_fetch`)."""

    async def fetch(uri: str, agency: Agency) -> str:
        room = status_room_alias(agency.matrix_user_id)
        envelope = await fetch_status_state(credentials, room=room, uri=uri)
        if envelope is None:
            raise StatusUnavailable("no status list is published for this URI")
        return envelope.token

    return fetch


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
