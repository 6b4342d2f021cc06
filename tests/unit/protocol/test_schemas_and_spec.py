"""Generated artefacts stay in sync with the code, and the spec's examples are valid.

* ``schemas/events/*.json`` equal what the models generate now.
* ``specs/protocol.md`` lists every error code of ``onceonly/errors.py``, describes every
  event type, and every JSON example in it parses (and validates against the schema).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from onceonly.errors import all_error_codes
from onceonly.protocol import EVENT_TYPES, NAMESPACE, STATE_EVENT_TYPES, parse_event
from onceonly.protocol.envelope import to_wire
from onceonly.protocol.parse import ACCOUNT_DATA_TYPES, parse_state_event
from onceonly.protocol.schema_export import (
    ERROR_TABLE_BEGIN,
    ERROR_TABLE_END,
    event_schema,
    render_error_table,
    render_schemas,
    replace_error_table,
    schema_file_name,
)
from tests.unit.protocol.samples import sample_dict, samples

ROOT = Path(__file__).resolve().parents[3]
SCHEMA_DIR = ROOT / "schemas" / "events"
SPEC = ROOT / "specs" / "protocol.md"
REGENERATE = "run `python specs/generate.py` from the repository root to regenerate"

_EXAMPLE = re.compile(
    r'<!-- example: (?P<type>\S+)(?: state_key="(?P<key>[^"]*)")? -->\n```json\n(?P<json>.*?)\n```',
    re.DOTALL,
)


def spec_text() -> str:
    return SPEC.read_text(encoding="utf-8")


def spec_examples() -> list[tuple[str, str | None, dict[str, Any]]]:
    return [(m["type"], m["key"], json.loads(m["json"])) for m in _EXAMPLE.finditer(spec_text())]


@pytest.mark.parametrize("name", sorted(render_schemas()))
def test_checked_in_schema_matches_models(name: str) -> None:
    path = SCHEMA_DIR / name
    assert path.exists(), f"{path.name} is missing; {REGENERATE}"
    assert path.read_text(encoding="utf-8") == render_schemas()[name], (
        f"schemas/events/{name} differs from the models; {REGENERATE}"
    )


def test_no_stale_schema_files() -> None:
    stale = {p.name for p in SCHEMA_DIR.glob("*.json")} - set(render_schemas())
    assert not stale, f"schemas without an event type: {sorted(stale)}; {REGENERATE}"


def test_spec_error_table_lists_every_code() -> None:
    text = spec_text()
    assert render_error_table() in text, f"the spec's error-code table is stale; {REGENERATE}"
    for code in all_error_codes():
        assert f"| `{code}` |" in text


def test_replace_error_table_needs_markers() -> None:
    with pytest.raises(ValueError, match="markers"):
        replace_error_table("no markers here")
    regenerated = replace_error_table(f"a\n{ERROR_TABLE_BEGIN}\nold\n{ERROR_TABLE_END}\nb")
    assert regenerated == f"a\n{render_error_table()}\nb"


@pytest.mark.parametrize("event_type", sorted(EVENT_TYPES))
def test_spec_describes_every_event_type(event_type: str) -> None:
    text = spec_text()
    short = event_type.removeprefix(NAMESPACE)
    assert re.search(rf"^###+ [\d.]+ `({re.escape(event_type)}|{re.escape(short)})`", text, re.M)
    assert any(example_type == event_type for example_type, _, _ in spec_examples()), (
        f"no JSON example for {event_type}"
    )


def test_every_spec_example_parses_and_matches_its_schema() -> None:
    examples = spec_examples()
    assert len(examples) >= len(EVENT_TYPES)
    for event_type, state_key, content in examples:
        if event_type in STATE_EVENT_TYPES:
            assert state_key is not None, f"{event_type} example needs a state_key"
            parse_state_event(event_type, state_key, content)
        else:
            parse_event(event_type, content)
        jsonschema.Draft202012Validator(event_schema(event_type)).validate(content)


@pytest.mark.parametrize("event_type", sorted(EVENT_TYPES))
def test_schema_accepts_samples(event_type: str) -> None:
    schema = json.loads((SCHEMA_DIR / schema_file_name(event_type)).read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.Draft202012Validator(schema).validate(sample_dict(event_type))


@pytest.mark.parametrize("event_type", sorted(EVENT_TYPES))
def test_schema_accepts_what_a_sender_puts_on_the_wire(event_type: str) -> None:
    # The schema describes the content after msgtype is removed; the Matrix members a
    # sender adds (m.mentions) or a client adds (a reply's m.relates_to) stay valid.
    if event_type in STATE_EVENT_TYPES or event_type in ACCOUNT_DATA_TYPES:
        return
    _, wire = to_wire(samples()[event_type])
    del wire["msgtype"]
    wire["m.relates_to"] = {"m.in_reply_to": {"event_id": "$earlier"}}
    jsonschema.Draft202012Validator(event_schema(event_type)).validate(wire)


@pytest.mark.parametrize(
    ("event_type", "change"),
    [
        (NAMESPACE + "credential.offer", {"surprise": 1}),
        (NAMESPACE + "credential.offer", {"nonce": "short"}),
        (NAMESPACE + "credential.offer", {"format": None}),  # formatted_body without format
        (NAMESPACE + "credential.issue", {"credential": None}),  # neither delivery form
        (NAMESPACE + "presentation.response", {"refusal": {"code": "consent_denied"}}),  # two
        (NAMESPACE + "exchange.status", {"v": None}),
        (NAMESPACE + "exchange.status", {"v": 2}),
    ],
)
def test_schema_rejects_what_the_parser_rejects(event_type: str, change: dict[str, Any]) -> None:
    content = sample_dict(event_type)
    for key, value in change.items():
        if value is None:
            content.pop(key)
        else:
            content[key] = value
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft202012Validator(event_schema(event_type)).validate(content)
    with pytest.raises(Exception) as caught:
        parse_event(event_type, content)
    assert caught.value.__class__.__module__ == "onceonly.errors"


def test_generator_check_mode_reports_up_to_date() -> None:
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, str(ROOT / "specs" / "generate.py"), "--check"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    assert result.returncode == 0, result.stderr
