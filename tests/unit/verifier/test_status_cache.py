"""onceonly.status_cache: ttl, max age, exp, failures that never pass, one fetch at a time."""

from __future__ import annotations

import asyncio

import pytest

from onceonly import errors
from onceonly.jose import generate_private_key
from onceonly.status_cache import CachedStatusList, StatusCache
from onceonly.trust import Agency
from verifier.verification import status_key_resolver

from .verification_world import DAY, ISSUER_ID, NOW, STATUS_URI, World


def issuer_of(world: World) -> Agency:
    agency = world.verified_trust().trust_list.agency(ISSUER_ID)
    assert agency is not None
    return agency


async def get(
    cache: StatusCache, world: World, now: int, *, signer: str = ISSUER_ID
) -> CachedStatusList:
    trust = world.verified_trust().trust_list
    agency = trust.agency(signer)
    assert agency is not None
    return await cache.get(
        STATUS_URI,
        signer=agency,
        key=status_key_resolver(trust, signer),
        trust_version="v1",
        now=now,
    )


async def test_token_is_kept_for_its_ttl_then_fetched_again() -> None:
    world = World()
    cache = StatusCache(world.fetch)
    first = await get(cache, world, NOW)
    assert await get(cache, world, NOW + 599) is first
    assert world.fetches == 1
    refreshed = await get(cache, world, NOW + 600)
    assert refreshed is not first and world.fetches == 2


async def test_default_ttl_and_max_age_bound_the_cache() -> None:
    world = World()

    async def without_ttl(uri: str, agency: Agency) -> str:
        world.fetches += 1
        return world.status_token(ttl=None)

    cache = StatusCache(without_ttl, default_ttl=100)
    await get(cache, world, NOW)
    await get(cache, world, NOW + 99)
    await get(cache, world, NOW + 100)
    assert world.fetches == 2

    world.fetches = 0
    capped = StatusCache(world.fetch, max_age=30)  # the token's ttl says 600
    await get(capped, world, NOW)
    await get(capped, world, NOW + 30)
    assert world.fetches == 2


async def test_token_is_not_used_past_its_exp() -> None:
    world = World()

    async def long_ttl(uri: str, agency: Agency) -> str:
        world.fetches += 1
        return world.status_token(ttl=10 * DAY)

    cache = StatusCache(long_ttl, max_age=10 * DAY)
    await get(cache, world, NOW)
    await get(cache, world, NOW + DAY - 1)
    assert world.fetches == 1
    # exp is NOW + DAY: the cached token is dropped; the refetched one is expired too.
    with pytest.raises(errors.StatusUnavailable) as caught:
        await get(cache, world, NOW + DAY + 120)
    assert caught.value.detail["cause"] == "expired"
    assert world.fetches == 2


async def test_fetch_failure_is_unavailable_and_not_cached() -> None:
    world = World()
    world.fetch_fails = True
    cache = StatusCache(world.fetch)
    with pytest.raises(errors.StatusUnavailable) as caught:
        await get(cache, world, NOW)
    assert caught.value.detail["cause"] == "transport_error"
    world.fetch_fails = False
    await get(cache, world, NOW + 1)
    assert world.fetches == 2


@pytest.mark.parametrize(
    "signer_kid", ["buergeramt-1", "someone-else"], ids=["forged", "unknown-kid"]
)
async def test_token_not_signed_by_the_issuer_is_unavailable(signer_kid: str) -> None:
    world = World()
    world.status_signer = generate_private_key(kid=signer_kid)
    with pytest.raises(errors.StatusUnavailable) as caught:
        await get(StatusCache(world.fetch), world, NOW)
    assert caught.value.detail["cause"] in {"invalid_signature", "unknown_key"}


async def test_token_signed_by_another_agency_does_not_count_for_the_issuer() -> None:
    world = World()
    world.status_signer = world.verifier  # a listed agency, but not the credential's issuer
    with pytest.raises(errors.StatusUnavailable) as caught:
        await get(StatusCache(world.fetch), world, NOW)
    assert caught.value.detail["cause"] == "unknown_key"


async def test_slow_fetch_times_out() -> None:
    world = World()

    async def hang(uri: str, agency: Agency) -> str:
        await asyncio.sleep(10)
        return ""

    cache = StatusCache(hang, fetch_timeout=0.05)
    with pytest.raises(errors.StatusUnavailable) as caught:
        await get(cache, world, NOW)
    assert caught.value.detail["cause"] == "timeout"


async def test_concurrent_lookups_share_one_fetch() -> None:
    world = World()
    release = asyncio.Event()

    async def gated(uri: str, agency: Agency) -> str:
        await release.wait()
        return await world.fetch(uri, agency)

    cache = StatusCache(gated)
    tasks = [asyncio.create_task(get(cache, world, NOW)) for _ in range(10)]
    await asyncio.sleep(0)
    release.set()
    results = await asyncio.gather(*tasks)
    assert world.fetches == 1
    assert all(result is results[0] for result in results)


async def test_bounded_number_of_entries() -> None:
    world = World()
    cache = StatusCache(world.fetch, max_entries=1)
    trust = world.verified_trust().trust_list
    agency = issuer_of(world)
    for version in ("a", "b", "a"):
        await cache.get(
            STATUS_URI,
            signer=agency,
            key=status_key_resolver(trust, ISSUER_ID),
            trust_version=version,
            now=NOW,
        )
    assert world.fetches == 3  # "a" was evicted by "b"


def test_bounds_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        StatusCache(World().fetch, max_age=0)


def _signed(world: World, *, revoked: bool, issued_at: int, expires_at: int) -> str:
    from onceonly.status_list import INVALID, StatusList
    from onceonly.status_list.token import sign_status_list_jwt

    status = StatusList(64, 1)
    if revoked:
        status.set(3, INVALID)
    return sign_status_list_jwt(
        status, world.issuer, uri=STATUS_URI, issued_at=issued_at, expires_at=expires_at, ttl=60
    )


async def test_an_older_token_than_one_seen_never_replaces_it() -> None:
    """High-water mark per URI: a replayed pre-revocation token does not undo a revocation."""
    world = World()
    before = _signed(world, revoked=False, issued_at=NOW - 600, expires_at=NOW + DAY)
    after = _signed(world, revoked=True, issued_at=NOW - 60, expires_at=NOW + 600)
    published = [after]

    async def fetch(uri: str, agency: Agency) -> str:
        world.fetches += 1
        return published[-1]

    cache = StatusCache(fetch)
    seen = await get(cache, world, NOW)
    assert seen.verified.status_list.get(3) == 1
    published.append(before)  # the room now holds the older, still unexpired token
    cache.forget(STATUS_URI)  # the mark survives forget (and the ttl running out)
    again = await get(cache, world, NOW + 1)
    assert world.fetches == 2
    assert again.token == after
    assert again.verified.status_list.get(3) == 1
    # Once the newer token has expired, the older one is still not taken: unavailable.
    with pytest.raises(errors.StatusUnavailable) as caught:
        await get(cache, world, NOW + 700)
    assert caught.value.detail["cause"] == "rolled_back"
    assert caught.value.detail["newest_iat"] == NOW - 60
    # A newer token than the mark is taken as usual.
    published.append(_signed(world, revoked=True, issued_at=NOW + 650, expires_at=NOW + DAY))
    assert (await get(cache, world, NOW + 700)).verified.issued_at == NOW + 650
