"""The DCQL query model (OpenID4VP 1.0 §6), restricted to what SD-JWT VCs need.

Frozen pydantic models that validate a query at the boundary: identifiers are
well-formed and unique, every cross-reference (``claim_sets`` to claim ids,
``credential_sets`` to credential ids) resolves, claim paths are well-formed
claims path pointers, and every list and string is bounded so a hostile query
cannot make the wallet do unbounded work.

One restriction on top of DCQL, deliberate: the only format is ``dc+sd-jwt``.
``require_cryptographic_holder_binding: false`` is a valid query; a wallet of
this protocol still answers with key binding (DCQL allows that: without the
requirement a presentation *may* omit it), because verifiers here never accept
a presentation without it. Unknown members are ignored, as DCQL requires of
implementations. A claims query that points at a claim an earlier one already
names is ignored, as DCQL asks of wallets. ``trusted_authorities`` is honoured:
see :class:`TrustedAuthoritiesQuery` for the one type a credential of this
protocol can match.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Final, Literal, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    StringConstraints,
    ValidationError,
    model_validator,
)

from onceonly.errors import InputTooLarge, MalformedInput
from onceonly.jose import strict_json_loads

SD_JWT_VC_FORMAT: Final = "dc+sd-jwt"

MAX_CREDENTIAL_QUERIES: Final = 16
MAX_CLAIMS_PER_CREDENTIAL: Final = 64
MAX_PATH_LENGTH: Final = 16
MAX_VALUES: Final = 32
MAX_CLAIM_SETS: Final = 16
MAX_CREDENTIAL_SETS: Final = 16
MAX_OPTIONS: Final = 16
MAX_VCT_VALUES: Final = 16
MAX_TRUSTED_AUTHORITIES: Final = 8
MAX_AUTHORITY_VALUES: Final = 64

AGENCY_AUTHORITY_TYPE: Final = "onceonly_agency"
"""The ``trusted_authorities`` type whose values are issuing agencies' trust-list ids.

DCQL's own types (``aki``, ``etsi_tl``, ``openid_federation``) identify X.509
chains or federations; credentials of this protocol carry neither (their issuers
are vouched for by the signed trust list), so they match none of those.
"""
MAX_ARRAY_INDEX: Final = 10_000
MAX_QUERY_JSON_BYTES: Final = 32 * 1024
MAX_QUERY_JSON_DEPTH: Final = 8

ClaimPath = tuple[str | int | None, ...]
"""A claims path pointer: object keys, array indices (>= 0) and ``None`` (every element).

Structurally the same type as ``onceonly.sdjwt.claims.ClaimPath``.
"""

Identifier = Annotated[StrictStr, StringConstraints(pattern=r"^[A-Za-z0-9_-]{1,64}$")]
"""A credential query or claims query id: 1-64 alphanumerics, ``_`` or ``-``."""

PathComponent = (
    Annotated[StrictStr, StringConstraints(min_length=1, max_length=256)]
    | Annotated[StrictInt, Field(ge=0, le=MAX_ARRAY_INDEX)]
    | None
)

ExpectedValue = (
    Annotated[StrictStr, StringConstraints(max_length=1024)]
    | StrictBool
    | Annotated[StrictInt, Field(ge=-(2**53), le=2**53)]
)
"""A ``values`` entry; DCQL allows strings, integers and booleans (compared by type too)."""

ClaimSet = Annotated[
    tuple[Identifier, ...], Field(min_length=1, max_length=MAX_CLAIMS_PER_CREDENTIAL)
]
"""One ``claim_sets`` option: claim ids that are disclosed together."""

CredentialOption = Annotated[
    tuple[Identifier, ...], Field(min_length=1, max_length=MAX_CREDENTIAL_QUERIES)
]
"""One ``credential_sets`` option: credential query ids that are presented together."""

VctValue = Annotated[StrictStr, StringConstraints(pattern=r"^\S{1,512}$")]


class _Model(BaseModel):
    # Strict about types, lenient about unknown members (DCQL §6: MUST ignore them).
    model_config = ConfigDict(frozen=True, extra="ignore")


class ClaimsQuery(_Model):
    """One claim a verifier asks for.

    Attributes:
        id: Names the claim for ``claim_sets``; required when the credential query has them.
        path: Claims path pointer from the credential's top level to the claim.
        values: If present, the claim counts only when its value equals one of these
            exactly (same JSON type and value).
    """

    id: Identifier | None = None
    path: tuple[PathComponent, ...] = Field(min_length=1, max_length=MAX_PATH_LENGTH)
    values: tuple[ExpectedValue, ...] | None = Field(
        default=None, min_length=1, max_length=MAX_VALUES
    )


class TrustedAuthoritiesQuery(_Model):
    """One condition on who vouches for the issuer (OpenID4VP 1.0 §6.1.1).

    Attributes:
        type: What kind of authority the values name.
        values: Acceptable authorities of that kind.
    """

    type: Annotated[StrictStr, StringConstraints(min_length=1, max_length=64)]
    values: tuple[Annotated[StrictStr, StringConstraints(min_length=1, max_length=512)], ...] = (
        Field(min_length=1, max_length=MAX_AUTHORITY_VALUES)
    )

    def accepts_issuer(self, issuer: str | None) -> bool:
        """Whether a credential issued by the agency ``issuer`` meets this condition."""
        return self.type == AGENCY_AUTHORITY_TYPE and issuer is not None and issuer in self.values


class CredentialMeta(_Model):
    """SD-JWT VC metadata constraints: the acceptable ``vct`` values."""

    vct_values: tuple[VctValue, ...] = Field(min_length=1, max_length=MAX_VCT_VALUES)


class CredentialQuery(_Model):
    """A request for a presentation of one (or, with ``multiple``, several) credentials.

    Attributes:
        id: Key of the presentation(s) in the response and in ``credential_sets``.
        format: Always ``dc+sd-jwt``.
        meta: Which credential types are acceptable.
        claims: Claims to disclose. Absent means: only what is always visible.
        claim_sets: Alternative combinations of claim ids, most preferred first.
        multiple: Whether several matching credentials may be presented.
        trusted_authorities: If present, only credentials whose issuer meets one of
            these conditions are offered.
        require_cryptographic_holder_binding: Whether the verifier needs key binding
            (a wallet of this protocol binds every presentation either way).
    """

    id: Identifier
    format: Literal["dc+sd-jwt"]
    meta: CredentialMeta
    claims: tuple[ClaimsQuery, ...] | None = Field(
        default=None, min_length=1, max_length=MAX_CLAIMS_PER_CREDENTIAL
    )
    claim_sets: tuple[ClaimSet, ...] | None = Field(
        default=None, min_length=1, max_length=MAX_CLAIM_SETS
    )
    multiple: StrictBool = False
    trusted_authorities: tuple[TrustedAuthoritiesQuery, ...] | None = Field(
        default=None, min_length=1, max_length=MAX_TRUSTED_AUTHORITIES
    )
    require_cryptographic_holder_binding: StrictBool = True

    @model_validator(mode="after")
    def _check_claims(self) -> Self:
        claims = self.claims or ()
        ids = [claim.id for claim in claims if claim.id is not None]
        if len(ids) != len(set(ids)):
            raise ValueError(f"credential query {self.id!r}: claim ids are not unique")
        if self.claim_sets is not None:
            if not claims:
                raise ValueError(f"credential query {self.id!r}: claim_sets without claims")
            if len(ids) != len(claims):
                raise ValueError(f"credential query {self.id!r}: claim_sets needs an id per claim")
            known = set(ids)
            for option in self.claim_sets:
                unknown = set(option) - known
                if unknown:
                    raise ValueError(
                        f"credential query {self.id!r}: claim_sets names unknown claim ids "
                        f"{sorted(unknown)}"
                    )
                if len(option) != len(set(option)):
                    raise ValueError(f"credential query {self.id!r}: a claim set repeats an id")
        return self._without_duplicate_claims()

    def _without_duplicate_claims(self) -> Self:
        # OpenID4VP 1.0 §6.1: verifiers MUST NOT point at the same claim twice and
        # wallets SHOULD ignore such duplicates. The first query for a path stays;
        # a claim set naming a dropped one names the one kept instead.
        kept: dict[ClaimPath, ClaimsQuery] = {}
        replaced: dict[str, str] = {}
        for claim in self.claims or ():
            first = kept.setdefault(claim.path, claim)
            if first is not claim and claim.id is not None and first.id is not None:
                replaced[claim.id] = first.id
        if len(kept) == len(self.claims or ()):
            return self
        claim_sets = None
        if self.claim_sets is not None:
            claim_sets = tuple(
                tuple(dict.fromkeys(replaced.get(claim_id, claim_id) for claim_id in option))
                for option in self.claim_sets
            )
        return self.model_copy(update={"claims": tuple(kept.values()), "claim_sets": claim_sets})

    def accepts_issuer(self, issuer: str | None) -> bool:
        """Whether ``trusted_authorities`` (if any) lets a credential of ``issuer`` answer."""
        if self.trusted_authorities is None:
            return True
        return any(entry.accepts_issuer(issuer) for entry in self.trusted_authorities)

    def claim_by_id(self) -> dict[str, ClaimsQuery]:
        """Map claim id to its claims query (claims without an id are left out)."""
        return {claim.id: claim for claim in self.claims or () if claim.id is not None}


class CredentialSetQuery(_Model):
    """Alternatives for one use case: any one option (a list of credential ids) satisfies it.

    Attributes:
        options: Each option lists credential query ids that are presented together.
        required: Whether the verifier needs this set satisfied (default true).
    """

    options: tuple[CredentialOption, ...] = Field(min_length=1, max_length=MAX_OPTIONS)
    required: StrictBool = True


class DcqlQuery(_Model):
    """A DCQL query: credential queries and optional rules for combining them."""

    credentials: tuple[CredentialQuery, ...] = Field(
        min_length=1, max_length=MAX_CREDENTIAL_QUERIES
    )
    credential_sets: tuple[CredentialSetQuery, ...] | None = Field(
        default=None, min_length=1, max_length=MAX_CREDENTIAL_SETS
    )

    @model_validator(mode="after")
    def _check_credential_ids(self) -> Self:
        ids = [credential.id for credential in self.credentials]
        if len(ids) != len(set(ids)):
            raise ValueError("credential query ids are not unique")
        known = set(ids)
        for credential_set in self.credential_sets or ():
            for option in credential_set.options:
                unknown = set(option) - known
                if unknown:
                    raise ValueError(
                        f"credential_sets names unknown credential ids {sorted(unknown)}"
                    )
        return self

    def credential_query(self, query_id: str) -> CredentialQuery:
        """Return the credential query with id ``query_id``.

        Raises:
            KeyError: no such credential query.
        """
        for credential in self.credentials:
            if credential.id == query_id:
                return credential
        raise KeyError(query_id)

    def to_json_dict(self) -> dict[str, Any]:
        """The wire form (paths as JSON arrays, unset optional members left out)."""
        return self.model_dump(mode="json", exclude_none=True)


_SIZE_ERRORS: Final = frozenset({"too_long", "string_too_long", "less_than_equal"})


def parse_query(data: Mapping[str, Any] | str | bytes) -> DcqlQuery:
    """Validate a DCQL query from the network or a file.

    Args:
        data: A parsed JSON object, or JSON text (parsed strictly: no duplicate
            members, bounded size and depth).

    Returns:
        The validated, frozen query.

    Raises:
        InputTooLarge: the JSON or one of its lists, strings or indices exceeds a bound.
        MalformedInput: anything else that is not a valid query for this protocol.
    """
    if isinstance(data, str | bytes):
        data = strict_json_loads(
            data, max_bytes=MAX_QUERY_JSON_BYTES, max_depth=MAX_QUERY_JSON_DEPTH
        )
    if not isinstance(data, Mapping):
        raise MalformedInput("a DCQL query must be a JSON object")
    try:
        return DcqlQuery.model_validate(data)
    except ValidationError as exc:
        problems = exc.errors(include_url=False, include_input=False)
        where = [".".join(str(part) for part in problem["loc"]) for problem in problems[:5]]
        detail = {"fields": where}
        if any(problem["type"] in _SIZE_ERRORS for problem in problems):
            raise InputTooLarge("DCQL query exceeds a size bound", detail=detail) from exc
        first = problems[0]["msg"] if problems else "invalid"
        raise MalformedInput(f"invalid DCQL query: {first}", detail=detail) from exc
