"""The party's trust list cache: newest valid list wins, bad lists never replace it."""

from __future__ import annotations

from pathlib import Path

import pytest

from onceonly import errors, jose
from onceonly.trust import sign_trust_list
from onceonly.trust_cache import TRUST_LIST_FILENAME, TrustCache

from .conftest import DAY, NOW, Keys, make_list


@pytest.fixture
def cache(tmp_path: Path, keys: Keys) -> TrustCache:
    return TrustCache.in_data_dir(tmp_path / "party", [keys.authority.public()])


def signed(keys: Keys, seq: int, **kwargs: int) -> str:
    return sign_trust_list(make_list(keys, seq=seq, **kwargs), keys.authority)


def test_empty_cache(cache: TrustCache) -> None:
    assert cache.cached() is None
    assert cache.current(now=NOW) is None


def test_first_valid_list_is_cached_as_a_plain_token_file(cache: TrustCache, keys: Keys) -> None:
    token = signed(keys, 1)
    verified = cache.offer(token, now=NOW)
    assert verified.trust_list.seq == 1
    assert cache.path.name == TRUST_LIST_FILENAME
    assert cache.path.read_text() == token + "\n"
    assert (cache.path.stat().st_mode & 0o777) == 0o644
    current = cache.current(now=NOW)
    assert current is not None and current.token == token


def test_newer_list_replaces_older(cache: TrustCache, keys: Keys) -> None:
    cache.offer(signed(keys, 1), now=NOW)
    newer = signed(keys, 2)
    assert cache.offer(newer, now=NOW).trust_list.seq == 2
    assert cache.path.read_text().strip() == newer


@pytest.mark.parametrize(
    ("bad", "error"),
    [
        (
            lambda k: sign_trust_list(make_list(k, seq=9), jose.generate_private_key()),
            errors.InvalidSignature,
        ),
        (
            lambda k: sign_trust_list(make_list(k, seq=9, now=NOW - 40 * DAY), k.authority),
            errors.Expired,
        ),
        (
            lambda k: sign_trust_list(make_list(k, seq=9, now=NOW + DAY), k.authority),
            errors.NotYetValid,
        ),
        (lambda k: sign_trust_list(make_list(k, seq=2), k.authority), errors.TrustListRollback),
        (
            lambda k: sign_trust_list(make_list(k, seq=3, days=2), k.authority),
            errors.TrustListConflict,
        ),
        (lambda k: "not.a.jws", errors.MalformedInput),
        (
            lambda k: jose.sign_compact({"seq": 9}, k.authority, typ="trust-list+jwt"),
            errors.MalformedInput,
        ),
    ],
    ids=[
        "wrong-key",
        "expired",
        "not-yet-valid",
        "rollback",
        "same-seq-changed",
        "garbage",
        "malformed",
    ],
)
def test_bad_list_rejected_and_cache_kept(
    cache: TrustCache, keys: Keys, bad: object, error: type[Exception]
) -> None:
    good = signed(keys, 3)
    cache.offer(good, now=NOW)
    with pytest.raises(error):
        cache.offer(bad(keys), now=NOW)  # type: ignore[operator]
    assert cache.path.read_text().strip() == good
    current = cache.current(now=NOW)
    assert current is not None and current.trust_list.seq == 3


def test_tampered_cache_file_is_a_store_error(cache: TrustCache, keys: Keys) -> None:
    cache.offer(signed(keys, 1), now=NOW)
    text = cache.path.read_text().strip()
    header, _payload, signature = text.split(".")
    forged = jose.json_object_b64({**make_list(keys, seq=1).model_dump(mode="json"), "seq": 50})
    cache.path.write_text(f"{header}.{forged}.{signature}")
    with pytest.raises(errors.StoreError) as caught:
        cache.current(now=NOW)
    assert caught.value.detail == {"cause": "invalid_signature"}


def test_expired_cache_is_reported(cache: TrustCache, keys: Keys) -> None:
    cache.offer(signed(keys, 2, days=1), now=NOW)
    later = NOW + 2 * DAY
    with pytest.raises(errors.Expired):
        cache.current(now=later)
    # The expired list still guards against rollback to an older (but fresh) list ...
    with pytest.raises(errors.TrustListRollback):
        cache.offer(signed(keys, 1, now=later), now=later)
    # ... and a newer one replaces it.
    assert cache.offer(signed(keys, 3, now=later), now=later).trust_list.seq == 3


async def test_refresh_offline_keeps_cache(cache: TrustCache, keys: Keys) -> None:
    cache.offer(signed(keys, 4), now=NOW)

    async def offline() -> str | None:
        raise errors.TransportError("homeserver unreachable")

    outcome = await cache.refresh(offline, now=NOW)
    assert not outcome.updated
    assert outcome.current is not None and outcome.current.trust_list.seq == 4
    assert isinstance(outcome.error, errors.TransportError)


async def test_refresh_updates_and_reports_rejections(cache: TrustCache, keys: Keys) -> None:
    published = [signed(keys, 1), signed(keys, 2), signed(keys, 1)]

    async def fetch() -> str | None:
        return published.pop(0)

    first = await cache.refresh(fetch, now=NOW)
    assert first.updated and first.error is None
    second = await cache.refresh(fetch, now=NOW)
    assert second.updated and second.current is not None and second.current.trust_list.seq == 2
    third = await cache.refresh(fetch, now=NOW)
    assert not third.updated
    assert isinstance(third.error, errors.TrustListRollback)
    assert third.current is not None and third.current.trust_list.seq == 2


async def test_refresh_with_nothing_published(cache: TrustCache) -> None:
    async def nothing() -> str | None:
        return None

    outcome = await cache.refresh(nothing, now=NOW)
    assert outcome == type(outcome)(None, False)


def test_offer_waits_for_the_cache_lock(cache: TrustCache, keys: Keys) -> None:
    # Another process of the party holds the lock (read-compare-replace in progress):
    # an offer must wait instead of interleaving and possibly writing an older list.
    import fcntl
    import threading

    cache.offer(signed(keys, 1), now=NOW)
    lock_path = cache.path.with_name(f".{cache.path.name}.lock")
    newer = signed(keys, 2)
    with lock_path.open("a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        worker = threading.Thread(target=cache.offer, args=(newer,), kwargs={"now": NOW})
        worker.start()
        worker.join(timeout=0.5)
        assert worker.is_alive(), "offer did not wait for the lock"
        assert cache.path.read_text().strip() != newer
        fcntl.flock(held, fcntl.LOCK_UN)
    worker.join(timeout=10)
    assert not worker.is_alive()
    assert cache.path.read_text().strip() == newer
