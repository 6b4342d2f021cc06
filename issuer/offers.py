"""Proactive offers: ``credential.offer`` contents for the register's life events.

:func:`offers_for_life_events` turns the register's pending life events (a
registered move) into offers for the citizen's bound Matrix accounts; each offer
carries a fresh nonce recorded in the :class:`~issuer.nonce_ledger.NonceLedger`,
which the wallet's key proof must sign (spec sections 6.1 and 7).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from issuer.config import AgencyConfig
from issuer.nonce_ledger import NonceLedger, OfferRecord
from issuer.register import LifeEvent, Register
from onceonly.credential_types import get_type
from onceonly.errors import UnsupportedCredentialType
from onceonly.jose import b64url_encode
from onceonly.protocol import CredentialDisplay, CredentialOffer, LocalizedText
from onceonly.protocol.bodies import build_credential_offer
from onceonly.types import UserId, Vct

__all__ = [
    "DEFAULT_OFFER_TTL",
    "REASONS",
    "PendingOffer",
    "credential_display",
    "make_offer",
    "new_exchange_id",
    "new_nonce",
    "offers_for_life_events",
    "require_issued_type",
]

NONCE_BYTES: Final = 24
"""192 random bits per offer nonce (the protocol asks for at least 128)."""
EXCHANGE_ID_BYTES: Final = 18
DEFAULT_OFFER_TTL: Final = 14 * 86_400
"""An offer stays open two weeks: long enough for a citizen to notice it."""

REASONS: Final[dict[str, tuple[str, LocalizedText]]] = {
    "move": (
        "registered_move",
        LocalizedText(de="Umzug gemeldet", en="registered move"),
    ),
}
"""Life event kind -> the offer's ``reason_code`` and words."""


def new_nonce(random_bytes: Callable[[int], bytes]) -> str:
    """A fresh nonce (base64url of :data:`NONCE_BYTES` random bytes)."""
    return b64url_encode(random_bytes(NONCE_BYTES))


def new_exchange_id(random_bytes: Callable[[int], bytes]) -> str:
    """A fresh exchange id (``xch_`` and 144 random bits)."""
    return "xch_" + b64url_encode(random_bytes(EXCHANGE_ID_BYTES))


def require_issued_type(config: AgencyConfig, vct: str) -> None:
    """Refuse a ``vct`` the agency's configuration does not list.

    Raises:
        UnsupportedCredentialType: naming the type.
    """
    if vct not in config.issues():
        raise UnsupportedCredentialType(
            "this agency does not issue the requested credential type", detail={"vct": vct[:512]}
        )


def credential_display(config: AgencyConfig, vct: str) -> CredentialDisplay:
    """How ``vct`` issued by this agency is named to the citizen."""
    credential_type = get_type(vct)
    return CredentialDisplay(
        name=LocalizedText(de=credential_type.name_de, en=credential_type.name_en),
        issuer_name=LocalizedText(de=config.name_de, en=config.name_en),
    )


@dataclass(frozen=True)
class PendingOffer:
    """An offer ready to send.

    Attributes:
        matrix_user_id: Where to send it.
        content: The ``credential.offer`` content.
        record: What the ledger remembers about it.
        life_event_id: The register life event that caused it, if any.
    """

    matrix_user_id: UserId
    content: CredentialOffer
    record: OfferRecord
    life_event_id: int | None = None


def make_offer(
    config: AgencyConfig,
    ledger: NonceLedger,
    *,
    person_id: str,
    matrix_user_id: UserId,
    vct: Vct,
    reason_code: str,
    reason: LocalizedText,
    now: int,
    random_bytes: Callable[[int], bytes],
    ttl: int = DEFAULT_OFFER_TTL,
    life_event_id: int | None = None,
) -> PendingOffer:
    """Build a ``credential.offer`` with a fresh nonce and record it in ``ledger``.

    Raises:
        UnsupportedCredentialType: the agency does not issue ``vct`` (via the config).
        StoreError: the ledger failed.
    """
    require_issued_type(config, vct)
    record = OfferRecord(
        nonce=new_nonce(random_bytes),
        exchange_id=new_exchange_id(random_bytes),
        matrix_user_id=matrix_user_id,
        person_id=person_id,
        vct=vct,
        issued_at=now,
        expires_at=now + ttl,
    )
    content = build_credential_offer(
        exchange_id=record.exchange_id,
        issuer_id=config.agency_id,
        vct=vct,
        display=credential_display(config, vct),
        reason_code=reason_code,
        reason=reason,
        offer_expires_at=record.expires_at,
        nonce=record.nonce,
    )
    ledger.record_offer(record)
    return PendingOffer(matrix_user_id, content, record, life_event_id)


def offers_for_life_events(
    config: AgencyConfig,
    register: Register,
    ledger: NonceLedger,
    *,
    now: int,
    random_bytes: Callable[[int], bytes],
    ttl: int = DEFAULT_OFFER_TTL,
) -> tuple[list[PendingOffer], list[LifeEvent]]:
    """Offers for every pending life event whose person has a bound Matrix account.

    The caller sends the offers and then marks their life events handled
    (:meth:`Register.mark_life_event_handled`); a crash in between re-offers,
    which is harmless (the older offer simply expires unanswered).

    Returns:
        The offers, and the pending events that could not be offered yet (no
        bound Matrix account, or a type this agency does not issue).
    """
    offers: list[PendingOffer] = []
    waiting: list[LifeEvent] = []
    issued = set(config.issues())
    for event in register.pending_life_events():
        users = register.matrix_users_of(event.person_id)
        if not users or event.vct not in issued or event.kind not in REASONS:
            waiting.append(event)
            continue
        reason_code, reason = REASONS[event.kind]
        for user in users:
            offers.append(
                make_offer(
                    config,
                    ledger,
                    person_id=event.person_id,
                    matrix_user_id=user,
                    vct=Vct(event.vct),
                    reason_code=reason_code,
                    reason=reason,
                    now=now,
                    random_bytes=random_bytes,
                    ttl=ttl,
                    life_event_id=event.event_id,
                )
            )
    return offers, waiting
