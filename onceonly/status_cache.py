"""A cache of verified Status List Tokens, shared by verifiers and wallets.

A verifier checks the revocation status of every credential it accepts; a wallet
checks its own credentials before presenting one (``wallet.status``). The
token for a status list URI is obtained through an injected async fetch
function (reading the issuer's public status room, or a file in tests), verified
with a key the *reader* chose from the trust list (one of the credential
issuer's keys), and then kept for as long as the draft allows: the token's
``ttl`` (a configurable default when it has none), never longer than
``max_age`` and never past the token's ``exp``.

Failures never turn into a pass: a fetch that fails, times out, or returns a
token that does not verify raises :class:`~onceonly.errors.StatusUnavailable`
(the cause's code in ``detail['cause']``), and nothing is cached.

Entries are keyed by URI, signer and trust list version: a token verified as
issuer A's never vouches for issuer B's credential, and a new trust list (which
may have removed a key) forces a fresh verification.

A list never goes back in time: the cache remembers, per URI and signer, the
newest token it verified (a high-water mark on ``iat``, kept across
:meth:`StatusCache.forget` and trust list changes). A fetched token older than
that one is a replay (e.g. an old token put back in a room): the newer token is
used instead while it is still valid (re-verified with the current trust list),
else the list is unavailable, so a revocation once seen stays seen. The mark
lives as long as the cache (the process); it is bounded like the entries.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any, Final

from onceonly import jose
from onceonly.errors import OnceOnlyError, StatusUnavailable, UnknownKey, UntrustedIssuer
from onceonly.status_list import StatusListToken, verify_status_list_jwt
from onceonly.trust import Agency, TrustList
from onceonly.trust.policy import _kid_matches

StatusFetcher = Callable[[str, Agency], Awaitable[str]]
"""Returns the Status List Token (compact JWS) the agency currently publishes for a URI."""

DEFAULT_TTL_SECONDS: Final = 300
"""How long to keep a token that carries no ``ttl``."""

DEFAULT_MAX_AGE_SECONDS: Final = 3600
"""Upper bound on keeping any token, whatever its ``ttl`` says."""

DEFAULT_FETCH_TIMEOUT_SECONDS: Final = 15.0
DEFAULT_MAX_ENTRIES: Final = 1024


@dataclass(frozen=True)
class CachedStatusList:
    """A verified Status List Token and where it came from.

    Attributes:
        uri: The list's URI (the token's ``sub``).
        token: The compact JWS exactly as fetched (kept as audit evidence).
        hash: SHA-256 (hex) of ``token``.
        verified: The verified, decoded token.
        key: The key that verified it.
        fetched_at: When it was fetched (epoch seconds).
        fresh_until: First second at which it must be fetched again.
    """

    uri: str
    token: str
    hash: str
    verified: StatusListToken
    key: jose.PublicKey
    fetched_at: int
    fresh_until: int


_Key = tuple[str, str, str]


class StatusCache:
    """Fetches, verifies and caches Status List Tokens (one instance per process).

    Args:
        fetch: The async fetch function.
        default_ttl: Seconds to keep a token without ``ttl``.
        max_age: Never keep a token longer than this.
        fetch_timeout: Seconds before a fetch counts as failed.
        max_entries: Bound on cached tokens (least recently stored is evicted).
    """

    def __init__(
        self,
        fetch: StatusFetcher,
        *,
        default_ttl: int = DEFAULT_TTL_SECONDS,
        max_age: int = DEFAULT_MAX_AGE_SECONDS,
        fetch_timeout: float = DEFAULT_FETCH_TIMEOUT_SECONDS,
        max_entries: int = DEFAULT_MAX_ENTRIES,
    ) -> None:
        if default_ttl <= 0 or max_age <= 0 or fetch_timeout <= 0 or max_entries <= 0:
            raise ValueError("status cache bounds must be positive")
        self._fetch = fetch
        self._default_ttl = default_ttl
        self._max_age = max_age
        self._fetch_timeout = fetch_timeout
        self._max_entries = max_entries
        self._entries: OrderedDict[_Key, CachedStatusList] = OrderedDict()
        self._locks: dict[_Key, asyncio.Lock] = {}
        self._newest: OrderedDict[tuple[str, str], CachedStatusList] = OrderedDict()
        self.fetches = 0
        """Number of fetches made (for tests and metrics)."""

    def forget(self, uri: str) -> None:
        """Drop every cached token for ``uri``: the next :meth:`get` fetches it again.

        For a reader with a reason to doubt its copy before the ``ttl`` is over
        (a wallet whose presentation was just rejected as revoked). The high-water
        mark stays: the fetched token must not be older than the newest one seen.
        """
        for key in [key for key in self._entries if key[0] == uri]:
            del self._entries[key]

    def _fresh(self, key: _Key, now: int) -> CachedStatusList | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        expires_at = entry.verified.expires_at
        if now >= entry.fresh_until or (expires_at is not None and now >= expires_at):
            del self._entries[key]
            return None
        return entry

    async def get(
        self,
        uri: str,
        *,
        signer: Agency,
        key: jose.PublicKey | jose.KeyResolver,
        trust_version: str,
        now: int,
    ) -> CachedStatusList:
        """The verified token for ``uri`` signed by ``signer``, from the cache or fetched.

        Args:
            uri: The status list URI the credential references.
            signer: The agency that publishes the list and whose key must have signed
                the token (the credential's issuer, as the trust list describes it).
            key: That agency's key, or a resolver over its keys from the trust list.
            trust_version: Hash of the trust list ``key`` came from (part of the cache key).
            now: Current time, epoch seconds.

        Raises:
            StatusUnavailable: the token could not be fetched or did not verify.
        """
        cache_key = (uri, signer.id, trust_version)
        hit = self._fresh(cache_key, now)
        if hit is not None:
            return hit
        # One fetch per list at a time: concurrent verifications of credentials on the
        # same list wait for it instead of fetching the same token again.
        lock = self._locks.setdefault(cache_key, asyncio.Lock())
        async with lock:
            hit = self._fresh(cache_key, now)
            if hit is not None:
                return hit
            entry = self._not_older(await self._load(uri, signer, key, now), signer, key, now)
            self._entries[cache_key] = entry
            while len(self._entries) > self._max_entries:
                evicted, _ = self._entries.popitem(last=False)
                self._locks.pop(evicted, None)
            return entry

    async def _load(
        self, uri: str, signer: Agency, key: jose.PublicKey | jose.KeyResolver, now: int
    ) -> CachedStatusList:
        self.fetches += 1
        try:
            token = await asyncio.wait_for(self._fetch(uri, signer), timeout=self._fetch_timeout)
        except TimeoutError:
            raise StatusUnavailable(
                "fetching the status list timed out", detail={"uri": uri, "cause": "timeout"}
            ) from None
        except OnceOnlyError as exc:
            raise StatusUnavailable(
                "the status list could not be fetched", detail={"uri": uri, "cause": exc.code}
            ) from exc
        if not isinstance(token, str):
            raise StatusUnavailable(
                "the status list fetch returned no token", detail={"uri": uri, "cause": "malformed"}
            )
        verified, used_key = verify_status_token(token, key, uri=uri, now=now)
        keep = self._keep_seconds(verified)
        return CachedStatusList(
            uri=uri,
            token=token,
            # The digest audit evidence names tokens by (verifier.evidence.token_hash).
            hash=hashlib.sha256(token.encode("utf-8")).hexdigest(),
            verified=verified,
            key=used_key,
            fetched_at=now,
            fresh_until=now + keep,
        )

    def _keep_seconds(self, verified: StatusListToken) -> int:
        # A fractional ttl rounds down: never cache longer than the issuer allows.
        return int(min(verified.ttl or self._default_ttl, self._max_age))

    def _not_older(
        self,
        entry: CachedStatusList,
        signer: Agency,
        key: jose.PublicKey | jose.KeyResolver,
        now: int,
    ) -> CachedStatusList:
        """Apply the high-water mark: ``entry`` if it is the newest seen, else the newest.

        Raises:
            StatusUnavailable: ``entry`` is older than a token seen before and that
                token no longer verifies (expired, or its key left the trust list).
        """
        mark = (entry.uri, signer.id)
        newest = self._newest.get(mark)
        if newest is None or entry.verified.issued_at >= newest.verified.issued_at:
            self._newest[mark] = entry
            self._newest.move_to_end(mark)
            while len(self._newest) > self._max_entries:
                self._newest.popitem(last=False)
            return entry
        detail = {
            "uri": entry.uri,
            "cause": "rolled_back",
            "fetched_iat": entry.verified.issued_at,
            "newest_iat": newest.verified.issued_at,
        }
        try:
            verified, used_key = verify_status_token(newest.token, key, uri=entry.uri, now=now)
        except StatusUnavailable as exc:
            raise StatusUnavailable(
                "the published status list is older than one already seen", detail=detail
            ) from exc
        return replace(
            newest,
            verified=verified,
            key=used_key,
            fetched_at=now,
            fresh_until=now + self._keep_seconds(verified),
        )


def verify_status_token(
    token: str, key: jose.PublicKey | jose.KeyResolver, *, uri: str, now: int
) -> tuple[StatusListToken, jose.PublicKey]:
    """Verify a Status List Token (JWT) for ``uri``; return it and the key that verified it.

    Raises:
        StatusUnavailable: the token does not verify (the cause's code in ``detail``).
    """
    chosen: list[jose.PublicKey] = []

    def remember(header: Mapping[str, Any], payload: Mapping[str, Any]) -> jose.PublicKey:
        found = key if isinstance(key, jose.PublicKey) else key(header, payload)
        chosen.append(found)
        return found

    try:
        verified = verify_status_list_jwt(token, remember, uri=uri, now=now)
    except OnceOnlyError as exc:
        raise StatusUnavailable(
            "the status list token did not verify", detail={"uri": uri, "cause": exc.code}
        ) from exc
    return verified, chosen[-1]


def status_key_resolver(trust_list: TrustList, issuer_id: str) -> jose.KeyResolver:
    """Choose the key of a Status List Token: one of the credential issuer's listed keys.

    The token must name the key by ``kid`` (or by the agency's DID URL) and the
    key's signing window must cover the token's ``iat``.
    """
    agency = trust_list.agency(issuer_id)

    def resolve(header: Mapping[str, Any], payload: Mapping[str, Any]) -> jose.PublicKey:
        if agency is None:
            raise UntrustedIssuer(f"issuer {issuer_id!r} is not on the trust list")
        kid, iat = header.get("kid"), payload.get("iat")
        if not isinstance(kid, str) or not isinstance(iat, int) or isinstance(iat, bool):
            raise UnknownKey("a status list token must carry a kid and an integer iat")
        keys = [k for k in agency.keys if _kid_matches(kid, k, agency) and k.may_sign_at(iat)]
        if len(keys) != 1:
            raise UnknownKey(f"{issuer_id} has no key {kid!r} valid at the token's iat")
        return keys[0].public_key()

    return resolve
