"""What a set of disclosures shows a verifier: every leaf, plain members included.

RFC 9901 §7.1: a verifier sees a node when every selectively disclosable node on
the way to it (itself included) is disclosed. Disclosing an object or array
element therefore also shows its plain (not selectively disclosable) members;
registration and consent have to be judged against all of them, not only against
the paths a query named.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from onceonly.query.model import ClaimPath

if TYPE_CHECKING:
    from onceonly.query.match import HeldCredential


def revealed_leaves(
    credential: HeldCredential, disclosures: frozenset[ClaimPath]
) -> tuple[ClaimPath, ...]:
    """Every leaf the verifier sees because of ``disclosures``, in document order.

    A node is shown when every selectively disclosable path on the way to it
    (itself included) is disclosed; it is *revealed by* the disclosures when at
    least one of those is. A leaf is a value that is not a non-empty object or
    array: an emptied container counts, since the verifier sees that it exists.
    """
    disclosable = credential.disclosable_paths
    out: list[ClaimPath] = []

    def walk(value: Any, path: ClaimPath, revealed: bool) -> bool:
        """Collect the leaves under ``path``; return whether the verifier sees it."""
        if path in disclosable:
            if path not in disclosures:
                return False
            revealed = True
        if isinstance(value, Mapping) and value:
            children = [walk(child, (*path, name), revealed) for name, child in value.items()]
        elif isinstance(value, list | tuple) and value:
            children = [walk(child, (*path, index), revealed) for index, child in enumerate(value)]
        else:
            children = []
        if revealed and not any(children):
            out.append(path)
        return True

    # Only the top-level claims a disclosure lies in can reveal anything.
    roots = {path[0] for path in disclosures}
    for name, child in credential.claims.items():
        if name in roots:
            walk(child, (name,), False)
    return tuple(out)
