"""Fixed keys, clock and salts, and helpers to craft (also deliberately broken) tokens.

Output is byte-for-byte reproducible: Ed25519 signatures are deterministic,
ES256 ones use RFC 6979 deterministic nonces, salts come from a counter-mode
SHA-256 stream.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from onceonly import jose
from onceonly.sdjwt import issue_sd_jwt_vc, serialize_compact
from onceonly.sdjwt.disclosures import digest_of
from onceonly.sdjwt.key_binding import create_kb_jwt
from onceonly.sdjwt.serialization import compact_without_kb

NOW = 1_767_225_600  # 2026-01-01T00:00:00Z
ISSUED_AT = NOW - 3600
EXPIRES_AT = NOW + 365 * 86400
AUD = "@verifier.agency.example:gov.example"
NONCE = "n-0S6_WzA2Mj"
ISSUER = "https://registry.agency.example"
VCT = "urn:eudi:pid:1"


class DeterministicEs256Key(jose.PrivateKey):
    """ES256 key signing with RFC 6979 nonces, so vectors are reproducible."""

    def sign(self, signing_input: bytes) -> bytes:
        assert isinstance(self.key, ec.EllipticCurvePrivateKey)
        der = self.key.sign(signing_input, ec.ECDSA(hashes.SHA256(), deterministic_signing=True))
        r, s = decode_dss_signature(der)
        return r.to_bytes(32, "big") + s.to_bytes(32, "big")


def _ed25519(seed_label: str, kid: str | None = None) -> jose.PrivateKey:
    seed = hashlib.sha256(seed_label.encode()).digest()
    key = ed25519.Ed25519PrivateKey.from_private_bytes(seed)
    return jose.PrivateKey(alg=jose.EDDSA, key=key, kid=kid)


def _es256(seed_label: str, kid: str | None = None) -> jose.PrivateKey:
    scalar = int.from_bytes(hashlib.sha256(seed_label.encode()).digest(), "big") % (2**255)
    key = ec.derive_private_key(scalar, ec.SECP256R1())
    return DeterministicEs256Key(alg=jose.ES256, key=key, kid=kid)


ISSUER_KEY = _ed25519("onceonly vectors issuer", kid="issuer-2026")
HOLDER_KEY = _ed25519("onceonly vectors holder")
OTHER_KEY = _ed25519("onceonly vectors attacker")
ISSUER_KEY_ES256 = _es256("onceonly vectors issuer es256", kid="issuer-es256")
HOLDER_KEY_ES256 = _es256("onceonly vectors holder es256")


def salts(label: str) -> Callable[[int], bytes]:
    """A reproducible ``random_bytes`` (counter-mode SHA-256 over ``label``)."""
    counter = 0

    def random_bytes(size: int) -> bytes:
        nonlocal counter
        out = b""
        while len(out) < size:
            out += hashlib.sha256(f"{label}/{counter}".encode()).digest()
            counter += 1
        return out[:size]

    return random_bytes


CLAIMS: dict[str, Any] = {
    "given_name": "Zoë",
    "family_name": "Øster-Müller",
    "birthdate": "1990-04-01",
    "address": {"street_address": "Hauptstraße 1", "locality": "Köln", "country": "DE"},
    "nationalities": ["DE", "FR"],
    "age_equal_or_over": {"18": True, "65": False},
}
DISCLOSABLE: list[tuple[str | int | None, ...]] = [
    ("given_name",),
    ("family_name",),
    ("birthdate",),
    ("address",),
    ("address", "street_address"),
    ("address", "locality"),
    ("nationalities", None),
    ("age_equal_or_over", "18"),
    ("age_equal_or_over", "65"),
]
DISCLOSE: list[tuple[str | int | None, ...]] = [
    ("given_name",),
    ("address", "locality"),
    ("nationalities", 1),
    ("age_equal_or_over", "18"),
]


def sign_raw(header: str, payload: str, key: jose.PrivateKey) -> str:
    """Sign exact header/payload JSON text (lets a case carry duplicate keys)."""
    signing_input = f"{jose.b64url_encode(header.encode())}.{jose.b64url_encode(payload.encode())}"
    return f"{signing_input}.{jose.b64url_encode(key.sign(signing_input.encode()))}"


def sign_jwt(payload: Any, key: jose.PrivateKey = ISSUER_KEY, **header: Any) -> str:
    full = {"alg": key.alg, "typ": "dc+sd-jwt", "kid": key.kid, **header}
    full = {name: value for name, value in full.items() if value is not None}
    return sign_raw(json.dumps(full), json.dumps(payload, ensure_ascii=False), key)


def disclosure(*parts: Any) -> str:
    return jose.b64url_encode(json.dumps(list(parts), ensure_ascii=False).encode())


def base_payload(**changes: Any) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "iss": ISSUER,
        "iat": ISSUED_AT,
        "exp": EXPIRES_AT,
        "vct": VCT,
        "cnf": {"jwk": HOLDER_KEY.public().to_jwk()},
        "_sd_alg": "sha-256",
    }
    payload.update(changes)
    return {name: value for name, value in payload.items() if value is not None}


def with_kb(
    issuer_jwt: str,
    disclosures: list[str],
    *,
    key: jose.PrivateKey = HOLDER_KEY,
    now: int = NOW - 5,
    aud: str = AUD,
    nonce: str = NONCE,
) -> str:
    kb = create_kb_jwt(
        compact_without_kb(issuer_jwt, disclosures),
        holder_key=key,
        aud=aud,
        nonce=nonce,
        now=now,
        hash_alg="sha-256",
    )
    return serialize_compact(issuer_jwt, disclosures, kb)


def kb_custom(
    issuer_jwt: str,
    disclosures: list[str],
    payload: dict[str, Any],
    *,
    key: jose.PrivateKey = HOLDER_KEY,
    **header: Any,
) -> str:
    full = {"alg": key.alg, "typ": "kb+jwt", **header}
    kb = sign_raw(json.dumps(full), json.dumps(payload), key)
    return serialize_compact(issuer_jwt, disclosures, kb)


def kb_payload(issuer_jwt: str, disclosures: list[str], **changes: Any) -> dict[str, Any]:
    payload = {
        "iat": NOW - 5,
        "aud": AUD,
        "nonce": NONCE,
        "sd_hash": digest_of(compact_without_kb(issuer_jwt, disclosures)),
    }
    payload.update(changes)
    return {name: value for name, value in payload.items() if value is not None}


@dataclass
class Case:
    """One vector: a presentation, the verifier's inputs and the expected outcome."""

    name: str
    description: str
    reference: str
    presentation: str
    expected: dict[str, Any]
    policy: dict[str, Any]
    issuer_key: jose.PublicKey
    sibling: str | None = None
    issuance: dict[str, Any] | None = None
    now: int = NOW
    type_metadata: str | None = None
    """The Type Metadata document the verifier holds for the ``vct`` (exact text)."""


def policy(**changes: Any) -> dict[str, Any]:
    """The verifier policy as data (every member spelled out for other implementations)."""
    out: dict[str, Any] = {
        "require_key_binding": True,
        "expected_audience": AUD,
        "expected_nonce": NONCE,
        "leeway_seconds": 60,
        "max_kb_age_seconds": 300,
        "allowed_algs": ["ES256", "EdDSA"],
        "accepted_hash_algs": ["sha-256"],
        "expected_vct": None,
        "expected_context": None,
        "accept_legacy_typ": False,
        "max_presentation_bytes": 262144,
        "max_disclosures": 1024,
        "max_depth": 32,
    }
    out.update(changes)
    return out


NO_KB = {"require_key_binding": False, "expected_audience": None, "expected_nonce": None}


def always_visible(holder: jose.PrivateKey = HOLDER_KEY, **changes: Any) -> dict[str, Any]:
    claims: dict[str, Any] = {
        "iss": ISSUER,
        "iat": ISSUED_AT,
        "exp": EXPIRES_AT,
        "vct": VCT,
        "cnf": {"jwk": holder.public().to_jwk()},
    }
    claims.update(changes)
    return claims


# Written out by hand (not computed by the verifier under test): the claims a
# verifier must end up with for DISCLOSE.
EXPECTED_BASE_CLAIMS: dict[str, Any] = {
    **always_visible(),
    "given_name": "Zoë",
    "address": {"locality": "Köln", "country": "DE"},
    "nationalities": ["FR"],
    "age_equal_or_over": {"18": True},
}
EXPECTED_BASE_PATHS = [
    ["address"],
    ["address", "locality"],
    ["age_equal_or_over", "18"],
    ["given_name"],
    ["nationalities", 1],
]


def valid(
    claims: dict[str, Any], paths: list[list[Any]], key_binding: bool = True
) -> dict[str, Any]:
    return {
        "valid": True,
        "claims": claims,
        "disclosed_paths": sorted(paths, key=json.dumps),
        "key_binding": {"aud": AUD, "nonce": NONCE, "iat": NOW - 5} if key_binding else None,
    }


def error(code: str) -> dict[str, Any]:
    return {"valid": False, "error": code}


def issue(
    label: str,
    signing_key: jose.PrivateKey = ISSUER_KEY,
    holder: jose.PrivateKey = HOLDER_KEY,
    **options: Any,
) -> Any:
    return issue_sd_jwt_vc(
        issuer=ISSUER,
        vct=VCT,
        claims=CLAIMS,
        disclosable=DISCLOSABLE,
        holder_key=holder.public(),
        signing_key=signing_key,
        now=ISSUED_AT,
        expires_at=EXPIRES_AT,
        random_bytes=salts(label),
        **options,
    )


def issuance_record(label: str, disclose: list[Any], **options: Any) -> dict[str, Any]:
    return {
        "claims": CLAIMS,
        "disclosable": [list(path) for path in DISCLOSABLE],
        "disclose": [list(path) for path in disclose],
        "salt_source": f"sha256('{label}/' + counter) stream, 16 bytes per salt",
        "decoys": 2,
        "iat": ISSUED_AT,
        "exp": EXPIRES_AT,
        **options,
    }


def parts(presentation: str) -> tuple[str, list[str], str]:
    issuer_jwt, *disclosures, kb = presentation.split("~")
    return issuer_jwt, disclosures, kb


def payload_of(issuer_jwt: str) -> dict[str, Any]:
    payload: dict[str, Any] = json.loads(jose.b64url_decode(issuer_jwt.split(".")[1]))
    return payload
