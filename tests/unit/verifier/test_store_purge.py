"""Bounded stores: the refusal quota, and scheduled purges that keep nonces single-use.

Every test runs on SQLite and on PostgreSQL (the ``store_location`` fixture).
"""

from __future__ import annotations

import pytest

from onceonly import errors
from onceonly.types import ExchangeId
from verifier.nonce_store import NonceStore
from verifier.refusal_quota import RefusalQuota, SuppressedRefusals
from verifier.requests import RequestStore, prepare_request

from .verification_world import CITIZEN, NOW, PURPOSE, VERIFIER_ID, World, address_query

WINDOW = 3600
START = NOW - NOW % WINDOW
MALLORY = "@mallory:localhost"
EXCHANGE = ExchangeId("exchange-purge-test")


def test_quota_records_up_to_the_limit_then_counts(store_location: str) -> None:
    with RefusalQuota.open(store_location, limit=3, window=WINDOW) as quota:
        admitted = [quota.admit(MALLORY, now=START + i) for i in range(10)]
        assert admitted == [True] * 3 + [False] * 7
        assert quota.admit(str(CITIZEN), now=START + 11)  # another sender has its own quota
        assert quota.ended_windows(now=START + WINDOW - 1) == []  # still running
        ended = SuppressedRefusals(MALLORY, START, START + WINDOW, recorded=3, suppressed=7)
        assert quota.ended_windows(now=START + WINDOW) == [ended]
        assert quota.admit(MALLORY, now=START + WINDOW)  # a new window, a new quota
        assert quota.forget(ended) and not quota.forget(ended)
        assert quota.ended_windows(now=START + 2 * WINDOW) == []
        # The citizen's ended window had nothing suppressed: purged, nothing to record.
        assert quota.purge(now=START + 2 * WINDOW) == 2


def test_quota_is_shared_by_processes(store_location: str) -> None:
    first = RefusalQuota.open(store_location, limit=4, window=WINDOW)
    second = RefusalQuota.open(store_location, limit=4, window=WINDOW)
    with first, second:
        admitted = [(first, second)[i % 2].admit(MALLORY, now=START) for i in range(9)]
        assert admitted.count(True) == 4
        [window] = first.ended_windows(now=START + WINDOW)
        assert (window.recorded, window.suppressed) == (4, 5)


def test_quota_limits_are_checked(store_location: str) -> None:
    with pytest.raises(errors.ConfigError):
        RefusalQuota.open(store_location, limit=-1, window=WINDOW)
    with pytest.raises(errors.ConfigError):
        RefusalQuota.open(store_location, limit=1, window=0)


def test_purged_nonces_stay_used(store_location: str) -> None:
    with NonceStore.open(store_location) as nonces:
        used = nonces.issue(exchange_id=EXCHANGE, audience=VERIFIER_ID, now=NOW, ttl=60)
        nonces.consume(used.nonce, now=NOW + 1)
        unused = nonces.issue(exchange_id=EXCHANGE, audience=VERIFIER_ID, now=NOW, ttl=60)
        # Within the retention after expiry nothing goes; an unexpired nonce never does.
        assert nonces.purge(now=NOW + 60 + 99, grace=100) == 0
        with pytest.raises(errors.ReplayDetected):
            nonces.consume(used.nonce, now=NOW + 2)
        assert nonces.purge(now=NOW + 60 + 100, grace=100) == 2
        # Purged, a nonce is unknown: refused whether it had been used or not.
        for nonce in (used.nonce, unused.nonce):
            for now in (NOW + 2, NOW + 500):
                with pytest.raises(errors.NonceMismatch):
                    nonces.consume(nonce, now=now)


def test_requests_are_purged_after_their_retention(store_location: str) -> None:
    trust = World().verified_trust().trust_list
    nonces, requests = NonceStore.open(store_location), RequestStore.open(store_location)
    with nonces, requests:

        def request(ttl: int) -> str:
            prepared = prepare_request(
                trust_list=trust,
                verifier_id=VERIFIER_ID,
                citizen=CITIZEN,
                query=address_query(),
                purpose=PURPOSE,
                nonces=nonces,
                now=NOW,
                ttl=ttl,
            )
            requests.add(prepared.pending)
            return prepared.pending.exchange_id

        settled, open_late, running = request(60), request(60), request(3600)
        assert requests.settle(settled, outcome="verified", result={}, now=NOW + 5)
        assert requests.purge(now=NOW + 60 + 99, retention=100) == 0
        assert requests.purge(now=NOW + 60 + 100, retention=100) == 2
        for gone in (settled, open_late):
            with pytest.raises(errors.UnknownExchange):
                requests.get(gone)
        assert requests.get(running).outcome is None
        with pytest.raises(ValueError, match="retention"):
            requests.purge(now=NOW, retention=-1)
