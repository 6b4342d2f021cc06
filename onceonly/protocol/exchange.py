"""Per-exchange state machines, driven by parsed events and an explicit ``now``.

Two kinds of exchange share one mechanism: a transition table keyed by
(current state, signal, sender role). A *signal* is the event type, refined by
the outcome for ``exchange.status`` and by refusal-or-not for
``presentation.response``. Anything not in the table is illegal and raises
:class:`~onceonly.errors.UnexpectedEvent`, which is how a party that sends the
wrong event, or the right event from the wrong side, is rejected.

An :class:`Exchange` is immutable; :meth:`Exchange.apply` returns the next one,
so a service stores the returned value only after it has acted on the event.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace
from typing import Final

from onceonly.errors import RequestExpired, UnexpectedEvent, UnknownExchange
from onceonly.protocol.events import (
    CredentialIssue,
    CredentialOffer,
    CredentialRequest,
    ErrorContent,
    ExchangeStatus,
    PresentationRequest,
    PresentationResponse,
)
from onceonly.protocol.fields import Content


class Kind(enum.StrEnum):
    """What an exchange is for."""

    ISSUANCE = "issuance"
    PRESENTATION = "presentation"


class Role(enum.StrEnum):
    """Which side sent an event (the service maps Matrix senders to roles)."""

    ISSUER = "issuer"
    HOLDER = "holder"
    VERIFIER = "verifier"


class State(enum.StrEnum):
    """States of both machines; each machine uses a subset."""

    START = "start"
    OFFERED = "offered"
    REQUESTED = "requested"
    ISSUED = "issued"
    RESPONDED = "responded"
    VERIFIED = "verified"
    REJECTED = "rejected"
    REFUSED = "refused"
    REVOKED = "revoked"
    EXPIRED = "expired"


class Signal(enum.StrEnum):
    """An event as the state machines see it."""

    OFFER = "credential.offer"
    CREDENTIAL_REQUEST = "credential.request"
    ISSUE = "credential.issue"
    PRESENTATION_REQUEST = "presentation.request"
    PRESENTATION = "presentation.response"
    REFUSAL = "presentation.response/refusal"
    ACCEPTED = "exchange.status/accepted"
    VERIFIED = "exchange.status/verified"
    REJECTED = "exchange.status/rejected"
    REVOKED = "exchange.status/revoked"
    REFUSED = "exchange.status/refused"
    EXPIRED = "exchange.status/expired"
    ERROR = "error"


TERMINAL: Final[frozenset[State]] = frozenset(
    {State.VERIFIED, State.REJECTED, State.REFUSED, State.REVOKED, State.EXPIRED}
)
"""States no event leaves. ``issued`` is not terminal: it can still be revoked."""

Table = dict[tuple[State, Signal, Role], State]

_I, _H, _V = Role.ISSUER, Role.HOLDER, Role.VERIFIER

ISSUANCE_TABLE: Final[Table] = {
    (State.START, Signal.OFFER, _I): State.OFFERED,
    (State.START, Signal.CREDENTIAL_REQUEST, _H): State.REQUESTED,
    (State.OFFERED, Signal.CREDENTIAL_REQUEST, _H): State.REQUESTED,
    (State.OFFERED, Signal.REJECTED, _H): State.REJECTED,  # the citizen declines the offer
    (State.OFFERED, Signal.EXPIRED, _I): State.EXPIRED,
    (State.OFFERED, Signal.ERROR, _H): State.REJECTED,
    (State.REQUESTED, Signal.ISSUE, _I): State.ISSUED,
    (State.REQUESTED, Signal.REJECTED, _I): State.REJECTED,
    (State.REQUESTED, Signal.EXPIRED, _I): State.EXPIRED,
    (State.REQUESTED, Signal.ERROR, _I): State.REJECTED,
    (State.ISSUED, Signal.ACCEPTED, _H): State.ISSUED,  # acknowledgement only
    (State.ISSUED, Signal.REJECTED, _H): State.REJECTED,  # wallet found it invalid
    (State.ISSUED, Signal.ERROR, _H): State.REJECTED,
    (State.ISSUED, Signal.REVOKED, _I): State.REVOKED,
}
"""Issuance: offered -> requested -> issued | rejected | expired (and issued -> revoked)."""

PRESENTATION_TABLE: Final[Table] = {
    (State.START, Signal.PRESENTATION_REQUEST, _V): State.REQUESTED,
    (State.REQUESTED, Signal.PRESENTATION, _H): State.RESPONDED,
    (State.REQUESTED, Signal.REFUSAL, _H): State.REFUSED,
    (State.REQUESTED, Signal.REFUSED, _H): State.REFUSED,
    (State.REQUESTED, Signal.ERROR, _H): State.REFUSED,
    (State.REQUESTED, Signal.EXPIRED, _V): State.EXPIRED,
    (State.RESPONDED, Signal.VERIFIED, _V): State.VERIFIED,
    (State.RESPONDED, Signal.REJECTED, _V): State.REJECTED,
    (State.RESPONDED, Signal.ERROR, _V): State.REJECTED,
}
"""Presentation: requested -> responded -> verified | rejected; or refused | expired."""

TABLES: Final[dict[Kind, Table]] = {
    Kind.ISSUANCE: ISSUANCE_TABLE,
    Kind.PRESENTATION: PRESENTATION_TABLE,
}

_DEADLINE_STATES: Final[frozenset[State]] = frozenset({State.OFFERED, State.REQUESTED})
"""States that end when their deadline passes (an answer is still awaited)."""


def role_of(kind: Kind, *, sender_is_agency: bool) -> Role:
    """The role of an event's sender in an exchange of ``kind``.

    In a mailbox the agency is the issuer (issuance) or the verifier (presentation)
    and the citizen is always the holder; the service knows which member is which
    from the mailbox state.
    """
    if not sender_is_agency:
        return Role.HOLDER
    return Role.ISSUER if kind is Kind.ISSUANCE else Role.VERIFIER


def kind_of_opening(content: Content) -> Kind:
    """The exchange kind an opening event starts.

    Raises:
        UnexpectedEvent: the content cannot open an exchange.
    """
    return _kind_of_opening(signal_of(content))


def signal_of(content: Content) -> Signal:
    """Classify a parsed content as a :class:`Signal`.

    Raises:
        UnexpectedEvent: the content is not an exchange event (e.g. ``device.list``).
    """
    match content:
        case CredentialOffer():
            return Signal.OFFER
        case CredentialRequest():
            return Signal.CREDENTIAL_REQUEST
        case CredentialIssue():
            return Signal.ISSUE
        case PresentationRequest():
            return Signal.PRESENTATION_REQUEST
        case PresentationResponse():
            return Signal.REFUSAL if content.refusal is not None else Signal.PRESENTATION
        case ExchangeStatus():
            return Signal(f"exchange.status/{content.outcome.value}")
        case ErrorContent():
            return Signal.ERROR
    raise UnexpectedEvent(f"{type(content).__name__} is not part of an exchange")


def _kind_of_opening(signal: Signal) -> Kind:
    if signal in (Signal.OFFER, Signal.CREDENTIAL_REQUEST):
        return Kind.ISSUANCE
    if signal is Signal.PRESENTATION_REQUEST:
        return Kind.PRESENTATION
    raise UnexpectedEvent(f"{signal.value} cannot open an exchange")


def _deadline_of(content: Content, current: int | None) -> int | None:
    if isinstance(content, CredentialOffer):
        return content.offer_expires_at
    if isinstance(content, PresentationRequest):
        return content.expires_at
    return current


@dataclass(frozen=True)
class Exchange:
    """The state of one exchange as one party sees it.

    Attributes:
        exchange_id: Correlation id shared by all its events.
        kind: Issuance or presentation.
        state: Current state.
        expires_at: Deadline for the awaited answer (from the offer or request), if any.
        history: Signals applied so far, oldest first (for audit and debugging).
    """

    exchange_id: str
    kind: Kind
    state: State = State.START
    expires_at: int | None = None
    history: tuple[Signal, ...] = ()

    @classmethod
    def open(cls, exchange_id: str, content: Content, sender: Role, now: int) -> Exchange:
        """Start an exchange from its first event (offer, credential or presentation request).

        Raises:
            UnexpectedEvent: the event cannot open an exchange, or comes from the wrong role.
            UnknownExchange: the content's ``exchange_id`` is not ``exchange_id``.
            RequestExpired: the opening event is already past its own deadline.
        """
        kind = _kind_of_opening(signal_of(content))
        return cls(exchange_id=exchange_id, kind=kind).apply(content, sender, now)

    @property
    def is_terminal(self) -> bool:
        """Whether no further event can change this exchange."""
        return self.state in TERMINAL

    def is_due(self, now: int) -> bool:
        """Whether the awaited answer's deadline has passed at ``now``."""
        return (
            self.state in _DEADLINE_STATES and self.expires_at is not None and now > self.expires_at
        )

    def expire_if_due(self, now: int) -> Exchange:
        """Return this exchange moved to ``expired`` if its deadline passed, else itself."""
        return replace(self, state=State.EXPIRED) if self.is_due(now) else self

    def apply(self, content: Content, sender: Role, now: int) -> Exchange:
        """Return the exchange after ``content`` sent by ``sender`` arrived at ``now``.

        Raises:
            UnknownExchange: the content belongs to another exchange.
            RequestExpired: the awaited answer arrived after the deadline (the caller
                should store :meth:`expire_if_due` and may tell the sender).
            UnexpectedEvent: the table has no transition for this state, event and role.
        """
        signal = signal_of(content)
        content_exchange = getattr(content, "exchange_id", None)
        if content_exchange != self.exchange_id:
            raise UnknownExchange(
                "event belongs to a different exchange",
                detail={"exchange_id": self.exchange_id},
            )
        if self.is_due(now) and signal is not Signal.EXPIRED:
            raise RequestExpired(
                f"{signal.value} arrived after the exchange expired",
                detail={"exchange_id": self.exchange_id, "expires_at": self.expires_at},
            )
        target = TABLES[self.kind].get((self.state, signal, sender))
        if target is None:
            raise UnexpectedEvent(
                f"{signal.value} from {sender.value} is not allowed in state {self.state.value}",
                detail={
                    "exchange_id": self.exchange_id,
                    "state": self.state.value,
                    "event": signal.value,
                    "sender": sender.value,
                },
            )
        next_exchange = replace(
            self,
            state=target,
            expires_at=_deadline_of(content, self.expires_at),
            history=(*self.history, signal),
        )
        if next_exchange.is_due(now):
            # An opening event whose own deadline already passed is dead on arrival.
            raise RequestExpired(
                f"{signal.value} is already past its expiry",
                detail={"exchange_id": self.exchange_id, "expires_at": next_exchange.expires_at},
            )
        return next_exchange
