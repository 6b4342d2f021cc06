"""Who sent a ``credential.request``: the identity evidence, checked, then bound (spec section 11).

Two stages, so that a stranger cannot make the agency store anything:

1. :func:`check_identity_evidence` looks only at the request and the agency's own
   state and writes nothing: the identity agency needs an account its eID check
   bound; every other agency needs a PID presentation that verifies (trust list,
   signature, key binding with this agency's ``aud``, the request's ``nonce`` and
   the ``identity_binding`` context). Only after this does the issuer record the
   request's nonce.
2. :func:`bind_identity` completes it: the PID's status, the one matching register
   record (:meth:`~issuer.register.Register.find_person`), the offer's person, and
   the account binding.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from issuer.nonce_ledger import OfferRecord
from issuer.register import PID_VCT, BindingMethod
from onceonly import jose
from onceonly.credential_types import type_metadata
from onceonly.errors import IdentityNotBound, MalformedInput
from onceonly.protocol import CredentialRequest
from onceonly.protocol.proofs import IDENTITY_BINDING_CONTEXT
from onceonly.sdjwt import VerificationPolicy, VerifiedCredential, verify_presentation
from onceonly.status_list import status_reference_from_claims
from onceonly.types import UserId

if TYPE_CHECKING:
    from issuer.issuance import IssuerContext


@dataclass(frozen=True)
class BoundIdentity:
    """Who a request is from, and how the agency knows.

    Attributes:
        person_id: The register person.
        method: How the Matrix account was bound to the person.
        pid_holder_key: The citizen's PID ``cnf`` key (it signs the citizen's device
            lists, spec section 12): from the presented PID, or, for the identity
            agency, the holder key the new PID is bound to.
    """

    person_id: str
    method: BindingMethod
    pid_holder_key: jose.PublicKey


@dataclass(frozen=True)
class IdentityEvidence:
    """What a request shows about its sender, checked before anything is stored.

    Exactly one attribute is set.

    Attributes:
        eid_person: The person the identity agency's eID check bound the sender to.
        pid: The verified PID presentation (status and register match still to come).
    """

    eid_person: str | None = None
    pid: VerifiedCredential | None = None


def check_identity_evidence(
    ctx: IssuerContext, request: CredentialRequest, *, sender: UserId, nonce: str, now: int
) -> IdentityEvidence:
    """Stage 1: the sender's identity evidence, checked without writing anything.

    Raises:
        IdentityNotBound: no eID binding (identity agency), or no PID presentation.
        VerificationError (and subclasses), TrustError: the PID presentation fails
            verification (signature, trust, key binding, ``aud``, ``nonce``, context).
    """
    if ctx.is_identity_agency and request.vct == PID_VCT:
        # The simulated eID check bound the account (issuer.eid_check).
        return IdentityEvidence(eid_person=ctx.register.person_for_matrix_user(sender))
    if request.identity_presentation is None:
        raise IdentityNotBound("this agency requires a PID presentation (identity_presentation)")
    policy = VerificationPolicy(
        expected_audience=ctx.config.agency_id,
        expected_nonce=nonce,
        expected_vct=PID_VCT,
        expected_context=IDENTITY_BINDING_CONTEXT,
        type_metadata=type_metadata,
    )
    verified = verify_presentation(
        request.identity_presentation,
        issuer_key=ctx.trust_list.issuer_key_resolver(),
        policy=policy,
        now=now,
    )
    return IdentityEvidence(pid=verified)


async def bind_identity(
    ctx: IssuerContext,
    request: CredentialRequest,
    evidence: IdentityEvidence,
    *,
    sender: UserId,
    offer: OfferRecord | None,
    now: int,
) -> BoundIdentity:
    """Stage 2: establish which register person sent ``request`` and bind the account.

    Raises:
        IdentityNotBound: the PID lacks an identifying claim, or is of another
            person than the offer's.
        UnknownSubject, AmbiguousSubject: the PID matches no register record, several,
            or one only because it withholds an attribute the record knows.
        IdentityBindingConflict: the account is already bound to another person.
        Revoked, StatusError (and others): the PID's status entry is not valid.
    """
    if evidence.pid is None:
        assert evidence.eid_person is not None
        # The PID is bound to the key of this request, which becomes the device-list key.
        holder_key = jose.public_key_from_jwk(request.holder_jwk.model_dump(exclude_none=True))
        identity = BoundIdentity(evidence.eid_person, BindingMethod.EID_CHECK, holder_key)
    else:
        identity = await _identity_from_pid(ctx, evidence.pid)
    if offer is not None and offer.person_id != identity.person_id:
        raise IdentityNotBound("the presented identity is not the person this offer was made to")
    ctx.register.bind_matrix_user(identity.person_id, sender, identity.method, now)
    return identity


async def _identity_from_pid(ctx: IssuerContext, verified: VerifiedCredential) -> BoundIdentity:
    await ctx.pid_status_check(status_reference_from_claims(verified.claims), verified.issuer)
    try:
        person_id = ctx.register.find_person(verified.claims)
    except MalformedInput:
        raise IdentityNotBound(
            "the PID presentation must disclose given_name, family_name and birthdate"
        ) from None
    assert verified.holder_key is not None  # key binding is required by the policy
    return BoundIdentity(person_id, BindingMethod.PID_PRESENTATION, verified.holder_key)
