"""Bridge from stored credentials to DCQL matching and back to disclosures.

The store keeps the issued SD-JWT text; matching (:mod:`onceonly.query`) needs
the claim values and which paths have a disclosure; presenting needs the
encoded disclosures of exactly the paths a match chose.

Array positions: SD-JWT processing names an array element by its slot in the
*signed* array, where decoy digests take slots too (RFC 9901 §4.2.5 allows them
in arrays). The claims the wallet matches against are the array *as issued*,
decoys gone. Everything handed to matching and taken back from it uses the
as-issued position (:func:`~onceonly.sdjwt.holder.issued_paths`, which
:func:`~onceonly.sdjwt.holder.select_disclosures` uses too), so a match and the
disclosure it picks name the same element.
"""

from __future__ import annotations

from collections.abc import Collection

from onceonly.query import ClaimPath, HeldCredential
from onceonly.sdjwt import SdJwt, parse_sd_jwt
from onceonly.sdjwt.holder import issued_paths
from wallet.records import StoredCredential

_NOT_CLAIMS = frozenset({"_sd", "_sd_alg"})


def disclosures_by_issued_path(sd_jwt: SdJwt) -> dict[ClaimPath, str]:
    """Every encoded disclosure of ``sd_jwt``, keyed by the as-issued path it reveals."""
    issued = issued_paths(sd_jwt.claim_paths)
    return {issued[item.path]: item.disclosure.encoded for item in sd_jwt.disclosures}


def held_from_sd_jwt(credential_id: str, sd_jwt: SdJwt) -> HeldCredential:
    """Describe a parsed SD-JWT for matching.

    Every disclosure the wallet received is applied (the wallet knows all values);
    top-level members of the signed payload are the always-visible claims. Paths
    use the as-issued array positions, like the claims.
    """
    return HeldCredential(
        credential_id=credential_id,
        vct=str(sd_jwt.payload.get("vct", "")),
        claims=sd_jwt.claims,
        disclosable_paths=frozenset(disclosures_by_issued_path(sd_jwt)),
        always_visible=frozenset(name for name in sd_jwt.payload if name not in _NOT_CLAIMS),
        issuer=issuer if isinstance(issuer := sd_jwt.payload.get("iss"), str) else None,
    )


def held_credential(stored: StoredCredential) -> HeldCredential:
    """Parse a stored credential's SD-JWT and describe it for matching.

    Raises:
        MalformedInput, InvalidDisclosure, InputTooLarge: the stored SD-JWT does not parse.
    """
    return held_from_sd_jwt(stored.credential_id, parse_sd_jwt(stored.sd_jwt))


def exact_disclosures(sd_jwt: SdJwt, paths: Collection[ClaimPath]) -> list[str]:
    """The encoded disclosures at exactly the as-issued ``paths`` (a match's), issued order.

    Unlike selecting by claim paths, this adds nothing: the match already decided
    which parents and children are needed.

    Raises:
        KeyError: a path has no disclosure in this SD-JWT (the match was for another one).
    """
    by_path = disclosures_by_issued_path(sd_jwt)
    missing = set(paths) - set(by_path)
    if missing:
        raise KeyError(f"no disclosure at {sorted(map(str, missing))}")
    wanted = {by_path[path] for path in paths}
    return [
        item.disclosure.encoded for item in sd_jwt.disclosures if item.disclosure.encoded in wanted
    ]
