"""The wire envelope: protocol messages travel as m.room.message with a namespaced msgtype."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from onceonly.errors import MalformedInput, UnknownEventType
from onceonly.protocol import NAMESPACE, STATE_EVENT_TYPES, to_content
from onceonly.protocol.envelope import WIRE_EVENT_TYPE, from_wire, protocol_type_of, to_wire
from onceonly.protocol.parse import ACCOUNT_DATA_TYPES
from tests.unit.protocol.samples import samples

MESSAGE_TYPES = sorted(set(samples()) - STATE_EVENT_TYPES - ACCOUNT_DATA_TYPES)
NON_MESSAGE_TYPES = sorted(STATE_EVENT_TYPES | ACCOUNT_DATA_TYPES)


@pytest.mark.parametrize("event_type", MESSAGE_TYPES)
def test_every_message_round_trips_through_the_envelope(event_type: str) -> None:
    model = samples()[event_type]
    wire_type, wire = to_wire(model)
    assert wire_type == "m.room.message"
    assert wire["msgtype"] == event_type
    assert isinstance(wire["body"], str) and wire["body"]
    assert from_wire(wire_type, wire) == model


@pytest.mark.parametrize("event_type", NON_MESSAGE_TYPES)
def test_state_and_account_data_are_never_wrapped(event_type: str) -> None:
    with pytest.raises(UnknownEventType):
        to_wire(samples()[event_type])
    wire = to_content(samples()[event_type]) | {"msgtype": event_type}
    with pytest.raises(UnknownEventType):
        from_wire(WIRE_EVENT_TYPE, wire)


@pytest.mark.parametrize("event_type", MESSAGE_TYPES)
def test_bare_custom_event_type_is_accepted(event_type: str) -> None:
    model = samples()[event_type]
    assert from_wire(event_type, to_content(model)) == model
    # The bare form may also repeat its type as msgtype.
    assert from_wire(event_type, to_content(model) | {"msgtype": event_type}) == model


@pytest.mark.parametrize(
    ("event_type", "content"),
    [
        ("m.room.message", {"msgtype": "m.text", "body": "hello"}),
        ("m.room.message", {"body": "no msgtype at all"}),
        ("m.room.message", {"msgtype": 7, "body": "odd"}),
        ("m.reaction", {"m.relates_to": {"rel_type": "m.annotation", "key": "x"}}),
        ("m.room.member", {"membership": "join"}),
        ("org.example.other", {"msgtype": NAMESPACE + "error"}),
    ],
)
def test_other_events_are_not_ours(event_type: str, content: dict[str, object]) -> None:
    assert from_wire(event_type, content) is None
    assert protocol_type_of(event_type, content) is None


def test_unknown_type_in_our_namespace_is_an_error_not_silence() -> None:
    content = {"msgtype": NAMESPACE + "credential.teleport", "body": "x", "v": 1}
    assert protocol_type_of(WIRE_EVENT_TYPE, content) == NAMESPACE + "credential.teleport"
    with pytest.raises(UnknownEventType):
        from_wire(WIRE_EVENT_TYPE, content)


def test_invalid_content_is_a_typed_error() -> None:
    _, wire = to_wire(samples()[NAMESPACE + "error"])
    del wire["code"]
    with pytest.raises(MalformedInput) as info:
        from_wire(WIRE_EVENT_TYPE, wire)
    assert type(info.value) is MalformedInput
    assert "code" in info.value.message


def test_msgtype_contradicting_a_bare_event_type_is_rejected() -> None:
    content = to_content(samples()[NAMESPACE + "error"]) | {
        "msgtype": NAMESPACE + "exchange.status"
    }
    with pytest.raises(MalformedInput):
        from_wire(NAMESPACE + "error", content)


def test_the_envelope_does_not_change_the_model_content() -> None:
    model = samples()[NAMESPACE + "credential.offer"]
    _, wire = to_wire(model)
    assert {
        key: value for key, value in wire.items() if key not in {"msgtype", "m.mentions"}
    } == to_content(model)


@pytest.mark.parametrize("event_type", MESSAGE_TYPES)
def test_senders_declare_that_a_protocol_message_mentions_nobody(event_type: str) -> None:
    _, wire = to_wire(samples()[event_type])
    assert wire["m.mentions"] == {}


@pytest.mark.parametrize(
    "matrix_members",
    [
        {"m.mentions": {"user_ids": ["@erika:example.org"]}},
        {"m.mentions": {}, "m.relates_to": {"m.in_reply_to": {"event_id": "$earlier"}}},
        {"m.relates_to": {"rel_type": "m.thread", "event_id": "$root"}},
        {"m.some_future_member": [1, 2, 3]},
    ],
)
@pytest.mark.parametrize("event_type", MESSAGE_TYPES)
def test_matrix_members_a_client_adds_are_ignored(
    event_type: str, matrix_members: dict[str, object]
) -> None:
    model = samples()[event_type]
    _, wire = to_wire(model)
    assert from_wire(WIRE_EVENT_TYPE, wire | matrix_members) == model
    assert from_wire(event_type, to_content(model) | matrix_members) == model


@pytest.mark.parametrize(
    "edit",
    [
        {"m.new_content": {"body": "changed"}},
        {"m.relates_to": {"rel_type": "m.replace", "event_id": "$original"}},
    ],
)
def test_an_edit_of_a_protocol_message_is_refused_not_applied(edit: dict[str, object]) -> None:
    _, wire = to_wire(samples()[NAMESPACE + "exchange.status"])
    with pytest.raises(MalformedInput, match="edits"):
        from_wire(WIRE_EVENT_TYPE, wire | edit)


def test_members_outside_both_namespaces_are_still_rejected() -> None:
    _, wire = to_wire(samples()[NAMESPACE + "exchange.status"])
    with pytest.raises(MalformedInput):
        from_wire(WIRE_EVENT_TYPE, wire | {"mentions": {}})


def _spec_wire_examples() -> dict[str, list[dict[str, object]]]:
    text = (Path(__file__).resolve().parents[3] / "specs" / "protocol.md").read_text("utf-8")
    found: dict[str, list[dict[str, object]]] = {}
    for match in re.finditer(r"<!-- wire-example: (\w+) -->\n```json\n(.*?)\n```", text, re.S):
        found.setdefault(match.group(1), []).append(json.loads(match.group(2)))
    return found


def test_the_specs_wire_examples_are_classified_as_the_spec_says() -> None:
    examples = _spec_wire_examples()
    [protocol_event] = examples["protocol"]
    [chat] = examples["other"]
    parsed = from_wire(str(protocol_event["type"]), protocol_event["content"])  # type: ignore[arg-type]
    assert parsed is not None
    assert to_wire(parsed) == (protocol_event["type"], protocol_event["content"])
    assert from_wire(str(chat["type"]), chat["content"]) is None  # type: ignore[arg-type]
