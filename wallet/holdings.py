"""Bridge from stored credentials to DCQL matching and back to disclosures.

The store keeps the issued SD-JWT text; matching (:mod:`onceonly.query`) needs
the claim values and which paths have a disclosure; presenting needs the
encoded disclosures of exactly the paths a match chose.
"""

from __future__ import annotations

from collections.abc import Collection

from onceonly.query import ClaimPath, HeldCredential
from onceonly.sdjwt import SdJwt, parse_sd_jwt
from wallet.records import StoredCredential

_NOT_CLAIMS = frozenset({"_sd", "_sd_alg"})


def held_from_sd_jwt(credential_id: str, sd_jwt: SdJwt) -> HeldCredential:
    """Describe a parsed SD-JWT for matching.

    Every disclosure the wallet received is applied (the wallet knows all values);
    top-level members of the signed payload are the always-visible claims.
    """
    return HeldCredential(
        credential_id=credential_id,
        vct=str(sd_jwt.payload.get("vct", "")),
        claims=sd_jwt.claims,
        disclosable_paths=frozenset(item.path for item in sd_jwt.disclosures),
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
    """The encoded disclosures at exactly ``paths`` (a match's ``disclosures``), issued order.

    Unlike selecting by claim paths, this adds nothing: the match already decided
    which parents, children and earlier array elements are needed.

    Raises:
        KeyError: a path has no disclosure in this SD-JWT (the match was for another one).
    """
    wanted = set(paths)
    chosen = [item for item in sd_jwt.disclosures if item.path in wanted]
    found = {item.path for item in chosen}
    if found != wanted:
        raise KeyError(f"no disclosure at {sorted(map(str, wanted - found))}")
    return [item.disclosure.encoded for item in chosen]
