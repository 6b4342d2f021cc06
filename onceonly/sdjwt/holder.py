"""The holder's side: read a received SD-JWT and present a minimal subset.

The holder does not need the issuer's key to decide what to disclose, so
:func:`parse_sd_jwt` checks structure only (the wallet verifies with the
issuer key separately, via :func:`~onceonly.sdjwt.verification.verify_presentation`
with ``require_key_binding=False``).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from onceonly import jose
from onceonly.errors import (
    InvalidDisclosure,
    KeyBindingError,
    MalformedInput,
    QueryNotSatisfied,
    UnsupportedAlgorithm,
)
from onceonly.sdjwt.claims import ClaimPath, format_path, path_matches, validate_path
from onceonly.sdjwt.disclosures import DEFAULT_HASH_ALG, SD_ALG_KEY, hash_function
from onceonly.sdjwt.key_binding import create_kb_jwt
from onceonly.sdjwt.processing import (
    PathedDisclosure,
    ProcessingLimits,
    decode_all,
    process_payload,
)
from onceonly.sdjwt.serialization import (
    DEFAULT_MAX_PRESENTATION_BYTES,
    RawSdJwt,
    compact_without_kb,
    reserialize,
    split_sd_jwt,
)


@dataclass(frozen=True)
class SdJwt:
    """A parsed, *unverified* SD-JWT as a holder keeps it.

    Attributes:
        raw: The serialized parts.
        header: The issuer JWT's protected header.
        payload: The issuer JWT's payload (digests, not values).
        hash_alg: ``_sd_alg`` (``sha-256`` when absent).
        disclosures: Every disclosure with its claim path, in received order.
        claims: The claims with every disclosure applied (what the holder may show).
        claim_paths: Every claim path that exists in ``claims``.
    """

    raw: RawSdJwt
    header: dict[str, Any] = field(repr=False)
    payload: dict[str, Any] = field(repr=False)
    hash_alg: str
    disclosures: tuple[PathedDisclosure, ...]
    claims: dict[str, Any] = field(repr=False)
    claim_paths: frozenset[ClaimPath] = field(repr=False)

    @property
    def key_binding_jwt(self) -> str | None:
        """The KB-JWT if this was a presentation, else ``None``."""
        return self.raw.kb_jwt


def parse_sd_jwt(
    text: str,
    *,
    max_bytes: int = DEFAULT_MAX_PRESENTATION_BYTES,
    limits: ProcessingLimits | None = None,
) -> SdJwt:
    """Parse an SD-JWT (or SD-JWT+KB) and place every disclosure, without trusting it.

    Raises:
        MalformedInput, InputTooLarge, InvalidDisclosure, UnsupportedAlgorithm: bad structure.
    """
    limits = limits or ProcessingLimits()
    raw = split_sd_jwt(text, max_bytes=max_bytes, max_disclosures=limits.max_disclosures)
    jws = jose.parse_compact(raw.issuer_jwt, max_bytes=max_bytes, max_depth=limits.max_depth)
    hash_alg = jws.payload.get(SD_ALG_KEY, DEFAULT_HASH_ALG)
    hash_function(hash_alg)  # raises UnsupportedAlgorithm for unknown names
    by_digest = decode_all(raw.disclosures, hash_alg, limits)
    processed = process_payload(
        jws.payload, by_digest, max_depth=limits.max_depth, collect_paths=True
    )
    return SdJwt(
        raw=raw,
        header=jws.header,
        payload=jws.payload,
        hash_alg=hash_alg,
        disclosures=processed.disclosures,
        claims=processed.claims,
        claim_paths=processed.node_paths,
    )


def issued_paths(visible: Collection[ClaimPath]) -> dict[ClaimPath, ClaimPath]:
    """Map each visible node's path (array slots of the *signed* array) to its as-issued path.

    Processing names an array element by its slot in the signed array, where decoy
    digests take slots too (RFC 9901 §4.2.5 allows them in arrays). A claim path
    index means the position in the array as issued (SD-JWT VC "Claim Path"),
    decoys not counted: for a holder, who sees every element and no decoy, that is
    the element's rank among the visible elements of its array.

    Args:
        visible: Every visible node path, e.g. :attr:`SdJwt.claim_paths`.
    """
    nodes = sorted(set(visible), key=len)
    slots: dict[ClaimPath, list[int]] = {}
    for path in nodes:
        if path and isinstance(path[-1], int):
            slots.setdefault(path[:-1], []).append(path[-1])
    rank = {parent: {slot: i for i, slot in enumerate(sorted(s))} for parent, s in slots.items()}
    out: dict[ClaimPath, ClaimPath] = {(): ()}
    for path in nodes:
        parent, last = path[:-1], path[-1]
        out[path] = (*out[parent], rank[parent][last] if isinstance(last, int) else last)
    del out[()]
    return out


def _matches(paths: Collection[ClaimPath], pattern: ClaimPath) -> set[ClaimPath]:
    """The concrete claim paths ``pattern`` names among ``paths``."""
    if None not in pattern:
        return {pattern} if pattern in paths else set()
    return {path for path in paths if len(path) == len(pattern) and path_matches(pattern, path)}


def select_disclosures(sd_jwt: SdJwt, disclose: Collection[ClaimPath]) -> list[str]:
    """The encoded disclosures needed to reveal ``disclose`` (in issued order).

    For every claim a path names, that takes its own disclosure, the
    disclosures of the objects/arrays it sits in (without them the verifier
    cannot reach it) and every disclosure inside it (the whole value was asked
    for). Nothing else: a wildcard over array elements only opens the elements
    that actually have the requested claim. An index names the element's position
    in the array as issued (:func:`issued_paths`), also when the issuer put decoys
    into the array.

    Raises:
        QueryNotSatisfied: a requested path names no claim of this credential
            (a wildcard may match nothing, but the array it ranges over must exist).
        ValueError: a malformed path (programming error).
    """
    issued = issued_paths(sd_jwt.claim_paths)
    signed_at = {path: slot for slot, path in issued.items()}
    present = frozenset(signed_at)
    targets: set[ClaimPath] = set()
    for pattern in (validate_path(path) for path in disclose):
        found = _matches(present, pattern)
        if not found:
            anchor = pattern[: pattern.index(None)] if None in pattern else pattern
            if not anchor or anchor not in present or anchor == pattern:
                raise QueryNotSatisfied(f"the credential has no claim {format_path(pattern)}")
        targets |= {signed_at[path] for path in found}
    enclosing = {target[:depth] for target in targets for depth in range(1, len(target) + 1)}
    return [
        item.disclosure.encoded
        for item in sd_jwt.disclosures
        if item.path in enclosing
        or any(item.path[:depth] in targets for depth in range(1, len(item.path)))
    ]


def present(
    sd_jwt: SdJwt,
    *,
    disclose: Collection[ClaimPath],
    holder_key: jose.PrivateKey,
    aud: str,
    nonce: str,
    now: int,
    context: str | None = None,
) -> str:
    """Present the claims at ``disclose`` with a KB-JWT (SD-JWT+KB).

    ``context`` goes into the KB-JWT as ``onceonly_context`` (see
    :mod:`onceonly.sdjwt.key_binding`); ``None`` for an answer to a presentation request.

    The result keeps the serialization the SD-JWT came in (compact or JSON).

    Raises:
        QueryNotSatisfied: a requested path does not exist in the credential.
        KeyBindingError: ``holder_key`` is not the key in the credential's ``cnf``.
    """
    selected = select_disclosures(sd_jwt, disclose)
    return present_disclosures(
        sd_jwt,
        disclosures=selected,
        holder_key=holder_key,
        aud=aud,
        nonce=nonce,
        now=now,
        context=context,
    )


def present_disclosures(
    sd_jwt: SdJwt,
    *,
    disclosures: Collection[str],
    holder_key: jose.PrivateKey,
    aud: str,
    nonce: str,
    now: int,
    context: str | None = None,
) -> str:
    """Present exactly ``disclosures`` (encoded, as received) with a KB-JWT.

    For callers that already decided which disclosures to reveal (a DCQL match
    picks parents and earlier array elements itself); nothing is added. The
    disclosures are emitted in the order the SD-JWT holds them.

    Raises:
        InvalidDisclosure: a disclosure is not one of this SD-JWT's.
        KeyBindingError: ``holder_key`` is not the key in the credential's ``cnf``.
    """
    _check_holder_key(sd_jwt, holder_key)
    wanted = set(disclosures)
    selected = [item.disclosure.encoded for item in sd_jwt.disclosures]
    unknown = wanted.difference(selected)
    if unknown:
        raise InvalidDisclosure(f"{len(unknown)} disclosure(s) do not belong to this SD-JWT")
    selected = [encoded for encoded in selected if encoded in wanted]
    kb_jwt = create_kb_jwt(
        compact_without_kb(sd_jwt.raw.issuer_jwt, selected),
        holder_key=holder_key,
        aud=aud,
        nonce=nonce,
        now=now,
        hash_alg=sd_jwt.hash_alg,
        context=context,
    )
    return reserialize(sd_jwt.raw, selected, kb_jwt)


def present_without_key_binding(sd_jwt: SdJwt, *, disclose: Collection[ClaimPath]) -> str:
    """Present the claims at ``disclose`` as a plain SD-JWT (ends with ``~``, no KB-JWT).

    Only verifiers that do not require key binding (e.g. an offline audit of a
    credential's content) accept this.
    """
    return reserialize(sd_jwt.raw, select_disclosures(sd_jwt, disclose), None)


def _check_holder_key(sd_jwt: SdJwt, holder_key: jose.PrivateKey) -> None:
    cnf = sd_jwt.payload.get("cnf")
    jwk = cnf.get("jwk") if isinstance(cnf, dict) else None
    if not isinstance(jwk, dict):
        raise KeyBindingError("the credential has no cnf.jwk to bind a presentation to")
    try:
        bound = jose.public_key_from_jwk(jwk)
    except (MalformedInput, UnsupportedAlgorithm) as exc:
        raise KeyBindingError("the credential's cnf.jwk is not a usable public key") from exc
    if _raw_public(bound.key) != _raw_public(holder_key.key.public_key()):
        raise KeyBindingError("holder_key is not the key this credential is bound to")


def _raw_public(key: ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey) -> bytes:
    # Comparing encoded points is exact and much cheaper than JWK thumbprints.
    if isinstance(key, ec.EllipticCurvePublicKey):
        return key.public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
    return key.public_bytes(Encoding.Raw, PublicFormat.Raw)
