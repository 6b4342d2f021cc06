"""Run a local Synapse homeserver (PyPI ``matrix-synapse``) on 127.0.0.1.

One data dir is one homeserver. :class:`Homeserver` writes its configuration
(see :mod:`.homeserver_config`), starts Synapse as a detached process (its own
session and process group, recorded in ``homeserver.pid``), waits until the
client API answers, registers users with the shared secret and lifts rate limits
for agency accounts. The process outlives the Python process that started it,
so ``onceonly homeserver start`` returns and ``onceonly homeserver stop`` later
finds it again through the pid file.

Typical use::

    hs = Homeserver.from_data_dir(tmp_path, port=free_loopback_port())
    hs.start()
    agency = hs.register("tax-office", unlimited=True)
    ...
    hs.stop()
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote

from onceonly.errors import (
    AccountError,
    HomeserverAlreadyRunning,
    HomeserverError,
    HomeserverPortInUse,
    HomeserverStartFailed,
    LoginFailed,
    TransportError,
)
from onceonly.matrix import homeserver_config as cfg
from onceonly.matrix.accounts import (
    Credentials,
    load_credentials,
    localpart_of,
    register_with_shared_secret,
    save_credentials,
    whoami,
)
from onceonly.matrix.homeserver_config import (
    HOME_ENV,
    HomeserverStatus,
    data_root,
    default_data_dir,
)
from onceonly.matrix.homeserver_http import request_json
from onceonly.matrix.homeserver_process import (
    port_in_use,
    process_runs,
    read_pid,
    terminate_group,
    write_pid,
)
from onceonly.types import UserId

__all__ = [
    "HOME_ENV",
    "Homeserver",
    "HomeserverStatus",
    "data_root",
    "default_data_dir",
]

PID_FILE = "homeserver.pid"
OUTPUT_FILE = "homeserver.out"
ADMIN_DIR = "admin"
DEFAULT_START_TIMEOUT = 120.0
DEFAULT_STOP_TIMEOUT = 30.0

Progress = Callable[[str], None]


class Homeserver:
    """A Synapse homeserver living in one data dir, listening on 127.0.0.1 only.

    Build it with :meth:`from_data_dir`; the constructor only stores its arguments.
    """

    def __init__(self, data_dir: Path, settings: cfg.HomeserverSettings) -> None:
        """Store ``data_dir`` (made absolute) and ``settings``; touches nothing on disk."""
        # Resolved, so the same dir reached through a symlink is recognised in ``ps``.
        self.data_dir = data_dir.resolve()
        self.settings = settings
        self._process: subprocess.Popen[bytes] | None = None
        self._output_offset = 0
        self._log_offset = 0

    @classmethod
    def from_data_dir(
        cls,
        data_dir: Path | str | None = None,
        *,
        port: int | None = None,
        server_name: str | None = None,
        postgres_dsn: str | None = None,
        relaxed_rate_limits: bool | None = None,
    ) -> Homeserver:
        """Open the homeserver of ``data_dir`` (default: :func:`default_data_dir`).

        Stored settings are read if the data dir has any; the options given here
        override them (``None`` keeps stored values or defaults: port 8008, server
        name ``localhost``, SQLite, Synapse's default rate limits). Nothing is written until
        :meth:`ensure_config` or :meth:`start`.

        Raises:
            ConfigError: Stored settings are invalid, or an option tries to change the
                server name or database of an existing homeserver.
        """
        directory = Path(data_dir) if data_dir is not None else default_data_dir()
        settings = cfg.merge_settings(
            cfg.load_settings(directory),
            port=port,
            server_name=server_name,
            postgres_dsn=postgres_dsn,
            relaxed_rate_limits=relaxed_rate_limits,
        )
        return cls(directory, settings)

    @property
    def base_url(self) -> str:
        """Client API base URL, ``http://127.0.0.1:<port>``."""
        return f"http://{cfg.LOOPBACK_HOST}:{self.settings.port}"

    @property
    def server_name(self) -> str:
        """The Matrix server name (domain part of user ids)."""
        return self.settings.server_name

    @property
    def port(self) -> int:
        """The loopback port of the client API."""
        return self.settings.port

    @property
    def shared_secret_file(self) -> Path:
        """The file holding the registration shared secret (mode 0600)."""
        return self.data_dir / cfg.SHARED_SECRET_FILE

    @property
    def log_file(self) -> Path:
        """Synapse's log file (WARNING and above)."""
        return self.data_dir / cfg.LOG_FILE

    def user_id(self, localpart: str) -> UserId:
        """Return the full user id of ``localpart`` on this server."""
        return UserId(f"@{localpart_of(localpart)}:{self.server_name}")

    def ensure_config(self) -> None:
        """Create the data dir, secrets and signing key once; (re)write the config files."""
        self.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        (self.data_dir / cfg.MEDIA_DIR).mkdir(exist_ok=True, mode=0o700)
        cfg.ensure_secrets(self.data_dir)
        cfg.write_config_files(self.settings, self.data_dir)

    def status(self) -> HomeserverStatus:
        """Return whether the homeserver runs, and where. Changes nothing."""
        pid = read_pid(self._pid_file)
        running = pid is not None and self._is_ours(pid)
        return HomeserverStatus(
            running=running,
            base_url=self.base_url,
            server_name=self.server_name,
            port=self.port,
            pid=pid if running else None,
            database=self.settings.database.kind,
            data_dir=str(self.data_dir),
            stale_pid_file=not running and self._pid_file.exists(),
        )

    def start(
        self, timeout: float = DEFAULT_START_TIMEOUT, progress: Progress | None = None
    ) -> HomeserverStatus:
        """Start Synapse and wait until its client API answers.

        Args:
            timeout: Seconds to wait for ``/_matrix/client/versions`` to answer.
            progress: Called with short human-readable progress lines.

        Raises:
            HomeserverAlreadyRunning: This data dir's homeserver already runs.
            HomeserverPortInUse: Another program listens on the port.
            HomeserverStartFailed: Synapse exited or did not answer within ``timeout``.
            HomeserverError: Synapse is not installed.
        """
        say = progress or (lambda _line: None)
        if importlib.util.find_spec("synapse") is None:
            raise HomeserverError("Synapse is not installed: pip install 'onceonly[homeserver]'")
        pid = read_pid(self._pid_file)
        if pid is not None and self._is_ours(pid):
            raise HomeserverAlreadyRunning(
                f"the homeserver in {self.data_dir} already runs (pid {pid}) at {self.base_url}",
                detail={"pid": pid, "base_url": self.base_url},
            )
        if self._pid_file.exists():
            say(f"removing stale pid file {self._pid_file} (no homeserver runs with that pid)")
            self._pid_file.unlink(missing_ok=True)
        # Written before the port check, so a --port given with a failed start is kept.
        self.ensure_config()
        if port_in_use(cfg.LOOPBACK_HOST, self.port):
            raise HomeserverPortInUse(
                f"port {self.port} on {cfg.LOOPBACK_HOST} is in use by another program;"
                " choose another with --port",
                detail={"port": self.port},
            )
        started = time.monotonic()
        self._spawn()
        say(f"starting Synapse at {self.base_url} (data in {self.data_dir})")
        try:
            self._wait_ready(started, timeout, say)
        except KeyboardInterrupt:
            # Interrupted while waiting: do not leave a half-started server behind.
            self.stop(timeout=10.0)
            raise
        say(f"Synapse ready at {self.base_url} after {time.monotonic() - started:.1f} s")
        return self.status()

    def stop(self, timeout: float = DEFAULT_STOP_TIMEOUT) -> bool:
        """Stop the homeserver: SIGTERM, wait up to ``timeout`` s, then SIGKILL.

        Returns:
            ``True`` if a running homeserver was stopped, ``False`` if none ran (a
            stale pid file is removed either way).
        """
        pid = read_pid(self._pid_file)
        was_running = pid is not None and self._is_ours(pid)
        if pid is not None and was_running:
            terminate_group(pid, grace=timeout)
        self._pid_file.unlink(missing_ok=True)
        if self._process is not None:
            # Collect the exit status of a child we started, so no zombie remains.
            self._process.poll()
            self._process = None
        return was_running

    def register(
        self,
        localpart: str,
        password: str | None = None,
        admin: bool = False,
        displayname: str | None = None,
        *,
        unlimited: bool = False,
    ) -> Credentials:
        """Create a user with the shared secret and return a logged-in device.

        Args:
            localpart: User name (``agency`` for ``@agency:<server_name>``).
            password: Password; random when ``None`` (then only in the returned object).
            admin: Make the user a server admin.
            displayname: Initial display name.
            unlimited: Also lift the user's rate limits (what agency accounts get).

        Raises:
            AccountExists: The user exists already.
            HomeserverError, AccountError, TransportError: See
                :func:`~onceonly.matrix.accounts.register_with_shared_secret`.
        """
        credentials = register_with_shared_secret(
            self.base_url,
            cfg.read_shared_secret(self.shared_secret_file),
            localpart,
            password,
            admin=admin,
            displayname=displayname,
        )
        if not isinstance(credentials, Credentials):  # pragma: no cover - login=True
            raise AccountError("registration returned no device")
        if unlimited:
            self.lift_rate_limits(credentials.user_id)
        return credentials

    def lift_rate_limits(self, user_id: str) -> None:
        """Exempt ``user_id`` from Synapse's per-user rate limits (admin API override).

        Uses an internal admin account of this data dir (created on first use).

        Raises:
            HomeserverError: The admin API refused the override.
            TransportError: The homeserver is unreachable.
        """
        quoted = quote(user_id, safe="")
        url = f"{self.base_url}/_synapse/admin/v1/users/{quoted}/override_ratelimit"
        # 0/0 means "no limit" to Synapse (not "nothing allowed").
        answer = request_json(
            "POST",
            url,
            body={"messages_per_second": 0, "burst_count": 0},
            access_token=self._admin().access_token,
        )
        if answer.status != 200:
            raise HomeserverError(
                f"could not lift rate limits of {user_id}: HTTP {answer.status} {answer.error}",
                detail={"errcode": answer.errcode} if answer.errcode else None,
            )

    # --- internals -----------------------------------------------------------

    @property
    def _pid_file(self) -> Path:
        return self.data_dir / PID_FILE

    @property
    def _config_file(self) -> Path:
        return self.data_dir / cfg.CONFIG_FILE

    def _is_ours(self, pid: int) -> bool:
        # The config path is in Synapse's command line; an unrelated process that
        # reused the pid does not have it.
        return process_runs(pid, str(self._config_file))

    def _spawn(self) -> None:
        output = (self.data_dir / OUTPUT_FILE).open("ab")
        # Only output of this run explains a failure of this run.
        self._output_offset = output.tell()
        self._log_offset = self.log_file.stat().st_size if self.log_file.exists() else 0
        try:
            self._process = subprocess.Popen(  # noqa: S603 - fixed argv, no shell
                [sys.executable, "-m", "synapse.app.homeserver", "-c", str(self._config_file)],
                cwd=self.data_dir,
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                # Own session: survives the CLI that started it, and stop() can
                # signal the whole process group.
                start_new_session=True,
            )
        finally:
            output.close()
        write_pid(self._pid_file, self._process.pid)

    def _wait_ready(self, started: float, timeout: float, say: Progress) -> None:
        process = self._process
        assert process is not None
        next_note = started + 5.0
        versions = f"{self.base_url}/_matrix/client/versions"
        while True:
            if process.poll() is not None:
                self._pid_file.unlink(missing_ok=True)
                self._raise_exit(process.returncode)
            try:
                if request_json("GET", versions, timeout=2.0).status == 200:
                    return
            except TransportError:
                pass  # not listening yet
            now = time.monotonic()
            if now - started > timeout:
                self.stop(timeout=10.0)
                raise HomeserverStartFailed(
                    f"Synapse did not answer at {self.base_url} within {timeout:.0f} s;"
                    f" see {self.log_file}",
                    detail={"timeout_s": timeout},
                )
            if now >= next_note:
                say(f"waiting for Synapse ({now - started:.0f} s)...")
                next_note = now + 5.0
            time.sleep(0.2)

    def _raise_exit(self, returncode: int) -> None:
        tail = _tail(self.data_dir / OUTPUT_FILE, self._output_offset) + _tail(
            self.log_file, self._log_offset
        )
        if "Address already in use" in tail or "Errno 98" in tail:
            raise HomeserverPortInUse(
                f"port {self.port} on {cfg.LOOPBACK_HOST} is in use; choose another with --port",
                detail={"port": self.port},
            )
        last = tail.strip().splitlines()[-1:] or ["(no output)"]
        raise HomeserverStartFailed(
            f"Synapse exited with code {returncode} while starting: {last[0]}"
            f" (see {self.data_dir / OUTPUT_FILE} and {self.log_file})",
            detail={"returncode": returncode},
        )

    def _admin(self) -> Credentials:
        admin_dir = self.data_dir / ADMIN_DIR
        if (admin_dir / "account.json").exists():
            stored = load_credentials(admin_dir)
            try:
                whoami(stored)
                return stored
            except LoginFailed:
                pass  # token revoked or database reset: make a new admin below
        # A random name, so a lost admin file never blocks creating a new one.
        fresh = self.register(f"onceonly-admin-{os.urandom(4).hex()}", admin=True)
        save_credentials(admin_dir, fresh)
        return fresh


def _tail(path: Path, start: int = 0, limit: int = 4000) -> str:
    """Return at most the last ``limit`` bytes of ``path`` after offset ``start``."""
    try:
        with path.open("rb") as handle:
            handle.seek(0, os.SEEK_END)
            handle.seek(max(start, handle.tell() - limit))
            return handle.read().decode("utf-8", errors="replace")
    except OSError:
        return ""
