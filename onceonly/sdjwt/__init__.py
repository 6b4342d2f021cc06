"""SD-JWT and SD-JWT VC (RFC 9901, draft-ietf-oauth-sd-jwt-vc): issue, present, verify.

Pure: no I/O; time (``now``), keys and randomness (``random_bytes``) are arguments.
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
from onceonly.sdjwt.verification import (
    VerificationPolicy,
    VerifiedCredential,
    verify_presentation,
)

__all__ = [
    "KB_JWT_TYP",
    "LEGACY_SD_JWT_VC_TYP",
    "NEVER_DISCLOSABLE",
    "SD_JWT_VC_TYP",
    "ClaimPath",
    "Disclosure",
    "IssuedSdJwt",
    "KeyBinding",
    "PathedDisclosure",
    "ProcessingLimits",
    "RawSdJwt",
    "SdJwt",
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
