"""Claims path pointer processing (OpenID4VP 1.0 §7.1) with concrete-path bookkeeping.

Applying a pointer to a JSON credential yields the selected elements. For the
wallet we also need, for each selected element, its *concrete* path (every
``None`` replaced by the index it stood for), because that decides which SD-JWT
disclosures a presentation must carry.

An integer component addresses the element's position in the array *as issued*
(SD-JWT VC, "Claim Path"): as if every selectively disclosable claim were
disclosed, so undisclosed elements keep their place. The wallet holds every
disclosure and sees arrays that way. A verifier sees only what was disclosed; its
view marks each array position it cannot see with :data:`HIDDEN` (see
:func:`onceonly.query.verify.positioned_claims`), which no pointer selects.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

ConcretePath = tuple[str | int, ...]
"""A claim path without wildcards: the location of exactly one value."""

MissReason = Literal["missing", "not_an_object", "not_an_array", "value_mismatch"]


class _Hidden:
    """Type of :data:`HIDDEN` (one instance; compares by identity)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "HIDDEN"


HIDDEN: Final = _Hidden()
"""An array element the reader knows is there but cannot see (not disclosed to it).

It keeps the positions of the visible elements after it; an index that lands on
it selects nothing, and ``None`` skips it.
"""


@dataclass(frozen=True, slots=True)
class Selected:
    """One element a pointer selected.

    Attributes:
        path: Where the element sits.
        value: The element itself.
    """

    path: ConcretePath
    value: Any


class PointerMiss(Exception):
    """A pointer selected nothing; ``reason`` says why (for the wallet's explanation)."""

    def __init__(self, reason: MissReason) -> None:
        super().__init__(reason)
        self.reason: MissReason = reason


def select(root: Mapping[str, Any], pointer: Sequence[str | int | None]) -> list[Selected]:
    """Apply a claims path pointer to a JSON object, left to right.

    A string selects that key in every selected object (elements without it drop
    out); ``None`` selects every element of every selected array; an integer
    selects that index (arrays too short drop out, and so does an index that lands
    on a :data:`HIDDEN` element). A non-object under a string, or a non-array under
    ``None`` or an integer, aborts, as the specification says.

    Args:
        root: The credential's claims (top-level JSON object).
        pointer: The path.

    Returns:
        The selected elements (never empty).

    Raises:
        PointerMiss: nothing was selected, or the structure did not fit the path.
    """
    current: list[Selected] = [Selected(path=(), value=root)]
    for component in pointer:
        following: list[Selected] = []
        for item in current:
            if isinstance(component, str):
                if not isinstance(item.value, Mapping):
                    raise PointerMiss("not_an_object")
                if component in item.value:
                    following.append(Selected((*item.path, component), item.value[component]))
            elif component is None:
                if not isinstance(item.value, list | tuple):
                    raise PointerMiss("not_an_array")
                following.extend(
                    Selected((*item.path, index), element)
                    for index, element in enumerate(item.value)
                    if element is not HIDDEN
                )
            else:
                if not isinstance(item.value, list | tuple):
                    raise PointerMiss("not_an_array")
                if component < len(item.value) and item.value[component] is not HIDDEN:
                    following.append(Selected((*item.path, component), item.value[component]))
        current = following
        if not current:
            raise PointerMiss("missing")
    return current


def value_matches(value: Any, expected: Iterable[str | int | bool]) -> bool:
    """Whether ``value`` equals one of ``expected`` in JSON type and value.

    ``True`` never matches ``1`` (Python would say they are equal), and a float
    never matches an integer: DCQL asks for an exact type-and-value match.
    """
    return any(type(value) is type(candidate) and value == candidate for candidate in expected)


def select_matching(
    root: Mapping[str, Any],
    pointer: Sequence[str | int | None],
    values: Sequence[str | int | bool] | None,
) -> list[Selected]:
    """:func:`select`, then keep only elements whose value is allowed by ``values``.

    Raises:
        PointerMiss: nothing selected, or (reason ``value_mismatch``) nothing allowed.
    """
    selected = select(root, pointer)
    if values is None:
        return selected
    allowed = [item for item in selected if value_matches(item.value, values)]
    if not allowed:
        raise PointerMiss("value_mismatch")
    return allowed
