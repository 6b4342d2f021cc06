"""Wallet side: which held credentials answer a DCQL query, with the fewest disclosures.

Pure: the caller passes what it holds as :class:`HeldCredential` values (the
full claim values it knows from issuance plus which paths have a disclosure)
and gets back, per credential query, every candidate with the exact set of
disclosures a presentation needs. Nothing here talks to a store or a user.

Paths use one notion of array position throughout, the array *as issued*
(SD-JWT VC "Claim Path": as if every selectively disclosable claim were
disclosed): matching, the disclosures chosen and the leaves they reveal all
name an element by that position, and so does the verifier's check
(:mod:`onceonly.query.verify`).

Which disclosures a selected claim needs (RFC 9901 §7.1 decides what a
verifier can see):

* the claim's own disclosure and those of every enclosing object or array
  element, or the verifier never reaches it;
* every disclosure *inside* the claim's value, because selecting ``address``
  selects the whole address (DCQL §7: "with its sub-claims as the value").

Nothing else: an integer index discloses that element only (OpenID4VP §6.4.1:
no selectively disclosable claim that was not selected), since the index names a
position the verifier can check without seeing the elements before it.

Opening a container also shows its plain (not selectively disclosable) members;
:attr:`Candidate.revealed` lists every leaf the chosen disclosures reveal, which
is what registration and consent must be judged against.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from onceonly.errors import MalformedInput, QueryNotSatisfied
from onceonly.query.model import ClaimPath, ClaimsQuery, CredentialQuery, DcqlQuery
from onceonly.query.pointer import ConcretePath, MissReason, PointerMiss, select_matching
from onceonly.query.revealed import revealed_leaves


@dataclass(frozen=True, slots=True)
class HeldCredential:
    """What matching needs to know about one credential in the wallet.

    Attributes:
        credential_id: The wallet's id for the credential.
        vct: Its type.
        claims: Every claim value the wallet holds (the issuer-known payload with all
            disclosures applied). Treated as read-only.
        disclosable_paths: Concrete paths (no ``None``) that have their own disclosure.
        always_visible: Top-level claim names the issuer put in plain view (``iss``,
            ``vct``, ``cnf``, ...); a path under them never needs a disclosure.
        issuer: The issuing agency's id (``iss``), for ``trusted_authorities``.
    """

    credential_id: str
    vct: str
    claims: Mapping[str, Any]
    disclosable_paths: frozenset[ClaimPath]
    always_visible: frozenset[str] = frozenset()
    issuer: str | None = None

    def __post_init__(self) -> None:
        for path in self.disclosable_paths:
            if not path or not all(_is_concrete_component(part) for part in path):
                raise MalformedInput(f"disclosable path {path!r} is not a concrete claim path")
            if len(path) == 1 and path[0] in self.always_visible:
                raise MalformedInput(f"claim {path[0]!r} cannot be both disclosable and visible")


def _is_concrete_component(part: object) -> bool:
    if isinstance(part, bool):
        return False
    return isinstance(part, str) or (isinstance(part, int) and part >= 0)


@dataclass(frozen=True, slots=True)
class Candidate:
    """One held credential that answers one credential query.

    Attributes:
        credential_id: Which credential.
        query_id: Which credential query it answers.
        disclosures: The minimal set of disclosure paths the presentation must include.
        claim_paths: Concrete paths of the claims selected for the verifier, in query order.
        revealed: Every leaf those disclosures show the verifier (a value that is not a
            non-empty object or array), in document order: the selected claims and any
            plain members of the containers opened to reach them. Always-visible claims
            outside every disclosure are not listed.
        claim_set: Claim ids of the chosen ``claim_sets`` option, if the query has them.
        claim_set_index: Position of that option (0 = the verifier's first preference).
    """

    credential_id: str
    query_id: str
    disclosures: frozenset[ClaimPath]
    claim_paths: tuple[ClaimPath, ...]
    claim_set: tuple[str, ...] | None = None
    claim_set_index: int | None = None
    revealed: tuple[ClaimPath, ...] = ()


@dataclass(frozen=True, slots=True)
class Miss:
    """Why a credential of an acceptable type does not answer a credential query.

    Attributes:
        credential_id: Which credential.
        path: The claim path (as the query wrote it) that could not be satisfied; for
            ``claim_sets`` it is the first failing claim of the most preferred option.
        reason: ``missing``, ``not_an_object``, ``not_an_array`` or ``value_mismatch``.
    """

    credential_id: str
    path: ClaimPath
    reason: MissReason


@dataclass(frozen=True, slots=True)
class CredentialQueryMatch:
    """Result for one credential query: candidates in the order the credentials were given."""

    query_id: str
    candidates: tuple[Candidate, ...]
    misses: tuple[Miss, ...] = ()


@dataclass(frozen=True, slots=True)
class CredentialSetMatch:
    """Result for one ``credential_sets`` entry.

    Attributes:
        index: Position in ``credential_sets``.
        required: Copied from the query.
        satisfiable_options: The options whose every credential query has a candidate,
            in the verifier's order of preference.
    """

    index: int
    required: bool
    satisfiable_options: tuple[tuple[str, ...], ...]


@dataclass(frozen=True, slots=True)
class QueryMatch:
    """Everything the wallet can offer for one query."""

    query: DcqlQuery
    results: tuple[CredentialQueryMatch, ...]
    credential_sets: tuple[CredentialSetMatch, ...] = ()
    _by_id: dict[str, CredentialQueryMatch] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        by_id = {result.query_id: result for result in self.results}
        object.__setattr__(self, "_by_id", by_id)

    def for_query(self, query_id: str) -> CredentialQueryMatch:
        """The result for credential query ``query_id`` (``KeyError`` if unknown)."""
        return self._by_id[query_id]

    def unsatisfied_reason(self) -> QueryNotSatisfied | None:
        """``None`` if the query can be answered, else the error explaining why not."""
        if self.query.credential_sets is None:
            for result in self.results:
                if not result.candidates:
                    return _no_candidate_error(result)
            return None
        for set_match in self.credential_sets:
            if set_match.required and not set_match.satisfiable_options:
                credential_set = self.query.credential_sets[set_match.index]
                first_option = credential_set.options[0]
                blocking = next(
                    self._by_id[qid] for qid in first_option if not self._by_id[qid].candidates
                )
                error = _no_candidate_error(blocking)
                error.detail["credential_set"] = set_match.index
                return error
        return None

    @property
    def satisfied(self) -> bool:
        """Whether the wallet holds enough to answer the query."""
        return self.unsatisfied_reason() is None


def _no_candidate_error(result: CredentialQueryMatch) -> QueryNotSatisfied:
    # The detail names query-side paths only: never a claim value of the citizen.
    if not result.misses:
        return QueryNotSatisfied(
            f"no credential of a requested type for {result.query_id!r}",
            detail={"credential_query": result.query_id, "reason": "no_credential_of_type"},
        )
    miss = result.misses[0]
    return QueryNotSatisfied(
        f"credential query {result.query_id!r}: claim {list(miss.path)!r} is {miss.reason}",
        detail={
            "credential_query": result.query_id,
            "claim_path": list(miss.path),
            "reason": miss.reason,
        },
    )


def find_candidates(query: DcqlQuery, held: Iterable[HeldCredential]) -> QueryMatch:
    """Match every credential query against the held credentials (never raises for no match).

    Args:
        query: A validated DCQL query.
        held: The wallet's credentials, in the order candidates should be listed.

    Returns:
        Candidates and misses per credential query, and which ``credential_sets``
        options are satisfiable.
    """
    held = tuple(held)
    results = tuple(_match_credential_query(cq, held) for cq in query.credentials)
    has_candidates = {result.query_id: bool(result.candidates) for result in results}
    set_matches = tuple(
        CredentialSetMatch(
            index=index,
            required=credential_set.required,
            satisfiable_options=tuple(
                option
                for option in credential_set.options
                if all(has_candidates[qid] for qid in option)
            ),
        )
        for index, credential_set in enumerate(query.credential_sets or ())
    )
    return QueryMatch(query=query, results=results, credential_sets=set_matches)


def match_query(query: DcqlQuery, held: Iterable[HeldCredential]) -> QueryMatch:
    """Like :func:`find_candidates`, but insist the whole query can be answered.

    The error's detail names the credential query and the claim path that failed.
    It is meant for the wallet and its user: do not forward it to the verifier
    verbatim, since whether a ``values`` constraint matched is itself personal data
    (OpenID4VP §14.6.1); refuse with a generic code instead.

    Raises:
        QueryNotSatisfied: a required credential query (or every option of a required
            credential set) has no candidate.
    """
    match = find_candidates(query, held)
    error = match.unsatisfied_reason()
    if error is not None:
        raise error
    return match


def select_presentation(
    match: QueryMatch, *, include_optional: bool = False
) -> dict[str, tuple[Candidate, ...]]:
    """Pick what to present by default: the verifier's preferred satisfiable choices.

    Without ``credential_sets`` every credential query is answered; with them, the
    first satisfiable option of each required set (and of optional sets when
    ``include_optional``). Each answered query gets its first candidate, or all of
    them when the query allows ``multiple``. The citizen may still choose otherwise.

    Raises:
        QueryNotSatisfied: the match cannot answer the query.
    """
    error = match.unsatisfied_reason()
    if error is not None:
        raise error
    if match.query.credential_sets is None:
        wanted = [result.query_id for result in match.results]
    else:
        wanted = []
        for set_match in match.credential_sets:
            if set_match.satisfiable_options and (set_match.required or include_optional):
                wanted.extend(set_match.satisfiable_options[0])
    chosen: dict[str, tuple[Candidate, ...]] = {}
    for query_id in dict.fromkeys(wanted):
        candidates = match.for_query(query_id).candidates
        multiple = match.query.credential_query(query_id).multiple
        chosen[query_id] = candidates if multiple else candidates[:1]
    return chosen


# --- one credential query against one credential ---------------------------------


@dataclass(frozen=True, slots=True)
class _Resolved:
    claim_paths: tuple[ConcretePath, ...]
    disclosures: frozenset[ClaimPath]


def _match_credential_query(
    cq: CredentialQuery, held: tuple[HeldCredential, ...]
) -> CredentialQueryMatch:
    acceptable = frozenset(cq.meta.vct_values)
    candidates: list[Candidate] = []
    misses: list[Miss] = []
    for credential in held:
        if credential.vct not in acceptable or not cq.accepts_issuer(credential.issuer):
            continue
        outcome = _match_one(cq, credential)
        if isinstance(outcome, Miss):
            misses.append(outcome)
        else:
            candidates.append(outcome)
    return CredentialQueryMatch(cq.id, tuple(candidates), tuple(misses))


def _match_one(cq: CredentialQuery, credential: HeldCredential) -> Candidate | Miss:
    claims = cq.claims or ()
    if not claims:
        return Candidate(credential.credential_id, cq.id, frozenset(), ())
    resolved: dict[int, _Resolved | Miss] = {}

    def resolve(index: int) -> _Resolved | Miss:
        if index not in resolved:
            resolved[index] = _resolve_claim(claims[index], credential)
        return resolved[index]

    if cq.claim_sets is None:
        return _combine(cq.id, credential, [resolve(i) for i in range(len(claims))])
    position = {claim.id: i for i, claim in enumerate(claims)}
    first_miss: Miss | None = None
    for option_index, option in enumerate(cq.claim_sets):
        # Stop at the first failing claim of an option: later ones cannot rescue it.
        outcomes: list[_Resolved | Miss] = []
        for claim_id in option:
            outcome = resolve(position[claim_id])
            outcomes.append(outcome)
            if isinstance(outcome, Miss):
                break
        combined = _combine(cq.id, credential, outcomes)
        if isinstance(combined, Candidate):
            return Candidate(
                combined.credential_id,
                cq.id,
                combined.disclosures,
                combined.claim_paths,
                claim_set=option,
                claim_set_index=option_index,
                revealed=combined.revealed,
            )
        first_miss = first_miss or combined
    assert first_miss is not None  # claim_sets is non-empty by validation
    return first_miss


def _combine(
    query_id: str, credential: HeldCredential, outcomes: list[_Resolved | Miss]
) -> Candidate | Miss:
    disclosures: set[ClaimPath] = set()
    claim_paths: list[ClaimPath] = []
    for outcome in outcomes:
        if isinstance(outcome, Miss):
            return outcome
        disclosures.update(outcome.disclosures)
        claim_paths.extend(outcome.claim_paths)
    chosen = frozenset(disclosures)
    return Candidate(
        credential.credential_id,
        query_id,
        chosen,
        tuple(dict.fromkeys(claim_paths)),
        revealed=revealed_leaves(credential, chosen),
    )


def _resolve_claim(claim: ClaimsQuery, credential: HeldCredential) -> _Resolved | Miss:
    try:
        selected = select_matching(credential.claims, claim.path, claim.values)
    except PointerMiss as miss:
        return Miss(credential.credential_id, claim.path, miss.reason)
    disclosable = credential.disclosable_paths
    needed: set[ClaimPath] = set()
    for item in selected:
        path = item.path
        needed.update(path[:end] for end in range(1, len(path) + 1) if path[:end] in disclosable)
        depth = len(path)
        needed.update(
            other for other in disclosable if len(other) > depth and other[:depth] == path
        )
    return _Resolved(tuple(item.path for item in selected), frozenset(needed))
