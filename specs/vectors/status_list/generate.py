"""Generate the Token Status List test vectors in this directory (fixed keys and time).

Usage (from the repository root)::

    python specs/vectors/status_list/generate.py          # (re)write the case directories
    python specs/vectors/status_list/generate.py --check  # exit 1 if the files differ

Generated tokens are signed with Ed25519 (deterministic signatures), so the files
are reproducible byte for byte. Two extra valid cases carry the draft's own
ES256 examples unchanged. Every negative case breaks exactly one rule of a
valid sibling; ``README.md`` describes the file format.
"""

from __future__ import annotations

import hashlib
import json
import sys
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cbor2
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from onceonly.cose import sign1
from onceonly.jose import EDDSA, PrivateKey, b64url_encode, json_object_b64, sign_compact
from onceonly.status_list import (
    INVALID,
    STATUS_LIST_CWT_TYP,
    STATUS_LIST_JWT_TYP,
    SUSPENDED,
    StatusList,
    sign_status_list_cwt,
    sign_status_list_jwt,
)

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from vector_files import vector_tree, write_or_check

OUT_DIR = Path(__file__).resolve().parent
NOW = 1_798_761_600  # 2027-01-01T00:00:00Z
URI = "https://status.agency.example/lists/7"
DRAFT_URI = "https://example.com/statuslists/1"
DRAFT_IAT = 1_686_920_170
POLICY: dict[str, Any] = {
    "leeway_seconds": 60,
    "accepted_statuses": [0],
    "max_token_bytes": 1_048_576,
    "max_list_bytes": 1_048_576,
}


def _ed25519(label: str) -> PrivateKey:
    # A fixed seed per label: Ed25519 signatures are deterministic, so are the files.
    seed = hashlib.sha256(f"onceonly status list vectors: {label}".encode()).digest()
    return PrivateKey(alg=EDDSA, key=Ed25519PrivateKey.from_private_bytes(seed), kid=label)


ISSUER = _ed25519("status-issuer")
ATTACKER = _ed25519("attacker")
# The draft's example key (public part only; it signed the draft's examples).
DRAFT_KEY_JWK = {
    "kty": "EC",
    "crv": "P-256",
    "x": "I3HWm_0Ds1dPMI-IWmf4mBmH-YaeAVbPVu7vB27CxXo",
    "y": "6N_d5Elj9bs1htgV3okJKIdbHEpkgTmAluYKJemzn1M",
    "kid": "12",
}
DRAFT_JWT = (
    "eyJhbGciOiJFUzI1NiIsImtpZCI6IjEyIiwidHlwIjoic3RhdHVzbGlzdCtqd3QifQ.eyJleHAiOjIyOTE3MjAx"
    "NzAsImlhdCI6MTY4NjkyMDE3MCwiaXNzIjoiaHR0cHM6Ly9leGFtcGxlLmNvbSIsInN0YXR1c19saXN0Ijp7Im"
    "JpdHMiOjEsImxzdCI6ImVOcmJ1UmdBQWhjQlhRIn0sInN1YiI6Imh0dHBzOi8vZXhhbXBsZS5jb20vc3RhdHVz"
    "bGlzdHMvMSIsInR0bCI6NDMyMDB9.2lKUUNG503R9htu4aHAYi7vjmr3sgApbfoDvPrl65N3URUO1EYqqQl45Jf"
    "zd-Av4QzlKa3oVALpLwOEUOq-U_g"
)
DRAFT_CWT_HEX = (
    "d2845820a2012610781a6170706c69636174696f6e2f7374617475736c6973742b637774a10442313258"
    "50a502782168747470733a2f2f6578616d706c652e636f6d2f7374617475736c697374732f31061a648c"
    "5bea041a8898dfea19fffe19a8c019fffda2646269747301636c73744a78dadbb918000217015d584093"
    "fa4d01032b18c35e2fe1101b77fd6cc9440022caa4694450c4e4e9feab4e99d1fa6d9772ce2bf3a12e03"
    "23ded7c982c5e101a5e67f0cbc1e2b6f57ce99c279"
)

# Index layout of the generated 2-bit list of 4096 entries.
IDX_VALID, IDX_REVOKED, IDX_SUSPENDED, IDX_APPLICATION = 1234, 77, 3000, 4095
LIST_SIZE = 4096


@dataclass
class Case:
    """One vector: what the verifier knows, the token, and the outcome."""

    name: str
    description: str
    reference: str
    form: str  # "jwt" or "cwt"
    token: str  # compact JWS, or lowercase hex of the CWT
    idx: int
    expected: dict[str, Any]
    uri: str = URI
    now: int = NOW
    issuer_key: dict[str, str] = field(default_factory=lambda: ISSUER.public().to_jwk())
    policy: dict[str, Any] = field(default_factory=lambda: dict(POLICY))
    sibling: str | None = None


def sample_list() -> StatusList:
    status_list = StatusList(LIST_SIZE, 2)
    status_list.set(IDX_REVOKED, INVALID)
    status_list.set(IDX_SUSPENDED, SUSPENDED)
    status_list.set(IDX_APPLICATION, 3)
    return status_list


def _claims(**changes: Any) -> dict[str, Any]:
    """The valid JWT claims with some replaced (a value of None removes the claim)."""
    claims: dict[str, Any] = {
        "sub": URI,
        "iat": NOW - 600,
        "exp": NOW + 86_400,
        "ttl": 3600,
        "status_list": sample_list().to_json(),
    }
    for name, value in changes.items():
        if value is None:
            claims.pop(name, None)
        else:
            claims[name] = value
    return claims


def _jwt(
    claims: dict[str, Any], *, key: PrivateKey = ISSUER, typ: str = STATUS_LIST_JWT_TYP
) -> str:
    return sign_compact(claims, key, typ=typ)


def _cwt(claims: dict[int, Any], *, protected: dict[int, Any] | None = None) -> str:
    header = {16: STATUS_LIST_CWT_TYP} if protected is None else protected
    return sign1(cbor2.dumps(claims), ISSUER, protected=header).hex()


def _cwt_claims(**changes: Any) -> dict[int, Any]:
    """The valid CWT claims; ``k<label>=value`` replaces a claim, ``None`` removes it."""
    claims: dict[int, Any] = {
        2: URI,
        6: NOW - 600,
        4: NOW + 86_400,
        65534: 3600,
        65533: sample_list().to_cbor_map(),
    }
    for label, value in changes.items():
        key = int(label.removeprefix("k"))
        if value is None:
            claims.pop(key, None)
        else:
            claims[key] = value
    return claims


def _invalid(code: str) -> dict[str, Any]:
    return {"valid": False, "error": code}


def valid_cases() -> list[Case]:
    jwt = sign_status_list_jwt(
        sample_list(), ISSUER, uri=URI, issued_at=NOW - 600, expires_at=NOW + 86_400, ttl=3600
    )
    cwt = sign_status_list_cwt(
        sample_list(), ISSUER, uri=URI, issued_at=NOW - 600, expires_at=NOW + 86_400, ttl=3600
    ).hex()
    application = dict(POLICY, accepted_statuses=[0, 3])
    return [
        Case("jwt_valid", "VALID entry, JWT form.", "draft §5.1, §8.3", "jwt", jwt, IDX_VALID,
             {"valid": True, "status": 0}),
        Case("cwt_valid", "VALID entry, CWT form.", "draft §5.2, §8.3", "cwt", cwt, IDX_VALID,
             {"valid": True, "status": 0}),
        Case("jwt_application_status_accepted", "Status 0x03 accepted by the policy.",
             "draft §7.1", "jwt", jwt, IDX_APPLICATION, {"valid": True, "status": 3},
             policy=application),
        Case("draft_example_jwt", "The draft's example JWT (ES256), index 1 is VALID.",
             "draft §8.2", "jwt", DRAFT_JWT, 1, {"valid": True, "status": 0}, uri=DRAFT_URI,
             now=DRAFT_IAT, issuer_key=DRAFT_KEY_JWK),
        Case("draft_example_cwt", "The draft's example CWT (ES256), index 1 is VALID.",
             "draft §5.2", "cwt", DRAFT_CWT_HEX, 1, {"valid": True, "status": 0}, uri=DRAFT_URI,
             now=DRAFT_IAT, issuer_key=DRAFT_KEY_JWK),
    ]  # fmt: skip


def status_cases(base: dict[str, Case]) -> list[Case]:
    jwt, cwt = base["jwt_valid"], base["cwt_valid"]
    make = _sibling
    return [
        make(jwt, "jwt_revoked", "Entry is 0x01 INVALID.", "draft §7.1", idx=IDX_REVOKED,
             expected=_invalid("revoked")),
        make(cwt, "cwt_revoked", "Entry is 0x01 INVALID (CWT).", "draft §7.1", idx=IDX_REVOKED,
             expected=_invalid("revoked")),
        make(jwt, "jwt_suspended", "Entry is 0x02 SUSPENDED.", "draft §7.1",
             idx=IDX_SUSPENDED, expected=_invalid("suspended")),
        make(jwt, "jwt_application_status_not_accepted", "Entry 0x03, policy accepts only 0.",
             "draft §7.1", idx=IDX_APPLICATION, expected=_invalid("unrecognised_status")),
        make(jwt, "jwt_index_out_of_range", "Index beyond the list.", "draft §8.3 step 6",
             idx=LIST_SIZE, expected=_invalid("status_index_out_of_range")),
        make(cwt, "cwt_index_out_of_range", "Index beyond the list (CWT).", "draft §8.3 step 6",
             idx=LIST_SIZE, expected=_invalid("status_index_out_of_range")),
        make(base["draft_example_cwt"], "draft_example_cwt_revoked",
             "The draft's example CWT, index 0 is INVALID.", "draft §5.2", idx=0,
             expected=_invalid("revoked")),
    ]  # fmt: skip


def token_cases(base: dict[str, Case]) -> list[Case]:
    jwt, cwt = base["jwt_valid"], base["cwt_valid"]
    header, payload, signature = jwt.token.split(".")
    forged_list = StatusList(LIST_SIZE, 2).to_json()  # everything VALID again
    tampered = f"{header}.{json_object_b64(_claims(status_list=forged_list))}"
    bomb = b64url_encode(_zip_bomb(8))
    outer = cbor2.loads(bytes.fromhex(cwt.token))
    protected, unprotected, cwt_payload, cwt_signature = outer.value
    forged_claims = _cwt_claims(k65533=StatusList(LIST_SIZE, 2).to_cbor_map())
    cwt_tampered = cbor2.dumps(
        cbor2.CBORTag(18, [protected, unprotected, cbor2.dumps(forged_claims), cwt_signature])
    ).hex()
    alg_none = f"{json_object_b64({'alg': 'none', 'typ': STATUS_LIST_JWT_TYP})}.{payload}."
    duplicate_key = _duplicate_claim_cwt()
    unprotected_alg = cbor2.dumps(cbor2.CBORTag(18, [
        cbor2.dumps({16: STATUS_LIST_CWT_TYP}), {1: -8}, cwt_payload, cwt_signature,
    ])).hex()  # fmt: skip
    make = _sibling
    return [
        make(jwt, "jwt_tampered_list", "Status list replaced, signature kept.", "draft §5.1",
             token=f"{tampered}.{signature}", expected=_invalid("invalid_signature")),
        make(jwt, "jwt_wrong_key", "Signed by a key the verifier does not trust.",
             "draft §8.3 step 3", token=_jwt(_claims(), key=ATTACKER),
             expected=_invalid("invalid_signature")),
        make(jwt, "jwt_alg_none", "alg none, empty signature.", "draft §11.2",
             token=alg_none, expected=_invalid("unsupported_algorithm")),
        make(jwt, "jwt_wrong_typ", "typ is JWT.", "draft §5.1", token=_jwt(_claims(), typ="JWT"),
             expected=_invalid("invalid_typ")),
        make(jwt, "jwt_sub_mismatch", "sub names another list.", "draft §8.3 step 4a",
             token=_jwt(_claims(sub=URI + "0")), expected=_invalid("invalid_claim")),
        make(jwt, "jwt_expired", "exp is in the past.", "draft §8.3 step 4c",
             token=_jwt(_claims(iat=NOW - 7200, exp=NOW - 3600)), expected=_invalid("expired")),
        make(jwt, "jwt_issued_in_future", "iat is an hour ahead.", "RFC 7519 §4.1.6",
             token=_jwt(_claims(iat=NOW + 3600, exp=NOW + 7200)),
             expected=_invalid("not_yet_valid")),
        make(jwt, "jwt_missing_status_list", "No status_list claim.", "draft §5.1",
             token=_jwt(_claims(status_list=None)), expected=_invalid("invalid_claim")),
        make(jwt, "jwt_ttl_zero", "ttl must be positive.", "draft §5.1",
             token=_jwt(_claims(ttl=0)), expected=_invalid("invalid_claim")),
        make(jwt, "jwt_nbf_in_future", "nbf is an hour ahead (leeway 60 s).", "RFC 7519 §4.1.5",
             token=_jwt(_claims(nbf=NOW + 3600)), expected=_invalid("not_yet_valid")),
        make(jwt, "jwt_aud_foreign", "aud names another party; this verifier is in no aud.",
             "RFC 7519 §4.1.3", token=_jwt(_claims(aud="https://other-verifier.example")),
             expected=_invalid("invalid_claim")),
        make(jwt, "jwt_ttl_fractional", "ttl 0.5 s is valid: any positive number.",
             "draft §5.1", token=_jwt(_claims(ttl=0.5)), sibling=None),
        make(jwt, "jwt_ttl_string", "ttl is a string, not a number.", "draft §5.1",
             token=_jwt(_claims(ttl="3600")), expected=_invalid("invalid_claim")),
        make(jwt, "jwt_bits_3", "bits is 3.", "draft §4.2",
             token=_jwt(_claims(status_list={"bits": 3, "lst": forged_list["lst"]})),
             expected=_invalid("malformed")),
        make(jwt, "jwt_lst_not_zlib", "lst is raw DEFLATE without the ZLIB wrapper.",
             "draft §4.1 step 4",
             token=_jwt(_claims(status_list={"bits": 2, "lst": b64url_encode(
                 zlib.compress(bytes(1024), 9)[2:-4])})),
             expected=_invalid("malformed")),
        make(jwt, "jwt_lst_padded_base64", "lst carries base64 padding.", "draft §4.2",
             token=_jwt(_claims(status_list={"bits": 2, "lst": forged_list["lst"] + "="})),
             expected=_invalid("malformed")),
        make(jwt, "jwt_zip_bomb", "lst inflates to 8 MiB; policy bounds lists to 1 MiB.",
             "draft §11.1", token=_jwt(_claims(status_list={"bits": 1, "lst": bomb})),
             expected=_invalid("too_large")),
        make(cwt, "cwt_tampered_list", "Claims replaced, signature kept.", "draft §5.2",
             token=cwt_tampered, expected=_invalid("invalid_signature")),
        make(cwt, "cwt_wrong_typ", "Protected typ (16) is application/cwt.", "draft §5.2",
             token=_cwt(_cwt_claims(), protected={16: "application/cwt"}),
             expected=_invalid("invalid_typ")),
        make(cwt, "cwt_untagged", "COSE_Sign1 without tag 18.", "draft §5.2",
             token=cbor2.dumps(list(outer.value)).hex(), expected=_invalid("malformed")),
        make(cwt, "cwt_cwt_tag", "Wrapped in the CWT tag 61, which the draft forbids.",
             "draft §5.2", token=cbor2.dumps(cbor2.CBORTag(61, outer)).hex(),
             expected=_invalid("malformed")),
        make(cwt, "cwt_duplicate_claim", "Claims map repeats key 2 (sub).", "RFC 8949 §5.6",
             token=duplicate_key, expected=_invalid("malformed")),
        make(cwt, "cwt_alg_unprotected", "alg only in the unprotected header.",
             "RFC 9052 §3.1", token=unprotected_alg, expected=_invalid("unsupported_algorithm")),
        make(cwt, "cwt_lst_text", "lst is a text string, not bytes.", "draft §4.3",
             token=_cwt(_cwt_claims(k65533={"bits": 2, "lst": forged_list["lst"]})),
             expected=_invalid("malformed")),
        make(cwt, "cwt_expired", "exp (4) is in the past.", "draft §8.3 step 4c",
             token=_cwt(_cwt_claims(k6=NOW - 7200, k4=NOW - 3600)),
             expected=_invalid("expired")),
        make(cwt, "cwt_sub_mismatch", "sub (2) names another list.", "draft §8.3 step 4a",
             token=_cwt(_cwt_claims(k2=URI + "0")), expected=_invalid("invalid_claim")),
        make(cwt, "cwt_nbf_in_future", "nbf (5) is an hour ahead.", "RFC 8392 §3.1.5",
             token=_cwt(_cwt_claims(k5=NOW + 3600)), expected=_invalid("not_yet_valid")),
        make(cwt, "cwt_aud_foreign", "aud (3) names another party.", "RFC 8392 §3.1.3",
             token=_cwt(_cwt_claims(k3="https://other-verifier.example")),
             expected=_invalid("invalid_claim")),
    ]  # fmt: skip


def _sibling(base: Case, name: str, description: str, reference: str, **changes: Any) -> Case:
    fields = dict(base.__dict__)
    fields.update(name=name, description=description, reference=reference, sibling=base.name)
    fields.update(changes)
    return Case(**fields)


def _zip_bomb(mebibytes: int) -> bytes:
    compressor = zlib.compressobj(9)
    chunk = bytes(1 << 20)
    return b"".join(compressor.compress(chunk) for _ in range(mebibytes)) + compressor.flush()


def _duplicate_claim_cwt() -> str:
    # cbor2 will not write a duplicate key, so splice one in: the map header
    # counts one more entry and a second "2: <uri>" pair follows.
    claims = _cwt_claims()
    body = cbor2.dumps(claims)
    assert body[0] == 0xA5  # map of 5
    spliced = bytes([0xA6]) + body[1:] + cbor2.dumps(2) + cbor2.dumps(URI + "0")
    return sign1(spliced, ISSUER, protected={16: STATUS_LIST_CWT_TYP}).hex()


def build_cases() -> list[Case]:
    """Every vector, valid ones first."""
    valid = valid_cases()
    base = {case.name: case for case in valid}
    cases = valid + status_cases(base) + token_cases(base)
    if len({case.name for case in cases}) != len(cases):
        raise SystemExit("duplicate case names")
    return cases


def render(case: Case) -> dict[str, str]:
    """The files of one case directory, as text."""
    inputs: dict[str, Any] = {
        "description": case.description,
        "reference": case.reference,
        "now": case.now,
        "issuer_key": case.issuer_key,
        "form": case.form,
        "status": {"status_list": {"idx": case.idx, "uri": case.uri}},
        "policy": case.policy,
    }
    if case.sibling:
        inputs["valid_sibling"] = case.sibling
    return {
        "input.json": json.dumps(inputs, indent=2) + "\n",
        "token.txt": case.token + "\n",
        "expected.json": json.dumps(case.expected, indent=2, sort_keys=True) + "\n",
    }


def expected_tree() -> dict[str, str]:
    """Relative path -> content for every generated file."""
    keys = {
        "issuer": ISSUER.to_jwk(),
        "attacker": ATTACKER.to_jwk(),
        "draft_example": DRAFT_KEY_JWK,
    }
    return vector_tree(keys, build_cases(), render)


def main(argv: list[str] | None = None) -> int:
    """Write (or ``--check``) the vector directory."""
    return write_or_check(
        expected_tree,
        description="Generate the Token Status List test vectors.",
        out_dir=OUT_DIR,
        argv=argv,
    )


if __name__ == "__main__":
    sys.exit(main())
