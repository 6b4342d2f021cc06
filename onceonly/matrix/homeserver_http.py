"""A minimal JSON-over-HTTP client for homeserver admin and account calls.

Blocking ``urllib`` on purpose: these calls are few (start-up, registration, login)
and are made from the CLI and test fixtures, which have no event loop. Proxies from
the environment are ignored, because a local homeserver must never be reached
through one (``http_proxy`` would otherwise capture ``127.0.0.1`` requests).
"""

from __future__ import annotations

import ipaddress
import json
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any

from onceonly.errors import ConfigError, TransportError

# A homeserver answer larger than this is not an answer we asked for.
_MAX_RESPONSE_BYTES = 1_000_000

_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@dataclass(frozen=True)
class JsonResponse:
    """A homeserver's answer.

    Attributes:
        status: HTTP status code.
        body: The decoded JSON object (empty if the body was not a JSON object).
    """

    status: int
    body: dict[str, Any]

    @property
    def errcode(self) -> str | None:
        """The Matrix ``errcode`` of an error answer, if any."""
        code = self.body.get("errcode")
        return code if isinstance(code, str) else None

    @property
    def error(self) -> str:
        """The Matrix ``error`` text of an error answer ('' if none)."""
        text = self.body.get("error")
        return text if isinstance(text, str) else ""


def normalise_base_url(url: str) -> str:
    """Check a homeserver base URL and return it without a trailing slash.

    Plain ``http`` is only accepted for loopback hosts: an access token or
    password sent in clear text over a real network would be exposed.

    Raises:
        ConfigError: The URL is not an http(s) URL, or is plain http to a non-loopback host.
    """
    parts = urllib.parse.urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"homeserver URL must be http(s)://host[:port], got {url!r}")
    if parts.query or parts.fragment or parts.username:
        raise ConfigError(f"homeserver URL must not carry a query, fragment or user: {url!r}")
    if parts.scheme == "http" and not is_loopback_host(parts.hostname):
        raise ConfigError(
            f"refusing plain http to {parts.hostname}: use https, or a loopback address"
        )
    return urllib.parse.urlunsplit((parts.scheme, parts.netloc, parts.path.rstrip("/"), "", ""))


def is_loopback_host(host: str) -> bool:
    """Return whether ``host`` is ``localhost`` or a loopback IP address."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def request_json(
    method: str,
    url: str,
    *,
    body: dict[str, Any] | None = None,
    access_token: str | None = None,
    timeout: float = 30.0,
) -> JsonResponse:
    """Send one JSON request and return the status and JSON object of the answer.

    HTTP error statuses are returned, not raised: callers map Matrix ``errcode``
    values to their own typed errors.

    Raises:
        TransportError: The server could not be reached or did not answer with JSON.
    """
    data = None if body is None else json.dumps(body).encode("utf-8")
    request = urllib.request.Request(url, data=data, method=method)  # noqa: S310 - http(s) only
    request.add_header("Accept", "application/json")
    if data is not None:
        request.add_header("Content-Type", "application/json")
    if access_token is not None:
        request.add_header("Authorization", f"Bearer {access_token}")
    try:
        with _OPENER.open(request, timeout=timeout) as answer:
            status, raw = answer.status, answer.read(_MAX_RESPONSE_BYTES + 1)
    except urllib.error.HTTPError as exc:
        status, raw = exc.code, exc.read(_MAX_RESPONSE_BYTES + 1)
        exc.close()
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise TransportError(
            f"homeserver not reachable at {_origin(url)}: {reason}",
            detail={"url": _origin(url)},
        ) from exc
    if len(raw) > _MAX_RESPONSE_BYTES:
        raise TransportError(f"answer from {_origin(url)} is too large", detail={"status": status})
    try:
        decoded = json.loads(raw) if raw else {}
    except ValueError as exc:
        raise TransportError(
            f"answer from {_origin(url)} is not JSON (HTTP {status})", detail={"status": status}
        ) from exc
    return JsonResponse(status=status, body=decoded if isinstance(decoded, dict) else {})


def _origin(url: str) -> str:
    # Paths can contain user ids; an origin is enough to tell which server failed.
    parts = urllib.parse.urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"
