"""One presentation request from arrival to answer: always a response, always in the history.

:func:`prepare_answer` runs the checks and the matching of :mod:`wallet.present`
(or returns the refusal), the caller obtains consent (a policy, the terminal),
:func:`complete_answer` presents or refuses; :func:`answer_request` does all
three for callers that can block on consent. Nothing here raises for bad or
unwanted input: every outcome is a ``presentation.response`` - presentations or
a refusal, never silence - and every answer to a trusted verifier is recorded in
the citizen's disclosure history (a request from an account that does not speak
for the verifier is not: anyone could fill the history that way).

Only the checks that depend on nothing but the request and the public trust list
(sender, registration, expiry) refuse before consent, each with its own code. A
request the citizen's credentials cannot answer still goes to consent (the
citizen is shown that nothing fits) and is refused with ``consent_denied``, the
code of a "no": which one it was is kept in her history and notices, never sent.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from onceonly.errors import (
    ConsentDenied,
    NotAuthorizedToRequest,
    OnceOnlyError,
    QueryNotSatisfied,
    RequestExpired,
    StoreError,
    UntrustedParty,
)
from onceonly.protocol.bodies import build_presentation_response
from onceonly.protocol.events import PresentationRequest, PresentationResponse, Refusal, RefusalCode
from onceonly.protocol.fields import LocalizedText
from onceonly.query import ClaimPath
from onceonly.trust import TrustList
from wallet.present import (
    Consent,
    DisclosurePlan,
    Holding,
    current_holdings,
    plan_presentation,
    present_plan,
    usable_holdings,
    withdrawn_answer,
    withdrawn_ids,
)
from wallet.records import DisclosureOutcome
from wallet.store import WalletStore


@dataclass(frozen=True)
class Answer:
    """The wallet's answer to one request.

    Attributes:
        response: The ``presentation.response`` to send (presentations or a refusal).
        plan: What was (or would have been) disclosed, when matching got that far.
        error: Why it was refused (full message, for the citizen), ``None`` if presented.
    """

    response: PresentationResponse
    plan: DisclosurePlan | None = None
    error: OnceOnlyError | None = None

    @property
    def presented(self) -> bool:
        """Whether presentations were sent."""
        return self.error is None


_PUBLIC_REFUSALS: Final[dict[type[OnceOnlyError], RefusalCode]] = {
    UntrustedParty: RefusalCode.UNTRUSTED_PARTY,
    NotAuthorizedToRequest: RefusalCode.NOT_AUTHORIZED_TO_REQUEST,
    RequestExpired: RefusalCode.REQUEST_EXPIRED,
}
"""Refusals decided from the request and the trust list alone: they tell nothing of the citizen."""


def refusal_for(error: OnceOnlyError) -> Refusal:
    """The refusal that tells the verifier why, without personal data.

    Over-asking names the offending path (the verifier's own query, not the citizen's
    data). Everything else - she said no, nothing fits, a ``values`` mismatch, the
    answer would show more than the registration allows, a wallet fault - is the one
    code ``consent_denied`` without a message: telling them apart would tell the
    verifier something about her credentials (OpenID4VP §14.6.1).
    """
    code = next(
        (code for kind, code in _PUBLIC_REFUSALS.items() if isinstance(error, kind)),
        RefusalCode.CONSENT_DENIED,
    )
    if code is RefusalCode.NOT_AUTHORIZED_TO_REQUEST:
        path = error.detail.get("path")
        shown = "/".join("*" if p is None else str(p) for p in path) if path else None
        what = f" ({shown})" if shown else ""
        return Refusal(
            code=code,
            message=LocalizedText(
                de=f"Diese Angaben oder dieser Zweck sind für Sie nicht registriert{what}.",
                en=f"Your registration does not cover these claims or this purpose{what}.",
            ),
        )
    return Refusal(code=code)


def prepare_answer(
    store: WalletStore,
    request: PresentationRequest,
    *,
    sender: str,
    trust: TrustList,
    now: int,
    request_event_id: str | None = None,
    cache: dict[str, Holding] | None = None,
) -> DisclosurePlan | Answer:
    """Steps 1-4: the plan to ask consent for, or already the refusal (never raises).

    Split from :func:`complete_answer` so that a service can ask the citizen
    without holding anything else up. ``cache`` is passed to :func:`usable_holdings`.
    Only the request's own faults (sender, registration, expiry) come back as a
    refusal; a request the credentials cannot answer comes back as a plan whose
    ``unanswerable`` says why, to go through consent like any other.
    Credentials known to be revoked or suspended are never planned; when only they
    would answer, ``unanswerable`` (kept for the citizen, not sent) says so.
    Refresh what the status lists say first (:mod:`wallet.status`) to know it.
    """
    try:
        holdings = usable_holdings(store, trust=trust, now=now, cache=cache)
        plan = plan_presentation(request, sender=sender, holdings=holdings, trust=trust, now=now)
    except OnceOnlyError as error:
        return _refuse(store, request, error, sender, trust, now, request_event_id, None)
    if isinstance(plan.unanswerable, QueryNotSatisfied):
        try:
            withdrawn = withdrawn_ids(store)
            left_out = [
                holding
                for holding in current_holdings(store, trust=trust, now=now, cache=cache)
                if holding.stored.credential_id in withdrawn
            ]
        except OnceOnlyError:
            left_out = []
        explained = withdrawn_answer(request, holdings=holdings, withdrawn=left_out)
        if explained is not None:
            plan = dataclasses.replace(plan, unanswerable=explained)
    return plan


def complete_answer(
    store: WalletStore,
    plan: DisclosurePlan,
    *,
    approved: bool,
    sender: str,
    trust: TrustList,
    now: int,
    request_event_id: str | None = None,
) -> Answer:
    """Steps 5-6: present what ``plan`` chose if ``approved``, else refuse (never raises).

    An ``unanswerable`` plan is refused whatever the answer, with the same code as a no.
    """
    request = plan.request
    try:
        if plan.unanswerable is not None:
            raise plan.unanswerable
        if not approved:
            raise ConsentDenied("the citizen declined to disclose")
        vp_token = present_plan(plan, store=store, now=now)
        # Written before anything is sent: a disclosure the history cannot
        # record is not made.
        for item in plan.presentations:
            _record(
                store,
                request,
                sender=sender,
                credential_id=item.holding.stored.credential_id,
                paths=[path for path, _ in item.shown],
                outcome="disclosed",
                now=now,
            )
    except OnceOnlyError as error:
        return _refuse(store, request, error, sender, trust, now, request_event_id, plan)
    response = build_presentation_response(
        exchange_id=request.exchange_id,
        verifier_name=request.verifier_name,
        vp_token=vp_token,
        request_event_id=request_event_id,
    )
    return Answer(response=response, plan=plan)


def answer_request(
    store: WalletStore,
    request: PresentationRequest,
    *,
    sender: str,
    trust: TrustList,
    consent: Consent,
    now: int,
    request_event_id: str | None = None,
) -> Answer:
    """Run the whole decision for one request; never raises for bad or unwanted input.

    Args:
        store: The open wallet (holder keys, credentials, history).
        request: The parsed request.
        sender: Matrix user who sent it.
        trust: The current, verified trust list.
        consent: Asks the citizen or a policy.
        now: Current Unix time.
        request_event_id: The request's Matrix event id, echoed in the response.
    """
    prepared = prepare_answer(
        store, request, sender=sender, trust=trust, now=now, request_event_id=request_event_id
    )
    if isinstance(prepared, Answer):
        return prepared
    return complete_answer(
        store,
        prepared,
        approved=consent(prepared),
        sender=sender,
        trust=trust,
        now=now,
        request_event_id=request_event_id,
    )


def _refuse(
    store: WalletStore,
    request: PresentationRequest,
    error: OnceOnlyError,
    sender: str,
    trust: TrustList,
    now: int,
    request_event_id: str | None,
    plan: DisclosurePlan | None,
) -> Answer:
    with contextlib.suppress(StoreError):
        # The refusal goes out even if the history cannot take the entry.
        _record_refusal(store, request, error, sender=sender, trust=trust, now=now)
    response = build_presentation_response(
        exchange_id=request.exchange_id,
        verifier_name=request.verifier_name,
        refusal=refusal_for(error),
        request_event_id=request_event_id,
    )
    return Answer(response=response, plan=plan, error=error)


def _record_refusal(
    store: WalletStore,
    request: PresentationRequest,
    error: OnceOnlyError,
    *,
    sender: str,
    trust: TrustList,
    now: int,
) -> None:
    # Requests from accounts that do not speak for the verifier are not the
    # citizen's business history (and would let anyone fill it): not recorded.
    if not trust.is_agency(sender, request.verifier_id):
        return
    asked = sorted(
        {
            tuple(claim.path)
            for credential in request.query.credentials
            for claim in credential.claims or ()
        },
        key=str,
    )
    outcome: DisclosureOutcome = "declined" if isinstance(error, ConsentDenied) else "failed"
    _record(
        store, request, sender=sender, credential_id=None, paths=asked, outcome=outcome, now=now
    )


def _record(
    store: WalletStore,
    request: PresentationRequest,
    *,
    sender: str,
    credential_id: str | None,
    paths: Iterable[ClaimPath],
    outcome: DisclosureOutcome,
    now: int,
) -> None:
    store.record_disclosure(
        verifier_id=request.verifier_id,
        verifier_user=sender,
        credential_id=credential_id,
        claim_paths=tuple(tuple(path) for path in paths),
        purpose=request.purpose.code,
        outcome=outcome,
        exchange_id=request.exchange_id,
        at=now,
    )
