"""The devices of our own Matrix account and their identity keys.

Two views, for a party that decides which of its own other devices may read what it
reads (the citizen's wallet approving an Element session, spec section 12):

* :func:`own_device_keys` - this device's identity keys, from the local Olm account;
* :func:`account_devices` - every device the homeserver lists for the account, with the
  identity keys each published. A device's keys are only reported when the device's own
  Ed25519 signature over them verifies; a homeserver can still invent a whole device, so
  the citizen compares the keys with the ones her other client shows before approving.

:func:`account_devices` is plain blocking HTTP with the account's access token (no Olm
store is opened), so the wallet's command line can list devices while the wallet runs.
"""

from __future__ import annotations

import base64
import binascii
import json
import urllib.parse
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature as CryptoInvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from nio import AsyncClient

from onceonly.errors import AccountError, MalformedInput, TransportError
from onceonly.matrix.accounts import Credentials
from onceonly.matrix.homeserver_http import request_json

MAX_DEVICES = 256
"""More devices than this in one answer is not an account we can reason about."""


@dataclass(frozen=True)
class DeviceKeys:
    """A device and its two identity keys (unpadded base64).

    Attributes:
        device_id: The Matrix device id.
        ed25519: The device's fingerprint key (Element shows it as the "session key").
        curve25519: The device's Olm identity key.
    """

    device_id: str
    ed25519: str
    curve25519: str


@dataclass(frozen=True)
class AccountDevice:
    """A device the homeserver lists for our account.

    Attributes:
        device_id: The Matrix device id.
        display_name: The name the device gave itself, if any (not authenticated).
        keys: Its identity keys, or ``None`` when it published none or their
            self-signature does not verify (then it cannot be approved).
        last_seen_ts: When the homeserver last saw it (ms since the epoch), if known.
    """

    device_id: str
    display_name: str | None
    keys: DeviceKeys | None
    last_seen_ts: int | None = None


def own_device_keys(client: AsyncClient) -> DeviceKeys:
    """This device's identity keys from the local Olm account.

    Raises:
        TransportError: encryption is not loaded on ``client``.
    """
    if client.olm is None:
        raise TransportError("end-to-end encryption is not loaded for this client")
    keys = client.olm.account.identity_keys
    return DeviceKeys(
        device_id=str(client.device_id), ed25519=keys["ed25519"], curve25519=keys["curve25519"]
    )


def account_devices(credentials: Credentials, *, timeout: float = 30.0) -> list[AccountDevice]:
    """Every device of ``credentials.user_id``, with its verified identity keys.

    Raises:
        AccountError: the homeserver refused the access token.
        TransportError: the homeserver is unreachable or failed.
        MalformedInput: an answer does not have the expected shape.
    """
    user = credentials.user_id
    listed = _call(credentials, "GET", "/_matrix/client/v3/devices", None, timeout)
    devices = listed.get("devices")
    if not isinstance(devices, list) or len(devices) > MAX_DEVICES:
        raise MalformedInput("the homeserver's device list is not a list of devices")
    queried = _call(
        credentials,
        "POST",
        "/_matrix/client/v3/keys/query",
        {"device_keys": {user: []}},
        timeout,
    )
    per_user = queried.get("device_keys")
    published = per_user.get(user) if isinstance(per_user, dict) else None
    if not isinstance(published, dict):
        published = {}
    result = []
    for entry in devices:
        if not isinstance(entry, dict) or not isinstance(entry.get("device_id"), str):
            raise MalformedInput("a device in the homeserver's list has no device_id")
        device_id = entry["device_id"]
        name = entry.get("display_name")
        seen = entry.get("last_seen_ts")
        result.append(
            AccountDevice(
                device_id=device_id,
                display_name=name if isinstance(name, str) else None,
                keys=verified_device_keys(published.get(device_id), user, device_id),
                last_seen_ts=seen if type(seen) is int else None,
            )
        )
    return sorted(result, key=lambda device: device.device_id)


def verified_device_keys(document: Any, user_id: str, device_id: str) -> DeviceKeys | None:
    """The identity keys in a ``/keys/query`` device document, if its self-signature holds.

    The document must name ``user_id`` and ``device_id`` (a homeserver must not move keys
    from one device to another) and carry the device's Ed25519 signature over its
    canonical JSON (without ``signatures`` and ``unsigned``).
    """
    if not isinstance(document, dict):
        return None
    if document.get("user_id") != user_id or document.get("device_id") != device_id:
        return None
    keys = document.get("keys")
    if not isinstance(keys, dict):
        return None
    ed25519 = keys.get(f"ed25519:{device_id}")
    curve25519 = keys.get(f"curve25519:{device_id}")
    signatures = document.get("signatures")
    by_user = signatures.get(user_id) if isinstance(signatures, dict) else None
    signature = by_user.get(f"ed25519:{device_id}") if isinstance(by_user, dict) else None
    if not all(isinstance(value, str) for value in (ed25519, curve25519, signature)):
        return None
    signed = {
        name: value for name, value in document.items() if name not in ("signatures", "unsigned")
    }
    canonical = json.dumps(signed, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    try:
        public = Ed25519PublicKey.from_public_bytes(_unpadded_b64(str(ed25519)))
        public.verify(_unpadded_b64(str(signature)), canonical.encode("utf-8"))
    except (ValueError, binascii.Error, CryptoInvalidSignature):
        return None
    return DeviceKeys(device_id=device_id, ed25519=str(ed25519), curve25519=str(curve25519))


def _unpadded_b64(text: str) -> bytes:
    # Matrix uses standard (not URL-safe) base64 without padding.
    return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)


def _call(
    credentials: Credentials, method: str, path: str, body: dict[str, Any] | None, timeout: float
) -> dict[str, Any]:
    url = credentials.homeserver.rstrip("/") + urllib.parse.quote(path)
    answer = request_json(
        method, url, body=body, access_token=credentials.access_token, timeout=timeout
    )
    if answer.status == 401:
        raise AccountError(f"the homeserver refused the stored login: {answer.error}")
    if answer.status != 200:
        raise TransportError(
            f"{path} failed (HTTP {answer.status}, {answer.errcode})",
            detail={"status": answer.status},
        )
    return answer.body
