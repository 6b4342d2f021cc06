"""The published valid vectors verify in the IETF reference implementation (PyPI ``sd-jwt``).

The reference (0.10.4) reads compact, sha-256 presentations only and checks a KB-JWT with a
fixed algorithm, so the KB-JWT is checked with the algorithm its header names (one of
the policy's). It ignores ``exp``/``nbf``/``iat`` and type metadata: those vectors are
onceonly's own checks, run by test_vectors.py. Here the point is the other direction
of interoperability: signatures, digests, disclosures and the processed claims agree.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from jwcrypto.jwk import JWK
from sd_jwt.verifier import SDJWTVerifier

from onceonly import jose
from tests.unit.sdjwt.vectors import case_dirs, load_case


def _reference_can_read(case: Path) -> bool:
    # Compact form and sha-256 digests only (0.10.4 predates RFC 9901's JSON form
    # and has "TODO: Support other hash algorithms").
    _, presentation, expected = load_case(case)
    if not expected["valid"] or presentation.startswith("{"):
        return False
    return jose.parse_compact(presentation.split("~", 1)[0]).payload.get("_sd_alg") == "sha-256"


VALID_COMPACT = [case for case in case_dirs() if _reference_can_read(case)]


@pytest.mark.parametrize("case", VALID_COMPACT, ids=[c.name for c in VALID_COMPACT])
def test_valid_vector_verifies_in_the_reference(case: Path) -> None:
    inputs, presentation, expected = load_case(case)
    issuer_jwk = JWK(**inputs["issuer_key"])
    policy = inputs["policy"]
    verifier = SDJWTVerifier(presentation, lambda _iss, _header: issuer_jwk)
    claims: dict[str, Any] = verifier.get_verified_payload()
    claims.pop("_sd_alg", None)
    assert claims == expected["claims"]
    if expected["key_binding"] is not None:
        kb_header = jose.parse_compact(presentation.rsplit("~", 1)[1]).header
        assert kb_header["alg"] in policy["allowed_algs"]
        verifier._verify_key_binding_jwt(  # the reference's own KB-JWT check
            policy["expected_audience"], policy["expected_nonce"], sign_alg=kb_header["alg"]
        )


def test_reference_refuses_a_broken_kb_jwt_the_same_way() -> None:
    # A check that can fail: the reference rejects a wrong nonce on a valid vector.
    (case,) = [c for c in VALID_COMPACT if c.name == "valid_basic"]
    inputs, presentation, _ = load_case(case)
    verifier = SDJWTVerifier(presentation, lambda _i, _h: JWK(**inputs["issuer_key"]))
    with pytest.raises(ValueError):
        verifier._verify_key_binding_jwt(
            inputs["policy"]["expected_audience"], "another-nonce", sign_alg="EdDSA"
        )


def test_enough_vectors_reach_the_reference() -> None:
    names = {case.name for case in VALID_COMPACT}
    assert {"valid_basic", "valid_es256", "valid_type_metadata", "valid_rfc9864_ed25519"} <= names
    assert json.dumps(sorted(names))  # the list is printable for the report
