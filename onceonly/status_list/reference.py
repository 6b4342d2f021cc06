"""The referenced-token side: a credential's ``status`` claim and the status check.

Pure. A verifier first validates the credential itself (signature, ``exp``,
...), then calls :func:`check_status` with the credential's reference, the
Status List Token it obtained for ``reference.uri``, the status issuer's key
and the current time.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from typing import Any, Final

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from onceonly.errors import (
    InvalidClaim,
    MalformedInput,
    Revoked,
    StatusIndexOutOfRange,
    Suspended,
    UnrecognisedStatus,
)
from onceonly.jose import PublicKey
from onceonly.status_list.codec import DEFAULT_MAX_DECOMPRESSED_BYTES, INVALID, SUSPENDED, VALID
from onceonly.status_list.cwt import verify_status_list_cwt
from onceonly.status_list.token import (
    DEFAULT_LEEWAY_SECONDS,
    DEFAULT_MAX_STATUS_TOKEN_BYTES,
    StatusListToken,
    require_subject,
    verify_status_list_jwt,
)

# RFC 3986 absolute URI: a scheme, then no whitespace or control characters.
_URI_RE: Final = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*:[^\s\x00-\x1f\x7f]+")
MAX_URI_LENGTH: Final = 2048


class StatusReference(BaseModel):
    """The ``status_list`` member of a credential's ``status`` claim.

    Attributes:
        idx: The credential's index in the list (non-negative).
        uri: The Status List Token's URI (it must equal that token's ``sub``).
    """

    # Extra members are allowed: the draft lets other specifications extend the object.
    model_config = ConfigDict(frozen=True, strict=True, extra="ignore")

    idx: int = Field(ge=0)
    uri: str = Field(min_length=1, max_length=MAX_URI_LENGTH)

    @field_validator("uri")
    @classmethod
    def _absolute_uri(cls, value: str) -> str:
        if not _URI_RE.fullmatch(value):
            raise ValueError("status list uri must be an absolute URI")
        return value

    def to_claim(self) -> dict[str, Any]:
        """The ``status`` claim value to embed in a credential."""
        return {"status_list": {"idx": self.idx, "uri": self.uri}}


def parse_status_claim(status: Any) -> StatusReference:
    """Parse a credential's ``status`` claim value (``{"status_list": {"idx", "uri"}}``).

    Raises:
        InvalidClaim: no ``status_list`` member.
        MalformedInput: the member is not an object with a non-negative integer
            ``idx`` and an absolute URI ``uri``.
    """
    if not isinstance(status, Mapping):
        raise MalformedInput("'status' claim must be an object")
    if "status_list" not in status:
        raise InvalidClaim("'status' claim has no 'status_list' member")
    member = status["status_list"]
    if not isinstance(member, Mapping):
        raise MalformedInput("'status.status_list' must be an object")
    try:
        return StatusReference.model_validate(dict(member))
    except ValidationError as exc:
        fields = sorted({".".join(str(p) for p in err["loc"]) for err in exc.errors()})
        raise MalformedInput(
            "'status.status_list' is malformed", detail={"fields": fields}
        ) from exc


def status_reference_from_claims(claims: Mapping[str, Any]) -> StatusReference:
    """Extract the reference from a credential's (verified) claims.

    Raises:
        InvalidClaim: the credential has no ``status`` claim.
        MalformedInput: the claim is malformed.
    """
    if "status" not in claims:
        raise InvalidClaim("credential has no 'status' claim", detail={"claim": "status"})
    return parse_status_claim(claims["status"])


CWT_CLAIM_STATUS: Final = 65535
"""The CWT claim key of the ``status`` claim (draft section "Referenced Token in COSE")."""


def status_reference_from_cwt_claims(claims: Mapping[Any, Any]) -> StatusReference:
    """Extract the reference from a CWT-based credential's (verified) claims set.

    The ``status`` claim sits under key ``65535``; inside it the CBOR map keys are
    text (``status_list``, ``idx``, ``uri``), exactly as in the JSON form.

    Raises:
        InvalidClaim: the claims set has no status claim.
        MalformedInput: the claim is malformed.
    """
    if CWT_CLAIM_STATUS not in claims:
        raise InvalidClaim("CWT has no status claim (65535)", detail={"claim": "status"})
    return parse_status_claim(claims[CWT_CLAIM_STATUS])


def check_status(
    reference: StatusReference,
    token: str | bytes | StatusListToken,
    *,
    issuer_key: PublicKey,
    now: int,
    leeway: int = DEFAULT_LEEWAY_SECONDS,
    max_age: int | None = None,
    accepted: Collection[int] = frozenset({VALID}),
    max_token_bytes: int = DEFAULT_MAX_STATUS_TOKEN_BYTES,
    max_list_bytes: int = DEFAULT_MAX_DECOMPRESSED_BYTES,
    max_entries: int | None = None,
) -> int:
    """Look up a credential's status and reject anything but an accepted value.

    Args:
        reference: The credential's status reference.
        token: The Status List Token for ``reference.uri``: a compact JWS (``str``),
            an encoded CWT (``bytes``), or a token previously returned by
            ``verify_status_list_jwt``/``verify_status_list_cwt`` (a cache hit;
            ``sub`` and the time window are checked again).
        issuer_key: The status issuer's key, chosen by the verifier.
        now: Current Unix time.
        leeway: Tolerated clock skew in seconds.
        max_age: Optional freshness policy on the token's ``iat``.
        accepted: Status values the caller accepts; by default only ``VALID``.
            ``INVALID`` and ``SUSPENDED`` are never accepted.
        max_token_bytes: Bound on the encoded token.
        max_list_bytes: Bound on the decompressed list (zip-bomb guard).
        max_entries: Optional tighter bound on the list, as a number of entries.

    Returns:
        The status value (one of ``accepted``).

    Raises:
        Revoked: the entry is ``INVALID``.
        Suspended: the entry is ``SUSPENDED`` (a subclass of :class:`Revoked`).
        UnrecognisedStatus: any other value not in ``accepted``.
        StatusIndexOutOfRange: ``reference.idx`` is beyond the list.
        InvalidTokenType, InvalidSignature, UnsupportedAlgorithm, InvalidClaim,
        Expired, NotYetValid, MalformedInput, InputTooLarge: the token is unusable.
    """
    if isinstance(token, StatusListToken):
        require_subject(token.uri, reference.uri)
        token.check_time(now=now, leeway=leeway)
        verified = token
    else:
        verify = verify_status_list_cwt if isinstance(token, bytes) else verify_status_list_jwt
        verified = verify(
            token,  # type: ignore[arg-type]  # str for JWT, bytes for CWT
            issuer_key,
            uri=reference.uri,
            now=now,
            leeway=leeway,
            max_age=max_age,
            max_token_bytes=max_token_bytes,
            max_list_bytes=max_list_bytes,
            max_entries=max_entries,
        )
    status_list = verified.status_list
    if reference.idx >= status_list.size:
        raise StatusIndexOutOfRange(
            "status index is outside the status list",
            detail={"idx": reference.idx, "size": status_list.size},
        )
    value = status_list.get(reference.idx)
    if value == INVALID:
        raise Revoked("the credential has been revoked", detail={"status": value})
    if value == SUSPENDED:
        raise Suspended("the credential is suspended", detail={"status": value})
    if value not in accepted:
        raise UnrecognisedStatus(
            f"status value {value:#04x} is not accepted", detail={"status": value}
        )
    return value
