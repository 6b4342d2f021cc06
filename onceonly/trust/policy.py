"""Policy questions every party asks the trust list (pure; mixed into ``TrustList``).

* an issuer's credential: may this agency issue this ``vct``, and which of its keys
  verifies a credential issued at ``iat`` (key rotation);
* a presentation request: may this verifier ask for these claims for this purpose;
* a Matrix message: is this account the agency it says it is.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from onceonly import jose
from onceonly.errors import (
    InvalidClaim,
    NotAuthorizedToRequest,
    UnknownKey,
    UntrustedIssuer,
    UntrustedParty,
)
from onceonly.trust.claim_paths import ClaimPath, any_path_covers, format_claim_path

if TYPE_CHECKING:
    from onceonly.query.model import DcqlQuery
    from onceonly.trust.model import Agency, AgencyKey, Purpose


def _kid_matches(header_kid: str, key: AgencyKey, agency: Agency) -> bool:
    # A DID-based issuer names its key by DID URL ("did:web:x#key-1"); accept that
    # form for the agency's own DIDs as well as the bare key id.
    if header_kid == key.kid:
        return True
    did, sep, fragment = header_kid.partition("#")
    return bool(sep) and did in agency.dids and fragment == key.kid


class TrustPolicyMixin:
    """Policy methods of :class:`~onceonly.trust.model.TrustList`."""

    if TYPE_CHECKING:
        # Declared for the type checker only: pydantic must not see a field here,
        # or it would become the model's first field.
        agencies: tuple[Agency, ...]

    def agency(self, agency_id: str) -> Agency | None:
        """The agency whose id (or one of whose DIDs) is ``agency_id``."""
        return next((a for a in self.agencies if agency_id in a.identifiers()), None)

    def agency_for_matrix_user(self, user_id: str) -> Agency | None:
        """The agency that speaks through Matrix account ``user_id``, if any."""
        return next((a for a in self.agencies if a.matrix_user_id == user_id), None)

    def is_agency(self, user_id: str, agency_id: str) -> bool:
        """Return whether Matrix account ``user_id`` is the one registered for ``agency_id``."""
        agency = self.agency(agency_id)
        return agency is not None and agency.matrix_user_id == user_id

    def require_agency(self, user_id: str, agency_id: str) -> Agency:
        """Like :meth:`is_agency`, but return the agency or raise.

        Raises:
            UntrustedParty: ``user_id`` does not speak for ``agency_id``.
        """
        agency = self.agency(agency_id)
        if agency is None or agency.matrix_user_id != user_id:
            raise UntrustedParty(
                f"{user_id} is not the registered account of {agency_id}",
                detail={"user_id": user_id, "agency_id": agency_id},
            )
        return agency

    def may_issue(self, issuer_id: str, vct: str, at: int) -> bool:
        """Return whether ``issuer_id`` may issue ``vct`` credentials at time ``at``.

        "At time ``at``" means the agency holds a key whose issuance window covers it.
        """
        agency = self.agency(issuer_id)
        return (
            agency is not None
            and vct in agency.may_issue
            and any(key.may_sign_at(at) for key in agency.keys)
        )

    def issuer_key_resolver(self) -> jose.KeyResolver:
        """Return a jose key resolver for credentials and tokens signed by listed agencies.

        The resolver finds the agency by the payload's ``iss`` (its id or a DID), the
        key by the header's ``kid`` (required when more than one key fits), and accepts
        the key only if the payload's ``iat`` lies in the key's issuance window. When
        the payload has a ``vct``, the agency must be allowed to issue it.

        Why ``iat`` and not "now": a credential signed with a key that has since
        been rotated out stays valid until its own ``exp``. A key that was
        *compromised* must be removed from the list, not merely closed, because
        ``iat`` is chosen by the signer.
        """

        def resolve(header: Mapping[str, Any], payload: Mapping[str, Any]) -> jose.PublicKey:
            return self._issuer_key(header, payload)

        return resolve

    def _issuer_key(self, header: Mapping[str, Any], payload: Mapping[str, Any]) -> jose.PublicKey:
        iss = payload.get("iss")
        if not isinstance(iss, str):
            raise InvalidClaim("token has no string 'iss'")
        agency = self.agency(iss)
        if agency is None:
            raise UntrustedIssuer(f"issuer {iss!r} is not on the trust list", detail={"iss": iss})
        iat = payload.get("iat")
        if not isinstance(iat, int) or isinstance(iat, bool):
            raise InvalidClaim("token has no integer 'iat'")
        kid = header.get("kid")
        if kid is not None and not isinstance(kid, str):
            raise UnknownKey("header kid must be a string")
        candidates = [k for k in agency.keys if kid is None or _kid_matches(kid, k, agency)]
        if not candidates:
            raise UnknownKey(f"{iss} has no key {kid!r} on the trust list", detail={"kid": kid})
        usable = [k for k in candidates if k.may_sign_at(iat)]
        if not usable:
            raise UntrustedIssuer(
                f"key {candidates[0].kid!r} of {iss} was not valid for issuing at iat={iat}",
                detail={"iss": iss, "kid": candidates[0].kid, "iat": iat},
            )
        if len(usable) > 1:
            raise UnknownKey(f"{iss} has several keys valid at iat={iat}; a kid is required")
        vct = payload.get("vct")
        if vct is not None and not (isinstance(vct, str) and vct in agency.may_issue):
            raise UntrustedIssuer(
                f"{iss} may not issue {vct!r}", detail={"iss": iss, "vct": str(vct)}
            )
        return usable[0].public_key()

    def may_request(
        self, verifier_id: str, vct: str, claim_paths: Iterable[ClaimPath], purpose: str
    ) -> Purpose:
        """Check that a verifier may ask for ``claim_paths`` of ``vct`` for ``purpose``.

        Returns:
            The registered purpose (its text is what the wallet shows the citizen).

        Raises:
            NotAuthorizedToRequest: unknown verifier, no registration for ``vct`` with
                ``purpose``, or a path outside the registration (named in the message
                and ``detail['path']``).
        """
        agency = self.agency(verifier_id)
        if agency is None:
            raise NotAuthorizedToRequest(
                f"verifier {verifier_id!r} is not on the trust list",
                detail={"verifier": verifier_id},
            )
        registered = agency.purpose(purpose)
        grants = [g for g in agency.may_request if g.vct == vct and purpose in g.purposes]
        if registered is None or not grants:
            raise NotAuthorizedToRequest(
                f"{verifier_id} has no registration for {vct!r} with purpose {purpose!r}",
                detail={"verifier": verifier_id, "vct": vct, "purpose": purpose},
            )
        # No paths: only the always-visible claims (iss, vct, ...) are disclosed, which
        # the grant for this vct covers (DCQL: a credential query without "claims").
        paths = list(claim_paths)
        allowed = [path for grant in grants for path in grant.paths]
        for path in paths:
            if not any_path_covers(allowed, path):
                shown = format_claim_path(path)
                raise NotAuthorizedToRequest(
                    f"{verifier_id} may not ask for {shown!r} of {vct!r} for {purpose!r}",
                    detail={"verifier": verifier_id, "vct": vct, "path": list(path)},
                )
        return registered

    def may_request_query(self, verifier_id: str, query: DcqlQuery, purpose: str) -> Purpose:
        """Check a whole DCQL query: every claim path, for every acceptable ``vct``.

        A credential query that accepts several ``vct`` values must be allowed for
        each of them, since the wallet may answer with any.

        Raises:
            NotAuthorizedToRequest: as :meth:`may_request`, for the first offending part.
        """
        registered: Purpose | None = None
        for credential in query.credentials:
            paths = [tuple(claim.path) for claim in credential.claims or ()]
            for vct in credential.meta.vct_values:
                registered = self.may_request(verifier_id, vct, paths, purpose)
        if registered is None:  # pragma: no cover - DcqlQuery requires a credential
            raise NotAuthorizedToRequest("empty query")
        return registered
