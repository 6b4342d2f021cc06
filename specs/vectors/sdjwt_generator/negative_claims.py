"""Negative cases about claims, validity time, key binding, serialization and size."""

from __future__ import annotations

import json
from typing import Any

from onceonly import jose
from onceonly.sdjwt import serialize_compact

from .context import NegativeContext
from .fixtures import (
    AUD,
    HOLDER_KEY,
    ISSUED_AT,
    ISSUER,
    ISSUER_KEY,
    NO_KB,
    NOW,
    OTHER_KEY,
    VCT,
    issue,
    kb_custom,
    kb_payload,
    parts,
    sign_jwt,
    sign_raw,
    with_kb,
)


def claim_cases(ctx: NegativeContext) -> None:
    """Required claims, their types and the validity window."""
    base = ctx.base
    neg = ctx.neg
    resigned = ctx.resigned
    neg(
        "expired",
        "exp 120 s ago (leeway 60 s).",
        "RFC 9901 §7.1",
        resigned(exp=NOW - 120),
        "expired",
        sibling="valid_expired_within_leeway",
    )
    neg(
        "nbf_in_future",
        "nbf 120 s ahead.",
        "RFC 9901 §7.1",
        resigned(nbf=NOW + 120),
        "not_yet_valid",
    )
    neg(
        "iat_in_future",
        "iat 120 s ahead.",
        "RFC 9901 §7.1",
        resigned(iat=NOW + 120),
        "not_yet_valid",
    )
    neg(
        "iss_missing",
        "No iss.",
        "draft-ietf-oauth-sd-jwt-vc §3.2.2",
        resigned(iss=None),
        "invalid_claim",
    )
    neg(
        "iss_not_string",
        "iss is a number.",
        "draft-ietf-oauth-sd-jwt-vc §3.2.2",
        resigned(iss=42),
        "invalid_claim",
    )
    neg(
        "vct_missing",
        "No vct.",
        "draft-ietf-oauth-sd-jwt-vc §3.2.2.1",
        resigned(vct=None),
        "invalid_claim",
    )
    neg(
        "vct_not_string",
        "vct is an array.",
        "draft-ietf-oauth-sd-jwt-vc §3.2.2.1",
        resigned(vct=[VCT]),
        "invalid_claim",
    )
    neg(
        "vct_unexpected",
        "vct differs from the one the verifier asked for.",
        "draft-ietf-oauth-sd-jwt-vc §3.2.2.1",
        base,
        "invalid_claim",
        expected_vct="urn:eudi:other:1",
    )
    neg(
        "iat_missing",
        "No iat.",
        "draft-ietf-oauth-sd-jwt-vc §3.2.2.2",
        resigned(iat=None),
        "invalid_claim",
    )
    neg(
        "iat_not_number",
        "iat is a string.",
        "RFC 7519 §4.1.6",
        resigned(iat=str(ISSUED_AT)),
        "invalid_claim",
    )
    neg("exp_boolean", "exp is true.", "RFC 7519 §4.1.4", resigned(exp=True), "invalid_claim")
    neg(
        "status_not_object",
        "status is a string.",
        "draft-ietf-oauth-sd-jwt-vc §3.2.2.2",
        resigned(status="revoked"),
        "invalid_claim",
    )
    neg(
        "cnf_missing",
        "Key binding required, no cnf.",
        "RFC 9901 §7.3",
        resigned(cnf=None),
        "invalid_claim",
    )
    private_jwk = {**HOLDER_KEY.to_jwk()}
    neg(
        "cnf_private_key",
        "cnf.jwk includes the private 'd'.",
        "RFC 7800 §3.2",
        resigned(cnf={"jwk": private_jwk}),
        "invalid_claim",
    )
    neg(
        "cnf_unsupported_key",
        "cnf.jwk is an RSA key.",
        "RFC 7800 §3.2",
        resigned(cnf={"jwk": {"kty": "RSA", "n": "AQAB", "e": "AQAB"}}),
        "invalid_claim",
    )


def key_binding_cases(ctx: NegativeContext) -> None:
    """The KB-JWT: presence, typ, alg, key, aud, nonce, iat, sd_hash."""
    jwt = ctx.jwt
    discs = ctx.discs
    payload = ctx.payload
    base = ctx.base
    neg = ctx.neg
    unsigned_kb = ".".join(
        (
            jose.json_object_b64({"alg": "none", "typ": "kb+jwt"}),
            jose.json_object_b64(kb_payload(jwt, discs)),
            "",
        )
    )
    neg(
        "kb_missing",
        "Policy requires key binding; none presented.",
        "RFC 9901 §7.3",
        serialize_compact(jwt, discs),
        "key_binding_missing",
        sibling="valid_no_key_binding",
    )
    neg(
        "kb_typ_jwt",
        "KB-JWT typ JWT.",
        "RFC 9901 §4.3, §7.3",
        kb_custom(jwt, discs, kb_payload(jwt, discs), typ="JWT"),
        "invalid_typ",
    )
    neg(
        "kb_alg_none",
        "KB-JWT alg none.",
        "RFC 9901 §7.3",
        serialize_compact(
            jwt,
            discs,
            unsigned_kb,
        ),
        "unsupported_algorithm",
    )
    neg(
        "kb_wrong_key",
        "KB-JWT signed by a key other than cnf.",
        "RFC 9901 §7.3",
        with_kb(jwt, discs, key=OTHER_KEY),
        "key_binding",
    )
    neg(
        "kb_wrong_audience",
        "KB-JWT aud is another verifier.",
        "RFC 9901 §7.3",
        with_kb(jwt, discs, aud="@other:gov.example"),
        "audience_mismatch",
    )
    neg(
        "kb_audience_array",
        "KB-JWT aud is an array.",
        "RFC 9901 §4.3",
        kb_custom(jwt, discs, kb_payload(jwt, discs, aud=[AUD])),
        "key_binding",
    )
    neg(
        "kb_wrong_nonce",
        "KB-JWT nonce from another request.",
        "RFC 9901 §7.3",
        with_kb(jwt, discs, nonce="n-replayed"),
        "nonce_mismatch",
    )
    neg(
        "kb_context_identity_binding",
        "KB-JWT signed for identity binding (onceonly_context) shown as a presentation.",
        "RFC 9901 §4.3 (additional claims); onceonly spec section 11",
        kb_custom(jwt, discs, kb_payload(jwt, discs, onceonly_context="identity_binding")),
        "context_mismatch",
    )
    neg(
        "kb_context_missing",
        "An identity binding must carry onceonly_context; this KB-JWT has none.",
        "onceonly spec section 11",
        with_kb(jwt, discs),
        "context_mismatch",
        expected_context="identity_binding",
    )
    neg(
        "kb_iat_in_future",
        "KB-JWT iat 120 s ahead.",
        "RFC 9901 §7.3",
        with_kb(jwt, discs, now=NOW + 120),
        "not_yet_valid",
    )
    neg(
        "kb_too_old",
        "KB-JWT iat 1000 s ago (max age 300 s).",
        "RFC 9901 §7.3",
        with_kb(jwt, discs, now=NOW - 1000),
        "expired",
    )
    neg(
        "kb_iat_missing",
        "KB-JWT without iat.",
        "RFC 9901 §4.3",
        kb_custom(jwt, discs, kb_payload(jwt, discs, iat=None)),
        "key_binding",
    )
    neg(
        "kb_sd_hash_missing",
        "KB-JWT without sd_hash.",
        "RFC 9901 §4.3",
        kb_custom(jwt, discs, kb_payload(jwt, discs, sd_hash=None)),
        "key_binding",
    )
    dropped = serialize_compact(jwt, discs[1:], parts(base)[2])
    neg(
        "kb_sd_hash_mismatch",
        "A disclosure removed after the KB-JWT was made.",
        "RFC 9901 §7.3",
        dropped,
        "sd_hash_mismatch",
    )
    neg(
        "kb_broken_when_optional",
        "A KB-JWT the policy does not require still has to be valid.",
        "RFC 9901 §7.3",
        dropped,
        "sd_hash_mismatch",
        sibling="valid_kb_present_not_required",
        require_key_binding=False,
    )
    no_cnf = dict(payload)
    no_cnf.pop("cnf")
    neg(
        "kb_without_cnf",
        "KB-JWT presented for a credential with no cnf.",
        "RFC 9901 §7.3",
        with_kb(sign_jwt(no_cnf), discs),
        "key_binding",
        sibling="valid_kb_present_not_required",
        require_key_binding=False,
    )


def serialization_cases(ctx: NegativeContext) -> None:
    """Tildes, empty parts, duplicate keys, JSON forms and size bounds."""
    jwt = ctx.jwt
    discs = ctx.discs
    payload = ctx.payload
    base = ctx.base
    neg = ctx.neg
    crafted = ctx.crafted
    neg(
        "no_tilde",
        "The issuer JWT alone (an SD-JWT must end with '~').",
        "RFC 9901 §4",
        jwt,
        "malformed",
        sibling="valid_no_key_binding",
        **NO_KB,
    )
    neg(
        "empty_disclosure_component",
        "Two consecutive '~'.",
        "RFC 9901 §4",
        with_kb(jwt, discs).replace("~", "~~", 1),
        "malformed",
    )
    neg(
        "issuer_jwt_empty",
        "Nothing before the first '~'.",
        "RFC 9901 §4",
        "~" + "~".join(discs) + "~",
        "malformed",
        sibling="valid_no_key_binding",
        **NO_KB,
    )
    duplicate = sign_raw(
        json.dumps({"alg": "EdDSA", "typ": "dc+sd-jwt"}),
        json.dumps(payload, ensure_ascii=False)[:-1] + f', "iss": "{ISSUER}"}}',
        ISSUER_KEY,
    )
    neg(
        "payload_duplicate_json_key",
        "The payload repeats iss.",
        "RFC 7519 §4, RFC 8259 §4",
        with_kb(duplicate, discs),
        "duplicate_json_key",
    )
    dup_header = sign_raw(
        '{"alg":"EdDSA","typ":"dc+sd-jwt","typ":"dc+sd-jwt"}',
        json.dumps(payload, ensure_ascii=False),
        ISSUER_KEY,
    )
    neg(
        "header_duplicate_json_key",
        "The header repeats typ.",
        "RFC 7515 §4",
        with_kb(dup_header, discs),
        "duplicate_json_key",
    )
    neg(
        "payload_not_object",
        "The payload is an array.",
        "RFC 7519 §7.2",
        with_kb(
            sign_raw(json.dumps({"alg": "EdDSA", "typ": "dc+sd-jwt"}), "[1]", ISSUER_KEY), discs
        ),
        "malformed",
    )
    deep: Any = "x"
    for _ in range(40):
        deep = {"n": deep}
    neg(
        "payload_too_deep",
        "Claims nested 40 levels deep (bound 32).",
        "onceonly size bounds (specs/vectors/README.md)",
        crafted({"deep": deep}, []),
        "too_large",
    )
    neg(
        "presentation_too_large",
        "Presentation above the policy's byte bound.",
        "onceonly size bounds (specs/vectors/README.md)",
        base,
        "too_large",
        max_presentation_bytes=1024,
    )
    neg(
        "too_many_disclosures",
        "More disclosures than the policy allows.",
        "onceonly size bounds (specs/vectors/README.md)",
        base,
        "too_large",
        max_disclosures=3,
    )
    two_sigs = json.loads(issue("json").serialize_json(general=True))
    two_sigs["signatures"].append(dict(two_sigs["signatures"][0]))
    neg(
        "json_two_signatures",
        "General JSON with two issuer signatures.",
        "RFC 9901 §8",
        json.dumps(two_sigs),
        "malformed",
        sibling="valid_json_general",
    )
    flat = json.loads(issue("json").serialize_json())
    flat["header"]["alg"] = "none"
    neg(
        "json_unexpected_header_member",
        "Unprotected header with a member other than disclosures/kb_jwt.",
        "RFC 9901 §8",
        json.dumps(flat),
        "malformed",
        sibling="valid_json_flattened",
    )
