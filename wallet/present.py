"""Answering a ``presentation.request``: who asks, may they, what fits, consent, minimal answer.

The order is deliberate (``specs/protocol.md`` 6.4, 13):

1. the sender must be the Matrix account the trust list names for ``verifier_id``
   (``untrusted_party`` otherwise) - before anything is shown to the citizen;
2. the verifier's registration must allow every requested claim for the stated
   purpose (``not_authorized_to_request``: over-asking is refused, never shown);
3. the request must not have expired (``request_expired``);
4. the query is matched against the credentials the wallet may still use (not
   expired, from an issuer the trust list allows for the type), and the match
   decides the exact disclosures. Every leaf they would show the verifier (the
   selected claims *and* the plain members of the containers opened to reach
   them) must lie within the registration, and the verifier's own check must
   accept what it would see; otherwise, or when nothing fits, the plan carries the
   reason instead of presentations;
5. the citizen (or a policy) consents to exactly those leaves - or, for a plan
   that cannot be answered, is shown that nothing fits: the same step either way;
6. each chosen credential is presented with exactly its match's disclosures and a
   KB-JWT over the request's ``nonce`` with ``aud`` = ``verifier_id``.

Steps 1-3 depend only on the request and the public trust list, so they refuse at
once with their own codes. Whatever depends on the citizen's credentials (step 4)
reaches the verifier only through step 5, and as the one code a refusal of
consent has: a verifier cannot tell "nothing matched" (say, a ``values``
mismatch) from "she said no", nor by timing (``specs/protocol.md`` 6.5).

This module plans and signs; :mod:`wallet.answer` runs the steps for one request,
turns every failure into a refusal and writes the citizen's history.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from onceonly.errors import (
    OnceOnlyError,
    QueryNotSatisfied,
    RequestExpired,
)
from onceonly.protocol.events import PresentationRequest
from onceonly.query import (
    Candidate,
    ClaimPath,
    HeldCredential,
    find_candidates,
    select_presentation,
)
from onceonly.sdjwt import SdJwt, parse_sd_jwt, present_disclosures
from onceonly.sdjwt.claims import TECHNICAL_CLAIMS
from onceonly.sdjwt.serialization import compact_without_kb
from onceonly.trust import Agency, Purpose, TrustList
from wallet.holdings import exact_disclosures, held_from_sd_jwt
from wallet.records import StoredCredential
from wallet.sight import shown_leaves, verifier_would_accept, within_registration
from wallet.store import WalletStore


@dataclass(frozen=True)
class Holding:
    """A stored credential the wallet may present, parsed once."""

    stored: StoredCredential
    sd_jwt: SdJwt
    held: HeldCredential


def usable_holdings(
    store: WalletStore,
    *,
    trust: TrustList,
    now: int,
    cache: dict[str, Holding] | None = None,
) -> list[Holding]:
    """The stored credentials that may still be presented, newest first.

    A credential past its ``exp``, or whose issuer the current trust list no longer
    allows for its type, is left out: a verifier would reject it anyway, and
    offering it would disclose claims for nothing. So is one its status list said
    was revoked or suspended (:mod:`wallet.status`): a credential *known* to be
    withdrawn is never presented. A stored credential that no longer parses is
    skipped too (it was verified on receipt; the store seals it).

    Newest first (by ``iat``, then by arrival) because the matcher takes the first
    candidate: after a re-issue, the fresh credential answers, not the one it replaced.

    Args:
        cache: Parsed credentials from earlier calls, by id (a long-running wallet
            passes the same dict each time). Parsing is most of the cost with many
            credentials; an entry is reused only while its stored record is unchanged,
            and entries of deleted credentials are dropped.
    """
    withdrawn = withdrawn_ids(store)
    holdings = current_holdings(store, trust=trust, now=now, cache=cache)
    return [holding for holding in holdings if holding.stored.credential_id not in withdrawn]


def withdrawn_ids(store: WalletStore) -> set[str]:
    """Ids of the credentials whose status list last said revoked or suspended."""
    statuses = store.credential_statuses()
    return {cid for cid, record in statuses.items() if record.state != "valid"}


def current_holdings(
    store: WalletStore,
    *,
    trust: TrustList,
    now: int,
    cache: dict[str, Holding] | None = None,
) -> list[Holding]:
    """Like :func:`usable_holdings`, but without looking at what status lists said."""
    out = []
    seen = set()
    for stored in store.credentials():
        seen.add(stored.credential_id)
        holding = cache.get(stored.credential_id) if cache is not None else None
        if holding is None or holding.stored != stored:
            try:
                sd_jwt = parse_sd_jwt(stored.sd_jwt)
            except OnceOnlyError:
                continue
            holding = Holding(stored, sd_jwt, held_from_sd_jwt(stored.credential_id, sd_jwt))
            if cache is not None:
                cache[stored.credential_id] = holding
        exp, iat = holding.sd_jwt.payload.get("exp"), holding.sd_jwt.payload.get("iat")
        if isinstance(exp, int | float) and exp <= now:
            continue
        if not isinstance(iat, int) or not trust.may_issue(stored.issuer, stored.vct, at=iat):
            continue
        out.append(holding)
    if cache is not None:
        for gone in set(cache) - seen:
            del cache[gone]
    # Reversed first: the stable sort then puts the later-stored of two credentials
    # issued in the same second first.
    return sorted(reversed(out), key=_newest_first)


def _newest_first(holding: Holding) -> tuple[int, int]:
    iat = holding.sd_jwt.payload.get("iat")
    return (-iat if isinstance(iat, int) else 0, -holding.stored.received_at)


def withdrawn_answer(
    request: PresentationRequest,
    *,
    holdings: Iterable[Holding],
    withdrawn: Iterable[Holding],
) -> QueryNotSatisfied | None:
    """Why nothing fits, when it is because of revocation: credentials that would answer.

    Returns the error to refuse with (its message is for the citizen only: the
    verifier gets the bare ``query_not_satisfied``), or ``None`` when the withdrawn
    credentials would not have answered the request either.
    """
    withdrawn = list(withdrawn)
    if not withdrawn:
        return None
    both = [holding.held for holding in (*holdings, *withdrawn)]
    try:
        chosen = select_presentation(find_candidates(request.query, both))
    except OnceOnlyError:
        return None
    by_id = {holding.stored.credential_id: holding for holding in withdrawn}
    used = [
        by_id[candidate.credential_id]
        for candidates in chosen.values()
        for candidate in candidates
        if candidate.credential_id in by_id
    ]
    if not used:
        return None
    names = ", ".join(holding.stored.label or holding.stored.vct for holding in used)
    return QueryNotSatisfied(
        f"the credentials that would answer this request were revoked or suspended by "
        f"their issuer ({names}); ask the issuer for a new one",
        detail={"withdrawn": [holding.stored.credential_id for holding in used]},
    )


@dataclass(frozen=True)
class PlannedPresentation:
    """One credential the wallet would present, and exactly what the verifier would see.

    Attributes:
        query_id: The credential query it answers.
        holding: The credential.
        candidate: The match (its ``disclosures`` are sent, its ``revealed`` leaves seen).
        disclosures: The encoded disclosures that will be sent.
        visible: The claims the verifier will see (technical claims left out).
        shown: Every leaf the verifier will see, ``(path, value)`` in document order:
            the leaves the disclosures reveal, then always-visible non-technical
            ones. Array positions are as issued. This is what consent is asked for.
    """

    query_id: str
    holding: Holding
    candidate: Candidate
    disclosures: tuple[str, ...]
    visible: dict[str, Any]
    shown: tuple[tuple[ClaimPath, Any], ...] = ()


@dataclass(frozen=True)
class DisclosurePlan:
    """Everything the citizen is asked to consent to.

    Attributes:
        request: The request.
        verifier: The verifier's trust-list entry (its name is what the citizen sees).
        purpose: The registered purpose (trust-list wording).
        presentations: What would be presented, per credential (empty with ``unanswerable``).
        unanswerable: Why the wallet cannot answer (nothing fits, or the minimal answer
            would show more than the registration allows), for the citizen only; the
            plan still goes through consent, and then the wallet refuses.
    """

    request: PresentationRequest
    verifier: Agency
    purpose: Purpose
    presentations: tuple[PlannedPresentation, ...]
    unanswerable: OnceOnlyError | None = None


Consent = Callable[[DisclosurePlan], bool]
"""Asks the citizen (or a policy): may this plan be disclosed? ``True`` means yes."""


def check_request(
    request: PresentationRequest, *, sender: str, trust: TrustList, now: int
) -> tuple[Agency, Purpose]:
    """Steps 1-3: the sender speaks for the verifier, who may ask this, in time.

    Raises:
        UntrustedParty: ``sender`` is not the verifier's registered account.
        NotAuthorizedToRequest: a claim or the purpose is outside its registration.
        RequestExpired: ``expires_at`` has passed.
    """
    verifier = trust.require_agency(sender, request.verifier_id)
    purpose = trust.may_request_query(request.verifier_id, request.query, request.purpose.code)
    if request.expires_at <= now:
        raise RequestExpired("the presentation request has expired")
    return verifier, purpose


def plan_presentation(
    request: PresentationRequest,
    *,
    sender: str,
    holdings: Iterable[Holding],
    trust: TrustList,
    now: int,
) -> DisclosurePlan:
    """Steps 1-4: check the request and choose the minimal disclosures that answer it.

    Returns:
        The plan; when the held credentials cannot answer (nothing fits, the answer
        would show more than the registration allows, or the verifier could not
        check it), a plan without presentations whose ``unanswerable`` says why.

    Raises:
        UntrustedParty, NotAuthorizedToRequest, RequestExpired: see :func:`check_request`.
    """
    verifier, purpose = check_request(request, sender=sender, trust=trust, now=now)
    try:
        planned = _choose(request, holdings, trust)
    except OnceOnlyError as error:
        return DisclosurePlan(request, verifier, purpose, (), unanswerable=error)
    return DisclosurePlan(request, verifier, purpose, planned)


def _choose(
    request: PresentationRequest, holdings: Iterable[Holding], trust: TrustList
) -> tuple[PlannedPresentation, ...]:
    by_id = {holding.stored.credential_id: holding for holding in holdings}
    match = find_candidates(request.query, [holding.held for holding in by_id.values()])
    chosen = select_presentation(match)
    planned = []
    for query_id, candidates in chosen.items():
        for candidate in candidates:
            holding = by_id[candidate.credential_id]
            within_registration(request, holding.stored.vct, candidate, trust)
            encoded = exact_disclosures(holding.sd_jwt, candidate.disclosures)
            seen = parse_sd_jwt(compact_without_kb(holding.sd_jwt.raw.issuer_jwt, encoded))
            verifier_would_accept(request, query_id, seen)
            planned.append(
                PlannedPresentation(
                    query_id=query_id,
                    holding=holding,
                    candidate=candidate,
                    disclosures=tuple(encoded),
                    visible=_without_technical(seen.claims),
                    shown=shown_leaves(holding.held, candidate, technical=TECHNICAL_CLAIMS),
                )
            )
    return tuple(planned)


def verifier_view(sd_jwt: SdJwt, disclosures: Iterable[str]) -> dict[str, Any]:
    """The claims a verifier sees from ``disclosures``, without the technical ones."""
    return _without_technical(
        parse_sd_jwt(compact_without_kb(sd_jwt.raw.issuer_jwt, list(disclosures))).claims
    )


def _without_technical(claims: dict[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in claims.items() if name not in TECHNICAL_CLAIMS}


def present_plan(
    plan: DisclosurePlan, *, store: WalletStore, now: int
) -> dict[str, tuple[str, ...]]:
    """Step 6: sign the presentations of ``plan`` (the ``vp_token``).

    Raises:
        StoreError: a holder key is gone.
        KeyBindingError: a credential is not bound to its stored holder key.
        QueryNotSatisfied: the plan is ``unanswerable`` (its error is raised).
    """
    if plan.unanswerable is not None:
        raise plan.unanswerable
    vp_token: dict[str, list[str]] = {}
    for item in plan.presentations:
        key_id = item.holding.stored.holder_key_id
        if key_id is None:
            raise QueryNotSatisfied("a chosen credential has no holder key to bind it")
        presentation = present_disclosures(
            item.holding.sd_jwt,
            disclosures=item.disclosures,
            holder_key=store.holder_key(key_id),
            aud=plan.request.verifier_id,
            nonce=plan.request.nonce,
            now=now,
        )
        vp_token.setdefault(item.query_id, []).append(presentation)
    return {query_id: tuple(items) for query_id, items in vp_token.items()}
