"""The query a verifier sends: a DCQL subset (OpenID4VP 1.0, section 6).

Only what SD-JWT VCs need is modelled: credential queries with ``vct_values``,
claim paths, optional ``values`` constraints, ``claim_sets`` and
``credential_sets``. Cross-references (claim ids, credential ids) are checked
here so a consumer never sees a query that points at nothing.

Two deliberate restrictions on top of DCQL: the format is always ``dc+sd-jwt``,
and holder binding cannot be switched off (``require_cryptographic_holder_binding``
may only be ``true``), because this protocol never accepts unbound presentations.
"""

from __future__ import annotations

from typing import Annotated, Literal, Self

from pydantic import Field, StringConstraints, model_validator

from onceonly.protocol.fields import Frozen, VctStr

QueryId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{1,64}$")]
"""Identifier of a credential query or claims query (DCQL: alphanumerics, ``_`` and ``-``)."""

PathElement = (
    Annotated[str, StringConstraints(min_length=1, max_length=128)]
    | Annotated[int, Field(ge=0, le=10_000)]
    | None
)
"""A claim path step: an object key, an array index, or ``null`` for every array element."""

ClaimValue = Annotated[str, StringConstraints(max_length=256)] | int | bool
"""An allowed value in a ``values`` constraint (DCQL allows strings, integers, booleans)."""


class ClaimsQuery(Frozen):
    """One claim the verifier asks for.

    Attributes:
        id: Needed when the credential query uses ``claim_sets``.
        path: Steps from the credential's top level to the claim.
        values: If present, the claim must equal one of these.
    """

    id: QueryId | None = None
    path: tuple[PathElement, ...] = Field(min_length=1, max_length=16)
    values: tuple[ClaimValue, ...] | None = Field(default=None, min_length=1, max_length=32)


class CredentialMeta(Frozen):
    """Format-specific filter: which credential types are acceptable."""

    vct_values: tuple[VctStr, ...] = Field(min_length=1, max_length=16)


class CredentialQuery(Frozen):
    """One credential the verifier wants presented.

    Attributes:
        id: Key of this credential's presentations in the response.
        format: Always ``dc+sd-jwt``.
        meta: The acceptable ``vct`` values.
        claims: Claims to disclose; absent means none beyond the always-visible ones.
        claim_sets: Alternative combinations of claim ids, most preferred first.
        multiple: Whether more than one matching credential may be returned.
        require_cryptographic_holder_binding: Must be true (or absent).
    """

    id: QueryId
    format: Literal["dc+sd-jwt"]
    meta: CredentialMeta
    claims: tuple[ClaimsQuery, ...] | None = Field(default=None, min_length=1, max_length=64)
    claim_sets: tuple[tuple[QueryId, ...], ...] | None = Field(
        default=None, min_length=1, max_length=16
    )
    multiple: bool = False
    require_cryptographic_holder_binding: Literal[True] = True

    @model_validator(mode="after")
    def _claim_ids_resolve(self) -> Self:
        ids = [claim.id for claim in self.claims or () if claim.id is not None]
        if len(ids) != len(set(ids)):
            raise ValueError("claim ids must be unique within a credential query")
        if self.claim_sets is not None:
            if self.claims is None or len(ids) != len(self.claims):
                raise ValueError("claim_sets requires an id on every claim")
            for option in self.claim_sets:
                if not option or not set(option) <= set(ids):
                    raise ValueError("claim_sets refers to an unknown claim id")
        return self


class CredentialSetQuery(Frozen):
    """Alternatives: any one option (a list of credential ids) satisfies this set.

    Attributes:
        options: Each option is a list of credential query ids presented together.
        required: Whether the set must be satisfied at all.
    """

    options: tuple[tuple[QueryId, ...], ...] = Field(min_length=1, max_length=16)
    required: bool = True


class DcqlQuery(Frozen):
    """A DCQL query: credential queries plus optional combination rules."""

    credentials: tuple[CredentialQuery, ...] = Field(min_length=1, max_length=16)
    credential_sets: tuple[CredentialSetQuery, ...] | None = Field(
        default=None, min_length=1, max_length=16
    )

    @model_validator(mode="after")
    def _credential_ids_resolve(self) -> Self:
        ids = [credential.id for credential in self.credentials]
        if len(ids) != len(set(ids)):
            raise ValueError("credential query ids must be unique")
        for credential_set in self.credential_sets or ():
            for option in credential_set.options:
                if not option or not set(option) <= set(ids):
                    raise ValueError("credential_sets refers to an unknown credential id")
        return self

    def credential_ids(self) -> tuple[str, ...]:
        """The ids of all credential queries, in order."""
        return tuple(credential.id for credential in self.credentials)
