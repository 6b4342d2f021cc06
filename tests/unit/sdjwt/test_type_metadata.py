"""Type Metadata rules (``sd``, ``mandatory``) and ``vct#integrity``: issuer, holder, verifier.

SD-JWT VC draft, claim metadata: "it MUST validate the processed SD-JWT payload
against the claim metadata"; a claim is selectively disclosable only if it is
itself a disclosure, and array paths count elements as issued.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable, Collection
from typing import Any

import pytest

from onceonly import jose
from onceonly.errors import (
    ClaimMetadataNotMet,
    ClaimMetadataViolation,
    IntegrityMismatch,
    InvalidClaim,
    IssuanceError,
    MalformedInput,
)
from onceonly.sdjwt import (
    ClaimPath,
    IssuedSdJwt,
    VerificationPolicy,
    issue_sd_jwt_vc,
    parse_sd_jwt,
    present_without_key_binding,
    verify_presentation,
)
from onceonly.sdjwt.integrity import integrity_of, parse_integrity, verify_integrity
from onceonly.sdjwt.type_metadata import TypeMetadata
from tests.unit.sdjwt.conftest import ISSUER, NOW, VCT, counter_random

CLAIMS: dict[str, Any] = {
    "given_name": "Ana",
    "birthdate": "1990-01-01",
    "address": {"street": "Rua 1", "city": "Porto"},
    "nationalities": ["PT", "DE"],
    "id_kind": "national",
}
# Every claim disclosable but id_kind (sd=never); street and each nationality
# disclosable in their own right.
COMPLIANT: tuple[ClaimPath, ...] = (
    ("given_name",),
    ("birthdate",),
    ("address",),
    ("address", "street"),
    ("address", "city"),
    ("nationalities",),
    ("nationalities", None),
)


def _document(**changes: Any) -> bytes:
    content: dict[str, Any] = {
        "vct": VCT,
        "claims": [
            {"path": ["given_name"], "sd": "always", "mandatory": True},
            {"path": ["birthdate"], "sd": "always"},
            {"path": ["address"], "sd": "always"},
            {"path": ["address", "street"], "sd": "always"},
            {"path": ["address", "city"]},
            {"path": ["nationalities", None], "sd": "always"},
            {"path": ["id_kind"], "sd": "never"},
        ],
    }
    content.update(changes)
    return json.dumps(content, indent=2).encode()


METADATA = TypeMetadata.from_document(_document())


def _issue(
    issuer_key: jose.PrivateKey,
    holder_key: jose.PrivateKey,
    disclosable: Collection[ClaimPath] = COMPLIANT,
    claims: dict[str, Any] = CLAIMS,
    metadata: TypeMetadata | None = None,
) -> IssuedSdJwt:
    return issue_sd_jwt_vc(
        issuer=ISSUER,
        vct=VCT,
        claims=claims,
        disclosable=disclosable,
        holder_key=holder_key.public(),
        signing_key=issuer_key,
        now=NOW - 100,
        expires_at=NOW + 86400,
        random_bytes=counter_random("metadata"),
        type_metadata=metadata,
    )


def _verify(
    text: str, issuer_key: jose.PrivateKey, resolver: Callable[[str], TypeMetadata | None] | None
) -> Any:
    policy = VerificationPolicy(require_key_binding=False, type_metadata=resolver)
    return verify_presentation(text, issuer_key=issuer_key.public(), policy=policy, now=NOW)


def _known(vct: str) -> TypeMetadata | None:
    return METADATA if vct == VCT else None


@pytest.mark.parametrize(
    ("disclosable", "finding"),
    [
        # given_name in plain view although sd=always
        ([p for p in COMPLIANT if p != ("given_name",)], "given_name is marked sd=always"),
        # street plain inside the disclosed address: an ancestor's disclosure is not enough
        ([p for p in COMPLIANT if p != ("address", "street")], "address.street is marked"),
        # nationality elements plain in the (disclosable) array
        ([p for p in COMPLIANT if p != ("nationalities", None)], r"nationalities\[0\] is marked"),
        # id_kind disclosable although sd=never
        ([*COMPLIANT, ("id_kind",)], "id_kind is marked sd=never"),
    ],
)
def test_holder_and_verifier_refuse_credentials_breaking_sd_rules(
    issuer_key: jose.PrivateKey,
    holder_key: jose.PrivateKey,
    disclosable: list[ClaimPath],
    finding: str,
) -> None:
    text = _issue(issuer_key, holder_key, disclosable).serialize()
    _verify(text, issuer_key, None)  # without type metadata nothing is known to be wrong
    with pytest.raises(ClaimMetadataViolation, match=finding) as info:
        _verify(text, issuer_key, _known)
    assert info.value.code == "claim_metadata_violation"
    assert isinstance(info.value, InvalidClaim)  # same family as the other claim checks
    with pytest.raises(ClaimMetadataNotMet, match=finding):  # our issuer refuses to sign it
        _issue(issuer_key, holder_key, disclosable, metadata=METADATA)


def test_compliant_credential_passes_whatever_the_holder_hides(
    issuer_key: jose.PrivateKey, holder_key: jose.PrivateKey
) -> None:
    issued = _issue(issuer_key, holder_key, metadata=METADATA)
    assert issued.payload["vct#integrity"] == integrity_of(METADATA.document)
    full = _verify(issued.serialize(), issuer_key, _known)
    assert full.claims["nationalities"] == ["PT", "DE"]
    sd_jwt = parse_sd_jwt(issued.serialize())
    # Hidden elements, a hidden parent: absent claims break no sd rule.
    for disclose in ([("nationalities", 1)], [("given_name",)], []):
        partial = present_without_key_binding(sd_jwt, disclose=disclose)
        _verify(partial, issuer_key, _known)


def test_issuer_refuses_a_missing_mandatory_claim_and_a_foreign_type(
    issuer_key: jose.PrivateKey, holder_key: jose.PrivateKey
) -> None:
    claims = {k: v for k, v in CLAIMS.items() if k != "given_name"}
    disclosable = [p for p in COMPLIANT if p != ("given_name",)]
    with pytest.raises(ClaimMetadataNotMet, match="given_name is mandatory but absent"):
        _issue(issuer_key, holder_key, disclosable, claims=claims, metadata=METADATA)
    other = TypeMetadata.from_document(_document(vct="urn:example:other:1"))
    with pytest.raises(IssuanceError):
        _issue(issuer_key, holder_key, metadata=other)


def test_vct_integrity_checked_against_the_verifiers_document(
    issuer_key: jose.PrivateKey, holder_key: jose.PrivateKey
) -> None:
    # The issuer signed over another version of the document than the verifier holds.
    changed = TypeMetadata.from_document(_document(name="changed"))
    text = _issue(issuer_key, holder_key, metadata=changed).serialize()
    _verify(text, issuer_key, None)  # syntax fine, nothing to compare with
    with pytest.raises(IntegrityMismatch) as info:
        _verify(text, issuer_key, _known)
    assert info.value.code == "integrity_mismatch"
    _verify(text, issuer_key, lambda vct: changed)


def test_type_metadata_for_another_vct_is_a_verifier_error(
    issuer_key: jose.PrivateKey, holder_key: jose.PrivateKey
) -> None:
    other = TypeMetadata.from_document(_document(vct="urn:example:other:1"))
    text = _issue(issuer_key, holder_key).serialize()
    with pytest.raises(InvalidClaim):
        _verify(text, issuer_key, lambda vct: other)


def _sri(alg: str, document: bytes) -> str:
    return f"{alg}-{base64.b64encode(hashlib.new(alg, document).digest()).decode()}"


@pytest.mark.parametrize(
    "value",
    [
        "",
        "   ",
        42,
        "sha256",
        "sha256-",
        "sha256-@@@@",
        "md5-" + base64.b64encode(bytes(16)).decode(),  # no supported algorithm
        "sha256-" + base64.b64encode(bytes(31)).decode(),  # wrong digest length
        "sha256-" + base64.urlsafe_b64encode(b"\xfb" * 32).decode(),  # base64url, not base64
        "sha256-" + base64.b64encode(bytes(32)).decode().rstrip("="),  # padding dropped
    ],
)
def test_malformed_integrity_values(
    value: Any, issuer_key: jose.PrivateKey, holder_key: jose.PrivateKey
) -> None:
    with pytest.raises(MalformedInput):
        parse_integrity(value)
    payload = {
        "iss": ISSUER,
        "iat": NOW,
        "vct": VCT,
        "vct#integrity": value,
        "cnf": {"jwk": holder_key.public().to_jwk()},
    }
    token = jose.sign_compact(payload, issuer_key, typ="dc+sd-jwt") + "~"
    with pytest.raises(InvalidClaim) as info:
        _verify(token, issuer_key, None)
    assert info.value.detail == {"claim": "vct#integrity"}


def test_integrity_uses_the_strongest_listed_algorithm() -> None:
    document = b'{"vct":"x"}'
    verify_integrity(_sri("sha256", document), document, what="t")
    verify_integrity(
        f"{_sri('sha256', document)}?opt {_sri('sha512', document)}", document, what="t"
    )
    verify_integrity(f"foo-YWJj {_sri('sha384', document)}", document, what="t")  # unknown skipped
    # A right sha256 does not rescue a wrong sha512: the strongest decides.
    wrong512 = _sri("sha512", b"other")
    with pytest.raises(IntegrityMismatch):
        verify_integrity(f"{_sri('sha256', document)} {wrong512}", document, what="t")
    # Any expression of the strongest algorithm may match.
    verify_integrity(f"{wrong512} {_sri('sha512', document)}", document, what="t")
    with pytest.raises(IntegrityMismatch):
        verify_integrity(_sri("sha256", document), document + b" ", what="t")


@pytest.mark.parametrize(
    "document",
    [
        b"[]",
        b'{"claims": []}',
        _document(claims={}),
        _document(claims=[{"path": []}]),
        _document(claims=[{"path": ["a", -1]}]),
        _document(claims=[{"path": ["a"], "sd": "sometimes"}]),
        _document(claims=[{"path": ["a"], "mandatory": "yes"}]),
        _document(claims=["a"]),
    ],
)
def test_malformed_type_metadata_is_refused(document: bytes) -> None:
    with pytest.raises(MalformedInput):
        TypeMetadata.from_document(document)
