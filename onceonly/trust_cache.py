"""The party's cached trust list: one file in its data directory, newest valid list wins.

A party (issuer, wallet, verifier) keeps the last trust list it verified as the
signed compact JWS, exactly as received, so the file is also a plain trust list
file any other party or auditor can verify. A received list replaces it only
when it verifies against the party's trust anchors, is within its validity
period and is not older than the cached one; anything else is rejected with a
typed error and the cache stays as it was. When the homeserver cannot be
reached, the party keeps working from the cache.
"""

from __future__ import annotations

import fcntl
import os
import tempfile
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from onceonly import jose
from onceonly.errors import OnceOnlyError, StoreError, TransportError
from onceonly.trust import (
    VerifiedTrustList,
    check_validity_period,
    verify_trust_list,
    verify_trust_list_signature,
)
from onceonly.trust.token import MAX_TRUST_LIST_BYTES

TRUST_LIST_FILENAME: Final = "trust-list.jwt"


@dataclass(frozen=True)
class RefreshOutcome:
    """What a refresh did.

    Attributes:
        current: The list the party now uses (``None``: none yet).
        updated: Whether the cache file was replaced by a newer list.
        error: Why a received list was rejected or could not be fetched, if it was.
    """

    current: VerifiedTrustList | None
    updated: bool
    error: OnceOnlyError | None = None


def read_token_file(path: Path) -> str:
    """Read a signed trust list file (bounded), stripping surrounding whitespace.

    Raises:
        StoreError: unreadable or larger than the trust list bound.
    """
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_TRUST_LIST_BYTES + 1)
    except OSError as exc:
        raise StoreError(f"cannot read trust list file {path.name}: {exc.strerror}") from exc
    if len(data) > MAX_TRUST_LIST_BYTES:
        raise StoreError(f"trust list file {path.name} is too large")
    try:
        return data.decode("ascii").strip()
    except UnicodeDecodeError as exc:
        raise StoreError(f"trust list file {path.name} is not a compact JWS") from exc


def write_atomically(path: Path, text: str, *, mode: int = 0o644) -> None:
    """Replace ``path`` with ``text`` so readers see the old or the new file, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp_name, mode)
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise


class TrustCache:
    """The trust list file of one party.

    Args:
        path: The cache file (e.g. ``<data dir>/trust-list.jwt``).
        anchors: The party's configured trust authority keys.
        leeway: Allowed clock skew in seconds when checking validity periods.
    """

    def __init__(self, path: Path, anchors: Sequence[jose.PublicKey], *, leeway: int = 60) -> None:
        self.path = path
        self.anchors = tuple(anchors)
        self.leeway = leeway

    @classmethod
    def in_data_dir(cls, data_dir: Path, anchors: Sequence[jose.PublicKey]) -> TrustCache:
        """The cache at the conventional place in a party's data directory."""
        return cls(data_dir / TRUST_LIST_FILENAME, anchors)

    def cached(self) -> VerifiedTrustList | None:
        """The cached list with its signature re-checked, whatever its age.

        Raises:
            StoreError: the file exists but does not verify (tampered or wrong anchors).
        """
        if not self.path.exists():
            return None
        token = read_token_file(self.path)
        try:
            return verify_trust_list_signature(token, self.anchors)
        except OnceOnlyError as exc:
            raise StoreError(
                f"cached trust list does not verify ({exc.code}); remove it to start over",
                detail={"cause": exc.code},
            ) from exc

    def current(self, *, now: int) -> VerifiedTrustList | None:
        """The cached list if it is within its validity period.

        Raises:
            StoreError: the cache file does not verify.
            Expired, NotYetValid: the cached list is outside its validity period.
        """
        verified = self.cached()
        if verified is not None:
            check_validity_period(verified.trust_list, now=now, leeway=self.leeway)
        return verified

    def offer(self, token: str, *, now: int) -> VerifiedTrustList:
        """Verify a received list and cache it if it is newer than the cached one.

        Returns:
            The list now in force (the received one, or the equal cached one).

        Raises:
            Any verification error of :func:`~onceonly.trust.verify_trust_list`; the
            cache file is then left untouched.
        """
        # Read, compare and replace under one lock: two processes of a party offering
        # lists at once must not let the older one overwrite the newer one.
        with self._locked():
            cached = self.cached()
            verified = verify_trust_list(
                token,
                self.anchors,
                now=now,
                cached=cached.trust_list if cached else None,
                leeway=self.leeway,
            )
            if cached is not None and cached.trust_list.seq == verified.trust_list.seq:
                return cached
            write_atomically(self.path, verified.token)
            return verified

    @contextmanager
    def _locked(self) -> Iterator[None]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        lock_path = self.path.with_name(f".{self.path.name}.lock")
        with lock_path.open("a") as lock_file:
            fcntl.flock(lock_file, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock_file, fcntl.LOCK_UN)

    async def refresh(
        self, fetch: Callable[[], Awaitable[str | None]], *, now: int
    ) -> RefreshOutcome:
        """Fetch the published list and offer it; never lose the cache on failure.

        Args:
            fetch: Returns the published token (``None`` when nothing is published);
                may raise :class:`~onceonly.errors.TransportError` when offline.
            now: Current Unix time.

        Returns:
            The outcome; a transport failure or a rejected list is reported in
            ``error`` and the party continues with the cached list.

        Raises:
            StoreError: the cache file itself does not verify.
        """
        before = self.cached()
        try:
            token = await fetch()
        except TransportError as exc:
            return RefreshOutcome(before, False, exc)
        if token is None:
            return RefreshOutcome(before, False)
        try:
            after = self.offer(token, now=now)
        except StoreError:
            raise
        except OnceOnlyError as exc:
            return RefreshOutcome(before, False, exc)
        updated = before is None or after.trust_list.seq != before.trust_list.seq
        return RefreshOutcome(after, updated)


__all__ = [
    "TRUST_LIST_FILENAME",
    "RefreshOutcome",
    "TrustCache",
    "read_token_file",
    "write_atomically",
]
