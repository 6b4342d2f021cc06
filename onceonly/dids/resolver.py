"""DID resolution: ``did:key`` and ``did:web`` to documents whose keys are jose keys.

This package is the only code that imports ``didkit``, and only here. didkit was
archived upstream, so it sits behind the small :class:`DidResolver` interface and
is used for one thing only: resolving ``did:key``, cross-checked against our own
multicodec decoding (and replaced by it when didkit is not installed).

``did:web`` is fetched by :mod:`.web` rather than by didkit, because we must
bound what a remote server can do to us.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final, Protocol, cast
from urllib.parse import urlsplit

from onceonly import jose
from onceonly.dids.documents import DidDocument, did_key_document, parse_did_document
from onceonly.dids.web import check_transport, did_web_location, fetch_bounded, is_loopback_host
from onceonly.errors import DidResolutionError, MalformedInput
from onceonly.trust.model import Agency

DEFAULT_TIMEOUT_SECONDS: Final = 5.0
DEFAULT_MAX_DOCUMENT_BYTES: Final = 64 * 1024


async def _didkit_document(did: str) -> DidDocument | None:
    try:
        import didkit
    except ImportError:  # pragma: no cover - didkit is a declared dependency
        return None
    # didkit ships stubs that declare the exception class as an instance.
    didkit_error = cast("type[BaseException]", didkit.DIDKitException)
    try:
        text = await didkit.resolve_did(did, "{}")
    except didkit_error as exc:
        raise DidResolutionError(f"didkit cannot resolve {did}: {exc}") from exc
    return parse_did_document(jose.strict_json_loads(text), did)


def _same_keys(left: DidDocument, right: DidDocument) -> bool:
    def jwks(doc: DidDocument) -> list[dict[str, str]]:
        return sorted((m.key.to_jwk() for m in doc.verification_methods), key=json.dumps)

    return jwks(left) == jwks(right)


# --- resolvers -------------------------------------------------------------------------


class DidResolver(Protocol):
    """Resolves a DID to its document. Swap implementations without touching callers."""

    async def resolve(self, did: str) -> DidDocument:
        """Return the document of ``did``.

        Raises:
            DidResolutionError, MalformedInput, InputTooLarge.
        """
        ...


@dataclass(frozen=True)
class StandardDidResolver:
    """``did:key`` (didkit, cross-checked) and ``did:web`` (bounded HTTPS fetch).

    Attributes:
        web_base_urls: Maps a ``did:web`` domain (percent-decoded, e.g.
            ``"127.0.0.1:8443"``) to the base URL to fetch from instead of
            ``https://<domain>``. An ``http`` base URL must point to loopback.
        loopback_http: Fetch ``did:web`` documents of loopback domains over plain
            ``http`` (for local demos and tests) instead of ``https``.
        timeout: Seconds allowed for a whole fetch.
        max_bytes: Largest document accepted.
        use_didkit: Resolve ``did:key`` with didkit as well and require agreement.
    """

    web_base_urls: Mapping[str, str] = field(default_factory=dict)
    loopback_http: bool = False
    timeout: float = DEFAULT_TIMEOUT_SECONDS
    max_bytes: int = DEFAULT_MAX_DOCUMENT_BYTES
    use_didkit: bool = True

    def web_url(self, did: str) -> str:
        """The URL the document of ``did:web`` ``did`` is fetched from.

        Raises:
            DidResolutionError: malformed DID, or the URL would be plain http off loopback.
        """
        domain, path = did_web_location(did)
        base = self.web_base_urls.get(domain)
        if base is None:
            host = urlsplit(f"//{domain}").hostname or ""
            scheme = "http" if self.loopback_http and is_loopback_host(host) else "https"
            base = f"{scheme}://{domain}"
        url = base.rstrip("/") + path
        check_transport(url)
        return url

    async def resolve(self, did: str) -> DidDocument:
        """Resolve ``did:key`` or ``did:web``.

        Raises:
            DidResolutionError: unsupported method, fetch failure, timeout, id mismatch,
                or didkit disagreeing with our own ``did:key`` decoding.
            InputTooLarge: the ``did:web`` document exceeds :attr:`max_bytes`.
            MalformedInput: the document is not a valid DID document.
        """
        if not isinstance(did, str) or len(did) > 2048:
            raise DidResolutionError("a DID must be a string of bounded length")
        if did.startswith("did:key:"):
            return await self._resolve_key(did)
        if did.startswith("did:web:"):
            body = await fetch_bounded(
                self.web_url(did), timeout=self.timeout, max_bytes=self.max_bytes
            )
            return parse_did_document(jose.strict_json_loads(body, max_bytes=self.max_bytes), did)
        raise DidResolutionError(f"unsupported DID method in {did[:64]!r}")

    async def _resolve_key(self, did: str) -> DidDocument:
        try:
            own = did_key_document(did)
        except MalformedInput as exc:
            raise DidResolutionError(f"cannot decode {did}: {exc.message}") from exc
        if not self.use_didkit:
            return own
        external = await _didkit_document(did)
        if external is not None and not _same_keys(own, external):
            raise DidResolutionError(f"didkit and onceonly disagree on the key of {did}")
        return own


async def resolve(did: str, resolver: DidResolver | None = None) -> DidDocument:
    """Resolve ``did`` with ``resolver`` (default: a :class:`StandardDidResolver`)."""
    return await (resolver or StandardDidResolver()).resolve(did)


async def check_agency_dids(agency: Agency, resolver: DidResolver) -> dict[str, list[str]]:
    """Check that every DID an agency lists is controlled with one of its listed keys.

    A DID on the trust list makes credentials with that DID as ``iss`` acceptable, so
    the DID's document must name (as ``assertionMethod``) at least one of the keys the
    list gives the agency; otherwise the DID and the list disagree about who signs.

    Returns:
        For each DID, the ``kid`` of the listed keys its document names.

    Raises:
        DidResolutionError: a DID does not resolve, or names none of the agency's keys.
    """
    listed = {key.public_key().thumbprint(): key.kid for key in agency.keys}
    matches: dict[str, list[str]] = {}
    for did in agency.dids:
        document = await resolver.resolve(did)
        found = [
            listed[k.thumbprint()] for k in document.assertion_keys() if k.thumbprint() in listed
        ]
        if not found:
            raise DidResolutionError(
                f"{did} names none of the keys the trust list gives {agency.id}",
                detail={"did": did, "agency": agency.id},
            )
        matches[did] = found
    return matches
