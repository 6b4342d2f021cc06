"""The scenario's own small parts, without a homeserver: chat contents, policy, narration."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from rich.console import Console

from onceonly.errors import MalformedInput
from scenario import cast
from scenario.chat import (
    POLL_RESPONSE,
    POLL_START,
    PollAnswer,
    chosen_answers,
    poll_answer_ids,
    poll_response,
    poll_start,
    status_note,
)
from scenario.narrator import Narrator, Outcome
from scenario.parties import consent_policy_text
from scenario.presenting import top_level, withheld_claims
from scenario.queries import child_benefit_query
from scenario.talk import demo_document
from wallet.policy import parse_policy

ANSWERS = (PollAnswer("a", "Ja", "Yes"), PollAnswer("b", "Nein", "No"))


def test_a_poll_round_trips_and_has_a_plain_text_fallback() -> None:
    content = poll_start("Frage?", "Question?", ANSWERS)
    assert poll_answer_ids(content) == ["a", "b"]
    assert content[POLL_START]["max_selections"] == 1
    assert "1. Ja / Yes" in content["body"] and "2. Nein / No" in content["body"]
    response = poll_response("$poll", "b")
    assert chosen_answers(response, "$poll") == ["b"]
    assert response["m.relates_to"] == {"rel_type": "m.reference", "event_id": "$poll"}


@pytest.mark.parametrize(
    "answers",
    [(ANSWERS[0],), (ANSWERS[0], PollAnswer("a", "Nochmal", "Again"))],
)
def test_a_poll_needs_two_distinct_answers(answers: tuple[PollAnswer, ...]) -> None:
    with pytest.raises(MalformedInput):
        poll_start("Frage?", "Question?", answers)


@pytest.mark.parametrize(
    "content",
    [{}, {POLL_START: {"answers": []}}, {POLL_START: {"answers": [{"id": 3}]}}],
)
def test_malformed_polls_are_typed_errors(content: dict[str, object]) -> None:
    with pytest.raises(MalformedInput):
        poll_answer_ids(content)  # type: ignore[arg-type]


def test_a_response_to_another_poll_or_without_answers_is_refused() -> None:
    with pytest.raises(MalformedInput, match="another poll"):
        chosen_answers(poll_response("$other", "a"), "$poll")
    no_answers = {"m.relates_to": {"event_id": "$poll"}, POLL_RESPONSE: {"answers": "a"}}
    with pytest.raises(MalformedInput, match="no answer list"):
        chosen_answers(no_answers, "$poll")


def test_status_notes_are_bilingual_notices() -> None:
    note = status_note("Eingegangen.", "Received.")
    assert note == {"msgtype": "m.notice", "body": "Eingegangen.\n\nReceived."}


def test_the_demo_document_is_a_pdf() -> None:
    document = demo_document()
    assert document.startswith(b"%PDF-1.4") and document.rstrip().endswith(b"%%EOF")
    # The xref offset points at the xref table.
    offset = int(document.rsplit(b"startxref\n", 1)[1].split(b"\n", 1)[0])
    assert document[offset:].startswith(b"xref")


def test_the_consent_policy_approves_only_the_child_benefit_claims() -> None:
    policy = parse_policy(consent_policy_text(), is_json=False)
    (rule,) = policy.presentations
    assert rule.verifier == cast.FAMILY_BENEFITS.agency_id
    assert sorted(rule.purposes) == [cast.CHILD_BENEFIT_PURPOSE]
    assert sorted(rule.claims) == sorted(cast.CHILD_BENEFIT_CLAIMS)
    (offer_rule,) = policy.offers
    assert offer_rule.issuer == cast.REGISTRY_OFFICE.agency_id


def test_the_query_asks_for_exactly_the_registered_claims() -> None:
    query = child_benefit_query()
    (credential,) = query.credentials
    assert [tuple(claim.path) for claim in credential.claims or ()] == list(
        cast.CHILD_BENEFIT_CLAIMS
    )
    assert top_level(("address.locality", "address.country", "birthdate")) == [
        "address (country, locality)",
        "birthdate",
    ]
    assert withheld_claims(("address.locality", "birthdate")) == [
        "family_name",
        "given_name",
        "registered_since",
        "residence_type",
    ]


def test_the_transcript_records_what_was_printed(tmp_path: Path) -> None:
    out = io.StringIO()
    narrator = Narrator(Console(file=out, width=100), clock=iter([1.0, 3.5]).__next__)
    narrator.begin(1, "A step")
    narrator.say("Office", "asks [bold]politely[/bold]")
    narrator.claims(["birthdate"], ["given_name"])
    narrator.end(Outcome.DONE, "all good", answer=42)
    narrator.summary()
    path = tmp_path / "t.json"
    narrator.write_transcript(path, {"homeserver": "http://127.0.0.1:1"})
    written = json.loads(path.read_text())
    (step,) = written["steps"]
    assert step == {
        "number": 1,
        "title": "A step",
        "outcome": "done",
        "detail": "all good",
        "seconds": 2.5,
        "facts": {"answer": 42},
    }
    kinds = [line["kind"] for line in written["lines"]]
    assert kinds == ["step", "say", "claims", "outcome"]
    # Markup in data is printed literally, never interpreted.
    assert "[bold]politely[/bold]" in out.getvalue()
    with pytest.raises(RuntimeError):
        narrator.end(Outcome.DONE, "no step is open")
