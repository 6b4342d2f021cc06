"""The registered JWT/CWT claims every token we verify shares (RFC 7519 §4.1).

One place for the validity window (``iat``, ``nbf``, ``exp``) and the audience
rule, so the SD-JWT, its KB-JWT and Status List Tokens (JWT and CWT) apply the
same clock-skew convention: with ``leeway`` seconds of tolerated skew, a token
is expired when ``now - leeway >= exp``, not yet valid when ``nbf > now + leeway``
or ``iat > now + leeway``. Pure: ``now`` is an argument.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from onceonly.errors import Expired, InvalidClaim, NotYetValid, OnceOnlyError

NumericDate = int | float


def numeric_date(
    value: Any,
    name: str,
    *,
    positive: bool = False,
    error: Callable[[str], OnceOnlyError] | None = None,
) -> NumericDate:
    """Return ``value`` if it is a JSON/CBOR number (RFC 7519 NumericDate), else raise.

    Args:
        value: The claim's value.
        name: The claim's name, for the message.
        positive: Also require ``value > 0`` (e.g. a ``ttl``); otherwise ``>= 0``.
        error: Builds the error from a message; :class:`InvalidClaim` by default.
    """
    problem = None
    if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
        problem = f"claim {name!r} must be a number"
    elif value < 0 or (positive and value == 0) or value == float("inf"):
        problem = f"claim {name!r} must be a {'positive' if positive else 'non-negative'} number"
    if problem is None:
        number: NumericDate = value
        return number
    if error is not None:
        raise error(problem)
    raise InvalidClaim(problem, detail={"claim": name})


def check_validity_window(
    *,
    kind: str,
    what: str,
    now: int,
    leeway: int,
    issued_at: NumericDate | None,
    expires_at: NumericDate | None,
    not_before: NumericDate | None,
) -> None:
    """Refuse a token outside its ``nbf``..``exp`` window or issued in the future.

    Args:
        kind: The token's kind for ``detail['token']`` (``sd-jwt``, ``kb-jwt``, ...).
        what: How messages name it ("credential", "KB-JWT", ...).
        now: Current Unix time.
        leeway: Tolerated clock skew in seconds.
        issued_at, expires_at, not_before: ``iat``, ``exp``, ``nbf``, or ``None`` if absent.

    Raises:
        Expired: ``now - leeway >= exp``.
        NotYetValid: ``nbf`` or ``iat`` later than ``now + leeway``.
    """
    if expires_at is not None and now - leeway >= expires_at:
        raise Expired(f"the {what} has expired", detail={"token": kind, "exp": expires_at})
    if not_before is not None and not_before > now + leeway:
        raise NotYetValid(
            f"the {what} is not valid yet ('nbf')", detail={"token": kind, "nbf": not_before}
        )
    if issued_at is not None and issued_at > now + leeway:
        raise NotYetValid(
            f"the {what}'s 'iat' is in the future", detail={"token": kind, "iat": issued_at}
        )


def audience_admits(aud: Any, audience: str | None) -> bool:
    """RFC 7519 §4.1.3: whether a token's ``aud`` (string or array) names ``audience``.

    A recipient that cannot identify itself (``audience`` is ``None``) is never in
    an ``aud``; a malformed ``aud`` admits nobody.
    """
    if audience is None:
        return False
    if isinstance(aud, str):
        return aud == audience
    return isinstance(aud, list) and all(isinstance(item, str) for item in aud) and audience in aud
