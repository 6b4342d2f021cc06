"""What the verifier will see of a planned presentation, and may it see that.

A match names the disclosures to send; this module judges their result, as the
verifier will get it: every leaf they show (selected claims and the plain members
of the objects opened to reach them) against the verifier's registration, and
the verifier's own check of the query (array positions counted in the signed
array) against what it will see. Either failing makes the request unanswerable
for the wallet, which then refuses instead of over-disclosing or disclosing for
nothing (see :mod:`wallet.present`).
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from onceonly.errors import NotAuthorizedToRequest, QueryNotSatisfied
from onceonly.protocol.events import PresentationRequest
from onceonly.query import (
    Candidate,
    ClaimPath,
    HeldCredential,
    positioned_claims,
    presentation_answers,
)
from onceonly.sdjwt import SdJwt
from onceonly.trust import TrustList
from onceonly.trust.claim_paths import format_claim_path


def within_registration(
    request: PresentationRequest, vct: str, candidate: Candidate, trust: TrustList
) -> None:
    """Check every leaf ``candidate`` reveals against the verifier's registration.

    The query already passed the over-asking check, but opening a container also
    shows its plain members: what counts is what the verifier would see.

    Raises:
        QueryNotSatisfied: a revealed leaf lies outside the registration (detail
            ``reason`` ``beyond_registration`` and the ``path``; for the citizen).
    """
    try:
        trust.may_request(request.verifier_id, vct, candidate.revealed, request.purpose.code)
    except NotAuthorizedToRequest as error:
        path = error.detail.get("path")
        shown = format_claim_path(tuple(path)) if isinstance(path, list) else "a claim"
        raise QueryNotSatisfied(
            f"answering would also show {shown}, which the verifier is not registered for",
            detail={"reason": "beyond_registration", "path": path},
        ) from None


def verifier_would_accept(request: PresentationRequest, query_id: str, seen: SdJwt) -> None:
    """Run the verifier's query check on ``seen``, the SD-JWT with only the chosen disclosures.

    The verifier counts positions in the signed array; where an issuer put decoys
    into an array, those can differ from the as-issued positions the match used.

    Raises:
        QueryNotSatisfied: the verifier would reject it (detail ``reason`` ``unverifiable``).
    """
    view = positioned_claims(seen.claims, seen.claim_paths)
    try:
        presentation_answers(request.query.credential_query(query_id), view)
    except QueryNotSatisfied as error:
        raise QueryNotSatisfied(
            "the verifier could not check this answer (the issuer's decoys hide an "
            f"array position): {error.message}",
            detail={**error.detail, "reason": "unverifiable"},
        ) from None


def shown_leaves(
    held: HeldCredential, candidate: Candidate, *, technical: Collection[str]
) -> tuple[tuple[ClaimPath, Any], ...]:
    """Every ``(path, value)`` the verifier will see: revealed leaves, then always-visible ones.

    Always-visible claims named in ``technical`` (``iss``, ``cnf``, ...) are left out;
    so is whatever lies behind a disclosure, which is either revealed already or hidden.
    """
    claims, disclosable = held.claims, held.disclosable_paths
    revealed = [(path, _value_at(claims, path)) for path in candidate.revealed]
    plain = [
        (path, value)
        for name in sorted(held.always_visible.difference(technical))
        if name in claims
        for path, value in _leaves(claims[name], (name,))
        if not any(path[:end] in disclosable for end in range(1, len(path) + 1))
    ]
    return (*revealed, *plain)


def _value_at(claims: Any, path: ClaimPath) -> Any:
    node = claims
    for part in path:
        node = node[part]
    return node


def _leaves(value: Any, path: ClaimPath) -> list[tuple[ClaimPath, Any]]:
    if isinstance(value, dict) and value:
        return [leaf for name, child in value.items() for leaf in _leaves(child, (*path, name))]
    if isinstance(value, list) and value:
        return [leaf for i, child in enumerate(value) for leaf in _leaves(child, (*path, i))]
    return [(path, value)]
