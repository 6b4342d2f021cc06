"""SD-JWT and SD-JWT VC (RFC 9901, draft-ietf-oauth-sd-jwt-vc): issue, present, verify.

Pure: no I/O; time (``now``), keys and randomness (``random_bytes``) are arguments.

Issuer::

    issued = issue_sd_jwt_vc(
        issuer="https://registry.example", vct="urn:eudi:pid:1",
        claims={"given_name": "Ana", "address": {"locality": "Porto"}},
        disclosable=[("given_name",), ("address",), ("address", "locality")],
        holder_key=holder_public, signing_key=issuer_private,
        now=now, expires_at=now + 86400, random_bytes=os.urandom,
    )
    text = issued.serialize()            # <jwt>~<d1>~...~  (or .serialize_json())

Holder::

    held = parse_sd_jwt(text)            # structure only; held.claims shows everything
    answer = present(held, disclose=[("address", "locality")], holder_key=holder_private,
                     aud=verifier_id, nonce=request_nonce, now=now)

Verifier::

    policy = VerificationPolicy(expected_audience=verifier_id, expected_nonce=request_nonce,
                                expected_vct="urn:eudi:pid:1")
    result = verify_presentation(answer, issuer_key=key_or_resolver, policy=policy, now=now)
    result.claims   # {"iss": ..., "address": {"locality": "Porto"}, ...}

Every failure is an :class:`~onceonly.errors.OnceOnlyError` subclass with a stable code.
"""

from onceonly.sdjwt.claims import (
    KB_JWT_TYP,
    LEGACY_SD_JWT_VC_TYP,
    NEVER_DISCLOSABLE,
    SD_JWT_VC_TYP,
    ClaimPath,
    format_path,
)
from onceonly.sdjwt.disclosures import Disclosure
from onceonly.sdjwt.holder import (
    SdJwt,
    parse_sd_jwt,
    present,
    present_disclosures,
    present_without_key_binding,
    select_disclosures,
)
from onceonly.sdjwt.issuance import IssuedSdJwt, issue_sd_jwt_vc
from onceonly.sdjwt.key_binding import KeyBinding
from onceonly.sdjwt.processing import PathedDisclosure, ProcessingLimits
from onceonly.sdjwt.serialization import RawSdJwt, serialize_compact, serialize_json, split_sd_jwt
from onceonly.sdjwt.type_metadata import ClaimMetadata, TypeMetadata
from onceonly.sdjwt.verification import (
    TypeMetadataResolver,
    VerificationPolicy,
    VerifiedCredential,
    verify_presentation,
)

__all__ = [
    "KB_JWT_TYP",
    "LEGACY_SD_JWT_VC_TYP",
    "NEVER_DISCLOSABLE",
    "SD_JWT_VC_TYP",
    "ClaimMetadata",
    "ClaimPath",
    "Disclosure",
    "IssuedSdJwt",
    "KeyBinding",
    "PathedDisclosure",
    "ProcessingLimits",
    "RawSdJwt",
    "SdJwt",
    "TypeMetadata",
    "TypeMetadataResolver",
    "VerificationPolicy",
    "VerifiedCredential",
    "format_path",
    "issue_sd_jwt_vc",
    "parse_sd_jwt",
    "present",
    "present_disclosures",
    "present_without_key_binding",
    "select_disclosures",
    "serialize_compact",
    "serialize_json",
    "split_sd_jwt",
    "verify_presentation",
]
