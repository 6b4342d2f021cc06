"""Contents too large for one Matrix event travel as an encrypted attachment.

Convention (one rule, both directions): when a content does not fit, the *whole* content
is serialized as JSON, encrypted with a fresh AES-256-CTR key (Matrix ``EncryptedFile``,
spec "Sending encrypted attachments") and uploaded. The event actually sent has the same
event type and this content::

    {
      "body": <the original body, if any, so plain clients show something>,
      "exchange_id": <the original exchange_id, if any, for routing>,
      "eu.onceonly.v1.attachment": {
        "file": {"url": "mxc://…", "key": {JWK}, "iv": "…", "hashes": {"sha256": "…"}, "v": "v2"},
        "size": <bytes of the JSON plaintext>,
        "mimetype": "application/json"
      }
    }

The receiver downloads at most ``size`` bytes (and never more than its own bound), checks
the SHA-256 of the ciphertext, decrypts, parses, and hands the handler the original
content. The key only ever travels inside the Megolm-encrypted event.
"""

from __future__ import annotations

import io
import json
from typing import Any
from urllib.parse import quote

import aiohttp
from nio import AsyncClient, UploadResponse
from nio.crypto.attachments import decrypt_attachment, encrypt_attachment
from nio.exceptions import EncryptionError

from onceonly.errors import InputTooLarge, MalformedInput, TransportError

ATTACHMENT_KEY = "eu.onceonly.v1.attachment"
"""The content key that marks an attachment reference (the protocol's one namespace root)."""

LEGACY_ATTACHMENT_KEY = "org.onceonly.attachment"
"""The key senders used before the namespace was unified; still read, never written."""

KEPT_INLINE = ("msgtype", "body", "exchange_id")
"""Top-level fields copied into the small event (strings only; ``body`` shortened if long).

``msgtype`` and ``body`` keep an ``m.room.message`` stand-in a valid message that
ordinary clients display (the spec requires both on every ``m.room.message``).
"""

MENTIONS = "m.mentions"

MAX_EVENT_BYTES = 60 * 1024
"""Serialized event size above which we switch to an attachment (Synapse caps at 64 KiB)."""

DEFAULT_MAX_DOWNLOAD = 8 * 1024 * 1024
"""Largest attachment a receiver accepts by default."""

_MAX_INLINE_STRING = 1024


def _json(data: Any) -> bytes:
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode()


def estimated_event_size(event_type: str, content: dict[str, Any], *, encrypted: bool) -> int:
    """Estimate the size of the event the homeserver will store.

    Megolm base64-encodes the ciphertext of ``{"type", "content", "room_id"}`` (4/3 growth)
    and adds a MAC, a signature and the session fields; the wrapping event adds its own.
    """
    plaintext = len(_json({"type": event_type, "content": content, "room_id": "!" + "x" * 60}))
    if encrypted:
        return plaintext * 4 // 3 + 700
    return plaintext + 400


def needs_attachment(event_type: str, content: dict[str, Any], *, encrypted: bool) -> bool:
    """Whether ``content`` must travel as an attachment."""
    return estimated_event_size(event_type, content, encrypted=encrypted) > MAX_EVENT_BYTES


async def pack(client: AsyncClient, content: dict[str, Any]) -> dict[str, Any]:
    """Encrypt and upload ``content``; return the small content that references it.

    Raises:
        TransportError: The upload failed (the caller retries).
    """
    plaintext = _json(content)
    small = stand_in(content)
    small[ATTACHMENT_KEY] = {
        "file": await upload_encrypted(client, plaintext, what="attachment"),
        "size": len(plaintext),
        "mimetype": "application/json",
    }
    return small


async def upload_encrypted(client: AsyncClient, data: bytes, *, what: str) -> dict[str, Any]:
    """Encrypt ``data`` with a fresh key, upload it, and return its ``EncryptedFile`` object.

    Args:
        client: The logged-in client.
        data: The plaintext.
        what: What is uploaded, for the error message.

    Raises:
        TransportError: the upload failed.
    """
    ciphertext, keys = encrypt_attachment(data)
    response, _ = await client.upload(
        io.BytesIO(ciphertext),
        content_type="application/octet-stream",
        filesize=len(ciphertext),
    )
    if not isinstance(response, UploadResponse):
        raise TransportError(f"{what} upload failed: {getattr(response, 'message', response)}")
    return {
        "url": response.content_uri,
        "key": keys["key"],
        "iv": keys["iv"],
        "hashes": keys["hashes"],
        "v": "v2",
    }


def stand_in(content: dict[str, Any]) -> dict[str, Any]:
    """The inline part of an event whose content travels as an attachment (see KEPT_INLINE)."""
    small: dict[str, Any] = {
        key: _shortened(content[key]) for key in KEPT_INLINE if isinstance(content.get(key), str)
    }
    if isinstance(content.get(MENTIONS), dict):
        # The stand-in is the event clients display: it mentions whom the content does.
        small[MENTIONS] = content[MENTIONS]
    return small


def _shortened(text: str) -> str:
    if len(text) <= _MAX_INLINE_STRING:
        return text
    return text[: _MAX_INLINE_STRING - 1] + "…"


def attachment_reference(content: dict[str, Any]) -> dict[str, Any] | None:
    """Return the attachment object of a content, or None if it has none."""
    ref = content.get(ATTACHMENT_KEY, content.get(LEGACY_ATTACHMENT_KEY))
    return ref if ref is not None else None


def _checked_reference(ref: Any, max_bytes: int) -> tuple[str, str, int, dict[str, Any]]:
    """Validate an attachment reference; return (server, media_id, size, file)."""
    if not isinstance(ref, dict) or not isinstance(ref.get("file"), dict):
        raise MalformedInput("attachment reference is not an object with a file")
    file = ref["file"]
    size = ref.get("size")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise MalformedInput("attachment size is missing or invalid")
    if size > max_bytes:
        raise InputTooLarge("attachment exceeds the receive bound", detail={"size": size})
    url = file.get("url")
    key = file.get("key")
    if not isinstance(url, str) or not url.startswith("mxc://") or url.count("/") != 3:
        raise MalformedInput("attachment url is not an mxc:// URI")
    if (
        not isinstance(key, dict)
        or not isinstance(key.get("k"), str)
        or key.get("alg") != "A256CTR"
        or not isinstance(file.get("iv"), str)
        or not isinstance(file.get("hashes"), dict)
        or not isinstance(file["hashes"].get("sha256"), str)
        or file.get("v") != "v2"
    ):
        raise MalformedInput("attachment file object is not a v2 EncryptedFile")
    server, media_id = url[len("mxc://") :].split("/")
    if not server or not media_id:
        raise MalformedInput("attachment url is not an mxc:// URI")
    return server, media_id, size, file


async def fetch(
    homeserver: str, access_token: str, ref: Any, *, max_bytes: int = DEFAULT_MAX_DOWNLOAD
) -> dict[str, Any]:
    """Download, verify, decrypt and parse an attachment.

    Args:
        homeserver: Base URL of our homeserver.
        access_token: Our access token (media downloads are authenticated).
        ref: The ``org.onceonly.attachment`` object from the event.
        max_bytes: Receive bound; larger attachments are refused without downloading.

    Returns:
        The original content.

    Raises:
        MalformedInput: The reference, the ciphertext hash or the JSON is bad (permanent).
        InputTooLarge: The attachment exceeds ``max_bytes`` (permanent).
        TransportError: The download failed (transient; retry later).
    """
    server, media_id, size, file = _checked_reference(ref, max_bytes)
    url = (
        f"{homeserver.rstrip('/')}/_matrix/client/v1/media/download/"
        f"{quote(server, safe='')}/{quote(media_id, safe='')}"
    )
    # AES-CTR keeps the length, so the ciphertext is exactly `size` bytes.
    ciphertext = await _bounded_get(url, access_token, size)
    try:
        plaintext = decrypt_attachment(
            ciphertext, file["key"]["k"], file["hashes"]["sha256"], file["iv"]
        )
    except EncryptionError as exc:
        raise MalformedInput(f"attachment failed its integrity check: {exc}") from exc
    try:
        content = json.loads(plaintext)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        # RecursionError: absurdly deep nesting, which must not take the receiver down.
        raise MalformedInput("attachment is not JSON (or nested too deeply)") from exc
    if not isinstance(content, dict):
        raise MalformedInput("attachment JSON is not an object")
    return content


async def _bounded_get(url: str, access_token: str, limit: int) -> bytes:
    timeout = aiohttp.ClientTimeout(total=120)
    try:
        async with (
            aiohttp.ClientSession(timeout=timeout) as session,
            session.get(url, headers={"Authorization": f"Bearer {access_token}"}) as resp,
        ):
            if resp.status == 404:
                raise MalformedInput("attachment not found on the homeserver")
            if resp.status != 200:
                raise TransportError(f"attachment download failed: HTTP {resp.status}")
            chunks: list[bytes] = []
            received = 0
            async for chunk in resp.content.iter_chunked(64 * 1024):
                received += len(chunk)
                if received > limit:
                    raise MalformedInput("attachment is larger than announced")
                chunks.append(chunk)
            return b"".join(chunks)
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise TransportError(f"attachment download failed: {exc}") from exc
