"""Builders: construct event contents together with their bilingual human body.

A citizen may read the mailbox in any Matrix client, which shows only ``body``
(or ``formatted_body``). The builders therefore write one German and one English
sentence for every event, e.g. "Familienkasse Berlin fragt nach: Wohnadresse,
Geburtsdatum — Zweck: Kindergeldantrag", followed by the English version.
Pure functions: every value, including ids, nonces and times, is an argument.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from datetime import UTC, datetime

from onceonly.protocol.events import (
    CredentialDisplay,
    CredentialIssue,
    CredentialOffer,
    CredentialRequest,
    ErrorContent,
    ExchangeStatus,
    Outcome,
    PresentationRequest,
    PresentationResponse,
    PublicJwk,
    Purpose,
    Refusal,
    RefusalCode,
)
from onceonly.protocol.fields import HTML_FORMAT, Attachment, LocalizedText
from onceonly.protocol.rooms import DeviceList
from onceonly.query.model import DcqlQuery

_OUTCOME_WORDS: dict[Outcome, tuple[str, str]] = {
    Outcome.ACCEPTED: ("angenommen", "accepted"),
    Outcome.VERIFIED: ("geprüft und bestätigt", "verified"),
    Outcome.REJECTED: ("abgelehnt", "rejected"),
    Outcome.REVOKED: ("widerrufen", "revoked"),
    Outcome.REFUSED: ("verweigert", "refused"),
    Outcome.EXPIRED: ("abgelaufen", "expired"),
}

_REFUSAL_WORDS: dict[RefusalCode, tuple[str, str]] = {
    RefusalCode.CONSENT_DENIED: ("Freigabe abgelehnt", "consent denied"),
    RefusalCode.NOT_AUTHORIZED_TO_REQUEST: (
        "die Stelle darf diese Angaben nicht anfordern",
        "the office may not ask for these claims",
    ),
    RefusalCode.REQUEST_EXPIRED: ("Anfrage abgelaufen", "request expired"),
    RefusalCode.UNTRUSTED_PARTY: ("Absender nicht vertrauenswürdig", "untrusted sender"),
}


def bilingual_body(de: str, en: str) -> dict[str, str]:
    """Return the ``body``/``format``/``formatted_body`` fields for a German and English text.

    The plain body holds both paragraphs separated by a blank line; the HTML body
    marks each paragraph with its ``lang`` so screen readers pronounce it right.
    """
    formatted = (
        f'<p lang="de">{html.escape(de, quote=True)}</p>'
        f'<p lang="en">{html.escape(en, quote=True)}</p>'
    )
    return {"body": f"{de}\n\n{en}", "format": HTML_FORMAT, "formatted_body": formatted}


def _date(ts: int) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d")


def _join(items: Sequence[str]) -> str:
    return ", ".join(items)


def build_credential_offer(
    *,
    exchange_id: str,
    issuer_id: str,
    vct: str,
    display: CredentialDisplay,
    reason_code: str,
    reason: LocalizedText,
    offer_expires_at: int,
    nonce: str,
) -> CredentialOffer:
    """Build a ``credential.offer`` whose body names the agency, credential and reason."""
    de = (
        f"{display.issuer_name.de} bietet Ihnen einen Nachweis an: {display.name.de} — "
        f"Anlass: {reason.de} (gültig bis {_date(offer_expires_at)})"
    )
    en = (
        f"{display.issuer_name.en} offers you a credential: {display.name.en} — "
        f"reason: {reason.en} (valid until {_date(offer_expires_at)})"
    )
    return CredentialOffer(
        exchange_id=exchange_id,
        issuer_id=issuer_id,
        vct=vct,
        display=display,
        reason_code=reason_code,
        reason=reason,
        offer_expires_at=offer_expires_at,
        nonce=nonce,
        **bilingual_body(de, en),
    )


def build_credential_request(
    *,
    exchange_id: str,
    vct: str,
    holder_jwk: PublicJwk,
    proof: str,
    credential_name: LocalizedText,
    offer_event_id: str | None = None,
    identity_presentation: str | None = None,
) -> CredentialRequest:
    """Build a ``credential.request``; the body names the credential asked for."""
    de = f"Antrag auf Ausstellung: {credential_name.de}"
    en = f"Request to issue: {credential_name.en}"
    if identity_presentation is not None:
        de += " (mit Identitätsnachweis)"
        en += " (with proof of identity)"
    return CredentialRequest(
        exchange_id=exchange_id,
        vct=vct,
        offer_event_id=offer_event_id,
        holder_jwk=holder_jwk,
        proof=proof,
        identity_presentation=identity_presentation,
        **bilingual_body(de, en),
    )


def build_credential_issue(
    *,
    exchange_id: str,
    vct: str,
    credential_name: LocalizedText,
    issuer_name: LocalizedText,
    credential: str | None = None,
    credential_file: Attachment | None = None,
    request_event_id: str | None = None,
) -> CredentialIssue:
    """Build a ``credential.issue`` carrying the SD-JWT inline or as an attachment."""
    de = f"{issuer_name.de} hat Ihnen einen Nachweis ausgestellt: {credential_name.de}"
    en = f"{issuer_name.en} has issued you a credential: {credential_name.en}"
    return CredentialIssue(
        exchange_id=exchange_id,
        vct=vct,
        request_event_id=request_event_id,
        credential=credential,
        credential_file=credential_file,
        **bilingual_body(de, en),
    )


def build_presentation_request(
    *,
    exchange_id: str,
    verifier_id: str,
    verifier_name: LocalizedText,
    query: DcqlQuery,
    claim_labels: Sequence[LocalizedText],
    purpose: Purpose,
    nonce: str,
    expires_at: int,
) -> PresentationRequest:
    """Build a ``presentation.request``; the body lists the claims asked for and why.

    Args:
        claim_labels: Human names of the requested claims (from the credential type
            metadata), in the order they should be listed.
    """
    de = (
        f"{verifier_name.de} fragt nach: {_join([label.de for label in claim_labels])} — "
        f"Zweck: {purpose.text.de}"
    )
    en = (
        f"{verifier_name.en} asks for: {_join([label.en for label in claim_labels])} — "
        f"purpose: {purpose.text.en}"
    )
    return PresentationRequest(
        exchange_id=exchange_id,
        verifier_id=verifier_id,
        verifier_name=verifier_name,
        query=query,
        purpose=purpose,
        nonce=nonce,
        expires_at=expires_at,
        **bilingual_body(de, en),
    )


def build_presentation_response(
    *,
    exchange_id: str,
    verifier_name: LocalizedText,
    vp_token: dict[str, tuple[str, ...]] | None = None,
    vp_token_file: Attachment | None = None,
    refusal: Refusal | None = None,
    request_event_id: str | None = None,
) -> PresentationResponse:
    """Build a ``presentation.response``: presentations, or a refusal with its reason."""
    if refusal is not None:
        reason_de, reason_en = _REFUSAL_WORDS[refusal.code]
        de = f"Anfrage von {verifier_name.de} nicht beantwortet: {reason_de}"
        en = f"Request from {verifier_name.en} declined: {reason_en}"
    else:
        de = f"Angaben an {verifier_name.de} übermittelt"
        en = f"Claims sent to {verifier_name.en}"
    return PresentationResponse(
        exchange_id=exchange_id,
        request_event_id=request_event_id,
        vp_token=vp_token,
        vp_token_file=vp_token_file,
        refusal=refusal,
        **bilingual_body(de, en),
    )


def build_exchange_status(
    *,
    exchange_id: str,
    outcome: Outcome,
    reason_code: str | None = None,
    related_event_id: str | None = None,
) -> ExchangeStatus:
    """Build an ``exchange.status`` announcing ``outcome``."""
    word_de, word_en = _OUTCOME_WORDS[outcome]
    de = f"Vorgang {word_de}"
    en = f"Exchange {word_en}"
    if reason_code is not None:
        de += f" (Grund: {reason_code})"
        en += f" (reason: {reason_code})"
    return ExchangeStatus(
        exchange_id=exchange_id,
        outcome=outcome,
        reason_code=reason_code,
        related_event_id=related_event_id,
        **bilingual_body(de, en),
    )


def build_error(
    *,
    code: str,
    message: str,
    exchange_id: str | None = None,
    event_id: str | None = None,
) -> ErrorContent:
    """Build an ``error`` event; ``message`` must be safe to show the other party."""
    de = f"Fehler bei der Verarbeitung ({code})"
    en = f"Processing error ({code}): {message}"
    return ErrorContent(
        code=code,
        message=message,
        exchange_id=exchange_id,
        event_id=event_id,
        **bilingual_body(de, en),
    )


def build_device_list(
    *, device_list: str, device_count: int, exchange_id: str | None = None
) -> DeviceList:
    """Build a ``device.list`` carrying the wallet-signed JWS of approved devices."""
    de = f"Freigegebene Geräte für verschlüsselte Nachrichten: {device_count}"
    en = f"Devices approved for encrypted messages: {device_count}"
    return DeviceList(device_list=device_list, exchange_id=exchange_id, **bilingual_body(de, en))
