"""What a verifier sees of a credential, given which disclosures a presentation carries.

RFC 9901 §7.1: a selectively disclosable object member without its disclosure is
absent; a selectively disclosable array element without its disclosure is not
seen, but keeps its position (``HIDDEN``), as in the view a verifier checks a
query against (``onceonly.query.positioned_claims``). Used to check that the
disclosure sets the wallet computes really show the verifier what was asked.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from onceonly.query import HIDDEN

Path = tuple[str | int | None, ...]


def verifier_view(value: Any, disclosable: Collection[Path], shown: Collection[Path]) -> Any:
    return _view(value, (), frozenset(disclosable), frozenset(shown))


def _view(value: Any, path: Path, disclosable: frozenset[Path], shown: frozenset[Path]) -> Any:
    if isinstance(value, dict):
        out = {}
        for key, child in value.items():
            child_path = (*path, key)
            if child_path in disclosable and child_path not in shown:
                continue
            out[key] = _view(child, child_path, disclosable, shown)
        return out
    if isinstance(value, list):
        items = []
        for index, child in enumerate(value):
            child_path = (*path, index)
            if child_path in disclosable and child_path not in shown:
                items.append(HIDDEN)
                continue
            items.append(_view(child, child_path, disclosable, shown))
        return items
    return value


def all_paths(value: Any, path: tuple[str | int, ...] = ()) -> list[tuple[str | int, ...]]:
    """Every concrete path below ``value`` (objects' members and arrays' elements)."""
    out: list[tuple[str | int, ...]] = []
    if isinstance(value, dict):
        for key, child in value.items():
            out.append((*path, key))
            out.extend(all_paths(child, (*path, key)))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            out.append((*path, index))
            out.extend(all_paths(child, (*path, index)))
    return out
