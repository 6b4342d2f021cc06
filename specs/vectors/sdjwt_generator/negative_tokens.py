"""Negative cases about the issuer JWT, the disclosures and the digests that reference them."""

from __future__ import annotations

import hmac
import json

from onceonly import jose
from onceonly.sdjwt.disclosures import digest_of

from .context import NegativeContext
from .fixtures import (
    EXPIRES_AT,
    ISSUER_KEY,
    OTHER_KEY,
    VCT,
    disclosure,
    sign_jwt,
    sign_raw,
    with_kb,
)


def header_cases(ctx: NegativeContext) -> None:
    """alg, typ, crit, signature, key source and _sd_alg."""
    jwt = ctx.jwt
    discs = ctx.discs
    payload = ctx.payload
    base = ctx.base
    neg = ctx.neg
    resigned = ctx.resigned
    unsigned = f"{jose.json_object_b64({'alg': 'none', 'typ': 'dc+sd-jwt'})}.{jwt.split('.')[1]}."
    neg(
        "alg_none",
        "alg none, empty signature.",
        "RFC 9901 §7.1",
        with_kb(unsigned, discs),
        "unsupported_algorithm",
    )

    hs_input = f"{jose.json_object_b64({'alg': 'HS256', 'typ': 'dc+sd-jwt'})}.{jwt.split('.')[1]}"
    hs_key = json.dumps(ctx.pub.to_jwk()).encode()
    hs_sig = jose.b64url_encode(hmac.new(hs_key, hs_input.encode(), "sha256").digest())
    neg(
        "alg_hs256_key_confusion",
        "HS256 keyed with the issuer's public JWK.",
        "RFC 9901 §7.1, RFC 8725 §3.1",
        with_kb(f"{hs_input}.{hs_sig}", discs),
        "unsupported_algorithm",
    )
    neg(
        "typ_wrong",
        "typ example+sd-jwt.",
        "draft-ietf-oauth-sd-jwt-vc §3.2.1",
        with_kb(sign_jwt(payload, typ="example+sd-jwt"), discs),
        "invalid_typ",
    )
    neg(
        "typ_legacy_not_accepted",
        "typ vc+sd-jwt without the policy opting in.",
        "draft-ietf-oauth-sd-jwt-vc §3.2.1",
        with_kb(sign_jwt(payload, typ="vc+sd-jwt"), discs),
        "invalid_typ",
        sibling="valid_legacy_typ",
    )
    neg(
        "typ_missing",
        "No typ header.",
        "draft-ietf-oauth-sd-jwt-vc §3.2.1",
        with_kb(
            sign_raw(
                json.dumps({"alg": "EdDSA"}), json.dumps(payload, ensure_ascii=False), ISSUER_KEY
            ),
            discs,
        ),
        "invalid_typ",
    )
    neg(
        "crit_header",
        "crit names an extension we do not understand.",
        "RFC 7515 §4.1.11",
        with_kb(sign_jwt(payload, crit=["x-ext"], **{"x-ext": 1}), discs),
        "malformed",
    )
    neg(
        "signature_invalid",
        "Payload changed after signing.",
        "RFC 9901 §7.1",
        with_kb(
            f"{jwt.split('.')[0]}.{jose.json_object_b64(payload | {'iss': 'https://evil.example'})}.{jwt.split('.')[2]}",
            discs,
        ),
        "invalid_signature",
    )
    neg(
        "embedded_jwk_not_a_key_source",
        "Signed by an attacker key carried in a jwk header.",
        "RFC 9901 §7.1, RFC 8725 §3.2",
        with_kb(sign_jwt(payload, OTHER_KEY, jwk=OTHER_KEY.public().to_jwk()), discs),
        "invalid_signature",
    )
    neg(
        "issuer_alg_not_allowed",
        "EdDSA issuer signature, policy allows only ES256.",
        "RFC 9901 §7.1",
        base,
        "unsupported_algorithm",
        allowed_algs=["ES256"],
    )
    neg(
        "sd_alg_not_accepted",
        "_sd_alg sha-512 with a policy accepting only sha-256.",
        "RFC 9901 §4.1.1",
        resigned(_sd_alg="sha-512"),
        "unsupported_algorithm",
        sibling="valid_sha512",
    )
    neg(
        "sd_alg_unknown",
        "_sd_alg md5.",
        "RFC 9901 §4.1.1",
        resigned(_sd_alg="md5"),
        "unsupported_algorithm",
    )
    neg(
        "sd_alg_not_string",
        "_sd_alg is a number.",
        "RFC 9901 §4.1.1",
        resigned(_sd_alg=256),
        "unsupported_algorithm",
    )


def disclosure_cases(ctx: NegativeContext) -> None:
    """Disclosure shapes and reference rules (RFC 9901 §4.2, §7.1 steps 3-4)."""
    jwt = ctx.jwt
    discs = ctx.discs
    neg = ctx.neg
    crafted = ctx.crafted

    def bad_disclosure(
        name: str, description: str, encoded: str, code: str = "invalid_disclosure"
    ) -> None:
        neg(
            name,
            description,
            "RFC 9901 §4.2.1, §7.1",
            crafted({"_sd": [digest_of(encoded)]}, [encoded]),
            code,
        )

    bad_disclosure(
        "disclosure_four_elements", "Four-element array.", disclosure("c2FsdA", "a", 1, 2)
    )
    bad_disclosure("disclosure_one_element", "One-element array.", disclosure("c2FsdA"))
    bad_disclosure(
        "disclosure_not_array",
        "A JSON object, not an array.",
        jose.json_object_b64({"salt": "s", "name": "a"}),
    )
    bad_disclosure("disclosure_salt_not_string", "Salt is a number.", disclosure(12345, "a", 1))
    bad_disclosure(
        "disclosure_name_not_string", "Claim name is a number.", disclosure("c2FsdA", 7, 1)
    )
    bad_disclosure("disclosure_name_sd", "Claim name _sd.", disclosure("c2FsdA", "_sd", ["x"]))
    bad_disclosure(
        "disclosure_name_ellipsis", "Claim name '...'.", disclosure("c2FsdA", "...", "x")
    )
    bad_disclosure(
        "disclosure_not_json",
        "base64url of text that is not JSON.",
        jose.b64url_encode(b"[salt, a, 1"),
        "malformed",
    )
    bad_disclosure(
        "disclosure_not_base64url", "Characters outside base64url.", "WyJzYWx0IiwgImEiLCAxXQ=="
    )
    bad_disclosure(
        "disclosure_duplicate_json_key",
        "Disclosed object repeats a member name.",
        jose.b64url_encode(b'["c2FsdA","a",{"x":1,"x":2}]'),
        "duplicate_json_key",
    )

    # -- digest and reference rules
    given = disclosure("c2FsdC1naXZlbg", "given_name", "Mallory")
    neg(
        "disclosure_overwrites_claim",
        "Disclosure names a claim that is already visible.",
        "RFC 9901 §7.1",
        crafted({"given_name": "Zoë", "_sd": [digest_of(given)]}, [given]),
        "invalid_disclosure",
    )
    neg(
        "disclosure_overwrites_other_disclosure",
        "Two disclosures for the same name in one object.",
        "RFC 9901 §7.1",
        crafted(
            {
                "_sd": sorted(
                    [digest_of(given), digest_of(disclosure("c2FsdC0y", "given_name", "Eve"))]
                )
            },
            [given, disclosure("c2FsdC0y", "given_name", "Eve")],
        ),
        "invalid_disclosure",
    )
    neg(
        "digest_twice_in_sd",
        "The same digest twice in one _sd.",
        "RFC 9901 §7.1",
        crafted({"_sd": [digest_of(given), digest_of(given)]}, [given]),
        "invalid_disclosure",
    )
    neg(
        "decoy_digest_twice",
        "A decoy digest used twice.",
        "RFC 9901 §7.1",
        crafted({"_sd": [digest_of("d1")], "address": {"_sd": [digest_of("d1")]}}, []),
        "invalid_disclosure",
    )
    street = disclosure("c2FsdC1zdHJlZXQ", "street", "Main 1")
    address = disclosure("c2FsdC1hZGRyZXNz", "address", {"_sd": [digest_of(street)]})
    neg(
        "digest_twice_recursive",
        "A digest referenced at the top and again inside a disclosed object.",
        "RFC 9901 §7.1",
        crafted({"_sd": sorted([digest_of(address), digest_of(street)])}, [address, street]),
        "invalid_disclosure",
    )
    element = disclosure("c2FsdC1lbGVtZW50", "DE")
    neg(
        "digest_twice_array_and_object",
        "An array-element digest also listed in _sd.",
        "RFC 9901 §7.1",
        crafted(
            {"nationalities": [{"...": digest_of(element)}], "_sd": [digest_of(element)]}, [element]
        ),
        "invalid_disclosure",
    )
    neg(
        "disclosure_unreferenced",
        "A disclosure no digest points to.",
        "RFC 9901 §7.1",
        with_kb(jwt, [*discs, disclosure("c2FsdC1leHRyYQ", "extra", 1)]),
        "invalid_disclosure",
    )
    neg(
        "disclosure_repeated",
        "The same disclosure sent twice.",
        "RFC 9901 §7.1",
        with_kb(jwt, [*discs, discs[0]]),
        "invalid_disclosure",
    )
    neg(
        "array_disclosure_in_object",
        "Two-element disclosure referenced from _sd.",
        "RFC 9901 §7.1",
        crafted({"_sd": [digest_of(element)]}, [element]),
        "invalid_disclosure",
    )
    neg(
        "object_disclosure_in_array",
        "Three-element disclosure referenced from an array.",
        "RFC 9901 §7.1",
        crafted({"nationalities": [{"...": digest_of(given)}]}, [given]),
        "invalid_disclosure",
    )
    neg(
        "array_placeholder_extra_member",
        "An array placeholder with a second member.",
        "RFC 9901 §4.2.4.2",
        crafted({"nationalities": [{"...": digest_of(element), "x": 1}]}, [element]),
        "invalid_disclosure",
    )
    neg(
        "ellipsis_in_object",
        "A '...' member outside an array.",
        "RFC 9901 §4.2.4.2",
        crafted({"address": {"...": digest_of(element)}}, []),
        "invalid_disclosure",
    )
    neg(
        "sd_not_array",
        "_sd is a string.",
        "RFC 9901 §4.2.4.1",
        crafted({"_sd": digest_of(given)}, []),
        "invalid_disclosure",
    )
    neg(
        "sd_digest_not_string",
        "_sd holds a number.",
        "RFC 9901 §4.2.4.1",
        crafted({"_sd": [1]}, []),
        "invalid_disclosure",
    )
    neg(
        "sd_alg_nested",
        "_sd_alg inside a nested object.",
        "RFC 9901 §4.1.1",
        crafted({"address": {"_sd_alg": "sha-256"}}, []),
        "invalid_disclosure",
    )
    exp_disclosure = disclosure("c2FsdC1leHA", "exp", EXPIRES_AT)
    neg(
        "exp_selectively_disclosed",
        "exp hidden behind a disclosure.",
        "draft-ietf-oauth-sd-jwt-vc §3.2.2.2",
        crafted({"exp": None, "_sd": [digest_of(exp_disclosure)]}, [exp_disclosure]),
        "invalid_disclosure",
    )
    vct_disclosure = disclosure("c2FsdC12Y3Q", "vct", VCT)
    neg(
        "vct_selectively_disclosed",
        "vct hidden behind a disclosure.",
        "draft-ietf-oauth-sd-jwt-vc §3.2.2.2",
        crafted({"vct": None, "_sd": [digest_of(vct_disclosure)]}, [vct_disclosure]),
        "invalid_disclosure",
    )
