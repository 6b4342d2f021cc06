"""Hostile input never crashes the parser or the state machines: only typed errors."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from onceonly.errors import MalformedInput, OnceOnlyError
from onceonly.protocol import EVENT_TYPES, parse_event, to_content
from onceonly.protocol.exchange import Exchange, Role
from onceonly.protocol.fields import Content
from tests.unit.protocol.samples import EXCHANGE_ID, NOW, refusal_response, samples

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=20,
)

EVENT_TYPE_LIST = sorted(EVENT_TYPES)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix] if prefix else []
    if isinstance(value, dict):
        for key, child in value.items():
            out.extend(_paths(child, (*prefix, key)))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            out.extend(_paths(child, (*prefix, index)))
    return out


def _replace(content: Any, path: tuple[Any, ...], new: Any) -> None:
    target = content
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = new


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    event_type=st.sampled_from(EVENT_TYPE_LIST),
    choice=st.integers(min_value=0, max_value=10_000),
    replacement=json_values,
)
def test_mutated_sample_gives_model_or_typed_error(
    event_type: str, choice: int, replacement: Any
) -> None:
    content = to_content(samples()[event_type])
    paths = _paths(content)
    _replace(content, paths[choice % len(paths)], replacement)
    try:
        parsed = parse_event(event_type, content)
    except OnceOnlyError as exc:
        assert isinstance(exc, MalformedInput)
        assert exc.code
    else:
        assert isinstance(parsed, EVENT_TYPES[event_type])


@settings(max_examples=200, deadline=None)
@given(event_type=st.sampled_from(EVENT_TYPE_LIST), content=json_values)
def test_arbitrary_json_gives_typed_error(event_type: str, content: Any) -> None:
    try:
        parsed = parse_event(event_type, content)
    except MalformedInput as exc:
        # Non-objects are refused before validation; everything else names fields.
        assert isinstance(content, dict) or "JSON object" in exc.message
    else:  # only possible if hypothesis built a complete valid content
        assert isinstance(parsed, EVENT_TYPES[event_type])


EXCHANGE_CONTENTS: list[Content] = [
    content
    for content in [*samples().values(), refusal_response()]
    if getattr(content, "exchange_id", None) == EXCHANGE_ID
]


@settings(max_examples=300, deadline=None)
@given(
    steps=st.lists(
        st.tuples(st.sampled_from(EXCHANGE_CONTENTS), st.sampled_from(list(Role))),
        min_size=1,
        max_size=6,
    ),
    delay=st.integers(min_value=0, max_value=30 * 86400),
)
def test_random_event_sequences_only_raise_typed_errors(
    steps: list[tuple[Content, Role]], delay: int
) -> None:
    exchange: Exchange | None = None
    for content, role in steps:
        try:
            if exchange is None:
                exchange = Exchange.open(EXCHANGE_ID, content, role, NOW + delay)
            else:
                exchange = exchange.apply(content, role, NOW + delay)
        except OnceOnlyError:
            continue
        if exchange.is_terminal:
            final = exchange
            for later, later_role in steps:
                try:
                    final.apply(later, later_role, NOW + delay)
                except OnceOnlyError:
                    continue
                raise AssertionError("a terminal exchange accepted an event")
