"""Token Status List (IETF draft-ietf-oauth-status-list): pure encode, decode, sign, verify.

Pure: no I/O; keys and the clock (``now``) are arguments. The modules:

- :mod:`.codec`: :class:`StatusList` (packed 1/2/4/8-bit entries, ZLIB
  compression, bounded decompression).
- :mod:`.token`: the JWT form (``typ: statuslist+jwt``) and shared claim checks.
- :mod:`.cwt`: the CWT form (COSE_Sign1, ``application/statuslist+cwt``).
- :mod:`.reference`: a credential's ``status`` claim and :func:`check_status`.
- :mod:`.permutation`: a keyed shuffle so issuers do not hand out indices in order.
"""

from onceonly.status_list.codec import (
    ALLOWED_BITS,
    APPLICATION_SPECIFIC,
    DEFAULT_MAX_DECOMPRESSED_BYTES,
    INVALID,
    SUSPENDED,
    VALID,
    StatusList,
    bytes_for_entries,
    decompress_bounded,
)
from onceonly.status_list.cwt import (
    STATUS_LIST_CWT_TYP,
    sign_status_list_cwt,
    verify_status_list_cwt,
)
from onceonly.status_list.permutation import IndexPermutation
from onceonly.status_list.reference import (
    StatusReference,
    check_status,
    parse_status_claim,
    status_reference_from_claims,
    status_reference_from_cwt_claims,
)
from onceonly.status_list.token import (
    DEFAULT_LEEWAY_SECONDS,
    STATUS_LIST_JWT_MEDIA_TYPE,
    STATUS_LIST_JWT_TYP,
    StatusListToken,
    sign_status_list_jwt,
    verify_status_list_jwt,
)

__all__ = [
    "ALLOWED_BITS",
    "APPLICATION_SPECIFIC",
    "DEFAULT_LEEWAY_SECONDS",
    "DEFAULT_MAX_DECOMPRESSED_BYTES",
    "INVALID",
    "STATUS_LIST_CWT_TYP",
    "STATUS_LIST_JWT_MEDIA_TYPE",
    "STATUS_LIST_JWT_TYP",
    "SUSPENDED",
    "VALID",
    "IndexPermutation",
    "StatusList",
    "StatusListToken",
    "StatusReference",
    "bytes_for_entries",
    "check_status",
    "decompress_bounded",
    "parse_status_claim",
    "sign_status_list_cwt",
    "sign_status_list_jwt",
    "status_reference_from_claims",
    "status_reference_from_cwt_claims",
    "verify_status_list_cwt",
    "verify_status_list_jwt",
]
