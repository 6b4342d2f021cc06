"""The trust list's data model: agencies, their keys, and what each may issue and ask for.

Every model is a frozen pydantic model that rejects unknown members, so a list
that does not parse exactly is refused before any policy looks at it.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictInt,
    StrictStr,
    field_validator,
    model_validator,
)

from onceonly import jose
from onceonly.errors import OnceOnlyError
from onceonly.trust.claim_paths import ClaimPath, validate_claim_path
from onceonly.trust.policy import TrustPolicyMixin

_MATRIX_USER_RE = re.compile(r"@[a-z0-9._=/+-]+:[A-Za-z0-9.:\[\]-]+")
_PURPOSE_CODE_RE = r"^[a-z0-9][a-z0-9_.-]{0,63}$"
_DID_RE = re.compile(r"did:(key|web):[A-Za-z0-9._%:-]+")

NonEmptyStr = Annotated[StrictStr, Field(min_length=1, max_length=1024)]
Timestamp = Annotated[StrictInt, Field(ge=0)]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class LocalizedText(_Frozen):
    """A text shown to people, in German and English."""

    de: NonEmptyStr
    en: NonEmptyStr


class Purpose(_Frozen):
    """A registered purpose for asking citizens for claims.

    Attributes:
        code: Stable machine code sent in presentation requests.
        text: What the citizen is shown.
    """

    code: Annotated[StrictStr, Field(pattern=_PURPOSE_CODE_RE)]
    text: LocalizedText


class AgencyKey(_Frozen):
    """One signing key of an agency and the window in which it may sign new credentials.

    A key whose window has ended stays on the list so that credentials it signed
    while it was current keep verifying until they expire.

    Attributes:
        jwk: The public JWK; must carry a ``kid``.
        valid_from: First second (Unix time) at which credentials may be issued with it.
        valid_until: First second at which it no longer may (``None``: open-ended).
    """

    jwk: dict[str, Any]
    valid_from: Timestamp
    valid_until: Timestamp | None = None

    @field_validator("jwk")
    @classmethod
    def _jwk_is_a_public_key_with_kid(cls, value: dict[str, Any]) -> dict[str, Any]:
        try:
            key = jose.public_key_from_jwk(value)
        except OnceOnlyError as exc:
            raise ValueError(exc.message) from exc
        if not isinstance(key.kid, str) or not key.kid:
            raise ValueError("agency JWK must have a kid")
        # A key published for encryption (or for other operations) must not verify
        # credentials, even if its owner signed with it.
        if value.get("use", "sig") != "sig":
            raise ValueError("agency JWK 'use' must be 'sig'")
        key_ops = value.get("key_ops")
        if key_ops is not None and (not isinstance(key_ops, list) or "verify" not in key_ops):
            raise ValueError("agency JWK 'key_ops' must include 'verify'")
        return value

    @model_validator(mode="after")
    def _window_is_ordered(self) -> AgencyKey:
        if self.valid_until is not None and self.valid_until <= self.valid_from:
            raise ValueError("valid_until must be after valid_from")
        return self

    @property
    def kid(self) -> str:
        """The key id (always present, checked on load)."""
        return str(self.jwk["kid"])

    def public_key(self) -> jose.PublicKey:
        """The key as a jose :class:`~onceonly.jose.PublicKey`."""
        return jose.public_key_from_jwk(self.jwk)

    def may_sign_at(self, at: int) -> bool:
        """Return whether a credential issued at ``at`` may be signed with this key."""
        return self.valid_from <= at and (self.valid_until is None or at < self.valid_until)


class RequestGrant(_Frozen):
    """Claims of one credential type a verifier may ask for, and for which purposes.

    Attributes:
        vct: The credential type.
        paths: Claim paths (DCQL-style); each covers itself and everything below it.
        purposes: Codes of the agency's purposes this grant is registered for.
    """

    vct: NonEmptyStr
    paths: Annotated[tuple[ClaimPath, ...], Field(min_length=1)]
    purposes: Annotated[tuple[StrictStr, ...], Field(min_length=1)]

    @field_validator("paths", mode="before")
    @classmethod
    def _paths_are_claim_paths(cls, value: Any) -> Any:
        if not isinstance(value, list | tuple):
            raise ValueError("paths must be an array")
        try:
            return tuple(validate_claim_path(path) for path in value)
        except OnceOnlyError as exc:
            raise ValueError(exc.message) from exc


class Agency(_Frozen):
    """An agency on the trust list: who it is, how to reach it, what it may do.

    Attributes:
        id: Stable identifier; also the ``iss`` of its credentials (a URL or one of its DIDs).
        name: Display name.
        matrix_user_id: The Matrix account that speaks for the agency.
        dids: DIDs (``did:web``, ``did:key``) that also identify it as an issuer.
        keys: Signing keys with their issuance windows (rotation keeps old ones).
        may_issue: Credential types (``vct``) it may issue.
        purposes: Purposes registered for its presentation requests.
        may_request: What it may ask citizens for, per credential type.
    """

    id: NonEmptyStr
    name: LocalizedText
    matrix_user_id: NonEmptyStr
    dids: tuple[NonEmptyStr, ...] = ()
    keys: tuple[AgencyKey, ...] = ()
    may_issue: tuple[NonEmptyStr, ...] = ()
    purposes: tuple[Purpose, ...] = ()
    may_request: tuple[RequestGrant, ...] = ()

    @field_validator("matrix_user_id")
    @classmethod
    def _is_matrix_user_id(cls, value: str) -> str:
        if not _MATRIX_USER_RE.fullmatch(value):
            raise ValueError(f"not a Matrix user id: {value!r}")
        return value

    @field_validator("dids")
    @classmethod
    def _are_supported_dids(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for did in value:
            if not _DID_RE.fullmatch(did):
                raise ValueError(f"unsupported DID {did!r} (did:key and did:web only)")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Agency:
        kids = [key.kid for key in self.keys]
        if len(set(kids)) != len(kids):
            raise ValueError(f"agency {self.id}: key ids must be unique")
        codes = {purpose.code for purpose in self.purposes}
        if len(codes) != len(self.purposes):
            raise ValueError(f"agency {self.id}: purpose codes must be unique")
        for grant in self.may_request:
            unknown = set(grant.purposes) - codes
            if unknown:
                raise ValueError(f"agency {self.id}: unknown purposes {sorted(unknown)} in a grant")
        return self

    def identifiers(self) -> tuple[str, ...]:
        """Every value that names this agency as an issuer: its id and its DIDs."""
        return (self.id, *self.dids)

    def purpose(self, code: str) -> Purpose | None:
        """The registered purpose with this code, if any."""
        return next((p for p in self.purposes if p.code == code), None)


def _check_unique(agencies: tuple[Agency, ...]) -> None:
    # Identifiers, Matrix accounts and keys each belong to one agency: a key listed
    # for two agencies would let either sign credentials in the other's name.
    seen: dict[str, str] = {}
    for agency in agencies:
        thumbprints = [f"key {key.public_key().thumbprint()}" for key in agency.keys]
        names = [*agency.identifiers(), agency.matrix_user_id, *thumbprints]
        for name in names:
            owner = seen.setdefault(name, agency.id)
            if owner != agency.id:
                raise ValueError(f"{name!r} is claimed by agencies {owner!r} and {agency.id!r}")


class TrustListDraft(_Frozen):
    """The unsigned working copy the trust authority edits.

    Attributes:
        iss: The authority's identifier (becomes the signed list's ``iss``).
        name: The authority's display name.
        sequence: Sequence number of the last list signed from this draft (0: none yet).
        agencies: The agencies.
    """

    iss: NonEmptyStr
    name: LocalizedText
    sequence: Annotated[StrictInt, Field(ge=0)] = 0
    agencies: tuple[Agency, ...] = ()

    @model_validator(mode="after")
    def _unique(self) -> TrustListDraft:
        _check_unique(self.agencies)
        return self


class TrustList(_Frozen, TrustPolicyMixin):
    """The signed trust list's payload.

    Attributes:
        iss: The trust authority.
        name: The authority's display name.
        seq: Sequence number; a party never goes back to a lower one.
        iat: When it was signed.
        nbf: Not valid before.
        exp: Not valid from this second on.
        agencies: The agencies.
    """

    iss: NonEmptyStr
    name: LocalizedText
    seq: Annotated[StrictInt, Field(ge=1)]
    iat: Timestamp
    nbf: Timestamp
    exp: Timestamp
    agencies: tuple[Agency, ...] = ()

    @model_validator(mode="after")
    def _consistent(self) -> TrustList:
        if self.exp <= self.nbf:
            raise ValueError("exp must be after nbf")
        _check_unique(self.agencies)
        return self
