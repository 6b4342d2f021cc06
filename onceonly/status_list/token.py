"""Status List Tokens: the signed wrapper around a Status List (JWT form here).

Pure: the clock (``now``, Unix seconds) and keys are arguments. Verification
follows the draft's "Validation Rules": signature with the key the verifier
chose, exact ``typ``, required claims, ``sub`` equal to the URI the credential
referenced, ``iat`` not in the future and ``exp`` not in the past (both with a
small leeway for clock skew), and a bounded decompression of the list.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal

from onceonly.errors import Expired, InvalidClaim, NotYetValid
from onceonly.jose import (
    DEFAULT_MAX_JSON_DEPTH,
    SUPPORTED_ALGS,
    KeyResolver,
    PrivateKey,
    PublicKey,
    parse_compact,
    sign_compact,
    verify_compact,
)
from onceonly.status_list.codec import DEFAULT_MAX_DECOMPRESSED_BYTES, StatusList

STATUS_LIST_JWT_TYP: Final = "statuslist+jwt"
STATUS_LIST_JWT_MEDIA_TYPE: Final = "application/statuslist+jwt"

DEFAULT_LEEWAY_SECONDS: Final = 60
"""Tolerated clock skew between the status issuer and the verifier."""

DEFAULT_MAX_STATUS_TOKEN_BYTES: Final = 1024 * 1024
"""Upper bound on an encoded Status List Token (JWT or CWT) before parsing."""


@dataclass(frozen=True)
class StatusListToken:
    """A verified Status List Token.

    Attributes:
        uri: The ``sub`` claim: the URI credentials use to reference this list.
        issued_at: ``iat`` (Unix seconds).
        expires_at: ``exp`` (Unix seconds), if the issuer set one.
        ttl: ``ttl`` in seconds (how long a verifier may cache the token), if set.
        status_list: The decoded list. Treat it as read-only.
        form: ``"jwt"`` or ``"cwt"``.
    """

    uri: str
    issued_at: int
    expires_at: int | None
    ttl: int | None
    status_list: StatusList
    form: Literal["jwt", "cwt"]

    def check_time(self, *, now: int, leeway: int = DEFAULT_LEEWAY_SECONDS) -> None:
        """Check ``iat``/``exp`` against ``now`` (again, e.g. for a cached token).

        Raises:
            NotYetValid: issued in the future.
            Expired: past ``exp``.
        """
        check_token_times(
            issued_at=self.issued_at, expires_at=self.expires_at, now=now, leeway=leeway
        )


def check_token_times(
    *,
    issued_at: int,
    expires_at: int | None,
    now: int,
    leeway: int,
    max_age: int | None = None,
) -> None:
    """Enforce the time rules shared by the JWT and CWT forms.

    Args:
        issued_at: The token's ``iat``.
        expires_at: The token's ``exp`` or ``None``.
        now: Current Unix time, from the caller.
        leeway: Seconds of tolerated clock skew.
        max_age: Optional freshness policy: reject tokens issued longer ago than this.

    Raises:
        NotYetValid, Expired: as described.
    """
    if issued_at > now + leeway:
        raise NotYetValid("status list token is issued in the future", detail={"iat": issued_at})
    if expires_at is not None and now - leeway >= expires_at:
        raise Expired("status list token has expired", detail={"exp": expires_at})
    if max_age is not None and now - issued_at > max_age + leeway:
        raise Expired(
            "status list token is older than the accepted maximum age",
            detail={"iat": issued_at, "max_age": max_age},
        )


def require_int(value: Any, name: str, *, positive: bool = False) -> int:
    """Return ``value`` if it is an integer (not a bool), else raise :class:`InvalidClaim`."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidClaim(f"claim {name!r} must be an integer", detail={"claim": name})
    if value < 0 or (positive and value == 0):
        raise InvalidClaim(f"claim {name!r} must be positive", detail={"claim": name})
    return value


def require_subject(value: Any, expected_uri: str | None) -> str:
    """Return the ``sub`` claim after checking it names the referenced list.

    Raises:
        InvalidClaim: missing, not a string, or not equal to ``expected_uri``.
    """
    if not isinstance(value, str) or not value:
        raise InvalidClaim("status list token 'sub' must be a non-empty string")
    if expected_uri is not None and value != expected_uri:
        raise InvalidClaim(
            "status list token 'sub' is not the referenced status list URI",
            detail={"claim": "sub"},
        )
    return value


def sign_status_list_jwt(
    status_list: StatusList,
    key: PrivateKey,
    *,
    uri: str,
    issued_at: int,
    expires_at: int | None = None,
    ttl: int | None = None,
    extra_claims: Mapping[str, Any] | None = None,
) -> str:
    """Sign ``status_list`` as a Status List Token in JWT form.

    Args:
        status_list: The list to publish.
        key: The status issuer's signing key (its ``kid`` goes in the header).
        uri: The list's URI (``sub``), as referenced by credentials.
        issued_at: ``iat``, Unix seconds.
        expires_at: Optional ``exp``; the draft recommends setting it.
        ttl: Optional ``ttl`` in seconds (positive).
        extra_claims: Further claims (e.g. ``iss``); they cannot override the above.

    Returns:
        The compact JWS.
    """
    claims: dict[str, Any] = dict(extra_claims or {})
    claims.update({"sub": uri, "iat": issued_at})
    if expires_at is not None:
        claims["exp"] = expires_at
    if ttl is not None:
        claims["ttl"] = require_int(ttl, "ttl", positive=True)
    claims["status_list"] = status_list.to_json()
    return sign_compact(claims, key, typ=STATUS_LIST_JWT_TYP)


def verify_status_list_jwt(
    token: str,
    key: PublicKey | KeyResolver,
    *,
    uri: str | None,
    now: int,
    leeway: int = DEFAULT_LEEWAY_SECONDS,
    max_age: int | None = None,
    allowed_algs: Collection[str] = SUPPORTED_ALGS,
    max_token_bytes: int = DEFAULT_MAX_STATUS_TOKEN_BYTES,
    max_list_bytes: int = DEFAULT_MAX_DECOMPRESSED_BYTES,
    max_entries: int | None = None,
) -> StatusListToken:
    """Verify a Status List Token in JWT form and decode its list.

    Args:
        token: The compact JWS.
        key: The status issuer's key, chosen by the verifier (or a resolver over
            keys the verifier already trusts).
        uri: The URI the credential referenced; ``sub`` must equal it. ``None``
            skips the check (only for inspecting a token on its own, e.g. an audit).
        now: Current Unix time.
        leeway: Tolerated clock skew in seconds.
        max_age: Optional freshness policy on ``iat``.
        allowed_algs: Algorithm allow-list.
        max_token_bytes: Bound on the token size.
        max_list_bytes: Bound on the decompressed list size (zip-bomb guard).
        max_entries: Optional tighter bound on the list, as a number of entries.

    Raises:
        InvalidTokenType: ``typ`` is not ``statuslist+jwt``.
        UnsupportedAlgorithm, InvalidSignature, UnknownKey: signature problems.
        InvalidClaim: a required claim is missing or wrong (including ``sub``).
        NotYetValid, Expired: time checks.
        MalformedInput, InputTooLarge: malformed token or list.
    """
    jws = parse_compact(token, max_bytes=max_token_bytes, max_depth=DEFAULT_MAX_JSON_DEPTH)
    verify_compact(jws, key, allowed_algs=allowed_algs, expected_typ=STATUS_LIST_JWT_TYP)
    claims = jws.payload
    subject = require_subject(claims.get("sub"), uri)
    issued_at = require_int(claims.get("iat"), "iat")
    expires_at = None if "exp" not in claims else require_int(claims["exp"], "exp")
    ttl = None if "ttl" not in claims else require_int(claims["ttl"], "ttl", positive=True)
    check_token_times(
        issued_at=issued_at, expires_at=expires_at, now=now, leeway=leeway, max_age=max_age
    )
    if "status_list" not in claims:
        raise InvalidClaim("status list token has no 'status_list' claim")
    status_list = StatusList.from_json(
        claims["status_list"], max_bytes=max_list_bytes, max_entries=max_entries
    )
    return StatusListToken(
        uri=subject,
        issued_at=issued_at,
        expires_at=expires_at,
        ttl=ttl,
        status_list=status_list,
        form="jwt",
    )
