"""Signing and verifying the trust list as a compact JWS (pure: ``now`` is an argument).

The verifying party configures its trust anchors (one or more authority public
keys). The list itself never names its signer: headers that carry or point to a
key (``jwk``, ``jku``, ``x5c``, ``x5u``) are refused, so a forged list cannot
bring its own key along.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from pydantic import ValidationError

from onceonly import jose
from onceonly.errors import (
    Expired,
    InvalidSignature,
    MalformedInput,
    NotYetValid,
    TrustListConflict,
    TrustListRollback,
    UnknownKey,
)
from onceonly.trust.model import TrustList, TrustListDraft

TRUST_LIST_TYP: Final = "trust-list+jwt"
"""The JOSE ``typ`` of a signed trust list."""

MAX_TRUST_LIST_BYTES: Final = 1024 * 1024
DEFAULT_LEEWAY_SECONDS: Final = 60
_KEY_CARRYING_HEADERS: Final = ("jwk", "jku", "x5c", "x5u", "x5t", "x5t#S256")


@dataclass(frozen=True)
class VerifiedTrustList:
    """A trust list whose signature was checked against a configured anchor.

    Attributes:
        token: The compact JWS exactly as received (what caches store and republish).
        trust_list: The parsed payload; its methods answer policy questions.
        anchor: The trust anchor whose key verified it.
    """

    token: str
    trust_list: TrustList
    anchor: jose.PublicKey


def build_trust_list(
    draft: TrustListDraft, *, sequence: int, now: int, valid_for_seconds: int
) -> TrustList:
    """Turn a draft into the payload of a list valid from ``now`` for ``valid_for_seconds``.

    Raises:
        MalformedInput: ``valid_for_seconds`` is not positive or ``sequence`` < 1.
    """
    if valid_for_seconds <= 0:
        raise MalformedInput("a trust list must be valid for a positive duration")
    try:
        return TrustList(
            iss=draft.iss,
            name=draft.name,
            seq=sequence,
            iat=now,
            nbf=now,
            exp=now + valid_for_seconds,
            agencies=draft.agencies,
        )
    except ValidationError as exc:
        raise MalformedInput(f"invalid trust list: {_first_error(exc)}") from exc


def sign_trust_list(trust_list: TrustList, key: jose.PrivateKey) -> str:
    """Sign ``trust_list`` with the authority key; ``kid`` defaults to the key's thumbprint."""
    signer = key if key.kid is not None else jose.PrivateKey(key.alg, key.key, _anchor_kid(key))
    return jose.sign_compact(trust_list.model_dump(mode="json"), signer, typ=TRUST_LIST_TYP)


def _anchor_kid(key: jose.PrivateKey | jose.PublicKey) -> str:
    public = key.public() if isinstance(key, jose.PrivateKey) else key
    return public.kid or public.thumbprint()


def _first_error(exc: ValidationError) -> str:
    first = exc.errors()[0]
    where = ".".join(str(part) for part in first["loc"])
    return f"{where}: {first['msg']}" if where else str(first["msg"])


def parse_trust_list_payload(payload: Mapping[str, Any]) -> TrustList:
    """Validate a decoded payload as a :class:`TrustList`.

    Raises:
        MalformedInput: it does not match the model exactly.
    """
    try:
        return TrustList.model_validate(dict(payload))
    except ValidationError as exc:
        raise MalformedInput(f"malformed trust list: {_first_error(exc)}") from exc


def verify_trust_list_signature(token: str, anchors: Sequence[jose.PublicKey]) -> VerifiedTrustList:
    """Check structure, ``typ`` and the signature against the anchors; ignore time.

    Used for the locally cached list, whose age is judged separately.

    Raises:
        MalformedInput: not a compact JWS, key-carrying header, or bad payload.
        InvalidTokenType, UnsupportedAlgorithm: wrong ``typ`` or algorithm.
        InvalidSignature: no configured anchor verifies it.
        UnknownKey: no anchors configured.
    """
    if not anchors:
        raise UnknownKey("no trust anchor configured")
    jws = jose.parse_compact(token, max_bytes=MAX_TRUST_LIST_BYTES)
    carried = [name for name in _KEY_CARRYING_HEADERS if name in jws.header]
    if carried:
        raise MalformedInput(f"trust list header must not carry keys ({', '.join(carried)})")
    jose.check_header(jws.header, allowed_algs=jose.SUPPORTED_ALGS, expected_typ=TRUST_LIST_TYP)
    # The kid is only a hint for ordering; every anchor of the right algorithm is tried,
    # so an anchor configured without a kid still works.
    kid = jws.header.get("kid")
    ordered = sorted(anchors, key=lambda anchor: _anchor_kid(anchor) != kid)
    for anchor in ordered:
        if anchor.alg != jws.header["alg"]:
            continue
        try:
            jose.verify_compact(jws, anchor, expected_typ=TRUST_LIST_TYP)
        except InvalidSignature:
            continue
        return VerifiedTrustList(token, parse_trust_list_payload(jws.payload), anchor)
    raise InvalidSignature("trust list is not signed by a configured trust anchor")


def check_validity_period(
    trust_list: TrustList, *, now: int, leeway: int = DEFAULT_LEEWAY_SECONDS
) -> None:
    """Raise unless ``now`` lies in ``[nbf, exp)`` (with ``leeway`` seconds of clock skew).

    Raises:
        Expired: ``now`` is at or after ``exp`` + leeway.
        NotYetValid: ``now`` is before ``nbf`` (or ``iat``) - leeway.
    """
    if now >= trust_list.exp + leeway:
        raise Expired(
            f"trust list {trust_list.seq} expired at {trust_list.exp}",
            detail={"seq": trust_list.seq, "exp": trust_list.exp},
        )
    if now + leeway < max(trust_list.nbf, trust_list.iat):
        raise NotYetValid(
            f"trust list {trust_list.seq} is not valid before {trust_list.nbf}",
            detail={"seq": trust_list.seq, "nbf": trust_list.nbf},
        )


def check_not_rollback(candidate: TrustList, cached: TrustList | None) -> None:
    """Refuse a list older than the cached one, or a different list with the same number.

    Raises:
        TrustListRollback: ``candidate.seq`` < ``cached.seq``.
        TrustListConflict: same ``seq``, different content.
    """
    if cached is None:
        return
    if candidate.seq < cached.seq:
        raise TrustListRollback(
            f"trust list {candidate.seq} is older than the cached list {cached.seq}",
            detail={"seq": candidate.seq, "cached_seq": cached.seq},
        )
    if candidate.seq == cached.seq and candidate != cached:
        raise TrustListConflict(
            f"trust list {candidate.seq} differs from the cached list with the same number",
            detail={"seq": candidate.seq},
        )


def verify_trust_list(
    token: str,
    anchors: Sequence[jose.PublicKey],
    *,
    now: int,
    cached: TrustList | None = None,
    leeway: int = DEFAULT_LEEWAY_SECONDS,
) -> VerifiedTrustList:
    """Fully verify a received trust list: signature, validity period, no rollback.

    Args:
        token: The compact JWS (from a state event or a file).
        anchors: The party's configured authority keys.
        now: Current Unix time.
        cached: The list the party holds already, if any.
        leeway: Allowed clock skew in seconds.

    Raises:
        MalformedInput, InvalidSignature, InvalidTokenType, UnsupportedAlgorithm,
        Expired, NotYetValid, TrustListRollback, TrustListConflict.
    """
    verified = verify_trust_list_signature(token, anchors)
    check_validity_period(verified.trust_list, now=now, leeway=leeway)
    check_not_rollback(verified.trust_list, cached)
    return verified
