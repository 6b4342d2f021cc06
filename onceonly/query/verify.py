"""Verifier side: do the disclosed claims answer the query? And what does a query ask for?

A verifier must not trust the wallet to have followed the query (OpenID4VP
§14.4): after it has verified each presentation cryptographically, it checks
here that the claims it can now see satisfy the query, ``values`` included.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from onceonly.errors import QueryNotSatisfied
from onceonly.query.model import ClaimPath, ClaimsQuery, CredentialQuery, DcqlQuery
from onceonly.query.pointer import PointerMiss, select_matching

DisclosedClaims = Mapping[str, Any]
"""The claims a verifier sees in one verified presentation (disclosures applied)."""


def claims_satisfy(
    query: DcqlQuery,
    disclosed_claims_by_credential_id: Mapping[str, DisclosedClaims | Sequence[DisclosedClaims]],
) -> None:
    """Check that verified presentations answer ``query``.

    Args:
        query: The query the verifier sent.
        disclosed_claims_by_credential_id: Keyed by credential query id (the keys of
            the response); each value is the disclosed claims of one presentation, or
            a list of them for a query with ``multiple``.

    Raises:
        QueryNotSatisfied: a presentation answers a query id that was not asked, has
            a ``vct`` not in ``vct_values``, lacks a requested claim or has a value
            outside ``values``; several presentations answer a query without
            ``multiple``; or a required credential (set) is not answered.
    """
    answered: set[str] = set()
    for query_id, presented in disclosed_claims_by_credential_id.items():
        try:
            cq = query.credential_query(query_id)
        except KeyError:
            raise QueryNotSatisfied(
                "a presentation answers a credential query that was not asked",
                detail={"credential_query": query_id, "reason": "unknown_credential_query"},
            ) from None
        presentations = [presented] if isinstance(presented, Mapping) else list(presented)
        if not presentations:
            continue
        if len(presentations) > 1 and not cq.multiple:
            raise QueryNotSatisfied(
                f"several presentations for {query_id!r}, which does not allow multiple",
                detail={"credential_query": query_id, "reason": "multiple_not_allowed"},
            )
        for claims in presentations:
            _check_presentation(cq, claims)
        answered.add(query_id)
    _check_combination(query, answered)


def _check_presentation(cq: CredentialQuery, claims: DisclosedClaims) -> None:
    if claims.get("vct") not in cq.meta.vct_values:
        raise QueryNotSatisfied(
            f"presentation for {cq.id!r} has a credential type that was not asked for",
            detail={"credential_query": cq.id, "reason": "vct_not_requested"},
        )
    requested = cq.claims or ()
    if cq.claim_sets is None:
        for claim in requested:
            _require_claim(cq.id, claim, claims)
        return
    by_id = cq.claim_by_id()
    first_error: QueryNotSatisfied | None = None
    for option in cq.claim_sets:
        try:
            for claim_id in option:
                _require_claim(cq.id, by_id[claim_id], claims)
        except QueryNotSatisfied as error:
            first_error = first_error or error
            continue
        return
    assert first_error is not None  # claim_sets is non-empty by validation
    raise first_error


def _require_claim(query_id: str, claim: ClaimsQuery, claims: DisclosedClaims) -> None:
    try:
        select_matching(claims, claim.path, claim.values)
    except PointerMiss as miss:
        raise QueryNotSatisfied(
            f"presentation for {query_id!r}: claim {list(claim.path)!r} is {miss.reason}",
            detail={
                "credential_query": query_id,
                "claim_path": list(claim.path),
                "reason": miss.reason,
            },
        ) from None


def _check_combination(query: DcqlQuery, answered: set[str]) -> None:
    if query.credential_sets is None:
        missing = [cq.id for cq in query.credentials if cq.id not in answered]
        if missing:
            raise QueryNotSatisfied(
                f"no presentation for credential query {missing[0]!r}",
                detail={"credential_query": missing[0], "reason": "not_presented"},
            )
        return
    for index, credential_set in enumerate(query.credential_sets):
        if not credential_set.required:
            continue
        if not any(set(option) <= answered for option in credential_set.options):
            raise QueryNotSatisfied(
                f"required credential set {index} is not answered by any of its options",
                detail={"credential_set": index, "reason": "not_presented"},
            )


def requested_paths_by_vct(query: DcqlQuery) -> dict[str, frozenset[ClaimPath]]:
    """Every claim path the query may ask for, per credential type.

    This is the worst case over ``claim_sets`` and ``credential_sets`` (every
    alternative counts), which is what an over-asking check against a verifier's
    registration must compare. A ``vct`` asked for with no claims maps to an empty set.
    """
    out: dict[str, set[ClaimPath]] = {}
    for cq in query.credentials:
        paths = {claim.path for claim in cq.claims or ()}
        for vct in cq.meta.vct_values:
            out.setdefault(vct, set()).update(paths)
    return {vct: frozenset(paths) for vct, paths in out.items()}
