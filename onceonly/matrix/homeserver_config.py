"""Settings, status and generated configuration of the local Synapse homeserver.

The data dir holds everything a homeserver instance needs::

    onceonly-homeserver.json     our settings (port, server name, database): the source of truth
    homeserver.yaml              Synapse config, regenerated from the settings on every start
    log_config.yaml              Synapse logging: WARNING and above, to homeserver.log
    signing.key                  the server's ed25519 signing key (generated once)
    registration_shared_secret   the shared secret for admin registration (generated once)
    macaroon_secret_key, form_secret   other Synapse secrets (generated once)
    homeserver.db, media_store/  SQLite database (when no PostgreSQL DSN) and uploaded media

Secrets live in their own files with mode 0600 so the settings and config can be
shown in a bug report without leaking them (Synapse reads ``*_path`` options).
The config is rebuilt from the settings each start so upgrades of onceonly apply
new defaults to existing data dirs; the secrets and the database are never touched.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from onceonly.errors import ConfigError

SETTINGS_FILE = "onceonly-homeserver.json"
CONFIG_FILE = "homeserver.yaml"
LOG_CONFIG_FILE = "log_config.yaml"
LOG_FILE = "homeserver.log"
SIGNING_KEY_FILE = "signing.key"
SHARED_SECRET_FILE = "registration_shared_secret"  # noqa: S105 - a file name
MACAROON_SECRET_FILE = "macaroon_secret_key"  # noqa: S105 - a file name
FORM_SECRET_FILE = "form_secret"  # noqa: S105 - a file name
SQLITE_FILE = "homeserver.db"
MEDIA_DIR = "media_store"

HOME_ENV = "ONCEONLY_HOME"
"""Environment variable naming the directory onceonly keeps local data in (default ``./var``)."""

DEFAULT_PORT = 8008
DEFAULT_SERVER_NAME = "localhost"
LOOPBACK_HOST = "127.0.0.1"

ALIAS_GUARD_MODULE = "onceonly.matrix.alias_guard.AliasGuard"
"""The Synapse module reserving ``#onceonly-*`` aliases for their owners."""

# Effectively "no limit" while keeping Synapse's token-bucket code paths in use.
_UNLIMITED: dict[str, float] = {"per_second": 100_000, "burst_count": 1_000_000}


class DatabaseSettings(BaseModel):
    """Which database Synapse uses.

    Attributes:
        kind: ``sqlite`` (a file in the data dir) or ``postgresql`` (through psycopg2).
        dsn: libpq connection string, only for ``postgresql``.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Literal["sqlite", "postgresql"] = "sqlite"
    dsn: str | None = None


class HomeserverSettings(BaseModel):
    """What a data dir's homeserver is: kept in ``onceonly-homeserver.json``.

    Attributes:
        server_name: The Matrix server name (the part after ``:`` in user ids). Fixed
            once the homeserver has been created, because every stored id contains it.
        port: The loopback TCP port of the client listener.
        database: The database settings, fixed once created.
        relaxed_rate_limits: Lift Synapse's rate limits for *every* account (logins,
            failed logins, registration, messages, invites, room creation, media), for
            load tests only. ``False`` (the default) keeps Synapse's defaults; agency
            accounts that send a lot get a per-user exemption instead
            (``account create --unlimited``, the admin API's ``override_ratelimit``).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    version: Literal[1] = 1
    server_name: str = Field(default=DEFAULT_SERVER_NAME, min_length=1, max_length=255)
    port: int = Field(default=DEFAULT_PORT, ge=1, le=65535)
    database: DatabaseSettings = DatabaseSettings()
    relaxed_rate_limits: bool = False


def data_root() -> Path:
    """Return ``$ONCEONLY_HOME`` if set, else ``./var`` (relative to the current directory)."""
    return Path(os.environ.get(HOME_ENV) or "var")


def default_data_dir() -> Path:
    """Return the default homeserver data dir: ``<data_root()>/homeserver``."""
    return data_root() / "homeserver"


class HomeserverStatus(BaseModel):
    """A snapshot of a homeserver data dir.

    Attributes:
        running: Whether the homeserver process recorded in the pid file is alive.
        base_url: Client API base URL.
        server_name: Matrix server name.
        port: Loopback port of the client API.
        pid: Process id when running.
        database: ``sqlite`` or ``postgresql``.
        data_dir: Absolute data dir.
        stale_pid_file: A pid file exists but names no running homeserver.
    """

    model_config = ConfigDict(frozen=True)

    running: bool
    base_url: str
    server_name: str
    port: int
    pid: int | None
    database: Literal["sqlite", "postgresql"]
    data_dir: str
    stale_pid_file: bool = False


def load_settings(data_dir: Path) -> HomeserverSettings | None:
    """Read the settings of ``data_dir``, or ``None`` if it has none yet.

    Raises:
        ConfigError: The settings file exists but is not valid.
    """
    path = data_dir / SETTINGS_FILE
    try:
        raw = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from exc
    try:
        return HomeserverSettings.model_validate_json(raw)
    except ValidationError as exc:
        raise ConfigError(
            f"{path} is not a valid homeserver settings file",
            detail={"errors": exc.errors(include_url=False, include_input=False)},
        ) from exc


def merge_settings(
    existing: HomeserverSettings | None,
    *,
    port: int | None,
    server_name: str | None,
    postgres_dsn: str | None,
    relaxed_rate_limits: bool | None,
) -> HomeserverSettings:
    """Combine stored settings with the options of this invocation.

    ``None`` means "keep what is stored (or the default)". The port and the rate
    limits may change between starts; the server name and database may not, since
    the existing data depends on them.

    Raises:
        ConfigError: An option contradicts an unchangeable stored setting.
    """
    base = existing or HomeserverSettings()
    database = base.database
    if postgres_dsn is not None:
        database = DatabaseSettings(kind="postgresql", dsn=postgres_dsn)
    if existing is not None:
        if server_name is not None and server_name != existing.server_name:
            raise ConfigError(
                f"this homeserver was created with server name {existing.server_name!r};"
                " user ids depend on it, so it cannot change (use a new data dir)"
            )
        if database != existing.database:
            raise ConfigError(
                f"this homeserver was created with a {existing.database.kind} database;"
                " it cannot move to another one (use a new data dir)"
            )
    try:
        return HomeserverSettings(
            server_name=server_name if server_name is not None else base.server_name,
            port=port if port is not None else base.port,
            database=database,
            relaxed_rate_limits=(
                relaxed_rate_limits if relaxed_rate_limits is not None else base.relaxed_rate_limits
            ),
        )
    except ValidationError as exc:
        raise ConfigError(
            "invalid homeserver option",
            detail={"errors": exc.errors(include_url=False, include_input=False)},
        ) from exc


def write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` readable by the owner only (0600), atomically.

    The file is created with 0600 from the start (not chmod-ed afterwards) so a
    secret is never readable by others, not even for an instant.
    """
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)  # the umask cannot widen it, but an old tmp file could
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    os.replace(tmp, path)


def ensure_secrets(data_dir: Path) -> None:
    """Generate the server's signing key and secrets once; keep existing ones."""
    signing_key = data_dir / SIGNING_KEY_FILE
    if not signing_key.exists():
        # Synapse's key file format: "<alg> <version> <unpadded base64 of the 32-byte seed>".
        # Any 32 random bytes are a valid ed25519 seed.
        seed = base64.b64encode(secrets.token_bytes(32)).decode("ascii").rstrip("=")
        version = "a_" + secrets.token_hex(2)
        write_private(signing_key, f"ed25519 {version} {seed}\n")
    for name in (SHARED_SECRET_FILE, MACAROON_SECRET_FILE, FORM_SECRET_FILE):
        path = data_dir / name
        if not path.exists():
            write_private(path, secrets.token_urlsafe(48) + "\n")


def read_shared_secret(path: Path) -> str:
    """Return the registration shared secret stored in ``path``.

    Raises:
        ConfigError: The file is missing, unreadable or empty.
    """
    try:
        secret = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ConfigError(f"cannot read the shared secret file {path}: {exc.strerror}") from exc
    if not secret:
        raise ConfigError(f"the shared secret file {path} is empty")
    return secret


def _database_section(settings: HomeserverSettings, data_dir: Path) -> dict[str, Any]:
    if settings.database.kind == "sqlite":
        return {"name": "sqlite3", "args": {"database": str(data_dir / SQLITE_FILE)}}
    # psycopg 3 parses the DSN (URI or key=value); psycopg2, which Synapse uses,
    # takes the same libpq keywords.
    from psycopg.conninfo import conninfo_to_dict

    dsn = settings.database.dsn or ""
    try:
        args: dict[str, Any] = {k: v for k, v in conninfo_to_dict(dsn).items() if v is not None}
    except Exception as exc:  # psycopg raises ProgrammingError on a malformed DSN
        raise ConfigError("the PostgreSQL DSN is not a valid libpq connection string") from exc
    args.update({"cp_min": 2, "cp_max": 10})
    # A fresh database created by hand usually has the cluster's locale; Synapse only
    # needs C collation for correct sorting of some ids, which does not matter here.
    return {"name": "psycopg2", "allow_unsafe_locale": True, "args": args}


def _rate_limits(relaxed: bool) -> dict[str, Any]:
    if not relaxed:
        return {}
    return {
        "rc_message": _UNLIMITED,
        "rc_registration": _UNLIMITED,
        "rc_login": {
            "address": _UNLIMITED,
            "account": _UNLIMITED,
            "failed_attempts": _UNLIMITED,
        },
        "rc_joins": {"local": _UNLIMITED, "remote": _UNLIMITED},
        "rc_joins_per_room": _UNLIMITED,
        "rc_invites": {
            "per_room": _UNLIMITED,
            "per_user": _UNLIMITED,
            "per_issuer": _UNLIMITED,
        },
        "rc_key_requests": _UNLIMITED,
        "rc_media_create": _UNLIMITED,
        "rc_room_creation": _UNLIMITED,
        "rc_presence": {"per_user": _UNLIMITED},
        "rc_profile": _UNLIMITED,
        "rc_user_directory": _UNLIMITED,
        "rc_delayed_event_mgmt": _UNLIMITED,
        "rc_admin_redaction": _UNLIMITED,
    }


def synapse_config(settings: HomeserverSettings, data_dir: Path) -> dict[str, Any]:
    """Build Synapse's configuration for ``settings`` (a pure function of its inputs).

    ``data_dir`` must be absolute: Synapse resolves relative paths against its cwd.
    """
    config: dict[str, Any] = {
        "server_name": settings.server_name,
        "public_baseurl": f"http://{LOOPBACK_HOST}:{settings.port}/",
        # One plain-HTTP client listener on loopback only: no federation resource,
        # so nothing outside this machine can reach the server.
        "listeners": [
            {
                "port": settings.port,
                "bind_addresses": [LOOPBACK_HOST],
                "type": "http",
                "tls": False,
                "x_forwarded": False,
                "resources": [{"names": ["client"], "compress": False}],
            }
        ],
        "database": _database_section(settings, data_dir),
        "log_config": str(data_dir / LOG_CONFIG_FILE),
        "media_store_path": str(data_dir / MEDIA_DIR),
        "max_upload_size": "50M",
        "url_preview_enabled": False,
        "enable_registration": False,
        "registration_shared_secret_path": str(data_dir / SHARED_SECRET_FILE),
        "macaroon_secret_key_path": str(data_dir / MACAROON_SECRET_FILE),
        "form_secret_path": str(data_dir / FORM_SECRET_FILE),
        "signing_key_path": str(data_dir / SIGNING_KEY_FILE),
        "report_stats": False,
        "enable_metrics": False,
        # No outbound federation: no key servers, and no remote server is allowed.
        "trusted_key_servers": [],
        "suppress_key_server_warning": True,
        "federation_domain_whitelist": [],
        # Presence costs CPU on every sync and nothing here uses it.
        "presence": {"enabled": False},
        # Readers find status and trust rooms by their #onceonly-<kind>.<owner> alias: only
        # the owner may create one (Synapse's alias_creation_rules cannot relate the alias
        # to the user, this module can).
        "modules": [{"module": ALIAS_GUARD_MODULE, "config": {}}],
        **_rate_limits(settings.relaxed_rate_limits),
    }
    return config


def log_config(data_dir: Path) -> dict[str, Any]:
    """Python logging config for Synapse: WARNING and above to ``homeserver.log``."""
    return {
        "version": 1,
        "formatters": {
            "plain": {"format": "%(asctime)s %(name)s %(levelname)s %(message)s"},
        },
        "handlers": {
            "file": {
                "class": "logging.handlers.RotatingFileHandler",
                "formatter": "plain",
                "filename": str(data_dir / LOG_FILE),
                "maxBytes": 10_000_000,
                "backupCount": 2,
                "encoding": "utf8",
            }
        },
        "root": {"level": "WARNING", "handlers": ["file"]},
        "disable_existing_loggers": False,
    }


def write_config_files(settings: HomeserverSettings, data_dir: Path) -> None:
    """Write settings, Synapse config and log config into ``data_dir`` (0600 each).

    JSON is valid YAML, so the files are written with the standard library only.
    """
    header = "# Generated by onceonly from onceonly-homeserver.json; edits are overwritten.\n"
    write_private(data_dir / SETTINGS_FILE, settings.model_dump_json(indent=2) + "\n")
    write_private(
        data_dir / CONFIG_FILE,
        header + json.dumps(synapse_config(settings, data_dir), indent=2) + "\n",
    )
    write_private(data_dir / LOG_CONFIG_FILE, header + json.dumps(log_config(data_dir), indent=2))
