"""``onceonly homeserver …`` and ``onceonly account …``: the local Synapse and Matrix accounts.

Exit codes: 0 success; 1 any onceonly error (code and message on stderr, or JSON
with ``--json``); 2 usage error; ``homeserver status`` exits 3 when the homeserver
is not running (the LSB convention for "program is not running").
"""

from __future__ import annotations

from pathlib import Path

import click

from onceonly.cli import emit, fail, json_option
from onceonly.errors import AccountExists, ConfigError, LoginFailed, OnceOnlyError
from onceonly.matrix import accounts
from onceonly.matrix.homeserver import (
    DEFAULT_START_TIMEOUT,
    DEFAULT_STOP_TIMEOUT,
    HOME_ENV,
    Homeserver,
    HomeserverStatus,
    data_root,
)
from onceonly.matrix.homeserver_config import read_shared_secret

STATUS_NOT_RUNNING = 3

_DATA_DIR_HELP = (
    f"Homeserver data dir (default: ${HOME_ENV}/homeserver, or ./var/homeserver"
    f" when {HOME_ENV} is unset)."
)
_data_dir_option = click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help=_DATA_DIR_HELP,
)


def _describe(status: HomeserverStatus) -> str:
    if status.running:
        return (
            f"running at {status.base_url} (pid {status.pid}, server name"
            f" {status.server_name}, {status.database}, data in {status.data_dir})"
        )
    note = " (stale pid file)" if status.stale_pid_file else ""
    return f"stopped{note}; would listen at {status.base_url} (data in {status.data_dir})"


@click.group()
def homeserver() -> None:
    """Run a local Synapse homeserver on 127.0.0.1 (for development, tests and the demo)."""


@homeserver.command()
@_data_dir_option
@click.option("--port", type=click.IntRange(1, 65535), default=None, help="Port (default 8008).")
@click.option(
    "--postgres",
    "postgres_dsn",
    default=None,
    metavar="DSN",
    help="Use this PostgreSQL database (first start only; default: SQLite in the data dir).",
)
@click.option(
    "--server-name", default=None, help="Matrix server name (first start only; default localhost)."
)
@click.option(
    "--default-rate-limits/--relaxed-rate-limits",
    default=None,
    help="Keep Synapse's default rate limits (the default), or lift them for every account"
    " (load tests only; agencies get `account create --unlimited` instead). Stored per data dir.",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=1),
    default=DEFAULT_START_TIMEOUT,
    show_default=True,
    help="Seconds to wait for Synapse to answer.",
)
@json_option
@click.pass_context
def start(
    ctx: click.Context,
    data_dir: Path | None,
    port: int | None,
    postgres_dsn: str | None,
    server_name: str | None,
    default_rate_limits: bool | None,
    timeout: float,
) -> None:
    """Start Synapse (generating its config on first start) and wait until it answers."""
    try:
        server = Homeserver.from_data_dir(
            data_dir,
            port=port,
            server_name=server_name,
            postgres_dsn=postgres_dsn,
            relaxed_rate_limits=None if default_rate_limits is None else not default_rate_limits,
        )
        status = server.start(timeout=timeout, progress=lambda line: click.echo(line, err=True))
    except OnceOnlyError as exc:
        fail(ctx, exc)
        return
    emit(ctx, status.model_dump(), _describe(status))


@homeserver.command()
@_data_dir_option
@click.option(
    "--timeout",
    type=click.FloatRange(min=0),
    default=DEFAULT_STOP_TIMEOUT,
    show_default=True,
    help="Seconds to wait after SIGTERM before SIGKILL.",
)
@json_option
@click.pass_context
def stop(ctx: click.Context, data_dir: Path | None, timeout: float) -> None:
    """Stop Synapse (SIGTERM, then SIGKILL after --timeout). Stopping a stopped server is fine."""
    try:
        server = Homeserver.from_data_dir(data_dir)
        stale = server.status().stale_pid_file
        was_running = server.stop(timeout=timeout)
    except OnceOnlyError as exc:
        fail(ctx, exc)
        return
    if was_running:
        human = f"stopped the homeserver at {server.base_url}"
    else:
        human = "not running" + (" (removed a stale pid file)" if stale else "")
    emit(ctx, {"stopped": was_running, "stale_pid_file_removed": stale}, human)


@homeserver.command()
@_data_dir_option
@json_option
@click.pass_context
def status(ctx: click.Context, data_dir: Path | None) -> None:
    """Show whether Synapse runs, its URL, pid and database kind (exit 3 if stopped)."""
    try:
        current = Homeserver.from_data_dir(data_dir).status()
    except OnceOnlyError as exc:
        fail(ctx, exc)
        return
    emit(ctx, current.model_dump(), _describe(current))
    if not current.running:
        ctx.exit(STATUS_NOT_RUNNING)


@click.group()
def account() -> None:
    """Create and show a party's Matrix account (stored in <data-dir>/account.json)."""


def _party_dir(data_dir: Path | None, user: str) -> Path:
    return data_dir if data_dir is not None else data_root() / accounts.localpart_of(user)


@account.command()
@click.option(
    "--homeserver",
    "homeserver_url",
    default=None,
    metavar="URL",
    help="Homeserver base URL (default: the local homeserver of --homeserver-data-dir).",
)
@click.option("--user", required=True, help="User name (localpart) or full @user:server id.")
@click.option(
    "--password",
    default=None,
    envvar="ONCEONLY_ACCOUNT_PASSWORD",
    help="Password, also from $ONCEONLY_ACCOUNT_PASSWORD (keeps it out of the process list)."
    " Default: a random one that is not kept; the stored token is the credential.",
)
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help=f"The party's data dir (default: ${HOME_ENV}/<user>, or ./var/<user>).",
)
@click.option(
    "--shared-secret-file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="File holding the homeserver's registration shared secret.",
)
@click.option(
    "--homeserver-data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Local homeserver data dir to take the shared secret from (default: as for"
    " `homeserver start`).",
)
@click.option(
    "--unlimited",
    is_flag=True,
    help="Lift the account's rate limits (agency accounts); needs the local homeserver.",
)
@click.option("--force", is_flag=True, help="Replace an existing account.json.")
@json_option
@click.pass_context
def create(
    ctx: click.Context,
    homeserver_url: str | None,
    user: str,
    password: str | None,
    data_dir: Path | None,
    shared_secret_file: Path | None,
    homeserver_data_dir: Path | None,
    unlimited: bool,
    force: bool,
) -> None:
    """Register an account with the shared secret (or log in to an existing one) and store it."""
    try:
        if shared_secret_file is not None and homeserver_data_dir is not None:
            raise ConfigError("give --shared-secret-file or --homeserver-data-dir, not both")
        if unlimited and shared_secret_file is not None:
            raise ConfigError("--unlimited needs the local homeserver (--homeserver-data-dir)")
        party_dir = _party_dir(data_dir, user)
        if accounts.account_path(party_dir).exists() and not force:
            existing = accounts.load_credentials(party_dir)
            raise AccountExists(
                f"{accounts.account_path(party_dir)} already holds {existing.user_id};"
                " use --force to replace it (its device and E2EE keys are then abandoned)",
                detail={"user_id": existing.user_id},
            )
        # The local homeserver's settings are only read when something is taken from it.
        local: Homeserver | None = None
        if shared_secret_file is None or homeserver_url is None or unlimited:
            local = Homeserver.from_data_dir(homeserver_data_dir)
            secret_file = shared_secret_file or local.shared_secret_file
            url = homeserver_url or local.base_url
        else:
            secret_file, url = shared_secret_file, homeserver_url
        credentials = accounts.create_account(url, read_shared_secret(secret_file), user, password)
        if unlimited and local is not None:
            local.lift_rate_limits(credentials.user_id)
        path = accounts.save_credentials(party_dir, credentials)
    except OnceOnlyError as exc:
        fail(ctx, exc)
        return
    summary = {
        "homeserver": credentials.homeserver,
        "user_id": credentials.user_id,
        "device_id": credentials.device_id,
        "account_file": str(path),
        "rate_limits_lifted": unlimited,
    }
    emit(ctx, summary, f"{credentials.user_id} (device {credentials.device_id}) saved to {path}")


@account.command()
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help=f"The party's data dir (default: ${HOME_ENV}/<user>, or ./var/<user>).",
)
@click.option("--user", default=None, help="User name, to find the default data dir.")
@click.option("--check", is_flag=True, help="Ask the homeserver whether the token still works.")
@json_option
@click.pass_context
def show(ctx: click.Context, data_dir: Path | None, user: str | None, check: bool) -> None:
    """Show the stored account (never the access token)."""
    try:
        if data_dir is None and user is None:
            raise ConfigError("give --data-dir or --user")
        credentials = accounts.load_credentials(_party_dir(data_dir, user or ""))
        verified = None
        if check:
            user_id, _device = accounts.whoami(credentials)
            if user_id != credentials.user_id:
                raise LoginFailed(
                    f"the stored token belongs to {user_id}, not {credentials.user_id}"
                )
            verified = True
    except OnceOnlyError as exc:
        fail(ctx, exc)
        return
    data = credentials.model_dump(exclude={"access_token"})
    if verified is not None:
        data["token_valid"] = verified
    human = f"{credentials.user_id} on {credentials.homeserver}, device {credentials.device_id}"
    emit(ctx, data, human + (" (token valid)" if verified else ""))
