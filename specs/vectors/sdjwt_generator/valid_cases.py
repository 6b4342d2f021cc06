"""Valid cases: each one a credential/presentation a verifier must accept."""

from __future__ import annotations

from collections.abc import Collection

from onceonly.jose import PrivateKey
from onceonly.sdjwt import ClaimPath, SdJwt, parse_sd_jwt, present, present_without_key_binding
from onceonly.sdjwt.disclosures import digest_of

from .fixtures import (
    AUD,
    CLAIMS,
    DISCLOSE,
    EXPECTED_BASE_CLAIMS,
    EXPECTED_BASE_PATHS,
    HOLDER_KEY,
    HOLDER_KEY_ES256,
    ISSUER_KEY,
    ISSUER_KEY_ES256,
    NO_KB,
    NONCE,
    NOW,
    Case,
    always_visible,
    base_payload,
    disclosure,
    issuance_record,
    issue,
    parts,
    payload_of,
    policy,
    sign_jwt,
    valid,
    with_kb,
)


def _presented(
    view: SdJwt,
    *,
    disclose: Collection[ClaimPath] = DISCLOSE,
    holder_key: PrivateKey = HOLDER_KEY,
) -> str:
    """A presentation to the vectors' verifier (AUD, NONCE), made 5 s before NOW."""
    return present(
        view, disclose=disclose, holder_key=holder_key, aud=AUD, nonce=NONCE, now=NOW - 5
    )


def valid_cases() -> tuple[list[Case], str]:
    issued = issue("base")
    holder_view = parse_sd_jwt(issued.serialize())
    base = _presented(holder_view)
    pub = ISSUER_KEY.public()
    record = issuance_record("base", DISCLOSE)
    cases = [
        Case(
            "valid_basic",
            "Nested and array-element disclosures with a KB-JWT (Ed25519).",
            "RFC 9901 §4, §7.1, §7.3",
            base,
            valid(EXPECTED_BASE_CLAIMS, EXPECTED_BASE_PATHS),
            policy(),
            pub,
            issuance=record,
        ),
        Case(
            "valid_no_key_binding",
            "An SD-JWT without KB-JWT, accepted by a policy that does not require key binding.",
            "RFC 9901 §4 (SD-JWT ends with '~'), §7.3",
            present_without_key_binding(holder_view, disclose=DISCLOSE),
            valid(EXPECTED_BASE_CLAIMS, EXPECTED_BASE_PATHS, key_binding=False),
            policy(**NO_KB),
            pub,
            issuance=record,
        ),
        Case(
            "valid_kb_present_not_required",
            "A KB-JWT the policy does not require is still verified and reported.",
            "RFC 9901 §7.3",
            base,
            valid(EXPECTED_BASE_CLAIMS, EXPECTED_BASE_PATHS),
            policy(require_key_binding=False),
            pub,
            issuance=record,
        ),
        Case(
            "valid_disclose_nothing",
            "Only always-visible claims; decoys and undisclosed digests are ignored.",
            "RFC 9901 §4.2.5, §7.1",
            _presented(holder_view, disclose=[]),
            valid({**always_visible(), "nationalities": [], "age_equal_or_over": {}}, []),
            policy(),
            pub,
            issuance=issuance_record("base", []),
        ),
        Case(
            "valid_disclose_whole_object",
            "Asking for 'address' discloses it and every disclosable member inside it.",
            "RFC 9901 §4.2.6 (recursive disclosures)",
            _presented(holder_view, disclose=[("address",)]),
            valid(
                {
                    **always_visible(),
                    "address": CLAIMS["address"],
                    "nationalities": [],
                    "age_equal_or_over": {},
                },
                [["address"], ["address", "locality"], ["address", "street_address"]],
            ),
            policy(),
            pub,
            issuance=issuance_record("base", [("address",)]),
        ),
    ]
    json_issued = issue("json")
    json_view = parse_sd_jwt(json_issued.serialize_json())
    general_view = parse_sd_jwt(json_issued.serialize_json(general=True))
    for name, view, what in (
        ("valid_json_flattened", json_view, "flattened"),
        ("valid_json_general", general_view, "general"),
    ):
        cases.append(
            Case(
                name,
                f"JWS JSON ({what}): disclosures and kb_jwt in the unprotected header.",
                "RFC 9901 §8",
                _presented(view),
                valid(EXPECTED_BASE_CLAIMS, EXPECTED_BASE_PATHS),
                policy(),
                pub,
                issuance=issuance_record("json", DISCLOSE),
            )
        )
    es_issued = issue("es256", signing_key=ISSUER_KEY_ES256, holder=HOLDER_KEY_ES256)
    es_view = parse_sd_jwt(es_issued.serialize())
    cases.append(
        Case(
            "valid_es256",
            "ES256 issuer and holder keys.",
            "RFC 9901 §7, RFC 7518 §3.4",
            _presented(es_view, holder_key=HOLDER_KEY_ES256),
            valid(
                {**EXPECTED_BASE_CLAIMS, "cnf": {"jwk": HOLDER_KEY_ES256.public().to_jwk()}},
                EXPECTED_BASE_PATHS,
            ),
            policy(),
            ISSUER_KEY_ES256.public(),
            issuance=issuance_record("es256", DISCLOSE, alg="ES256"),
        )
    )
    sha512_view = parse_sd_jwt(issue("sha512", hash_alg="sha-512").serialize())
    cases.append(
        Case(
            "valid_sha512",
            "_sd_alg sha-512, accepted because the policy lists it.",
            "RFC 9901 §4.1.1",
            _presented(sha512_view),
            valid(EXPECTED_BASE_CLAIMS, EXPECTED_BASE_PATHS),
            policy(accepted_hash_algs=["sha-256", "sha-512"]),
            pub,
            issuance=issuance_record("sha512", DISCLOSE, hash_alg="sha-512"),
        )
    )
    legacy_jwt = sign_jwt(payload_of(parts(base)[0]), typ="vc+sd-jwt")
    cases.append(
        Case(
            "valid_legacy_typ",
            "typ vc+sd-jwt (earlier drafts), accepted only when the policy opts in.",
            "draft-ietf-oauth-sd-jwt-vc §3.2.1",
            with_kb(legacy_jwt, parts(base)[1]),
            valid(EXPECTED_BASE_CLAIMS, EXPECTED_BASE_PATHS),
            policy(accept_legacy_typ=True),
            pub,
        )
    )
    leeway_jwt = sign_jwt(payload_of(parts(base)[0]) | {"exp": NOW - 30})
    cases.append(
        Case(
            "valid_expired_within_leeway",
            "exp 30 s ago, inside the 60 s leeway.",
            "RFC 9901 §7.1, RFC 7519 §4.1.4",
            with_kb(leeway_jwt, parts(base)[1]),
            valid({**EXPECTED_BASE_CLAIMS, "exp": NOW - 30}, EXPECTED_BASE_PATHS),
            policy(),
            pub,
        )
    )
    street = disclosure("c2FsdC1hcnJheS1kZWNveQ", "DE")
    decoy_payload = base_payload(
        nationalities=[{"...": digest_of(street)}, {"...": digest_of("decoy")}, "FR"]
    )
    cases.append(
        Case(
            "valid_array_decoy",
            "An array with a disclosed element, a decoy placeholder and a plain element.",
            "RFC 9901 §4.2.4.2, §4.2.5",
            with_kb(sign_jwt(decoy_payload), [street]),
            valid({**always_visible(), "nationalities": ["DE", "FR"]}, [["nationalities", 0]]),
            policy(),
            pub,
        )
    )
    return cases, base
