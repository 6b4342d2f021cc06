"""Claim paths and the SD-JWT VC claim rules shared by issuer, holder and verifier."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Final

ClaimPath = tuple[str | int | None, ...]
"""A DCQL-style path: object keys (str), array indices (int), ``None`` = every element.

Indices address positions in the *issued* array (what the issuer's claims had),
so a path keeps naming the same element whichever siblings a holder hides.
"""

SD_JWT_VC_TYP: Final = "dc+sd-jwt"
LEGACY_SD_JWT_VC_TYP: Final = "vc+sd-jwt"
KB_JWT_TYP: Final = "kb+jwt"

NEVER_DISCLOSABLE: Final[frozenset[str]] = frozenset(
    {"iss", "nbf", "exp", "cnf", "vct", "vct#integrity", "status"}
)
"""Top-level claims the SD-JWT VC draft forbids making selectively disclosable."""

TECHNICAL_CLAIMS: Final[frozenset[str]] = frozenset(
    {"iss", "iat", "nbf", "exp", "vct", "vct#integrity", "cnf", "status", "_sd_alg"}
)
"""Always-visible claims about the credential rather than its subject (not shown as data)."""

ISSUER_SET_CLAIMS: Final[frozenset[str]] = frozenset(
    {"iss", "iat", "nbf", "exp", "cnf", "vct", "vct#integrity", "status", "_sd_alg"}
)
"""Top-level claims :func:`issue_sd_jwt_vc` sets from its arguments.

``iat`` could be disclosable under the draft, but we always publish it: a
verifier that cannot see the issuance time cannot judge freshness.
"""


def validate_path(path: Any) -> ClaimPath:
    """Check that ``path`` is a non-empty tuple/list of str, non-negative int or None.

    Raises:
        ValueError: a programming error in the caller's path (not network input).
    """
    if not isinstance(path, tuple | list) or not path:
        raise ValueError(f"claim path must be a non-empty tuple, got {path!r}")
    for component in path:
        if component is None or isinstance(component, str):
            continue
        if isinstance(component, int) and not isinstance(component, bool) and component >= 0:
            continue
        raise ValueError(f"invalid claim path component {component!r} in {path!r}")
    return tuple(path)


def path_matches(pattern: ClaimPath, concrete: ClaimPath) -> bool:
    """True if ``concrete`` (no ``None``) is ``pattern`` with wildcards filled in."""
    if len(pattern) != len(concrete):
        return False
    return all(p is None or p == c for p, c in zip(pattern, concrete, strict=True))


def is_prefix(prefix: ClaimPath, path: ClaimPath) -> bool:
    """True if ``prefix`` is a (non-strict) prefix of ``path`` (wildcards match any index)."""
    return len(prefix) <= len(path) and path_matches(prefix, path[: len(prefix)])


def format_path(path: Iterable[str | int | None]) -> str:
    """Human form, e.g. ``address.street`` or ``nationalities[0]`` or ``items[*]``."""
    out = ""
    for component in path:
        if component is None:
            out += "[*]"
        elif isinstance(component, int):
            out += f"[{component}]"
        else:
            out += f".{component}" if out else component
    return out
