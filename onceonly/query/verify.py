"""Verifier side: do the disclosed claims answer the query? And what does a query ask for?

A verifier must not trust the wallet to have followed the query (OpenID4VP
§14.4): after it has verified each presentation cryptographically, it checks
here that the claims it can now see satisfy the query, ``values`` included.

An integer index in a claim path names the position in the array as issued,
counting the elements the verifier cannot see (SD-JWT VC, "Claim Path"). The
plain processed claims lose those positions, so a verifier passes
:func:`positioned_claims`, which puts :data:`~onceonly.query.pointer.HIDDEN` where
an element was not disclosed. The verifier cannot tell an undisclosed element
from a decoy digest (RFC 9901 makes them look alike), so it counts every
undisclosed array entry: for issuers that put no decoys into arrays (onceonly's
do not) that is exactly the issued position; where a decoy precedes the element
it is a later one, and the check fails closed rather than accept another element.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any

from onceonly.errors import QueryNotSatisfied
from onceonly.query.model import ClaimPath, ClaimsQuery, CredentialQuery, DcqlQuery
from onceonly.query.pointer import HIDDEN, PointerMiss, select_matching

DisclosedClaims = Mapping[str, Any]
"""The claims a verifier sees in one verified presentation (disclosures applied).

Arrays carry :data:`~onceonly.query.pointer.HIDDEN` at the positions of elements
that were not disclosed (see :func:`positioned_claims`); an array without it is
taken to be complete.
"""


def positioned_claims(
    claims: Mapping[str, Any], visible_paths: Collection[ClaimPath]
) -> dict[str, Any]:
    """Processed claims with every array element back at its position in the signed array.

    Args:
        claims: The processed claims (undisclosed elements removed, later ones moved up).
        visible_paths: The path of every visible node, array positions counted in the
            *signed* array (what SD-JWT processing reports with its node paths).

    Returns:
        A copy of ``claims`` whose arrays hold :data:`~onceonly.query.pointer.HIDDEN`
        at each position before the last visible element that the verifier cannot see.

    Raises:
        ValueError: ``visible_paths`` does not describe ``claims`` (a caller's mistake).
    """
    children: dict[ClaimPath, list[int]] = {}
    for path in visible_paths:
        if path and isinstance(path[-1], int) and not isinstance(path[-1], bool):
            children.setdefault(path[:-1], []).append(path[-1])
    for positions in children.values():
        positions.sort()

    def place(value: Any, path: ClaimPath) -> Any:
        if isinstance(value, Mapping):
            return {name: place(child, (*path, name)) for name, child in value.items()}
        if isinstance(value, list | tuple):
            positions = children.get(path, [])
            if len(positions) != len(value):
                raise ValueError(f"visible_paths do not describe the array at {list(path)!r}")
            out: list[Any] = [HIDDEN] * (positions[-1] + 1 if positions else 0)
            for position, child in zip(positions, value, strict=True):
                out[position] = place(child, (*path, position))
            return out
        return value

    return {name: place(child, (name,)) for name, child in claims.items()}


def uses_indices(query: DcqlQuery) -> bool:
    """Whether some claim path of ``query`` addresses an array element by index."""
    return any(
        isinstance(part, int) and not isinstance(part, bool)
        for cq in query.credentials
        for claim in cq.claims or ()
        for part in claim.path
    )


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


def presentation_answers(cq: CredentialQuery, claims: DisclosedClaims) -> None:
    """Check one presentation against its credential query (type, claims, ``values``).

    The wallet runs this on the view it is about to give the verifier, so that it
    never discloses something the verifier will reject anyway.

    Raises:
        QueryNotSatisfied: as :func:`claims_satisfy`, for this presentation alone.
    """
    _check_presentation(cq, claims)


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
