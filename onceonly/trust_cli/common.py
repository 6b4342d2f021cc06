"""Shared pieces of the ``onceonly trust`` commands: files, options, error reporting."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, TypeVar

import click
from pydantic import ValidationError

from onceonly import jose
from onceonly.cli import fail
from onceonly.errors import ConfigError, MalformedInput, OnceOnlyError
from onceonly.trust import AgencyKey, TrustListDraft
from onceonly.trust.specs import agency_keys, parse_window, validation_summary
from onceonly.trust_cache import write_atomically

if TYPE_CHECKING:
    from onceonly.matrix.accounts import Credentials

PRIVATE_KEY_FILE: Final = "authority-key.jwk"
PUBLIC_KEY_FILE: Final = "authority-key.pub.jwk"
DRAFT_FILE: Final = "draft.json"
SIGNED_FILE: Final = "trust-list.jwt"
MAX_FILE_BYTES: Final = 1024 * 1024

F = TypeVar("F", bound=Callable[..., Any])


def reports_errors(func: F) -> F:
    """Turn a typed error into ``fail`` (code + message, exit 1) for this command."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except OnceOnlyError as exc:
            fail(click.get_current_context(), exc)

    return wrapper  # type: ignore[return-value]


def read_json(path: Path) -> Any:
    """Read a bounded, strictly parsed JSON file.

    Raises:
        ConfigError: unreadable. MalformedInput: not strict JSON.
    """
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from exc
    return jose.strict_json_loads(data, max_bytes=MAX_FILE_BYTES)


def write_private(path: Path, text: str) -> None:
    """Create ``path`` with mode 0600; never overwrite (the authority key is precious)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)


def draft_path(directory: Path, draft: Path | None) -> Path:
    """The draft file: ``--draft`` or the one in the authority's directory."""
    return draft if draft is not None else directory / DRAFT_FILE


def load_draft(path: Path) -> TrustListDraft:
    """Read and validate a draft file.

    Raises:
        ConfigError: unreadable. MalformedInput: not a valid draft.
    """
    try:
        return TrustListDraft.model_validate(read_json(path))
    except ValidationError as exc:
        raise MalformedInput(
            f"{path.name} is not a valid draft: {validation_summary(exc)}"
        ) from exc


def save_draft(path: Path, draft: TrustListDraft) -> None:
    """Write a draft atomically (pretty JSON, so people can review and edit it)."""
    write_atomically(path, draft.model_dump_json(indent=2))


def load_anchors(paths: tuple[Path, ...]) -> list[jose.PublicKey]:
    """The trust anchors (authority public JWK files).

    Raises:
        ConfigError: none given or unreadable. MalformedInput: not a public key.
    """
    if not paths:
        raise ConfigError("give at least one --authority-key")
    return [jose.public_key_from_jwk(read_json(path)) for path in paths]


def parse_key_spec(spec: str, *, now: int) -> list[AgencyKey]:
    """``FILE[@FROM..[UNTIL]]``: a public JWK or JWK Set file and its issuance window."""
    path_text, _, window = spec.rpartition("@") if "@" in spec else (spec, "", "")
    valid_from, valid_until = parse_window(window, default_from=now)
    return agency_keys(
        read_json(Path(path_text)),
        valid_from=valid_from,
        valid_until=valid_until,
        source=Path(path_text).name,
    )


dir_option = click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    default="trust-authority",
    envvar="ONCEONLY_TRUST_DIR",
    show_default=True,
    help="The trust authority's working directory.",
)

_ACCOUNT_OPTIONS = (
    click.option(
        "--account-dir",
        type=click.Path(file_okay=False, path_type=Path),
        help="Party data dir holding account.json.",
    ),
    click.option("--homeserver", help="Homeserver URL (instead of --account-dir)."),
    click.option("--user-id", help="Matrix user id (instead of --account-dir)."),
    click.option(
        "--access-token", envvar="ONCEONLY_ACCESS_TOKEN", help="Token (env ONCEONLY_ACCESS_TOKEN)."
    ),
    click.option("--device-id", default="ONCEONLY_TRUST", show_default=True),
)


def account_options(func: F) -> F:
    """Add the Matrix account options (account.json dir, or URL + user + token)."""
    for option in reversed(_ACCOUNT_OPTIONS):
        func = option(func)
    return func


def load_account(
    account_dir: Path | None,
    homeserver: str | None,
    user_id: str | None,
    access_token: str | None,
    device_id: str,
) -> Credentials:
    """Credentials from ``account.json`` in ``account_dir``, or from the explicit options.

    Raises:
        ConfigError: neither given. AccountError, MalformedInput: bad account file.
    """
    from onceonly.matrix.accounts import Credentials, load_credentials

    if account_dir is not None:
        return load_credentials(account_dir)
    if not (homeserver and user_id and access_token):
        raise ConfigError("give --account-dir, or --homeserver, --user-id and --access-token")
    try:
        return Credentials(
            homeserver=homeserver,
            user_id=user_id,
            device_id=device_id,
            access_token=access_token,
        )
    except ValidationError as exc:
        raise ConfigError(f"invalid account options: {validation_summary(exc)}") from exc
