"""DID resolution: ``did:key`` and ``did:web`` to documents whose keys are jose keys.

This is the only module that imports ``didkit``. didkit was archived upstream,
so it sits behind the small :class:`DidResolver` interface and is used for one
thing only: resolving ``did:key``, cross-checked against our own multicodec
decoding (and replaced by it when didkit is not installed).

``did:web`` is fetched here rather than by didkit, because we must bound what
a remote server can do to us: the fetch is limited in time and size, follows
no redirects, and plain ``http`` is allowed only to loopback addresses (tests
and the local demo serve DID documents from 127.0.0.1).
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Protocol, cast
from urllib.parse import unquote, urlsplit

from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from onceonly import jose
from onceonly.errors import DidResolutionError, InputTooLarge, MalformedInput, OnceOnlyError

DEFAULT_TIMEOUT_SECONDS: Final = 5.0
DEFAULT_MAX_DOCUMENT_BYTES: Final = 64 * 1024
MAX_VERIFICATION_METHODS: Final = 64

_BASE58_ALPHABET: Final = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_ED25519_PUB_PREFIX: Final = bytes([0xED, 0x01])  # multicodec 0xed, varint-encoded
_P256_PUB_PREFIX: Final = bytes([0x80, 0x24])  # multicodec 0x1200, varint-encoded
_ED25519_KEY_BYTES: Final = 32
_P256_COMPRESSED_BYTES: Final = 33


# --- documents -----------------------------------------------------------------------


@dataclass(frozen=True)
class VerificationMethod:
    """One key of a DID document.

    Attributes:
        id: Absolute DID URL of the method (``did:...#fragment``).
        controller: The controlling DID.
        key: The public key; its ``kid`` is :attr:`id`.
    """

    id: str
    controller: str
    key: jose.PublicKey


@dataclass(frozen=True)
class DidDocument:
    """The parts of a DID document onceonly uses.

    Attributes:
        id: The DID.
        verification_methods: Keys with a JWK or multibase form we support.
        assertion_method: Ids of the methods allowed to sign credentials.
    """

    id: str
    verification_methods: tuple[VerificationMethod, ...]
    assertion_method: tuple[str, ...] = field(default=())

    def key(self, reference: str) -> jose.PublicKey:
        """Return the key of a method named by absolute DID URL, ``#fragment`` or fragment.

        Raises:
            DidResolutionError: the document has no such method.
        """
        wanted = _absolute(self.id, reference if "#" in reference else f"#{reference}")
        for method in self.verification_methods:
            if method.id == wanted:
                return method.key
        raise DidResolutionError(f"{self.id} has no verification method {reference!r}")

    def assertion_keys(self) -> tuple[jose.PublicKey, ...]:
        """Keys listed under ``assertionMethod`` (those that may sign credentials)."""
        allowed = set(self.assertion_method)
        return tuple(m.key for m in self.verification_methods if m.id in allowed)


def _absolute(did: str, reference: str) -> str:
    return f"{did}{reference}" if reference.startswith("#") else reference


def _method_key(entry: Mapping[str, Any], method_id: str) -> jose.PublicKey:
    if "publicKeyJwk" in entry:
        public = jose.public_key_from_jwk(entry["publicKeyJwk"])
    elif "publicKeyMultibase" in entry:
        public = public_key_from_multibase(entry["publicKeyMultibase"])
    else:
        raise MalformedInput(f"verification method {method_id} has no supported key form")
    return jose.PublicKey(alg=public.alg, key=public.key, kid=method_id)


def parse_did_document(data: Any, did: str) -> DidDocument:
    """Validate a decoded DID document for ``did`` and extract its supported keys.

    Methods with key types we do not support (e.g. RSA) are skipped; a method we
    cannot parse at all makes the document malformed.

    Raises:
        DidResolutionError: the document describes another DID.
        MalformedInput: wrong structure.
    """
    if not isinstance(data, dict):
        raise MalformedInput("DID document must be a JSON object")
    if data.get("id") != did:
        raise DidResolutionError(f"DID document id {data.get('id')!r} is not {did!r}")
    raw_methods = data.get("verificationMethod", [])
    if not isinstance(raw_methods, list) or len(raw_methods) > MAX_VERIFICATION_METHODS:
        raise MalformedInput("verificationMethod must be a list of bounded length")
    methods: list[VerificationMethod] = []
    for entry in raw_methods:
        if not isinstance(entry, dict) or not isinstance(entry.get("id"), str):
            raise MalformedInput("each verification method needs a string id")
        method_id = _absolute(did, entry["id"])
        controller = entry.get("controller", did)
        if not isinstance(controller, str):
            raise MalformedInput(f"verification method {method_id} has a bad controller")
        try:
            key = _method_key(entry, method_id)
        except OnceOnlyError as exc:
            if exc.code == "unsupported_algorithm":
                continue  # a key type we cannot use; others in the document may do
            raise
        methods.append(VerificationMethod(method_id, controller, key))
    assertion: list[str] = []
    raw_assertion = data.get("assertionMethod", [])
    if not isinstance(raw_assertion, list):
        raise MalformedInput("assertionMethod must be a list")
    for ref in raw_assertion:
        if isinstance(ref, str):
            assertion.append(_absolute(did, ref))
        elif isinstance(ref, dict) and isinstance(ref.get("id"), str):
            method_id = _absolute(did, ref["id"])
            methods.append(VerificationMethod(method_id, did, _method_key(ref, method_id)))
            assertion.append(method_id)
        else:
            raise MalformedInput("assertionMethod entries must be ids or methods")
    return DidDocument(did, tuple(methods), tuple(assertion))


# --- did:key (own decoding) ---------------------------------------------------------


def _base58_decode(text: str) -> bytes:
    number = 0
    for char in text:
        digit = _BASE58_ALPHABET.find(char)
        if digit < 0:
            raise MalformedInput("invalid base58btc character")
        number = number * 58 + digit
    leading_zeros = len(text) - len(text.lstrip("1"))
    body = number.to_bytes((number.bit_length() + 7) // 8, "big") if number else b""
    return b"\x00" * leading_zeros + body


def _base58_encode(data: bytes) -> str:
    number = int.from_bytes(data, "big")
    out = ""
    while number:
        number, digit = divmod(number, 58)
        out = _BASE58_ALPHABET[digit] + out
    return "1" * (len(data) - len(data.lstrip(b"\x00"))) + out


def public_key_from_multibase(value: Any) -> jose.PublicKey:
    """Decode a multibase (``z`` base58btc) multicodec Ed25519 or P-256 public key.

    Raises:
        MalformedInput: not base58btc, or an unsupported or malformed key.
    """
    if not isinstance(value, str) or not value.startswith("z") or len(value) > 128:
        raise MalformedInput("expected a base58btc multibase key ('z...')")
    raw = _base58_decode(value[1:])
    if raw.startswith(_ED25519_PUB_PREFIX) and len(raw) == 2 + _ED25519_KEY_BYTES:
        ed_key = ed25519.Ed25519PublicKey.from_public_bytes(raw[2:])
        return jose.PublicKey(alg=jose.EDDSA, key=ed_key)
    if raw.startswith(_P256_PUB_PREFIX) and len(raw) == 2 + _P256_COMPRESSED_BYTES:
        try:
            ec_key = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), raw[2:])
        except ValueError as exc:
            raise MalformedInput("invalid P-256 point in multibase key") from exc
        return jose.PublicKey(alg=jose.ES256, key=ec_key)
    raise MalformedInput("multibase key is neither Ed25519 nor P-256")


def did_key_for(public: jose.PublicKey) -> str:
    """The ``did:key`` of a public key (Ed25519 or P-256, compressed point)."""
    from cryptography.hazmat.primitives import serialization

    if isinstance(public.key, ed25519.Ed25519PublicKey):
        raw = public.key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return "did:key:z" + _base58_encode(_ED25519_PUB_PREFIX + raw)
    point = public.key.public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.CompressedPoint
    )
    return "did:key:z" + _base58_encode(_P256_PUB_PREFIX + point)


def did_key_document(did: str) -> DidDocument:
    """Build the document of a ``did:key`` from the DID itself (no didkit).

    Raises:
        MalformedInput: the identifier is not a supported multibase key.
    """
    multibase = did.removeprefix("did:key:")
    public = public_key_from_multibase(multibase)
    method_id = f"{did}#{multibase}"
    key = jose.PublicKey(alg=public.alg, key=public.key, kid=method_id)
    return DidDocument(did, (VerificationMethod(method_id, did, key),), (method_id,))


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


# --- did:web --------------------------------------------------------------------------


def is_loopback_host(host: str) -> bool:
    """Return whether ``host`` is ``localhost`` or a loopback IP address (127.0.0.0/8, ::1)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def did_web_location(did: str) -> tuple[str, str]:
    """Split a ``did:web`` into its (percent-decoded) domain and the document's URL path.

    ``did:web:example.com`` -> ``("example.com", "/.well-known/did.json")``;
    ``did:web:example.com:agencies:tax`` -> ``("example.com", "/agencies/tax/did.json")``;
    ``did:web:127.0.0.1%3A8080`` -> ``("127.0.0.1:8080", "/.well-known/did.json")``.

    Raises:
        DidResolutionError: not a ``did:web`` or an empty/unsafe component.
    """
    if not did.startswith("did:web:"):
        raise DidResolutionError(f"not a did:web: {did!r}")
    parts = did.removeprefix("did:web:").split(":")
    domain = unquote(parts[0])
    segments = [unquote(part) for part in parts[1:]]
    if not domain or any(c in domain for c in "/?#@ ") or not all(segments):
        raise DidResolutionError(f"malformed did:web {did!r}")
    if any(s in (".", "..") or any(c in s for c in "/?#") for s in segments):
        raise DidResolutionError(f"unsafe path in did:web {did!r}")
    path = "/" + "/".join(segments) + "/did.json" if segments else "/.well-known/did.json"
    return domain, path


def _check_transport(url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme == "https":
        return
    if parts.scheme == "http" and parts.hostname and is_loopback_host(parts.hostname):
        return
    raise DidResolutionError(f"refusing to fetch {url}: plain http is allowed to loopback only")


async def _fetch_bounded(url: str, *, timeout: float, max_bytes: int) -> bytes:
    import aiohttp

    _check_transport(url)
    client_timeout = aiohttp.ClientTimeout(total=timeout)
    try:
        async with (
            aiohttp.ClientSession(timeout=client_timeout, trust_env=False) as session,
            session.get(url, allow_redirects=False) as response,
        ):
            if response.status != 200:  # redirects are refused too: they could leave loopback
                raise DidResolutionError(f"{url} answered HTTP {response.status}")
            declared = response.content_length
            if declared is not None and declared > max_bytes:
                raise InputTooLarge(f"DID document of {declared} bytes exceeds {max_bytes}")
            body = bytearray()
            async for chunk in response.content.iter_chunked(16 * 1024):
                body.extend(chunk)
                if len(body) > max_bytes:
                    raise InputTooLarge(f"DID document exceeds {max_bytes} bytes")
            return bytes(body)
    except TimeoutError as exc:
        raise DidResolutionError(f"fetching {url} took longer than {timeout} s") from exc
    except aiohttp.ClientError as exc:
        raise DidResolutionError(f"fetching {url} failed: {exc}") from exc


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
        _check_transport(url)
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
            body = await _fetch_bounded(
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


__all__ = [
    "DidDocument",
    "DidResolver",
    "StandardDidResolver",
    "VerificationMethod",
    "did_key_document",
    "did_key_for",
    "did_web_location",
    "parse_did_document",
    "public_key_from_multibase",
    "resolve",
]
