"""DCQL-style claim paths: parsing, formatting and "is this request covered" checks.

A claim path is a tuple of components, as in the DCQL ``claims[].path`` member:
a string selects an object member, a non-negative integer selects an array
element, and ``None`` selects every element of an array.

The trust list registers, per verifier and credential type, the paths a
verifier may ask for. A registered path covers a requested path when it is a
prefix of it: registering ``("address",)`` allows ``("address", "locality")``,
but registering ``("address", "locality")`` does not allow ``("address",)``,
because asking for the parent would disclose every sibling too.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TypeAlias

from onceonly.errors import MalformedInput

ClaimPathElement: TypeAlias = str | int | None
ClaimPath: TypeAlias = tuple[ClaimPathElement, ...]

_WILDCARD = "*"


def validate_claim_path(path: object) -> ClaimPath:
    """Check that ``path`` is a well-formed claim path and return it as a tuple.

    Raises:
        MalformedInput: not a non-empty sequence of str / non-negative int / None.
    """
    if not isinstance(path, list | tuple) or not path:
        raise MalformedInput("a claim path must be a non-empty array")
    out: list[ClaimPathElement] = []
    for element in path:
        # bool is an int subclass; a JSON true is never an array index.
        is_index = isinstance(element, int) and not isinstance(element, bool) and element >= 0
        if not (element is None or isinstance(element, str) or is_index):
            raise MalformedInput(f"invalid claim path component {element!r}")
        out.append(element)
    return tuple(out)


def parse_claim_path(text: str) -> ClaimPath:
    """Parse the dotted command-line form: ``address.locality``, ``nationalities.*``, ``a.0``.

    Components that are all digits become array indices, ``*`` becomes ``None``.

    Raises:
        MalformedInput: empty text or an empty component.
    """
    if not text:
        raise MalformedInput("empty claim path")
    out: list[ClaimPathElement] = []
    for part in text.split("."):
        if not part:
            raise MalformedInput(f"empty component in claim path {text!r}")
        if part == _WILDCARD:
            out.append(None)
        elif part.isascii() and part.isdigit():
            out.append(int(part))
        else:
            out.append(part)
    return tuple(out)


def format_claim_path(path: ClaimPath) -> str:
    """Render a claim path in the dotted form :func:`parse_claim_path` reads."""
    return ".".join(_WILDCARD if part is None else str(part) for part in path)


def _component_covers(registered: ClaimPathElement, requested: ClaimPathElement) -> bool:
    if registered is None:
        # "every element" covers one element or every element, never a member name.
        return requested is None or isinstance(requested, int)
    return type(registered) is type(requested) and registered == requested


def path_covers(registered: ClaimPath, requested: ClaimPath) -> bool:
    """Return whether the ``registered`` path allows asking for ``requested``."""
    if len(registered) > len(requested):
        return False
    return all(_component_covers(reg, req) for reg, req in zip(registered, requested, strict=False))


def any_path_covers(registered: Iterable[ClaimPath], requested: ClaimPath) -> bool:
    """Return whether one of the ``registered`` paths allows ``requested``."""
    return any(path_covers(reg, requested) for reg in registered)
