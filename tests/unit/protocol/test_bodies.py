"""Builders write a German and an English body; HTML is escaped and language-tagged."""

from __future__ import annotations

import pytest

from onceonly.protocol import NAMESPACE, LocalizedText, Outcome, Refusal, RefusalCode
from onceonly.protocol.bodies import (
    bilingual_body,
    build_exchange_status,
    build_presentation_response,
)
from onceonly.protocol.events import ErrorContent
from onceonly.protocol.fields import MessageContent
from tests.unit.protocol.samples import EXCHANGE_ID, FAMILY_OFFICE, samples

# One word per language that each builder must use (the language is really there).
EXPECTED_WORDS: dict[str, tuple[str, str]] = {
    "credential.offer": ("bietet Ihnen", "offers you"),
    "credential.request": ("Antrag auf Ausstellung", "Request to issue"),
    "credential.issue": ("hat Ihnen einen Nachweis ausgestellt", "has issued you"),
    "presentation.request": ("fragt nach", "asks for"),
    "presentation.response": ("übermittelt", "sent to"),
    "exchange.status": ("Vorgang", "Exchange"),
    "error": ("Fehler", "error"),
    "device.list": ("Freigegebene Geräte", "Devices approved"),
}


@pytest.mark.parametrize("short_type", sorted(EXPECTED_WORDS))
def test_body_has_both_languages(short_type: str) -> None:
    content = samples()[NAMESPACE + short_type]
    assert isinstance(content, MessageContent)
    german, english = content.body.split("\n\n")
    assert EXPECTED_WORDS[short_type][0] in german
    assert EXPECTED_WORDS[short_type][1] in english
    assert content.formatted_body is not None
    assert '<p lang="de">' in content.formatted_body
    assert '<p lang="en">' in content.formatted_body


def test_presentation_request_body_reads_like_the_design() -> None:
    body = samples()[NAMESPACE + "presentation.request"].body  # type: ignore[attr-defined]
    assert body == (
        "Familienkasse Berlin fragt nach: Wohnadresse, Geburtsdatum — Zweck: Kindergeldantrag"
        "\n\n"
        "Family Benefits Office Berlin asks for: residence address, date of birth — "
        "purpose: child benefit application"
    )


def test_offer_body_names_reason_and_date() -> None:
    body = samples()[NAMESPACE + "credential.offer"].body  # type: ignore[attr-defined]
    assert "Anlass: Umzug gemeldet" in body
    assert "reason: registered move" in body
    # The offer's expiry date, rendered in UTC, in both paragraphs.
    assert "(gültig bis 2026-06-11)" in body
    assert "(valid until 2026-06-11)" in body


def test_html_is_escaped() -> None:
    fields = bilingual_body("<b>A & B</b>", 'say "hi"')
    assert "<b>" not in fields["formatted_body"]
    assert "&lt;b&gt;A &amp; B&lt;/b&gt;" in fields["formatted_body"]
    assert "&quot;hi&quot;" in fields["formatted_body"]
    assert fields["body"] == '<b>A & B</b>\n\nsay "hi"'  # plain body stays plain


@pytest.mark.parametrize("code", list(RefusalCode))
def test_refusal_body_names_reason_in_both_languages(code: RefusalCode) -> None:
    response = build_presentation_response(
        exchange_id=EXCHANGE_ID,
        verifier_name=FAMILY_OFFICE,
        refusal=Refusal(code=code, message=LocalizedText(de="Nein", en="No")),
    )
    german, english = response.body.split("\n\n")
    assert german.startswith("Anfrage von Familienkasse Berlin nicht beantwortet: ")
    assert english.startswith("Request from Family Benefits Office Berlin declined: ")
    assert german != english


@pytest.mark.parametrize("outcome", list(Outcome))
def test_every_outcome_has_words(outcome: Outcome) -> None:
    status = build_exchange_status(
        exchange_id=EXCHANGE_ID, outcome=outcome, reason_code="invalid_signature"
    )
    german, english = status.body.split("\n\n")
    assert "(Grund: invalid_signature)" in german
    assert "(reason: invalid_signature)" in english


def test_error_body_keeps_code() -> None:
    error = samples()[NAMESPACE + "error"]
    assert isinstance(error, ErrorContent)
    assert "nonce_mismatch" in error.body
    assert error.code == "nonce_mismatch"
