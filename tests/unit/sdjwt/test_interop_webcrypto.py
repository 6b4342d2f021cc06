"""Interoperability with keys and signatures made by Web Crypto (Node), RFC 9864 algorithms.

Browsers and Node export an Ed25519 key as a JWK carrying ``"alg": "Ed25519"``
(RFC 9864's fully-specified name) and sign raw Ed25519 / P1363 ECDSA signatures,
exactly what JWS wants. A wallet written for the web therefore presents with such
a ``cnf`` key and a KB-JWT whose header says ``Ed25519`` (or ``ESP256``). Every key
and KB-JWT signature here is made by ``node`` itself, never by Python.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from typing import Any

import pytest

from onceonly import jose
from onceonly.errors import InvalidClaim, UnsupportedAlgorithm
from onceonly.sdjwt import (
    VerificationPolicy,
    issue_sd_jwt_vc,
    parse_sd_jwt,
    present_without_key_binding,
    verify_presentation,
)
from onceonly.sdjwt.claims import KB_JWT_TYP
from onceonly.sdjwt.disclosures import digest_of
from tests.unit.sdjwt.conftest import AUD, ISSUER, NONCE, NOW, VCT, counter_random

NODE = shutil.which("node")
pytestmark = pytest.mark.skipif(NODE is None, reason="node (Web Crypto) is not installed")

# Generates a key pair with Web Crypto and prints both JWKs as Web Crypto exports them.
_KEYGEN = """
const algorithm = process.argv[1] === "Ed25519"
  ? { name: "Ed25519" } : { name: "ECDSA", namedCurve: "P-256" };
const pair = await crypto.subtle.generateKey(algorithm, true, ["sign", "verify"]);
console.log(JSON.stringify({
  public: await crypto.subtle.exportKey("jwk", pair.publicKey),
  private: await crypto.subtle.exportKey("jwk", pair.privateKey),
}));
"""

# Builds and signs a compact JWS from (private JWK, header, payload) with Web Crypto.
_SIGN = """
const [jwk, header, payload] = process.argv.slice(1).map((arg) => JSON.parse(arg));
const algorithm = jwk.kty === "OKP"
  ? { name: "Ed25519" } : { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" };
const key = await crypto.subtle.importKey("jwk", jwk, algorithm, false, ["sign"]);
const b64 = (bytes) => Buffer.from(bytes).toString("base64url");
const input = b64(JSON.stringify(header)) + "." + b64(JSON.stringify(payload));
const signature = await crypto.subtle.sign(algorithm, key, Buffer.from(input, "ascii"));
console.log(input + "." + b64(new Uint8Array(signature)));
"""


def _node(script: str, *args: str) -> str:
    assert NODE is not None
    done = subprocess.run(
        [NODE, "--input-type=module", "-e", script, *args],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return done.stdout.strip()


def webcrypto_key_pair(kind: str) -> dict[str, Any]:
    pair: dict[str, Any] = json.loads(_node(_KEYGEN, kind))
    return pair


def webcrypto_sign(private_jwk: dict[str, Any], header: dict[str, Any], payload: Any) -> str:
    return _node(_SIGN, json.dumps(private_jwk), json.dumps(header), json.dumps(payload))


@pytest.fixture(scope="module")
def ed25519_pair() -> dict[str, Any]:
    return webcrypto_key_pair("Ed25519")


@pytest.fixture(scope="module")
def p256_pair() -> dict[str, Any]:
    return webcrypto_key_pair("P-256")


def _credential(holder_public: jose.PublicKey, issuer_key: jose.PrivateKey) -> str:
    issued = issue_sd_jwt_vc(
        issuer=ISSUER,
        vct=VCT,
        claims={"given_name": "Erika", "family_name": "Mustermann"},
        disclosable=[("given_name",), ("family_name",)],
        holder_key=holder_public,
        signing_key=issuer_key,
        now=NOW - 100,
        expires_at=NOW + 86400,
        random_bytes=counter_random("webcrypto"),
    )
    return present_without_key_binding(parse_sd_jwt(issued.serialize()), disclose=[("given_name",)])


def _with_webcrypto_kb(sd_jwt: str, private_jwk: dict[str, Any], alg: str) -> str:
    payload = {"iat": NOW, "aud": AUD, "nonce": NONCE, "sd_hash": digest_of(sd_jwt, "sha-256")}
    return sd_jwt + webcrypto_sign(private_jwk, {"alg": alg, "typ": KB_JWT_TYP}, payload)


def _policy() -> VerificationPolicy:
    return VerificationPolicy(expected_audience=AUD, expected_nonce=NONCE)


def test_webcrypto_ed25519_jwk_carries_the_fully_specified_alg(
    ed25519_pair: dict[str, Any],
) -> None:
    assert ed25519_pair["public"]["alg"] == "Ed25519"
    key = jose.public_key_from_jwk(ed25519_pair["public"])
    assert key.alg == jose.ED25519 and key.alg_pinned
    assert key.to_jwk()["alg"] == "Ed25519"  # the pin travels on into cnf


def test_kb_jwt_signed_by_webcrypto_ed25519_with_alg_ed25519_verifies(
    ed25519_pair: dict[str, Any], issuer_key: jose.PrivateKey
) -> None:
    holder = jose.public_key_from_jwk(ed25519_pair["public"])
    sd_jwt = _credential(holder, issuer_key)
    assert parse_sd_jwt(sd_jwt).claims["cnf"]["jwk"]["alg"] == "Ed25519"
    presentation = _with_webcrypto_kb(sd_jwt, ed25519_pair["private"], "Ed25519")
    verified = verify_presentation(
        presentation, issuer_key=issuer_key.public(), policy=_policy(), now=NOW
    )
    assert verified.key_binding is not None and verified.key_binding.nonce == NONCE
    assert verified.holder_key is not None
    assert verified.holder_key.thumbprint() == holder.thumbprint()
    assert verified.claims["given_name"] == "Erika"


def test_cnf_pinned_to_ed25519_refuses_a_kb_jwt_that_says_eddsa(
    ed25519_pair: dict[str, Any], issuer_key: jose.PrivateKey
) -> None:
    # The JWK's alg names the one algorithm the key is for (RFC 7517 §4.4).
    sd_jwt = _credential(jose.public_key_from_jwk(ed25519_pair["public"]), issuer_key)
    presentation = _with_webcrypto_kb(sd_jwt, ed25519_pair["private"], "EdDSA")
    with pytest.raises(UnsupportedAlgorithm):
        verify_presentation(presentation, issuer_key=issuer_key.public(), policy=_policy(), now=NOW)


def test_cnf_without_alg_accepts_either_ed25519_name(
    ed25519_pair: dict[str, Any], issuer_key: jose.PrivateKey
) -> None:
    unpinned = {k: v for k, v in ed25519_pair["public"].items() if k != "alg"}
    sd_jwt = _credential(jose.public_key_from_jwk(unpinned), issuer_key)
    for alg in ("Ed25519", "EdDSA"):
        presentation = _with_webcrypto_kb(sd_jwt, ed25519_pair["private"], alg)
        verify_presentation(presentation, issuer_key=issuer_key.public(), policy=_policy(), now=NOW)


def test_kb_jwt_signed_by_webcrypto_p256_with_alg_esp256_verifies(
    p256_pair: dict[str, Any], issuer_key: jose.PrivateKey
) -> None:
    holder = jose.public_key_from_jwk(p256_pair["public"])
    sd_jwt = _credential(holder, issuer_key)
    presentation = _with_webcrypto_kb(sd_jwt, p256_pair["private"], "ESP256")
    verified = verify_presentation(
        presentation, issuer_key=issuer_key.public(), policy=_policy(), now=NOW
    )
    assert verified.key_binding is not None


def test_kb_jwt_with_ed25519_header_from_a_p256_key_is_refused(
    p256_pair: dict[str, Any], issuer_key: jose.PrivateKey
) -> None:
    sd_jwt = _credential(jose.public_key_from_jwk(p256_pair["public"]), issuer_key)
    presentation = _with_webcrypto_kb(sd_jwt, p256_pair["private"], "Ed25519")
    with pytest.raises(UnsupportedAlgorithm):
        verify_presentation(presentation, issuer_key=issuer_key.public(), policy=_policy(), now=NOW)


def test_issuer_jwt_signed_by_webcrypto_ed25519_verifies(
    ed25519_pair: dict[str, Any], holder_key: jose.PrivateKey
) -> None:
    payload = {
        "iss": ISSUER,
        "iat": NOW - 10,
        "exp": NOW + 100,
        "vct": VCT,
        "cnf": {"jwk": holder_key.public().to_jwk()},
        "given_name": "Erika",
    }
    token = webcrypto_sign(ed25519_pair["private"], {"alg": "Ed25519", "typ": "dc+sd-jwt"}, payload)
    policy = VerificationPolicy(require_key_binding=False)
    issuer_public = jose.public_key_from_jwk(ed25519_pair["public"])
    verified = verify_presentation(token + "~", issuer_key=issuer_public, policy=policy, now=NOW)
    assert verified.claims["given_name"] == "Erika"


@pytest.mark.parametrize(
    ("kind", "alg"),
    [("Ed25519", "ESP256"), ("Ed25519", "ES256"), ("P-256", "Ed25519"), ("P-256", "EdDSA")],
)
def test_cnf_jwk_alg_must_fit_its_key_type(
    kind: str,
    alg: str,
    ed25519_pair: dict[str, Any],
    p256_pair: dict[str, Any],
    issuer_key: jose.PrivateKey,
) -> None:
    public = dict((ed25519_pair if kind == "Ed25519" else p256_pair)["public"], alg=alg)
    with pytest.raises(UnsupportedAlgorithm):
        jose.public_key_from_jwk(public)
    payload = {"iss": ISSUER, "iat": NOW, "vct": VCT, "cnf": {"jwk": public}}
    token = jose.sign_compact(payload, issuer_key, typ="dc+sd-jwt")
    with pytest.raises(InvalidClaim):
        verify_presentation(
            token + "~",
            issuer_key=issuer_key.public(),
            policy=VerificationPolicy(require_key_binding=False),
            now=NOW,
        )
