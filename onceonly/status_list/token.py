"""Status List Tokens: the signed wrapper around a Status List (JWT form here).

Pure: the clock (``now``, Unix seconds) and keys are arguments. Verification
follows the draft's "Validation Rules": signature with the key the verifier
chose, exact ``typ``, required claims, ``sub`` equal to the URI the credential
referenced, ``iat`` and ``nbf`` not in the future and ``exp`` not in the past (with
a small leeway for clock skew, :mod:`onceonly.jwt_claims`), no ``aud`` that leaves
the verifier out, and a bounded decompression of the list.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any, Final, Generic, Literal, TypeVar

from onceonly.errors import Expired, InvalidClaim
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
from onceonly.jwt_claims import NumericDate, audience_admits, check_validity_window, numeric_date
from onceonly.status_list.codec import DEFAULT_MAX_DECOMPRESSED_BYTES, StatusList

STATUS_LIST_JWT_TYP: Final = "statuslist+jwt"
STATUS_LIST_JWT_MEDIA_TYPE: Final = "application/statuslist+jwt"

DEFAULT_LEEWAY_SECONDS: Final = 60
"""Tolerated clock skew between the status issuer and the verifier."""

DEFAULT_MAX_STATUS_TOKEN_BYTES: Final = 1024 * 1024
"""Upper bound on an encoded Status List Token (JWT or CWT) before parsing."""

_K = TypeVar("_K", str, int)  # claim keys: names in a JWT, integer labels in a CWT


@dataclass(frozen=True)
class StatusListToken:
    """A verified Status List Token.

    Attributes:
        uri: The ``sub`` claim: the URI credentials use to reference this list.
        issued_at: ``iat`` (Unix seconds).
        expires_at: ``exp`` (Unix seconds), if the issuer set one.
        ttl: ``ttl`` in seconds (how long a verifier may cache the token), if set;
            any positive number.
        status_list: The decoded list. Treat it as read-only.
        form: ``"jwt"`` or ``"cwt"``.
    """

    uri: str
    issued_at: NumericDate
    expires_at: NumericDate | None
    ttl: NumericDate | None
    status_list: StatusList
    form: Literal["jwt", "cwt"]
    not_before: NumericDate | None = None

    def check_time(self, *, now: int, leeway: int = DEFAULT_LEEWAY_SECONDS) -> None:
        """Check ``iat``/``nbf``/``exp`` against ``now`` (again, e.g. for a cached token).

        Raises:
            NotYetValid: issued in the future, or before ``nbf``.
            Expired: past ``exp``.
        """
        check_token_times(
            issued_at=self.issued_at,
            expires_at=self.expires_at,
            not_before=self.not_before,
            now=now,
            leeway=leeway,
        )


def check_token_times(
    *,
    issued_at: NumericDate,
    expires_at: NumericDate | None,
    now: int,
    leeway: int,
    max_age: int | None = None,
    not_before: NumericDate | None = None,
) -> None:
    """Enforce the time rules shared by the JWT and CWT forms.

    Args:
        issued_at: The token's ``iat``.
        expires_at: The token's ``exp`` or ``None``.
        now: Current Unix time, from the caller.
        leeway: Seconds of tolerated clock skew.
        max_age: Optional freshness policy: reject tokens issued longer ago than this.
        not_before: The token's ``nbf`` or ``None``.

    Raises:
        NotYetValid, Expired: as described.
    """
    check_validity_window(
        kind="status-list",
        what="status list token",
        now=now,
        leeway=leeway,
        issued_at=issued_at,
        expires_at=expires_at,
        not_before=not_before,
    )
    if max_age is not None and now - issued_at > max_age + leeway:
        raise Expired(
            "status list token is older than the accepted maximum age",
            detail={"iat": issued_at, "max_age": max_age},
        )


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


@dataclass(frozen=True)
class ClaimKeys(Generic[_K]):
    """Where a token form keeps each claim: names in a JWT, integer labels in a CWT.

    Attributes:
        sub: The list's URI.
        iat: Issued at.
        exp: Expiry.
        ttl: Time to live.
        nbf: Not before.
        aud: Audience.
        status_list: The encoded list.
        missing_list: The error message when the list claim is absent.
    """

    sub: _K
    iat: _K
    exp: _K
    ttl: _K
    status_list: _K
    missing_list: str
    nbf: _K
    aud: _K


JWT_CLAIM_KEYS: Final = ClaimKeys(
    sub="sub",
    iat="iat",
    exp="exp",
    ttl="ttl",
    status_list="status_list",
    missing_list="status list token has no 'status_list' claim",
    nbf="nbf",
    aud="aud",
)


def token_claims(
    keys: ClaimKeys[_K],
    encoded_list: Any,
    *,
    uri: str,
    issued_at: int,
    expires_at: int | None,
    ttl: NumericDate | None,
    extra_claims: Mapping[_K, Any] | None,
) -> dict[_K, Any]:
    """The claims of a token about to be signed (the same in both forms but for ``keys``).

    ``extra_claims`` come first, so the standard claims overwrite any of them.
    """
    claims: dict[_K, Any] = dict(extra_claims or {})
    claims.update({keys.sub: uri, keys.iat: issued_at})
    if expires_at is not None:
        claims[keys.exp] = expires_at
    if ttl is not None:
        claims[keys.ttl] = numeric_date(ttl, "ttl", positive=True)
    claims[keys.status_list] = encoded_list
    return claims


def token_from_claims(
    claims: Mapping[_K, Any],
    keys: ClaimKeys[_K],
    parse_list: Callable[[Any], StatusList],
    *,
    form: Literal["jwt", "cwt"],
    uri: str | None,
    now: int,
    leeway: int,
    max_age: int | None,
    audience: str | None = None,
) -> StatusListToken:
    """Check the claims of a token whose signature was verified, and decode its list.

    Every registered claim that is present is checked (RFC 7519 §4.1): ``iat``,
    ``exp``, ``nbf`` and ``ttl`` are numbers (NumericDate, not only integers), the
    time window holds, and an ``aud`` names ``audience``.

    Raises:
        InvalidClaim: a required claim is missing or wrong (including ``sub``), or
            an ``aud`` that does not name ``audience`` (or any ``aud`` when it is ``None``).
        NotYetValid, Expired: time checks.
        MalformedInput, InputTooLarge: from ``parse_list``.
    """
    subject = require_subject(claims.get(keys.sub), uri)
    issued_at = numeric_date(claims.get(keys.iat), "iat")
    expires_at = None if keys.exp not in claims else numeric_date(claims[keys.exp], "exp")
    not_before = None if keys.nbf not in claims else numeric_date(claims[keys.nbf], "nbf")
    ttl = None if keys.ttl not in claims else numeric_date(claims[keys.ttl], "ttl", positive=True)
    if keys.aud in claims and not audience_admits(claims[keys.aud], audience):
        raise InvalidClaim(
            "status list token 'aud' does not name this verifier", detail={"claim": "aud"}
        )
    check_token_times(
        issued_at=issued_at,
        expires_at=expires_at,
        not_before=not_before,
        now=now,
        leeway=leeway,
        max_age=max_age,
    )
    if keys.status_list not in claims:
        raise InvalidClaim(keys.missing_list)
    return StatusListToken(
        uri=subject,
        issued_at=issued_at,
        expires_at=expires_at,
        ttl=ttl,
        status_list=parse_list(claims[keys.status_list]),
        form=form,
        not_before=not_before,
    )


def sign_status_list_jwt(
    status_list: StatusList,
    key: PrivateKey,
    *,
    uri: str,
    issued_at: int,
    expires_at: int | None = None,
    ttl: NumericDate | None = None,
    extra_claims: Mapping[str, Any] | None = None,
) -> str:
    """Sign ``status_list`` as a Status List Token in JWT form.

    Args:
        status_list: The list to publish.
        key: The status issuer's signing key (its ``kid`` goes in the header).
        uri: The list's URI (``sub``), as referenced by credentials.
        issued_at: ``iat``, Unix seconds.
        expires_at: Optional ``exp``; the draft recommends setting it.
        ttl: Optional ``ttl`` in seconds (any positive number).
        extra_claims: Further claims (e.g. ``iss``); they cannot override the above.

    Returns:
        The compact JWS.
    """
    claims = token_claims(
        JWT_CLAIM_KEYS,
        status_list.to_json(),
        uri=uri,
        issued_at=issued_at,
        expires_at=expires_at,
        ttl=ttl,
        extra_claims=extra_claims,
    )
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
    audience: str | None = None,
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
        audience: This verifier's identifier, to match a token's ``aud``. A token
            with an ``aud`` is refused when it does not name ``audience`` (always
            when ``audience`` is ``None``).

    Raises:
        InvalidTokenType: ``typ`` is not ``statuslist+jwt``.
        UnsupportedAlgorithm, InvalidSignature, UnknownKey: signature problems.
        InvalidClaim: a required claim is missing or wrong (including ``sub`` and ``aud``).
        NotYetValid, Expired: time checks.
        MalformedInput, InputTooLarge: malformed token or list.
    """
    jws = parse_compact(token, max_bytes=max_token_bytes, max_depth=DEFAULT_MAX_JSON_DEPTH)
    verify_compact(jws, key, allowed_algs=allowed_algs, expected_typ=STATUS_LIST_JWT_TYP)
    return token_from_claims(
        jws.payload,
        JWT_CLAIM_KEYS,
        lambda value: StatusList.from_json(
            value, max_bytes=max_list_bytes, max_entries=max_entries
        ),
        form="jwt",
        uri=uri,
        now=now,
        leeway=leeway,
        max_age=max_age,
        audience=audience,
    )
