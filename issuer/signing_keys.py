"""An issuing agency's private signing keys on disk: one private JWK per file.

Key files live in a keys directory that only the owner may enter (0700); each
file is readable and writable by the owner alone (0600 or stricter). Anything
wider is refused with the ``chmod`` that fixes it, because a signing key that
another local user can read lets that user issue credentials in the agency's name.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Final

from onceonly.errors import ConfigError, OnceOnlyError
from onceonly.jose import PrivateKey, generate_private_key, private_key_from_jwk, strict_json_loads

_MAX_KEY_FILE_BYTES: Final = 16 * 1024


def check_private_file(path: Path) -> None:
    """Refuse a key file that is missing, not a regular file, or open to other users.

    Raises:
        ConfigError: naming the file and the fix.
    """
    _check_private(path, kind="key file", allowed=0o600, is_dir=False)


def check_private_dir(path: Path) -> None:
    """Refuse a keys directory that is missing or open to other users.

    Raises:
        ConfigError: naming the directory and the fix.
    """
    _check_private(path, kind="keys directory", allowed=0o700, is_dir=True)


def _check_private(path: Path, *, kind: str, allowed: int, is_dir: bool) -> None:
    try:
        info = path.stat()
    except OSError as exc:
        raise ConfigError(f"{kind} {path} is missing or unreadable: {exc.strerror}") from None
    if is_dir != stat.S_ISDIR(info.st_mode) or not (is_dir or stat.S_ISREG(info.st_mode)):
        raise ConfigError(f"{kind} {path} is not a {'directory' if is_dir else 'regular file'}")
    mode = stat.S_IMODE(info.st_mode)
    if mode & ~allowed:
        raise ConfigError(
            f"{kind} {path} has mode {mode:04o}; private keys need {allowed:04o} or stricter "
            f"(run: chmod {allowed:o} {path})",
            detail={"mode": f"{mode:04o}"},
        )
    if info.st_uid != os.geteuid():
        raise ConfigError(f"{kind} {path} belongs to another user")


def read_private_key(path: Path, *, kid: str, alg: str) -> PrivateKey:
    """Read the private JWK at ``path`` after checking its and its directory's permissions.

    Args:
        path: The key file.
        kid: The ``kid`` the file must hold.
        alg: The algorithm the key must be for.

    Raises:
        ConfigError: bad permissions, unreadable, not a private JWK, or another key.
    """
    check_private_dir(path.parent)
    check_private_file(path)
    try:
        raw = path.read_bytes()
        if len(raw) > _MAX_KEY_FILE_BYTES:
            raise ConfigError(f"key file {path} is too large to be a JWK")
        key = private_key_from_jwk(strict_json_loads(raw))
    except OSError as exc:
        raise ConfigError(f"cannot read key file {path}: {exc.strerror}") from None
    except ConfigError:
        raise
    except OnceOnlyError as exc:
        raise ConfigError(f"key file {path} is not a private JWK: {exc.message}") from None
    if key.kid != kid or key.alg != alg:
        raise ConfigError(
            f"key file {path} holds kid {key.kid!r}/{key.alg}, the configuration "
            f"expects {kid!r}/{alg}"
        )
    return key


def write_private_key(keys_dir: Path, key: PrivateKey) -> Path:
    """Write ``key`` as ``<keys_dir>/<kid>.jwk.json`` with mode 0600; return the path.

    Raises:
        ConfigError: the file already exists.
    """
    path = keys_dir / f"{key.kid}.jwk.json"
    try:
        # O_EXCL: never overwrite (or follow a planted symlink to) an existing file.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise ConfigError(f"key file {path} already exists") from None
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(key.to_jwk(), handle, indent=2)
        handle.write("\n")
    return path


def new_signing_key(alg: str) -> PrivateKey:
    """A fresh key whose ``kid`` is its RFC 7638 thumbprint.

    Raises:
        ConfigError: ``alg`` is neither ES256 nor EdDSA.
    """
    try:
        key = generate_private_key(alg)
    except OnceOnlyError as exc:
        raise ConfigError(f"cannot create a signing key: {exc.message}") from None
    # The thumbprint is unique per key and needs no clock or counter.
    return PrivateKey(alg=key.alg, key=key.key, kid=key.public().thumbprint())
