"""Issuing SD-JWT VCs (RFC 9901 §4-§5, SD-JWT VC draft §3).

Any claim can be made disclosable by its path: top-level claims, members of
nested objects, array elements, and - recursively - a disclosable object or
array whose own members are disclosable too. Salts and decoys come from the
caller's ``random_bytes`` so tests and vectors are reproducible and the core
never reaches for the OS.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from onceonly import jose
from onceonly.errors import ForbiddenDisclosableClaim, IssuanceError, ReservedClaimName
from onceonly.jose import b64url_encode
from onceonly.sdjwt.claims import (
    ISSUER_SET_CLAIMS,
    NEVER_DISCLOSABLE,
    SD_JWT_VC_TYP,
    ClaimPath,
    format_path,
    path_matches,
    validate_path,
)
from onceonly.sdjwt.disclosures import (
    ELLIPSIS_KEY,
    MIN_SALT_BYTES,
    RESERVED_NAMES,
    SD_ALG_KEY,
    SD_KEY,
    SUPPORTED_HASH_ALGS,
    encode_disclosure,
    hash_function,
    new_salt,
)
from onceonly.sdjwt.processing import PathedDisclosure
from onceonly.sdjwt.serialization import serialize_compact, serialize_json
from onceonly.sdjwt.type_metadata import TypeMetadata, claim_paths

DEFAULT_DECOYS: Final = 2
# Exact types value() returns unchanged (subclasses take the general path).
_LEAF_TYPES: Final = frozenset({str, int, float, bool, type(None)})
_PROTECTED_HEADER_NAMES: Final = frozenset({"alg", "typ", "crit", "jwk", "x5c", "jku"})


@dataclass(frozen=True)
class IssuedSdJwt:
    """A freshly issued SD-JWT VC (what the issuer sends to the holder).

    Attributes:
        issuer_jwt: The signed JWT (compact).
        disclosures: Every disclosure, each with its claim path and digest.
        payload: The signed payload (with digests, not claim values).
        hash_alg: The ``_sd_alg``.
    """

    issuer_jwt: str
    disclosures: tuple[PathedDisclosure, ...]
    payload: dict[str, Any] = field(repr=False)
    hash_alg: str = "sha-256"

    @property
    def header(self) -> dict[str, Any]:
        """The protected header, read back from the signed JWT."""
        header: dict[str, Any] = jose.strict_json_loads(
            jose.b64url_decode(self.issuer_jwt.split(".", 1)[0])
        )
        return header

    def serialize(self) -> str:
        """Compact form ``<jwt>~<d1>~...~<dN>~`` (every disclosure, no KB-JWT)."""
        return serialize_compact(self.issuer_jwt, [d.disclosure.encoded for d in self.disclosures])

    def serialize_json(self, *, general: bool = False) -> str:
        """RFC 9901 §8 JSON form (flattened by default)."""
        encoded = [d.disclosure.encoded for d in self.disclosures]
        return serialize_json(self.issuer_jwt, encoded, general=general)


class _Builder:
    """One issuance: turns plain claims into the payload with digests."""

    def __init__(
        self,
        patterns: tuple[ClaimPath, ...],
        decoys: int,
        random_bytes: Callable[[int], bytes],
        hash_alg: str,
    ) -> None:
        # Exact paths are looked up in a set; only wildcard patterns need a scan.
        self.exact = {p for p in patterns if None not in p}
        self.wildcards = [p for p in patterns if None in p]
        self.matched: set[ClaimPath] = set()
        self.decoys = decoys
        self.random_bytes = random_bytes
        self.hash_alg = hash_alg
        self.hasher = hash_function(hash_alg)
        self.disclosures: list[PathedDisclosure] = []

    def disclosable(self, path: ClaimPath) -> bool:
        hit = path in self.exact
        if hit:
            self.matched.add(path)
        if not self.wildcards:
            return hit
        for pattern in self.wildcards:
            if path_matches(pattern, path):
                self.matched.add(pattern)
                hit = True
        return hit

    def conceal(self, name: str | None, value: Any, path: ClaimPath) -> str:
        disclosure = encode_disclosure(new_salt(self.random_bytes), name, value)
        digest = b64url_encode(self.hasher(disclosure.encoded.encode("ascii")).digest())
        self.disclosures.append(PathedDisclosure(disclosure, digest, path))
        return digest

    def value(self, value: Any, path: ClaimPath) -> Any:
        if isinstance(value, str | int | float | bool | None):
            return value  # the common leaf: skip the (slow) Mapping ABC check
        if isinstance(value, Mapping):
            return self.obj(value, path)
        if isinstance(value, list | tuple):
            return self.array(value, path)
        return value

    def obj(self, obj: Mapping[str, Any], path: ClaimPath) -> dict[str, Any]:
        out: dict[str, Any] = {}
        digests: list[str] = []
        for name, child in obj.items():
            if not isinstance(name, str):
                raise ReservedClaimName(f"claim names must be strings, got {name!r}")
            # _sd_alg is only meaningful at the top level, where the issuer sets it;
            # verifiers reject it anywhere else, so refuse to produce it.
            if name in RESERVED_NAMES or name == SD_ALG_KEY:
                raise ReservedClaimName(f"claim name {name!r} is reserved by SD-JWT")
            child_path = (*path, name)
            # Plain values (most claims) skip the call into value().
            processed = child if type(child) in _LEAF_TYPES else self.value(child, child_path)
            if self.disclosable(child_path):
                digests.append(self.conceal(name, processed, child_path))
            else:
                out[name] = processed
        # Decoys hide how many claims an object really has; only worth it where
        # something is hidden (and always at the top level).
        if digests or not path:
            # decoy_digest's work, with the hash function already resolved.
            draw, hasher = self.random_bytes, self.hasher
            digests.extend(
                b64url_encode(hasher(draw(MIN_SALT_BYTES)).digest()) for _ in range(self.decoys)
            )
        if digests:
            out[SD_KEY] = sorted(digests)  # sorted, so order reveals nothing
        return out

    def array(self, array: list[Any] | tuple[Any, ...], path: ClaimPath) -> list[Any]:
        out: list[Any] = []
        for index, element in enumerate(array):
            child_path = (*path, index)
            processed = self.value(element, child_path)
            if self.disclosable(child_path):
                out.append({ELLIPSIS_KEY: self.conceal(None, processed, child_path)})
            else:
                out.append(processed)
        return out


def _check_inputs(
    claims: Mapping[str, Any],
    patterns: tuple[ClaimPath, ...],
    hash_alg: str,
    extra_header: Mapping[str, Any] | None,
    decoys: int,
) -> None:
    for name in claims:
        if name in ISSUER_SET_CLAIMS:
            raise ReservedClaimName(f"claim {name!r} is set from issue_sd_jwt_vc's arguments")
    for pattern in patterns:
        if pattern[0] in NEVER_DISCLOSABLE or pattern[0] in ISSUER_SET_CLAIMS:
            raise ForbiddenDisclosableClaim(f"claim {pattern[0]!r} must stay always visible")
    if hash_alg not in SUPPORTED_HASH_ALGS:
        raise IssuanceError(f"hash algorithm {hash_alg!r} is not supported")
    if extra_header and _PROTECTED_HEADER_NAMES & set(extra_header):
        raise IssuanceError("extra_header may not set alg, typ, crit or key-carrying headers")
    if decoys < 0:
        raise IssuanceError("decoys must be >= 0")


def issue_sd_jwt_vc(
    *,
    issuer: str,
    vct: str,
    claims: Mapping[str, Any],
    disclosable: Collection[ClaimPath],
    holder_key: jose.PublicKey,
    signing_key: jose.PrivateKey,
    now: int,
    expires_at: int,
    not_before: int | None = None,
    status: Mapping[str, Any] | None = None,
    decoys: int = DEFAULT_DECOYS,
    random_bytes: Callable[[int], bytes],
    hash_alg: str = "sha-256",
    extra_header: Mapping[str, Any] | None = None,
    type_metadata: TypeMetadata | None = None,
) -> IssuedSdJwt:
    """Issue an SD-JWT VC bound to ``holder_key``.

    Args:
        issuer: ``iss`` (the agency's identifier).
        vct: The credential type.
        claims: The subject's claims (without ``iss``/``iat``/``exp``/... which
            come from the other arguments).
        disclosable: Paths of claims to make selectively disclosable; ``None``
            in a path means every element of that array.
        holder_key: The holder's public key, published as ``cnf.jwk``.
        signing_key: The issuer's key (its ``kid`` goes into the header).
        now: ``iat``, seconds since the epoch.
        expires_at: ``exp``; must be after ``now``.
        not_before: Optional ``nbf``.
        status: Optional ``status`` claim (e.g. a status list reference).
        decoys: Decoy digests per object that hides something (and at the top level).
        random_bytes: Randomness source, ``random_bytes(n) -> n bytes`` (e.g. ``os.urandom``).
        hash_alg: ``_sd_alg`` (IANA name).
        extra_header: More protected header members (not alg/typ/crit/jwk/x5c/jku).
        type_metadata: The type's metadata (its ``vct`` must be ``vct``): the
            credential must meet its claim ``sd`` and ``mandatory`` rules, and
            carries ``vct#integrity`` over the document.

    Raises:
        ClaimMetadataNotMet: the credential would break ``type_metadata``.
        ForbiddenDisclosableClaim: a path starts at an always-visible claim.
        ReservedClaimName: ``_sd``/``...`` used as a claim name, or an issuer-set claim given.
        IssuanceError: a disclosable path names no claim, or bad arguments.
    """
    patterns = tuple(validate_path(path) for path in disclosable)
    _check_inputs(claims, patterns, hash_alg, extra_header, decoys)
    if expires_at <= now:
        raise IssuanceError("expires_at must be after now")
    builder = _Builder(patterns, decoys, random_bytes, hash_alg)
    body = builder.obj(claims, ())
    missing = [p for p in patterns if p not in builder.matched]
    if missing:
        raise IssuanceError(
            "disclosable paths name no claim: " + ", ".join(format_path(p) for p in missing)
        )
    if type_metadata is not None:
        if type_metadata.vct != vct:
            raise IssuanceError(f"the type metadata describes {type_metadata.vct!r}, not {vct!r}")
        type_metadata.check_issued(
            visible=claim_paths(claims), disclosed=[d.path for d in builder.disclosures]
        )
    payload: dict[str, Any] = {"iss": issuer, "iat": now}
    if not_before is not None:
        payload["nbf"] = not_before
    payload["exp"] = expires_at
    payload["vct"] = vct
    if type_metadata is not None:
        payload["vct#integrity"] = type_metadata.integrity
    payload["cnf"] = {"jwk": holder_key.to_jwk()}
    if status is not None:
        payload["status"] = dict(status)
    payload.update(body)
    payload[SD_ALG_KEY] = hash_alg
    issuer_jwt = jose.sign_compact(
        payload, signing_key, typ=SD_JWT_VC_TYP, extra_header=extra_header
    )
    return IssuedSdJwt(
        issuer_jwt=issuer_jwt,
        disclosures=tuple(builder.disclosures),
        payload=payload,
        hash_alg=hash_alg,
    )
