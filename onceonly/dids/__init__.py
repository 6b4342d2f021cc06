"""DID resolution behind a small interface: ``resolve(did) -> DidDocument``.

Only this package imports ``didkit`` (in :mod:`.resolver`). Verification
methods come out as jose :class:`~onceonly.jose.PublicKey` objects, so callers
never see didkit types.
"""

from onceonly.dids.documents import (
    DidDocument,
    VerificationMethod,
    did_key_document,
    did_key_for,
    parse_did_document,
    public_key_from_multibase,
)
from onceonly.dids.resolver import (
    DidResolver,
    StandardDidResolver,
    check_agency_dids,
    resolve,
)
from onceonly.dids.web import did_web_location, is_loopback_host

__all__ = [
    "DidDocument",
    "DidResolver",
    "StandardDidResolver",
    "VerificationMethod",
    "check_agency_dids",
    "did_key_document",
    "did_key_for",
    "did_web_location",
    "is_loopback_host",
    "parse_did_document",
    "public_key_from_multibase",
    "resolve",
]
