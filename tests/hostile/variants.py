"""Malformed variants of every protocol event type and of a plain ``m.room.message``.

Each base content is the specification's own example of the type (so every variant is
one defect away from a content the party would accept), in the wire form a sender uses:
``m.room.message`` with the protocol type as ``msgtype``. Families:

* nesting: 13 levels (one over the protocol's bound), 40 (over the transport's), 300;
* size: a string field grown to 45 000 characters (a Megolm-encrypted event must stay
  under the homeserver's 64 KiB, so larger contents are not reachable in one event);
* wrong JSON types for every top-level field, drawn by Hypothesis (bounded, derandomised);
* an unknown field, every required field missing in turn, ``v`` wrong, bare event type
  with a conflicting ``msgtype``, ``m.relates_to`` (an edit/reply);
* tokens (SD-JWT, JWS) with bad base64, invalid UTF-8 inside the base64, a JWS header
  with duplicate keys, an SD-JWT with a broken disclosure;
* raw plaintexts the attacker encrypts itself: duplicate JSON keys (nio decodes them
  last-wins, so they are reachable but invisible above the transport), invalid UTF-8,
  NaN, non-object contents, JSON too deep for Python's parser.

Variants are pure data (:class:`Variant`); sending them is the suite's business.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from onceonly.protocol import EVENT_TYPES
from tests.hostile.hostile_client import nested, nested_text
from tests.unit.protocol.test_schemas_and_spec import spec_examples

PLAIN_MESSAGE = "m.room.message"
WRONG_TYPES_PER_TYPE = 8
"""Hypothesis examples of wrongly typed fields per event type (bounded suite runtime)."""


@dataclass(frozen=True)
class Variant:
    """One hostile event: a content sent through nio, or a raw plaintext we encrypt."""

    name: str
    event_type: str = PLAIN_MESSAGE
    content: dict[str, Any] | None = None
    plaintext: str | bytes | None = None


def base_contents() -> dict[str, dict[str, Any]]:
    """Protocol type (and ``m.room.message``) -> a valid wire content of it."""
    bases: dict[str, dict[str, Any]] = {}
    for event_type, _key, example in spec_examples():
        bases.setdefault(event_type, {"msgtype": event_type, **example})
    assert set(bases) == set(EVENT_TYPES), sorted(set(EVENT_TYPES) - set(bases))
    bases[PLAIN_MESSAGE] = {"msgtype": "m.text", "body": "hello"}
    return bases


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


_BAD_TOKENS = {
    "bad_base64": "!!!.***.???",
    "header_not_utf8": _b64(b"\xff\xfe\xfd") + ".eyJhIjoxfQ.c2ln",
    "header_duplicate_keys": _b64(b'{"alg":"ES256","alg":"none"}') + ".eyJhIjoxfQ.c2ln",
    "header_not_json": _b64(b"[[[[[[[[") + ".eyJhIjoxfQ.c2ln",
    "sd_jwt_bad_disclosure": "eyJhbGciOiJFUzI1NiJ9.eyJhIjoxfQ.c2ln~%%%~",
    "sd_jwt_disclosure_not_utf8": "eyJhbGciOiJFUzI1NiJ9.eyJhIjoxfQ.c2ln~" + _b64(b"\xff") + "~",
}


def _is_token(value: Any) -> bool:
    return isinstance(value, str) and value.count(".") >= 2 and " " not in value


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner),
    max_leaves=6,
)


def _wrong_types(base: dict[str, Any], fields: list[str]) -> list[tuple[str, Any]]:
    """Hypothesis-drawn (field, value) pairs whose value has another JSON type."""
    drawn: list[tuple[str, Any]] = []

    @settings(
        max_examples=WRONG_TYPES_PER_TYPE * 4,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(st.sampled_from(fields), _JSON)
    def collect(field: str, value: Any) -> None:
        if len(drawn) < WRONG_TYPES_PER_TYPE and type(value) is not type(base[field]):
            drawn.append((field, value))

    collect()
    return drawn


def variants_of(event_type: str, base: dict[str, Any]) -> list[Variant]:
    """Every malformed variant of one type (see the module docstring)."""
    short = event_type.rsplit(".", 2)[-2:] if event_type != PLAIN_MESSAGE else ["plain"]
    tag = ".".join(short)
    out: list[Variant] = []

    def add(name: str, content: dict[str, Any]) -> None:
        out.append(Variant(f"{tag}:{name}", content=content))

    for depth in (13, 40, 300):
        add(f"depth_{depth}", {**base, "nested": nested(depth)})
    add("size_45k", {**base, "body": "x" * 45_000})
    add("unknown_field", {**base, "x_unknown": 1})
    fields = [k for k in base if k != "msgtype"]
    for field in fields:
        add(f"missing_{field}", {k: v for k, v in base.items() if k != field})
    for n, (field, value) in enumerate(_wrong_types(base, fields)):
        add(f"wrong_type_{field}_{n}", {**base, field: value})
    for name, v in (("v2", 2), ("v_string", "1"), ("v_true", True), ("v_float", 1.0)):
        add(name, {**base, "v": v})
    # Inside the ciphertext only: nio would copy it out, and Synapse checks the target.
    edit = {**base, "m.relates_to": {"rel_type": "m.replace", "event_id": "$x"}}
    out.append(
        Variant(
            f"{tag}:relates_to",
            plaintext=json.dumps({"type": PLAIN_MESSAGE, "content": edit}),
        )
    )
    add("body_only", {"msgtype": base["msgtype"], "body": "hi"})
    for field in [k for k in fields if _is_token(base[k])]:
        for name, token in _BAD_TOKENS.items():
            add(f"{field}_{name}", {**base, field: token})
    if event_type != PLAIN_MESSAGE:
        other = next(t for t in EVENT_TYPES if t != event_type)
        out.append(Variant(f"{tag}:bare_msgtype_mismatch", event_type, {**base, "msgtype": other}))
        out.append(Variant(f"{tag}:bare", event_type, dict(base)))
    envelope = json.dumps({"type": PLAIN_MESSAGE, "content": base})
    out += [
        Variant(f"{tag}:raw_duplicate_v", plaintext=envelope.replace('"v": 1', '"v": 1, "v": 2')),
        Variant(f"{tag}:raw_not_utf8", plaintext=envelope.encode().replace(b'"v"', b'"\xff"')),
        Variant(f"{tag}:raw_nan", plaintext=envelope.replace('"v": 1', '"v": NaN')),
    ]
    return out


def raw_variants() -> list[Variant]:
    """Type-independent raw plaintexts (content not an object, too deep for any parser)."""
    return [
        Variant("raw:content_string", plaintext='{"type": "m.room.message", "content": "x"}'),
        Variant("raw:content_list", plaintext='{"type": "m.room.message", "content": [1]}'),
        Variant("raw:not_an_object", plaintext="[1, 2]"),
        Variant("raw:not_json", plaintext="{"),
        Variant(
            "raw:recursion",
            plaintext='{"type": "m.room.message", "content": {"x": ' + nested_text(5000) + "}}",
        ),
    ]


def all_variants() -> dict[str, list[Variant]]:
    """Batches by event type (plus one of raw plaintexts), in a stable order."""
    batches = {t: variants_of(t, base) for t, base in sorted(base_contents().items())}
    batches["raw"] = raw_variants()
    return batches
