"""Verifying SD-JWT VC presentations (RFC 9901 §7, SD-JWT VC draft §3).

Order matters: nothing from the token is used before the issuer signature has
been checked with a key *the verifier* chose (a fixed key or its resolver; a
``jwk``/``x5c``/``jku`` header is never a key source), then disclosures are
processed, then claims, then key binding.

Key binding when the policy does not require it: a KB-JWT that is present is
still verified in full (signature by ``cnf``, ``typ``, ``iat``, ``exp``/``nbf`` when
present, ``sd_hash``; ``aud``/``nonce`` when the policy names them). Accepting a
broken one because "it was optional" would let an attacker's garbage ride along
unnoticed.

Type Metadata: when the policy holds metadata for the credential's ``vct``, its
claim ``sd`` rules and ``vct#integrity`` are checked too (see :mod:`type_metadata`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from onceonly import jose
from onceonly.errors import (
    InvalidClaim,
    InvalidDisclosure,
    KeyBindingError,
    KeyBindingMissing,
    MalformedInput,
    UnknownKey,
    UnsupportedAlgorithm,
)
from onceonly.jwt_claims import audience_admits, check_validity_window
from onceonly.sdjwt.claims import (
    LEGACY_SD_JWT_VC_TYP,
    NEVER_DISCLOSABLE,
    SD_JWT_VC_TYP,
    ClaimPath,
)
from onceonly.sdjwt.disclosures import DEFAULT_HASH_ALG, SD_ALG_KEY
from onceonly.sdjwt.integrity import parse_integrity, verify_integrity
from onceonly.sdjwt.key_binding import KeyBinding, verify_kb_jwt
from onceonly.sdjwt.processing import (
    ProcessedPayload,
    ProcessingLimits,
    decode_all,
    process_payload,
)
from onceonly.sdjwt.serialization import DEFAULT_MAX_PRESENTATION_BYTES, split_sd_jwt
from onceonly.sdjwt.type_metadata import TypeMetadata

MAX_LEEWAY_SECONDS: Final = 300
VCT_INTEGRITY: Final = "vct#integrity"

TypeMetadataResolver = Callable[[str], TypeMetadata | None]
"""The verifier's Type Metadata for a ``vct`` (``None``: it has none for that type)."""


@dataclass(frozen=True)
class VerificationPolicy:
    """What a verifier accepts. Invalid combinations raise ``ValueError`` at construction.

    Attributes:
        require_key_binding: Demand a KB-JWT signed by the ``cnf`` key.
        expected_audience: Required ``aud`` of the KB-JWT (mandatory with key binding).
        expected_nonce: Required ``nonce`` of the KB-JWT (mandatory with key binding).
        leeway_seconds: Clock skew tolerated for ``exp``/``nbf``/``iat`` (0..300).
        max_kb_age_seconds: How old a KB-JWT's ``iat`` may be.
        allowed_algs: Signature algorithms for issuer JWT and KB-JWT.
        accepted_hash_algs: ``_sd_alg`` values accepted.
        expected_vct: Required ``vct``, or ``None`` for any.
        expected_context: Required ``onceonly_context`` of the KB-JWT; ``None`` (an
            answer to a presentation request) refuses a KB-JWT that carries one.
        accept_legacy_typ: Also accept ``typ: vc+sd-jwt`` (pre-2024 drafts).
        max_presentation_bytes: Bound on the whole presentation.
        limits: Bounds on disclosures and nesting.
        type_metadata: The Type Metadata the verifier holds per ``vct``. When it
            has some for the credential's type, the credential must satisfy its
            claim ``sd`` rules and, if it carries ``vct#integrity``, match the
            document's octets. ``None``: no Type Metadata processing (a
            ``vct#integrity`` is still checked for syntax).
    """

    require_key_binding: bool = True
    expected_audience: str | None = None
    expected_nonce: str | None = None
    leeway_seconds: int = 60
    max_kb_age_seconds: int = 300
    allowed_algs: frozenset[str] = jose.SUPPORTED_ALGS
    accepted_hash_algs: frozenset[str] = frozenset({DEFAULT_HASH_ALG})
    expected_vct: str | None = None
    expected_context: str | None = None
    accept_legacy_typ: bool = False
    max_presentation_bytes: int = DEFAULT_MAX_PRESENTATION_BYTES
    limits: ProcessingLimits = field(default_factory=ProcessingLimits)
    type_metadata: TypeMetadataResolver | None = None

    def __post_init__(self) -> None:
        if self.require_key_binding and (not self.expected_audience or not self.expected_nonce):
            raise ValueError("key binding requires expected_audience and expected_nonce")
        if not 0 <= self.leeway_seconds <= MAX_LEEWAY_SECONDS:
            raise ValueError(f"leeway_seconds must be within 0..{MAX_LEEWAY_SECONDS}")
        if self.max_kb_age_seconds <= 0:
            raise ValueError("max_kb_age_seconds must be positive")
        if not self.allowed_algs or not set(self.allowed_algs) <= jose.SUPPORTED_ALGS:
            raise ValueError(f"allowed_algs must be a non-empty subset of {jose.SUPPORTED_ALGS}")
        if not self.accepted_hash_algs:
            raise ValueError("accepted_hash_algs must not be empty")


@dataclass(frozen=True)
class VerifiedCredential:
    """A presentation that passed every check.

    Attributes:
        claims: Processed claims: disclosed ones merged, ``_sd``/``_sd_alg``/``...``
            removed, undisclosed ones absent.
        issuer: ``iss``.
        vct: ``vct``.
        holder_key: The ``cnf.jwk`` key, if any.
        status: The ``status`` claim, if any.
        disclosed_paths: Paths of the claims revealed by disclosures.
        issued_at, expires_at, not_before: ``iat``, ``exp``, ``nbf``.
        key_binding: The verified KB-JWT content, or ``None``.
        issuer_header: The issuer JWT's protected header.
    """

    claims: dict[str, Any]
    issuer: str
    vct: str
    holder_key: jose.PublicKey | None
    status: dict[str, Any] | None
    disclosed_paths: frozenset[ClaimPath]
    issued_at: int | float
    expires_at: int | float | None
    not_before: int | float | None
    key_binding: KeyBinding | None
    issuer_header: dict[str, Any]


def _number(claims: dict[str, Any], name: str) -> int | float:
    value = claims.get(name)
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise InvalidClaim(f"'{name}' must be a number", detail={"claim": name})
    return value


def _optional_number(claims: dict[str, Any], name: str) -> int | float | None:
    return _number(claims, name) if name in claims else None


# Optional in the SD-JWT VC draft, required by onceonly's profile (specs/protocol.md,
# "Profile restrictions"); the error names the rule and its reason.
_PROFILE_REQUIRED: Final[dict[str, str]] = {
    "iss": "the trust list authorises issuers per credential type by their 'iss'",
    "iat": "an issuer's authority and key are judged at the time of issuance",
}


def _require_by_profile(claims: dict[str, Any], name: str) -> None:
    if name not in claims:
        raise InvalidClaim(
            f"'{name}' is optional in SD-JWT VC but required by the onceonly profile: "
            f"{_PROFILE_REQUIRED[name]}",
            detail={"claim": name, "rule": "onceonly-profile"},
        )


def _string(claims: dict[str, Any], name: str) -> str:
    value = claims.get(name)
    if not isinstance(value, str) or not value:
        raise InvalidClaim(f"'{name}' must be a non-empty string", detail={"claim": name})
    return value


def _holder_key(claims: dict[str, Any], required: bool) -> jose.PublicKey | None:
    cnf = claims.get("cnf")
    if cnf is None and "cnf" not in claims:
        if required:
            raise InvalidClaim("key binding required but the credential has no 'cnf'")
        return None
    if not isinstance(cnf, dict) or not isinstance(cnf.get("jwk"), dict):
        raise InvalidClaim("'cnf' must be an object with a 'jwk' object")
    if "d" in cnf["jwk"]:
        raise InvalidClaim("'cnf.jwk' contains private key material")
    try:
        return jose.public_key_from_jwk(cnf["jwk"])
    except (MalformedInput, UnsupportedAlgorithm) as exc:
        raise InvalidClaim(f"'cnf.jwk' is not a usable key: {exc.message}") from exc


def _type_metadata_for(policy: VerificationPolicy, vct: Any) -> TypeMetadata | None:
    if policy.type_metadata is None or not isinstance(vct, str):
        return None
    metadata = policy.type_metadata(vct)
    if metadata is not None and metadata.vct != vct:
        raise InvalidClaim(f"the type metadata found for {vct!r} describes another type")
    return metadata


def _check_type_metadata(
    claims: dict[str, Any], processed: ProcessedPayload, metadata: TypeMetadata | None
) -> None:
    if VCT_INTEGRITY in claims:
        try:
            parse_integrity(claims[VCT_INTEGRITY])
        except MalformedInput as exc:
            raise InvalidClaim(
                f"'vct#integrity' is not SRI integrity metadata: {exc.message}",
                detail={"claim": VCT_INTEGRITY},
            ) from exc
        if metadata is not None:
            verify_integrity(claims[VCT_INTEGRITY], metadata.document, what=VCT_INTEGRITY)
    if metadata is not None:
        metadata.check_received(
            visible=processed.node_paths, disclosed=[item.path for item in processed.disclosures]
        )


def _guarded(key: jose.PublicKey | jose.KeyResolver) -> jose.PublicKey | jose.KeyResolver:
    if isinstance(key, jose.PublicKey):
        return key

    def resolve(header: Mapping[str, Any], payload: Mapping[str, Any]) -> jose.PublicKey:
        # A resolver indexing a dict with an attacker-chosen kid must not turn
        # into a crash: an unknown key is a verification failure.
        try:
            return key(header, payload)
        except (LookupError, TypeError, ValueError) as exc:
            raise UnknownKey("the verifier knows no key for this issuer") from exc

    return resolve


def verify_presentation(
    text: str,
    *,
    issuer_key: jose.PublicKey | jose.KeyResolver,
    policy: VerificationPolicy,
    now: int,
) -> VerifiedCredential:
    """Verify an SD-JWT VC presentation (compact or JSON) completely.

    Args:
        text: The presentation as received.
        issuer_key: The issuer's key, or a resolver choosing among keys the
            verifier trusts from the (untrusted) header and payload.
        policy: What to require (see :class:`VerificationPolicy`).
        now: Current time, seconds since the epoch.

    Raises:
        OnceOnlyError: a subclass naming the first failed check (never a bare
            KeyError/ValueError/TypeError for bad input).
    """
    limits = policy.limits
    raw = split_sd_jwt(
        text, max_bytes=policy.max_presentation_bytes, max_disclosures=limits.max_disclosures
    )
    typ = SD_JWT_VC_TYP
    jws = jose.parse_compact(
        raw.issuer_jwt, max_bytes=policy.max_presentation_bytes, max_depth=limits.max_depth
    )
    header_typ = jws.header.get("typ")
    if (
        policy.accept_legacy_typ
        and isinstance(header_typ, str)
        and header_typ.lower().removeprefix("application/") == LEGACY_SD_JWT_VC_TYP
    ):
        typ = LEGACY_SD_JWT_VC_TYP
    jose.verify_compact(
        jws, _guarded(issuer_key), allowed_algs=policy.allowed_algs, expected_typ=typ
    )

    hash_alg = jws.payload.get(SD_ALG_KEY, DEFAULT_HASH_ALG)
    if not isinstance(hash_alg, str) or hash_alg not in policy.accepted_hash_algs:
        raise UnsupportedAlgorithm(f"'_sd_alg' {hash_alg!r} is not accepted")
    by_digest = decode_all(raw.disclosures, hash_alg, limits)
    # vct is never disclosable, so the signed payload names the type; visible
    # paths are only collected (a cost) when its metadata has rules to check.
    metadata = _type_metadata_for(policy, jws.payload.get("vct"))
    processed = process_payload(
        jws.payload, by_digest, max_depth=limits.max_depth, collect_paths=metadata is not None
    )
    claims = processed.claims
    for item in processed.disclosures:
        if len(item.path) == 1 and item.path[0] in NEVER_DISCLOSABLE:
            raise InvalidDisclosure(f"'{item.path[0]}' must not be selectively disclosed")

    _require_by_profile(claims, "iss")
    issuer, vct = _string(claims, "iss"), _string(claims, "vct")
    if policy.expected_vct is not None and vct != policy.expected_vct:
        raise InvalidClaim(f"vct {vct!r} is not the expected type", detail={"claim": "vct"})
    _check_type_metadata(claims, processed, metadata)
    _require_by_profile(claims, "iat")
    iat = _number(claims, "iat")
    exp, nbf = _optional_number(claims, "exp"), _optional_number(claims, "nbf")
    check_validity_window(
        kind="sd-jwt",
        what="credential",
        now=now,
        leeway=policy.leeway_seconds,
        issued_at=iat,
        expires_at=exp,
        not_before=nbf,
    )
    # RFC 7519 §4.1.3: a recipient not named in a present 'aud' must reject.
    if "aud" in claims and not audience_admits(claims["aud"], policy.expected_audience):
        raise InvalidClaim(
            "the credential's 'aud' does not name this verifier", detail={"claim": "aud"}
        )
    status = claims.get("status")
    if status is not None and not isinstance(status, dict):
        raise InvalidClaim("'status' must be an object", detail={"claim": "status"})
    holder_key = _holder_key(claims, policy.require_key_binding)

    key_binding = None
    if raw.kb_jwt is None:
        if policy.require_key_binding:
            raise KeyBindingMissing("the presentation has no Key Binding JWT")
    else:
        if holder_key is None:
            raise KeyBindingError("a KB-JWT was presented but the credential has no 'cnf'")
        key_binding = verify_kb_jwt(
            raw.kb_jwt,
            sd_hash_input=raw.sd_hash_input,
            holder_key=holder_key,
            hash_alg=hash_alg,
            allowed_algs=policy.allowed_algs,
            expected_aud=policy.expected_audience,
            expected_nonce=policy.expected_nonce,
            now=now,
            leeway_seconds=policy.leeway_seconds,
            max_age_seconds=policy.max_kb_age_seconds,
            max_bytes=policy.max_presentation_bytes,
            expected_context=policy.expected_context,
        )
    return VerifiedCredential(
        claims=claims,
        issuer=issuer,
        vct=vct,
        holder_key=holder_key,
        status=status,
        disclosed_paths=frozenset([item.path for item in processed.disclosures]),
        issued_at=iat,
        expires_at=exp,
        not_before=nbf,
        key_binding=key_binding,
        issuer_header=jws.header,
    )
