"""``did:web``: where a document lives, and a bounded fetch of it.

The fetch is limited in time and size, follows no redirects, and plain ``http``
is allowed only to loopback addresses (tests and the local demo serve DID
documents from 127.0.0.1).
"""

from __future__ import annotations

import ipaddress
from urllib.parse import unquote, urlsplit

from onceonly.errors import DidResolutionError, InputTooLarge


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


def check_transport(url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme == "https":
        return
    if parts.scheme == "http" and parts.hostname and is_loopback_host(parts.hostname):
        return
    raise DidResolutionError(f"refusing to fetch {url}: plain http is allowed to loopback only")


async def fetch_bounded(url: str, *, timeout: float, max_bytes: int) -> bytes:
    import aiohttp

    check_transport(url)
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
