"""Pure DCQL (OpenID4VP 1.0 §6-7): the query model, wallet-side matching, verifier checks.

No I/O: callers pass the query, the held credentials or the disclosed claims.

* :mod:`onceonly.query.model` - the frozen query model and :func:`parse_query`.
* :mod:`onceonly.query.pointer` - claims path pointer processing.
* :mod:`onceonly.query.match` - which held credentials answer a query, with the
  minimal set of disclosures each needs.
* :mod:`onceonly.query.revealed` - every leaf a set of disclosures shows a verifier.
* :mod:`onceonly.query.verify` - whether disclosed claims answer a query, and which
  paths a query asks for per credential type (for the trust list's over-asking check).
"""

from onceonly.query.match import (
    Candidate,
    CredentialQueryMatch,
    CredentialSetMatch,
    HeldCredential,
    Miss,
    QueryMatch,
    find_candidates,
    match_query,
    select_presentation,
)
from onceonly.query.model import (
    AGENCY_AUTHORITY_TYPE,
    SD_JWT_VC_FORMAT,
    ClaimPath,
    ClaimsQuery,
    CredentialMeta,
    CredentialQuery,
    CredentialSetQuery,
    DcqlQuery,
    TrustedAuthoritiesQuery,
    parse_query,
)
from onceonly.query.pointer import HIDDEN, PointerMiss, Selected, select, value_matches
from onceonly.query.revealed import revealed_leaves
from onceonly.query.verify import (
    claims_satisfy,
    positioned_claims,
    presentation_answers,
    requested_paths_by_vct,
    uses_indices,
)

__all__ = [
    "AGENCY_AUTHORITY_TYPE",
    "HIDDEN",
    "SD_JWT_VC_FORMAT",
    "Candidate",
    "ClaimPath",
    "ClaimsQuery",
    "CredentialMeta",
    "CredentialQuery",
    "CredentialQueryMatch",
    "CredentialSetMatch",
    "CredentialSetQuery",
    "DcqlQuery",
    "HeldCredential",
    "Miss",
    "PointerMiss",
    "QueryMatch",
    "Selected",
    "TrustedAuthoritiesQuery",
    "claims_satisfy",
    "find_candidates",
    "match_query",
    "parse_query",
    "positioned_claims",
    "presentation_answers",
    "requested_paths_by_vct",
    "revealed_leaves",
    "select",
    "select_presentation",
    "uses_indices",
    "value_matches",
]
