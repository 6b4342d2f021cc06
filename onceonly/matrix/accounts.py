"""Matrix accounts of the parties: registration, login and the ``account.json`` file.

Registration uses Synapse's shared-secret admin API (``/_synapse/admin/v1/register``):
a one-time nonce, then an HMAC-SHA1 over ``nonce, username, password, admin flag``
separated by NUL bytes, keyed with the server's ``registration_shared_secret``.
That needs no open registration on the server and no admin account.

A party's credentials live in ``<data-dir>/account.json`` (mode 0600)::

    {"homeserver": "http://127.0.0.1:8008", "user_id": "@agency:localhost",
     "device_id": "ABCDEFGHIJ", "access_token": "syt_..."}

The device id matters: the E2EE client keeps its Olm keys per device, so it must
reuse the device a login created instead of logging in again each run.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from onceonly.errors import (
    AccountError,
    AccountExists,
    HomeserverError,
    LoginFailed,
    MalformedInput,
)
from onceonly.matrix.homeserver_config import write_private
from onceonly.matrix.homeserver_http import normalise_base_url, request_json
from onceonly.types import DeviceId, UserId

ACCOUNT_FILE = "account.json"
DEFAULT_DEVICE_NAME = "onceonly"

# Matrix user id grammar (spec "Historical user IDs" excluded): what we create.
_LOCALPART = re.compile(r"[a-z0-9._=/+-]{1,200}")


class Credentials(BaseModel):
    """What a client needs to act as a Matrix user on one device.

    Attributes:
        homeserver: Base URL of the homeserver's client API.
        user_id: Full Matrix user id, ``@localpart:server``.
        device_id: The device the access token belongs to.
        access_token: Bearer token (never printed; excluded from ``repr``).
        password: The password, when this process chose or was given it. Kept in
            memory only so a caller can log in a second device; never written to
            ``account.json``.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    homeserver: str
    user_id: UserId
    device_id: DeviceId
    access_token: str = Field(min_length=1, repr=False)
    password: str | None = Field(default=None, repr=False, exclude=True)


def localpart_of(user: str) -> str:
    """Return the localpart of ``user`` (a localpart or a full ``@local:server`` id).

    Raises:
        MalformedInput: The name is not a valid Matrix localpart.
    """
    localpart = user[1:].split(":", 1)[0] if user.startswith("@") else user
    if not _LOCALPART.fullmatch(localpart):
        raise MalformedInput(
            f"invalid Matrix user name {user!r}: use lowercase a-z, 0-9 and . _ = - / +"
        )
    return localpart


def new_password() -> str:
    """Return a random password (for accounts that only ever use their token)."""
    return secrets.token_urlsafe(24)


def register_with_shared_secret(
    homeserver: str,
    shared_secret: str,
    localpart: str,
    password: str | None = None,
    *,
    admin: bool = False,
    displayname: str | None = None,
    login: bool = True,
    device_display_name: str = DEFAULT_DEVICE_NAME,
) -> Credentials | UserId:
    """Create a user through the shared-secret admin API.

    Args:
        homeserver: Base URL of the homeserver.
        shared_secret: The server's ``registration_shared_secret``.
        localpart: The user name to create (``alice`` for ``@alice:server``).
        password: The password; a random one is chosen when ``None``.
        admin: Make the user a server admin.
        displayname: Initial display name.
        login: Also create a device and access token (returns :class:`Credentials`);
            ``False`` only creates the user and returns its id.
        device_display_name: Name of the device created when ``login`` is true.

    Raises:
        AccountExists: The user id is taken.
        HomeserverError: Shared-secret registration is off or the secret is wrong.
        AccountError: Any other refusal.
        TransportError: The homeserver is unreachable.
    """
    base = normalise_base_url(homeserver)
    localpart = localpart_of(localpart)
    password = password if password is not None else new_password()
    url = f"{base}/_synapse/admin/v1/register"
    nonce_answer = request_json("GET", url)
    nonce = nonce_answer.body.get("nonce")
    if nonce_answer.status != 200 or not isinstance(nonce, str):
        raise HomeserverError(
            f"shared-secret registration is not available on {base}"
            f" (HTTP {nonce_answer.status}) {nonce_answer.error}".rstrip()
        )
    mac = hmac.new(shared_secret.encode("utf-8"), digestmod=hashlib.sha1)
    for part in (nonce, localpart, password):
        mac.update(part.encode("utf-8"))
        mac.update(b"\x00")
    mac.update(b"admin" if admin else b"notadmin")
    body: dict[str, object] = {
        "nonce": nonce,
        "username": localpart,
        "password": password,
        "admin": admin,
        "mac": mac.hexdigest(),
        "inhibit_login": not login,
        "initial_device_display_name": device_display_name,
    }
    if displayname is not None:
        body["displayname"] = displayname
    answer = request_json("POST", url, body=body)
    if answer.status == 200:
        user_id = answer.body.get("user_id")
        if not isinstance(user_id, str):
            raise AccountError(f"registration answer from {base} has no user_id")
        if not login:
            return UserId(user_id)
        return _credentials(base, answer.body, password)
    if answer.errcode == "M_USER_IN_USE":
        raise AccountExists(
            f"user {localpart!r} already exists on {base}", detail={"localpart": localpart}
        )
    if answer.status == 403:
        raise HomeserverError(f"{base} rejected the registration shared secret (wrong secret?)")
    raise AccountError(
        f"registration of {localpart!r} failed: HTTP {answer.status} {answer.error}".rstrip(),
        detail={"errcode": answer.errcode} if answer.errcode else None,
    )


def login(
    homeserver: str,
    user: str,
    password: str,
    *,
    device_id: str | None = None,
    device_display_name: str = DEFAULT_DEVICE_NAME,
) -> Credentials:
    """Log in with a password through ``/_matrix/client/v3/login``.

    Each call without ``device_id`` creates a new device (with new E2EE identity).

    Raises:
        LoginFailed: Wrong user or password.
        AccountError: Any other refusal (e.g. rate limited).
        TransportError: The homeserver is unreachable.
    """
    base = normalise_base_url(homeserver)
    body: dict[str, object] = {
        "type": "m.login.password",
        "identifier": {"type": "m.id.user", "user": user},
        "password": password,
        "initial_device_display_name": device_display_name,
    }
    if device_id is not None:
        body["device_id"] = device_id
    answer = request_json("POST", f"{base}/_matrix/client/v3/login", body=body)
    if answer.status == 200:
        return _credentials(base, answer.body, password)
    if answer.status == 403:
        raise LoginFailed(f"{base} refused the login of {user!r}: {answer.error or 'forbidden'}")
    raise AccountError(
        f"login of {user!r} failed: HTTP {answer.status} {answer.error}".rstrip(),
        detail={"errcode": answer.errcode} if answer.errcode else None,
    )


def whoami(credentials: Credentials) -> tuple[UserId, DeviceId | None]:
    """Ask the homeserver whom ``credentials`` belong to (checks the token works).

    Raises:
        LoginFailed: The token is unknown or revoked.
        TransportError: The homeserver is unreachable.
    """
    answer = request_json(
        "GET",
        f"{normalise_base_url(credentials.homeserver)}/_matrix/client/v3/account/whoami",
        access_token=credentials.access_token,
    )
    user_id = answer.body.get("user_id")
    if answer.status != 200 or not isinstance(user_id, str):
        raise LoginFailed(
            f"the access token of {credentials.user_id} is not accepted"
            f" (HTTP {answer.status}) {answer.error}".rstrip()
        )
    device_id = answer.body.get("device_id")
    return UserId(user_id), DeviceId(device_id) if isinstance(device_id, str) else None


def create_account(
    homeserver: str,
    shared_secret: str,
    user: str,
    password: str | None = None,
    *,
    device_display_name: str = DEFAULT_DEVICE_NAME,
) -> Credentials:
    """Register ``user`` (or log in if it exists and ``password`` is given); return a device.

    The account is created without a device, then logged in through the client API,
    so the result is exactly what any later password login would give.

    Raises:
        AccountExists: The user exists and no password was given to log in with.
        LoginFailed: The user exists and the password is wrong.
        HomeserverError, AccountError, TransportError: See the functions used.
    """
    localpart = localpart_of(user)
    chosen = password if password is not None else new_password()
    try:
        register_with_shared_secret(homeserver, shared_secret, localpart, chosen, login=False)
    except AccountExists as exc:
        if password is None:
            raise AccountExists(
                f"{exc.message}; give --password to log in to it instead",
                detail=exc.detail,
            ) from exc
    credentials = login(homeserver, localpart, chosen, device_display_name=device_display_name)
    if user.startswith("@") and credentials.user_id != user:
        raise AccountError(
            f"the homeserver named the account {credentials.user_id}, not {user}",
            detail={"user_id": credentials.user_id},
        )
    return credentials


def account_path(data_dir: Path) -> Path:
    """Return the path of the account file in a party's data dir."""
    return data_dir / ACCOUNT_FILE


def save_credentials(data_dir: Path, credentials: Credentials) -> Path:
    """Write ``credentials`` (without the password) to ``<data_dir>/account.json``, 0600.

    Returns:
        The path written.
    """
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = account_path(data_dir)
    write_private(path, credentials.model_dump_json(indent=2) + "\n")
    return path


def load_credentials(data_dir: Path) -> Credentials:
    """Read ``<data_dir>/account.json``.

    Raises:
        AccountError: No account file (run ``onceonly account create``).
        MalformedInput: The file is not a valid account file.
    """
    path = account_path(data_dir)
    try:
        raw = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise AccountError(f"no account in {data_dir}: run `onceonly account create`") from exc
    except OSError as exc:
        raise AccountError(f"cannot read {path}: {exc.strerror}") from exc
    try:
        return Credentials.model_validate_json(raw)
    except ValidationError as exc:
        raise MalformedInput(
            f"{path} is not a valid account file",
            detail={"errors": exc.errors(include_url=False, include_input=False)},
        ) from exc


def _credentials(base: str, body: dict[str, object], password: str) -> Credentials:
    user_id, device_id, token = body.get("user_id"), body.get("device_id"), body.get("access_token")
    if not (isinstance(user_id, str) and isinstance(device_id, str) and isinstance(token, str)):
        fields = json.dumps(sorted(body))
        raise AccountError(f"{base} answered without user_id, device_id and token ({fields})")
    return Credentials(
        homeserver=base,
        user_id=UserId(user_id),
        device_id=DeviceId(device_id),
        access_token=token,
        password=password,
    )
