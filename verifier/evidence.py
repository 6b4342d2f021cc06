"""Content-addressed copies of the signed documents a verdict relied on.

An audit entry names the trust list and status list tokens it used by their
SHA-256 only (:class:`~verifier.audit_format.TrustListVersion`,
:class:`~verifier.audit_format.StatusListVersion`). The tokens themselves are
kept here, one file per token named ``<sha256 hex>.jwt``, so an auditor given
the audit export and this directory can re-verify every recorded presentation
against exactly the lists the verifier used, offline.

A file's name is its content's hash, so writing is idempotent, concurrent
writers of the same token cannot conflict, and a tampered file is detected on
read.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from pathlib import Path
from typing import Final

from onceonly.errors import InputTooLarge, MalformedInput, StoreError

MAX_EVIDENCE_BYTES: Final = 1024 * 1024
"""Largest token kept (the trust list and status list token bounds are the same)."""

_HASH_RE: Final = re.compile(r"[0-9a-f]{64}")


def token_hash(token: str) -> str:
    """SHA-256 (hex) of a token as stored and as named in audit entries."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class EvidenceArchive:
    """A directory of signed tokens, each stored under its SHA-256.

    The constructor only remembers the directory; it is created on the first write.
    """

    def __init__(self, directory: Path) -> None:
        self._directory = directory

    @property
    def directory(self) -> Path:
        """Where the tokens are kept."""
        return self._directory

    def _path(self, digest: str) -> Path:
        if not _HASH_RE.fullmatch(digest):
            raise MalformedInput("evidence hash must be 64 lowercase hex digits")
        return self._directory / f"{digest}.jwt"

    def put(self, token: str) -> str:
        """Keep ``token`` (if not kept already) and return its hash.

        Raises:
            InputTooLarge: the token exceeds :data:`MAX_EVIDENCE_BYTES`.
            StoreError: the file system failed.
        """
        data = token.encode("utf-8")
        if len(data) > MAX_EVIDENCE_BYTES:
            raise InputTooLarge(f"evidence token larger than {MAX_EVIDENCE_BYTES} bytes")
        digest = hashlib.sha256(data).hexdigest()
        path = self._path(digest)
        if path.exists():
            return digest
        try:
            self._directory.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self._directory, prefix=".evidence.", suffix=".tmp")
            try:
                with os.fdopen(fd, "wb") as handle:
                    handle.write(data)
                    handle.flush()
                    os.fsync(handle.fileno())
                os.replace(tmp, path)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        except OSError as exc:
            raise StoreError(f"cannot write evidence {digest[:12]}: {exc.strerror}") from exc
        return digest

    def get(self, digest: str) -> str:
        """The token whose SHA-256 is ``digest``.

        Raises:
            MalformedInput: ``digest`` is not a SHA-256 hex string.
            StoreError: no such token, unreadable, or its content does not match the name.
        """
        path = self._path(digest)
        try:
            with path.open("rb") as handle:
                data = handle.read(MAX_EVIDENCE_BYTES + 1)
        except FileNotFoundError:
            raise StoreError(
                f"evidence {digest[:12]} is not in the archive", detail={"hash": digest}
            ) from None
        except OSError as exc:
            raise StoreError(f"cannot read evidence {digest[:12]}: {exc.strerror}") from exc
        if hashlib.sha256(data).hexdigest() != digest:
            raise StoreError(
                f"evidence {digest[:12]} does not match its hash", detail={"hash": digest}
            )
        return data.decode("utf-8")
