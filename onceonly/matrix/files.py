"""Encrypted file messages (``m.file`` with an ``EncryptedFile``), as Element sends them.

:mod:`.attachments` carries *protocol contents* that do not fit in one event; this
module carries a *document* a person shares in a mailbox (a scanned certificate,
a PDF): the bytes are encrypted with a fresh AES-256-CTR key (Matrix spec,
"Sending encrypted attachments"), uploaded, and referenced from an ``m.file``
message whose ``file`` object holds the key. The message itself travels
Megolm-encrypted, so only the room's devices can read the key.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from nio import AsyncClient
from nio.crypto.attachments import decrypt_attachment
from nio.exceptions import EncryptionError

from onceonly.errors import InputTooLarge, MalformedInput
from onceonly.matrix import attachments

MAX_FILE_BYTES = 8 * 1024 * 1024
"""Largest document sent or accepted."""


async def file_message(
    client: AsyncClient, data: bytes, *, filename: str, mimetype: str
) -> dict[str, Any]:
    """Encrypt and upload ``data``; return the ``m.file`` message content that shares it.

    Raises:
        InputTooLarge: ``data`` exceeds :data:`MAX_FILE_BYTES`.
        TransportError: the upload failed.
    """
    if len(data) > MAX_FILE_BYTES:
        raise InputTooLarge(f"a document may have at most {MAX_FILE_BYTES} bytes")
    encrypted_file = await attachments.upload_encrypted(client, data, what="file")
    return {
        "msgtype": "m.file",
        "body": filename,
        "filename": filename,
        "info": {"mimetype": mimetype, "size": len(data)},
        "file": encrypted_file,
    }


async def download_file(
    homeserver: str, access_token: str, content: dict[str, Any], *, max_bytes: int = MAX_FILE_BYTES
) -> bytes:
    """Download, check and decrypt the document of an ``m.file`` message content.

    Raises:
        MalformedInput: no valid ``file`` object, or the ciphertext fails its hash.
        InputTooLarge: the announced size exceeds ``max_bytes``.
        TransportError: the download failed.
    """
    file = content.get("file")
    info = content.get("info")
    size = info.get("size") if isinstance(info, dict) else None
    if not isinstance(file, dict) or not isinstance(size, int) or size < 0:
        raise MalformedInput("not an encrypted m.file message (file and info.size required)")
    if size > max_bytes:
        raise InputTooLarge(f"document of {size} bytes exceeds {max_bytes}")
    # Same shape as an attachment reference: the package's own checks and bounded
    # download apply unchanged (AES-CTR keeps the length, so `size` bounds the read).
    server, media_id, _size, checked = attachments._checked_reference(
        {"file": file, "size": size}, max_bytes
    )
    url = (
        f"{homeserver.rstrip('/')}/_matrix/client/v1/media/download/"
        f"{quote(server, safe='')}/{quote(media_id, safe='')}"
    )
    ciphertext = await attachments._bounded_get(url, access_token, size)
    try:
        return bytes(
            decrypt_attachment(
                ciphertext, checked["key"]["k"], checked["hashes"]["sha256"], checked["iv"]
            )
        )
    except EncryptionError as exc:
        raise MalformedInput(f"document failed its integrity check: {exc}") from exc
