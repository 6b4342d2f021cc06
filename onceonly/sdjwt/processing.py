"""Disclosure processing (RFC 9901 §7.1 steps 3-5): digests in, claims out.

One walk over the signed payload replaces every referenced digest with its
disclosure and enforces, in the same pass, every structural rule of §7.1:
no digest twice (anywhere, including inside disclosed values), no disclosure
twice, no unreferenced disclosure, object/array form in the right context, no
overwritten claim, no reserved name. Decoys (digests with no disclosure) and
undisclosed claims simply disappear.

Array-element paths use the element's position in the *signed* array, so they
match the issuer's paths however many siblings stay hidden.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

from onceonly.errors import InputTooLarge, InvalidDisclosure
from onceonly.jose import b64url_encode
from onceonly.sdjwt.claims import ClaimPath
from onceonly.sdjwt.disclosures import (
    ELLIPSIS_KEY,
    SD_ALG_KEY,
    SD_KEY,
    Disclosure,
    decode_disclosure,
    hash_function,
)


class PathedDisclosure(NamedTuple):
    """A disclosure together with where it sits and the digest that references it."""

    disclosure: Disclosure
    digest: str
    path: ClaimPath


@dataclass(frozen=True, slots=True)
class ProcessedPayload:
    """The result of processing: claims plus which disclosure went where."""

    claims: dict[str, Any]
    disclosures: tuple[PathedDisclosure, ...]
    """In the order they were received."""
    node_paths: frozenset[ClaimPath]
    """Every visible claim path (only collected when asked for; else empty)."""


@dataclass(frozen=True, slots=True)
class ProcessingLimits:
    """Bounds on hostile input: disclosure count and size, and nesting depth."""

    max_disclosures: int = 1024
    max_disclosure_bytes: int = 64 * 1024
    max_depth: int = 32


def decode_all(
    encoded: Iterable[str], hash_alg: str, limits: ProcessingLimits
) -> dict[str, Disclosure]:
    """Decode disclosures keyed by digest, rejecting a disclosure sent twice.

    Raises:
        InvalidDisclosure: malformed or repeated disclosure.
        InputTooLarge: too many or too large disclosures.
    """
    by_digest: dict[str, Disclosure] = {}
    hasher = hash_function(hash_alg)
    max_count, max_bytes, max_depth = (
        limits.max_disclosures,
        limits.max_disclosure_bytes,
        limits.max_depth,
    )
    for text in encoded:
        if len(by_digest) >= max_count:
            raise InputTooLarge(f"more than {max_count} disclosures")
        disclosure = decode_disclosure(text, max_bytes=max_bytes, max_depth=max_depth)
        # Decoding succeeded, so the text is base64url, hence ASCII.
        digest = b64url_encode(hasher(text.encode("ascii")).digest())
        if digest in by_digest:
            raise InvalidDisclosure("the same disclosure appears twice")
        by_digest[digest] = disclosure
    return by_digest


_SPECIAL_NAMES = frozenset({SD_KEY, SD_ALG_KEY, ELLIPSIS_KEY})
_CONTAINERS = (dict, list)  # a constant tuple: "dict | list" builds a union per check


class _Walker:
    """State of one processing pass (kept per call: the core holds no globals).

    Hot path of every verification: the checks are written inline (locals
    instead of attribute look-ups, no helper call per digest, no recursion into
    plain values) but are exactly the rules of the module docstring, applied in
    the same order with the same errors.
    """

    __slots__ = ("by_digest", "collect_paths", "max_depth", "node_paths", "seen", "used")

    def __init__(self, by_digest: Mapping[str, Disclosure], max_depth: int, collect: bool):
        self.by_digest = by_digest
        self.max_depth = max_depth
        self.collect_paths = collect
        self.seen: set[str] = set()
        self.used: dict[str, ClaimPath] = {}
        self.node_paths: set[ClaimPath] = set()

    def value(self, value: Any, path: ClaimPath, depth: int) -> Any:
        if self.collect_paths and path:
            self.node_paths.add(path)
        if isinstance(value, dict):
            return self.obj(value, path, depth + 1)
        if isinstance(value, list):
            return self.array(value, path, depth + 1)
        return value

    def obj(self, obj: dict[str, Any], path: ClaimPath, depth: int) -> dict[str, Any]:
        if depth > self.max_depth:
            raise InputTooLarge(f"claims nested deeper than {self.max_depth} levels")
        collect = self.collect_paths
        out: dict[str, Any] = {}
        for name, child in obj.items():
            if name in _SPECIAL_NAMES:
                if name == SD_KEY or (name == SD_ALG_KEY and not path):
                    continue
                if name == ELLIPSIS_KEY:
                    raise InvalidDisclosure("'...' is only allowed as an array-element placeholder")
                raise InvalidDisclosure("'_sd_alg' is only allowed at the top level")
            if collect or isinstance(child, _CONTAINERS):
                out[name] = self.value(child, (*path, name), depth)
            else:
                out[name] = child  # a plain value: no path to build, nothing to walk
        digests = obj.get(SD_KEY)
        if digests is None:
            return out
        if not isinstance(digests, list):
            raise InvalidDisclosure("'_sd' must be an array of digests")
        seen, find = self.seen, self.by_digest.get
        for digest in digests:
            if not isinstance(digest, str):
                raise InvalidDisclosure("digests must be strings")
            if digest in seen:
                raise InvalidDisclosure("a digest is referenced more than once")
            seen.add(digest)
            disclosure = find(digest)
            if disclosure is None:
                continue  # a decoy or an undisclosed claim
            claim = disclosure.name
            if claim is None:
                raise InvalidDisclosure("array-element disclosure referenced from an object")
            if claim in out or claim in obj:
                raise InvalidDisclosure(f"disclosure would overwrite the claim {claim!r}")
            child_path = (*path, claim)
            self.used[digest] = child_path
            disclosed = disclosure.value
            if collect or isinstance(disclosed, _CONTAINERS):
                out[claim] = self.value(disclosed, child_path, depth)
            else:
                out[claim] = disclosed
        return out

    def _claim_digest(self, digest: Any) -> Disclosure | None:
        if not isinstance(digest, str):
            raise InvalidDisclosure("digests must be strings")
        if digest in self.seen:
            raise InvalidDisclosure("a digest is referenced more than once")
        self.seen.add(digest)
        return self.by_digest.get(digest)

    def array(self, array: list[Any], path: ClaimPath, depth: int) -> list[Any]:
        if depth > self.max_depth:
            raise InputTooLarge(f"claims nested deeper than {self.max_depth} levels")
        out: list[Any] = []
        for index, element in enumerate(array):
            child_path = (*path, index)
            if isinstance(element, dict) and ELLIPSIS_KEY in element:
                if len(element) != 1:
                    raise InvalidDisclosure("an array placeholder must only hold '...'")
                disclosure = self._claim_digest(element[ELLIPSIS_KEY])
                if disclosure is None:
                    continue
                if disclosure.name is not None:
                    raise InvalidDisclosure("object-property disclosure referenced from an array")
                self.used[element[ELLIPSIS_KEY]] = child_path
                out.append(self.value(disclosure.value, child_path, depth))
            else:
                out.append(self.value(element, child_path, depth))
        return out


def process_payload(
    payload: Mapping[str, Any],
    by_digest: Mapping[str, Disclosure],
    *,
    max_depth: int = 32,
    collect_paths: bool = False,
) -> ProcessedPayload:
    """Replace digests by disclosures and strip SD-JWT internals (``_sd``, ``_sd_alg``).

    Args:
        payload: The verified (or, for a holder, merely parsed) issuer JWT payload.
        by_digest: Decoded disclosures keyed by digest (see :func:`decode_all`).
        max_depth: Bound on nesting, counted through disclosed values too.
        collect_paths: Also return every visible claim path (the holder needs it).

    Raises:
        InvalidDisclosure: any §7.1 structural violation, or an unreferenced disclosure.
        InputTooLarge: nesting deeper than ``max_depth``.
    """
    walker = _Walker(by_digest, max_depth, collect_paths)
    claims = walker.obj(payload if isinstance(payload, dict) else dict(payload), (), 1)
    if len(walker.used) != len(by_digest):
        raise InvalidDisclosure("a disclosure is not referenced by any digest")
    used = walker.used
    ordered = tuple(
        [
            PathedDisclosure(disclosure, digest, used[digest])
            for digest, disclosure in by_digest.items()
        ]
    )
    return ProcessedPayload(
        claims=claims, disclosures=ordered, node_paths=frozenset(walker.node_paths)
    )
