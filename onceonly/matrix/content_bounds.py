"""Bounds on an event content before the transport hands it to a party.

The protocol layer enforces its own, tighter bounds (12 levels, 64 KiB); these keep the
transport itself safe for any event (a chat message, a custom type): what passes can be
serialised, stored and parsed again without surprises.
"""

from __future__ import annotations

import json
import math
from typing import Any, Final

from onceonly.errors import InputTooLarge, MalformedInput, OnceOnlyError

MAX_CONTENT_DEPTH: Final = 32
"""Deepest event content handed to a party (the protocol itself allows 12 levels)."""

MAX_CONTENT_BYTES: Final = 256 * 1024
"""Largest serialised event content handed over (a Matrix event is at most 64 KiB)."""


def out_of_bounds(content: dict[str, Any]) -> OnceOnlyError | None:
    """Why ``content`` cannot be handed over (too deep, too large, not JSON), if it cannot."""
    # Iterative: a hostile nesting depth must not exhaust the stack here either.
    stack: list[tuple[Any, int]] = [(content, 1)]
    while stack:
        value, level = stack.pop()
        if isinstance(value, dict | list):
            if level > MAX_CONTENT_DEPTH:
                return InputTooLarge(f"event content nested deeper than {MAX_CONTENT_DEPTH}")
            stack.extend(
                (child, level + 1)
                for child in (value.values() if isinstance(value, dict) else value)
            )
        elif isinstance(value, float) and not math.isfinite(value):
            return MalformedInput("event content is not plain JSON (NaN or Infinity)")
    size = len(json.dumps(content, separators=(",", ":"), ensure_ascii=False).encode())
    if size > MAX_CONTENT_BYTES:
        return InputTooLarge(f"event content larger than {MAX_CONTENT_BYTES} bytes")
    return None
