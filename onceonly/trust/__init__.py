"""The trust list: which agencies exist, their keys, and what each may issue and ask for.

Pure: no I/O, the clock is an argument. Parties obtain the signed list through
Matrix or as a file (see :mod:`onceonly.trust_cache`), verify it against their
configured trust anchors with :func:`verify_trust_list`, and then ask the
:class:`TrustList` policy questions (:meth:`TrustList.may_issue`,
:meth:`TrustList.issuer_key_resolver`, :meth:`TrustList.may_request`,
:meth:`TrustList.agency_for_matrix_user`, :meth:`TrustList.is_agency`).
"""

from onceonly.trust.claim_paths import (
    ClaimPath,
    format_claim_path,
    parse_claim_path,
    path_covers,
)
from onceonly.trust.model import (
    Agency,
    AgencyKey,
    LocalizedText,
    Purpose,
    RequestGrant,
    TrustList,
    TrustListDraft,
)
from onceonly.trust.token import (
    TRUST_LIST_TYP,
    VerifiedTrustList,
    build_trust_list,
    check_not_rollback,
    check_validity_period,
    sign_trust_list,
    verify_trust_list,
    verify_trust_list_signature,
)

__all__ = [
    "TRUST_LIST_TYP",
    "Agency",
    "AgencyKey",
    "ClaimPath",
    "LocalizedText",
    "Purpose",
    "RequestGrant",
    "TrustList",
    "TrustListDraft",
    "VerifiedTrustList",
    "build_trust_list",
    "check_not_rollback",
    "check_validity_period",
    "format_claim_path",
    "parse_claim_path",
    "path_covers",
    "sign_trust_list",
    "verify_trust_list",
    "verify_trust_list_signature",
]
