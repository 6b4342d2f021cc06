"""Cases for type metadata (claim ``sd`` rules, ``vct#integrity``), KB-JWT ``exp``/``nbf``
and RFC 9864 fully-specified algorithms: each valid case with the negatives breaking it.

Cases with ``type_metadata`` give the verifier that Type Metadata document for the
``vct`` (its exact text; ``vct#integrity`` hashes its UTF-8 octets).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Collection
from typing import Any

from onceonly import jose
from onceonly.sdjwt import ClaimPath, issue_sd_jwt_vc, parse_sd_jwt, present, serialize_compact
from onceonly.sdjwt.type_metadata import TypeMetadata

from .context import NegativeContext
from .fixtures import (
    AUD,
    CLAIMS,
    DISCLOSABLE,
    DISCLOSE,
    EXPECTED_BASE_CLAIMS,
    EXPECTED_BASE_PATHS,
    EXPIRES_AT,
    HOLDER_KEY,
    ISSUED_AT,
    ISSUER,
    ISSUER_KEY,
    NONCE,
    NOW,
    VCT,
    Case,
    error,
    kb_custom,
    kb_payload,
    parts,
    payload_of,
    policy,
    salts,
    sign_jwt,
    valid,
    with_kb,
)

_SD: dict[tuple[Any, ...], str] = {
    ("given_name",): "always",
    ("family_name",): "always",
    ("birthdate",): "always",
    ("address",): "always",
    ("address", "street_address"): "always",
    ("address", "locality"): "always",
    ("address", "country"): "never",
    ("nationalities",): "never",
    ("nationalities", None): "always",
    ("age_equal_or_over",): "never",
    ("age_equal_or_over", "18"): "always",
    ("age_equal_or_over", "65"): "always",
}


def _document(**changes: Any) -> str:
    content: dict[str, Any] = {
        "vct": VCT,
        "name": "Example PID for the onceonly vectors",
        "claims": [{"path": list(path), "sd": sd} for path, sd in _SD.items()],
    }
    content.update(changes)
    return json.dumps(content, indent=2, ensure_ascii=False) + "\n"


DOCUMENT = _document()
METADATA = TypeMetadata.from_document(DOCUMENT.encode("utf-8"))
ALL_ALGS = ["ES256", "EdDSA", "ESP256", "Ed25519"]


def _issued(
    label: str, disclosable: Collection[ClaimPath], **options: Any
) -> tuple[str, list[str]]:
    issued = issue_sd_jwt_vc(
        issuer=ISSUER,
        vct=VCT,
        claims=CLAIMS,
        disclosable=disclosable,
        holder_key=options.pop("holder_public", HOLDER_KEY.public()),
        signing_key=options.pop("signing_key", ISSUER_KEY),
        now=ISSUED_AT,
        expires_at=EXPIRES_AT,
        random_bytes=salts(label),
        **options,
    )
    return issued.issuer_jwt, [d.disclosure.encoded for d in issued.disclosures]


def _presented(
    issuer_jwt: str,
    disclosures: list[str],
    disclose: Collection[ClaimPath] = DISCLOSE,
    holder: jose.PrivateKey = HOLDER_KEY,
) -> str:
    view = parse_sd_jwt(serialize_compact(issuer_jwt, disclosures))
    return present(view, disclose=disclose, holder_key=holder, aud=AUD, nonce=NONCE, now=NOW - 5)


def _with_integrity(issuer_jwt: str, integrity: str) -> str:
    """The same payload re-signed with ``vct#integrity`` (what a non-compliant issuer signs)."""
    return sign_jwt(payload_of(issuer_jwt) | {"vct#integrity": integrity})


def metadata_cases(ctx: NegativeContext) -> None:
    """Claim metadata ``sd`` always/never and ``vct#integrity`` checked by the verifier."""
    pub = ISSUER_KEY.public()
    jwt, discs = _issued("metadata", DISCLOSABLE, type_metadata=METADATA)
    ctx.cases.append(
        Case(
            "valid_type_metadata",
            "Issued under the Type Metadata in type_metadata (sd rules met), with vct#integrity.",
            "draft-ietf-oauth-sd-jwt-vc: Claim Selective Disclosure Metadata, Document Integrity",
            _presented(jwt, discs),
            valid(
                {**EXPECTED_BASE_CLAIMS, "vct#integrity": METADATA.integrity}, EXPECTED_BASE_PATHS
            ),
            policy(),
            pub,
            type_metadata=DOCUMENT,
        )
    )

    def neg(name: str, description: str, presentation: str, code: str) -> None:
        ctx.cases.append(
            Case(
                name,
                description,
                "draft-ietf-oauth-sd-jwt-vc: Claim Metadata validation, Document Integrity",
                presentation,
                error(code),
                policy(),
                pub,
                "valid_type_metadata",
                type_metadata=DOCUMENT,
            )
        )

    plain = [path for path in DISCLOSABLE if path != ("given_name",)]
    jwt_plain, discs_plain = _issued("metadata-always", plain)
    neg(
        "sd_always_in_plain_view",
        "given_name is sd=always in the type metadata but sits in plain view in the payload.",
        _presented(_with_integrity(jwt_plain, METADATA.integrity), discs_plain),
        "claim_metadata_violation",
    )
    extra = [*DISCLOSABLE, ("address", "country")]
    jwt_never, discs_never = _issued("metadata-never", extra)
    neg(
        "sd_never_disclosed",
        "address.country is sd=never in the type metadata but arrives as a disclosure.",
        _presented(
            _with_integrity(jwt_never, METADATA.integrity),
            discs_never,
            [*DISCLOSE, ("address", "country")],
        ),
        "claim_metadata_violation",
    )
    other = TypeMetadata.from_document(_document(name="another version").encode("utf-8"))
    jwt_other, discs_other = _issued("metadata-other", DISCLOSABLE, type_metadata=other)
    neg(
        "vct_integrity_mismatch",
        "vct#integrity is the digest of another document than the verifier's type metadata.",
        _presented(jwt_other, discs_other),
        "integrity_mismatch",
    )
    neg(
        "vct_integrity_malformed",
        "vct#integrity is not W3C SRI integrity metadata (base64url digest, ':' separator).",
        _presented(_with_integrity(jwt, "sha256:" + jose.b64url_encode(b"\xfb" * 32)), discs),
        "invalid_claim",
    )


def kb_window_cases(ctx: NegativeContext) -> None:
    """A KB-JWT's own exp/nbf (RFC 9901 §7.3: a valid JWT in all other respects)."""
    jwt, discs = ctx.jwt, ctx.discs
    ctx.cases.append(
        Case(
            "valid_kb_exp_nbf",
            "The KB-JWT carries exp (in 120 s) and nbf (10 s ago).",
            "RFC 9901 §7.3, RFC 7519 §4.1.4-4.1.5",
            kb_custom(jwt, discs, kb_payload(jwt, discs, exp=NOW + 120, nbf=NOW - 10)),
            valid(EXPECTED_BASE_CLAIMS, EXPECTED_BASE_PATHS),
            policy(),
            ctx.pub,
        )
    )
    for name, description, changes, code in (
        ("kb_expired", "KB-JWT exp 60 s ago (leeway 60 s).", {"exp": NOW - 60}, "expired"),
        (
            "kb_nbf_in_future",
            "KB-JWT nbf 61 s ahead (leeway 60 s).",
            {"nbf": NOW + 61},
            "not_yet_valid",
        ),
    ):
        ctx.neg(
            name,
            description,
            "RFC 9901 §7.3, RFC 7519 §4.1.4-4.1.5",
            kb_custom(jwt, discs, kb_payload(jwt, discs, **changes)),
            code,
            sibling="valid_kb_exp_nbf",
        )


def algorithm_cases(ctx: NegativeContext) -> None:
    """RFC 9864 fully-specified Ed25519, and alg/key agreement."""
    issuer = dataclasses.replace(ISSUER_KEY, alg=jose.ED25519)
    holder = dataclasses.replace(HOLDER_KEY, alg=jose.ED25519)
    pinned_jwk = {**HOLDER_KEY.public().to_jwk(), "alg": "Ed25519"}
    pinned = jose.public_key_from_jwk(pinned_jwk)
    jwt, discs = _issued("rfc9864", DISCLOSABLE, signing_key=issuer, holder_public=pinned)
    pub = dataclasses.replace(ISSUER_KEY.public(), alg=jose.ED25519, alg_pinned=True)
    ctx.cases.append(
        Case(
            "valid_rfc9864_ed25519",
            "alg Ed25519 (RFC 9864) for the issuer JWT and the KB-JWT; cnf.jwk says alg Ed25519 "
            "as Web Crypto exports it.",
            "RFC 9864 §2.2, RFC 9901 §7.3",
            _presented(jwt, discs, holder=holder),
            valid({**EXPECTED_BASE_CLAIMS, "cnf": {"jwk": pinned_jwk}}, EXPECTED_BASE_PATHS),
            policy(allowed_algs=ALL_ALGS),
            pub,
        )
    )
    ctx.cases.append(
        Case(
            "kb_alg_not_the_cnf_alg",
            "cnf.jwk is pinned to alg Ed25519 but the KB-JWT says EdDSA (RFC 7517 §4.4).",
            "RFC 7517 §4.4, RFC 9864",
            with_kb(jwt, parts(_presented(jwt, discs, holder=holder))[1], key=HOLDER_KEY),
            error("unsupported_algorithm"),
            policy(allowed_algs=ALL_ALGS),
            pub,
            "valid_rfc9864_ed25519",
        )
    )
    mismatched = sign_jwt(
        payload_of(jwt) | {"cnf": {"jwk": {**pinned_jwk, "alg": "ESP256"}}}, issuer
    )
    ctx.cases.append(
        Case(
            "cnf_alg_wrong_key_type",
            "cnf.jwk is an Ed25519 key declaring alg ESP256 (a P-256 algorithm).",
            "RFC 9864 §2",
            with_kb(mismatched, parts(_presented(jwt, discs, holder=holder))[1], key=holder),
            error("invalid_claim"),
            policy(allowed_algs=ALL_ALGS),
            pub,
            "valid_rfc9864_ed25519",
        )
    )
