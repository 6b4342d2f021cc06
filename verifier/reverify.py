"""The auditor's re-verification hook: redo a recorded verification from files alone.

:class:`Reverifier` is the ``reverify`` callable :func:`verifier.audit.audit_file`
accepts. For each audit entry that recorded a presentation and a verdict it
repeats the online checks of :mod:`verifier.verification` in the same order, at
the entry's time, and returns the outcome they give:

1. the nonce (from the entry's details): each nonce is consumed by one entry;
   every other entry carrying it is a replay; the entry's time at or after the
   request's expiry is an expired request. The online nonce store decided both;
   the log itself is the auditor's evidence. Several verifier processes may
   append a replay before the consuming verdict, so the consumer is found by a
   pre-scan of the whole export (:func:`nonce_consumers`): the first entry for
   the nonce that does not itself record a replay. Two entries that both claim
   to have consumed a nonce, or a replay without any consumer, therefore
   re-verify differently from what they record;
   With the recorded requests (:func:`recorded_requests`), the verdict must also
   be bound to the request the log recorded for its exchange, earlier in the
   chain: the same nonce, audience, expiry, query and purpose. The KB-JWT's
   ``aud`` and ``nonce`` are then checked against what was really asked, not
   against whatever the verdict entry claims;
2. the trust list the entry names, read from the evidence archive by its hash,
   must verify against the auditor's trust anchors and be valid at that time,
   and under it the verifier must be registered for the query and purpose
   (:func:`~verifier.verification.check_registration`): over-asking recorded as
   verified is a mismatch;
3. the SD-JWT VC checks, issuer trust and query satisfaction
   (:func:`~verifier.verification.check_presentations`);
4. the status list tokens the entry names, read from the archive and verified
   with the issuer's listed key, must show each credential valid.

Any difference from the recorded outcome is reported by the auditor. Pure
apart from reading the archive; no clock (the entry's time is "now").
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from pydantic import ValidationError

from onceonly import jose
from onceonly.errors import (
    MalformedInput,
    NonceMismatch,
    OnceOnlyError,
    ReplayDetected,
    RequestExpired,
    StatusUnavailable,
    StoreError,
    TrustError,
)
from onceonly.query import parse_query
from onceonly.status_cache import verify_status_token
from onceonly.status_list import check_status, status_reference_from_claims
from onceonly.trust import check_validity_period, verify_trust_list_signature
from onceonly.trust.token import MAX_TRUST_LIST_BYTES
from verifier.audit import MAX_LINE_BYTES
from verifier.audit_format import AuditEntry, EntryKind, VerificationOutcome
from verifier.evidence import EvidenceArchive
from verifier.verification import (
    VerifierOptions,
    VpToken,
    check_presentations,
    check_registration,
    status_key_resolver,
    verified_outcome,
)


def _vp_token(text: str) -> VpToken:
    data = jose.strict_json_loads(text, max_bytes=MAX_TRUST_LIST_BYTES)
    if not isinstance(data, dict) or not data:
        raise MalformedInput("recorded presentation is not a vp_token object")
    for value in data.values():
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            raise MalformedInput("recorded vp_token values must be lists of presentations")
    return data


def _detail(details: dict[str, str], name: str) -> str:
    value = details.get(name)
    if not value:
        raise MalformedInput(f"audit entry lacks the request's {name!r}")
    return value


class Reverifier:
    """Re-verifies audit entries in ``seq`` order (the auditor calls it that way).

    Stateful: it remembers the nonces of the entries it has seen, so create one
    per audit run.

    Args:
        evidence: The verifier's evidence archive (trust and status list tokens).
        anchors: The trust authority keys the auditor trusts.
        options: The verifier's policy (must match the one used online).
        consumers: Nonce to the ``seq`` of the entry that consumed it
            (:func:`nonce_consumers`); without it, the first entry seen in ``seq``
            order counts as the consumer.
        requests: The recorded requests by exchange (:func:`recorded_requests`);
            when given, every verdict must match its exchange's recorded request.
    """

    def __init__(
        self,
        *,
        evidence: EvidenceArchive,
        anchors: Sequence[jose.PublicKey],
        options: VerifierOptions | None = None,
        consumers: Mapping[str, int] | None = None,
        requests: Mapping[str, RecordedRequest] | None = None,
    ) -> None:
        self._evidence = evidence
        self._anchors = tuple(anchors)
        self._options = options or VerifierOptions()
        self._consumers = dict(consumers) if consumers is not None else None
        self._requests = dict(requests) if requests is not None else None
        self._seen_nonces: set[str] = set()

    def __call__(self, entry: AuditEntry) -> VerificationOutcome:
        """The outcome re-verification gives for ``entry``.

        Raises:
            OnceOnlyError: the check that fails (the auditor turns it into a
                rejected outcome with that code).
        """
        details = entry.details
        if self._requests is not None:
            _check_bound_to_request(entry, self._requests.get(entry.exchange_id))
        nonce = _detail(details, "nonce")
        consumer = None if self._consumers is None else self._consumers.get(nonce)
        if consumer is None:
            consumer = entry.seq if nonce not in self._seen_nonces else -1
        self._seen_nonces.add(nonce)
        if consumer != entry.seq:
            raise ReplayDetected("the nonce was consumed by another entry")
        try:
            expires_at = int(_detail(details, "expires_at"))
        except ValueError:
            raise MalformedInput("audit entry has a non-numeric expires_at") from None
        if entry.time >= expires_at:
            raise RequestExpired("the response came after the request expired")
        if entry.presentation is None:
            raise MalformedInput("audit entry has no presentation")
        if entry.trust_list is None:
            raise TrustError("the verifier holds no valid trust list")
        verified_list = verify_trust_list_signature(
            self._evidence.get(entry.trust_list.hash), self._anchors
        )
        trust_list = verified_list.trust_list
        if trust_list.seq != entry.trust_list.sequence:
            raise TrustError("the archived trust list has another sequence number")
        try:
            check_validity_period(trust_list, now=entry.time)
        except OnceOnlyError as exc:
            raise TrustError(
                "the verifier's trust list is not usable", detail={"cause": exc.code}
            ) from exc
        query = parse_query(_detail(details, "query"))
        check_registration(trust_list, _detail(details, "audience"), query, details.get("purpose"))
        parts = check_presentations(
            _vp_token(entry.presentation),
            query=query,
            trust_list=trust_list,
            audience=_detail(details, "audience"),
            nonce=nonce,
            now=entry.time,
            options=self._options,
        )
        recorded = {version.uri: version.hash for version in entry.status_lists}
        for _, credential in parts:
            if credential.status is None:
                continue
            reference = status_reference_from_claims(credential.claims)
            digest = recorded.get(reference.uri)
            if digest is None:
                raise StatusUnavailable("no status list was recorded for this credential")
            token, key = verify_status_token(
                self._evidence.get(digest),
                status_key_resolver(trust_list, credential.issuer),
                uri=reference.uri,
                now=entry.time,
            )
            check_status(reference, token, issuer_key=key, now=entry.time)
        return verified_outcome(parts)


@dataclass(frozen=True)
class RecordedRequest:
    """A ``request`` entry of the log: where it is and what it asked."""

    seq: int
    details: Mapping[str, str]


BOUND_FIELDS: Final = ("nonce", "audience", "expires_at", "query", "purpose")
"""What a verdict entry must share with the request entry of its exchange."""


def _check_bound_to_request(entry: AuditEntry, request: RecordedRequest | None) -> None:
    if request is None or request.seq >= entry.seq:
        raise NonceMismatch(
            "the log records no earlier request for this exchange",
            detail={"exchange_id": entry.exchange_id},
        )
    for name in BOUND_FIELDS:
        if entry.details.get(name) != request.details.get(name):
            raise NonceMismatch(
                f"the verdict's {name} is not the recorded request's",
                detail={"field": name, "request_seq": request.seq},
            )


def recorded_requests(entries: Iterable[AuditEntry]) -> dict[str, RecordedRequest]:
    """The first ``request`` entry of each exchange, by exchange id."""
    found: dict[str, RecordedRequest] = {}
    for entry in entries:
        if entry.kind is EntryKind.REQUEST and entry.exchange_id not in found:
            found[entry.exchange_id] = RecordedRequest(entry.seq, dict(entry.details))
    return found


def nonce_consumers(entries: Iterable[AuditEntry]) -> dict[str, int]:
    """For each nonce of the recorded verdicts, the ``seq`` of the entry that consumed it.

    The consumer is the first entry (in ``seq`` order) for the nonce whose recorded
    outcome is not a replay; when every entry for it records a replay, the first one.
    """
    claims: dict[str, list[tuple[int, bool]]] = {}
    for entry in entries:
        nonce = entry.details.get("nonce")
        if entry.outcome is None or entry.presentation is None or not nonce:
            continue
        replay = entry.outcome.error_code == ReplayDetected.code
        claims.setdefault(nonce, []).append((entry.seq, replay))
    consumers = {}
    for nonce, seen in claims.items():
        ordered = sorted(seen)
        consumers[nonce] = next((seq for seq, replay in ordered if not replay), ordered[0][0])
    return consumers


def read_export_entries(path: Path) -> list[AuditEntry]:
    """The well-formed entries of an audit export (anything else is the auditor's to report).

    Raises:
        StoreError: the file cannot be read.
    """
    entries = []
    try:
        with path.open("r", encoding="utf-8") as stream:
            for line in stream:
                try:
                    record = jose.strict_json_loads(line, max_bytes=MAX_LINE_BYTES)
                    entries.append(AuditEntry.model_validate(record["entry"]))
                except (OnceOnlyError, ValidationError, TypeError, KeyError):
                    continue
    except (OSError, UnicodeDecodeError) as exc:
        raise StoreError(f"cannot read {path.name}: {exc}") from exc
    return entries
