"""Process bookkeeping for the local homeserver: pid file, liveness, port probe, signals.

These helpers know nothing about Synapse's configuration; :mod:`.homeserver` uses them.
"""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import socket
import time
from pathlib import Path

from onceonly.errors import HomeserverError


def read_pid(pid_file: Path) -> int | None:
    """Return the pid recorded in ``pid_file``, or ``None`` if there is none.

    A file that does not hold a positive integer counts as no pid (it can only be
    a leftover of an interrupted write), so the caller treats it as stale.
    """
    try:
        text = pid_file.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise HomeserverError(f"cannot read pid file {pid_file}: {exc}") from exc
    return int(text) if text.isdigit() and int(text) > 0 else None


def write_pid(pid_file: Path, pid: int) -> None:
    """Record ``pid`` in ``pid_file``."""
    pid_file.write_text(f"{pid}\n", encoding="ascii")


def process_alive(pid: int) -> bool:
    """Return whether a process ``pid`` exists and is not a zombie."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, but belongs to someone else
    # A zombie has exited and only waits to be reaped; for us it is gone.
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
    except OSError:
        return True  # no procfs (not Linux): trust kill(0)
    state = stat.rsplit(")", 1)[-1].split()[:1]
    return state != ["Z"]


def process_runs(pid: int, marker: str) -> bool:
    """Return whether ``pid`` is alive and its command line contains ``marker``.

    Guards against pid reuse: after a reboot, the pid in a stale pid file may
    belong to an unrelated program, which must never be signalled.
    """
    if not process_alive(pid):
        return False
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except PermissionError:
        return False  # not ours
    except OSError:
        return True  # no procfs: cannot check further
    return marker.encode() in cmdline


def port_in_use(host: str, port: int) -> bool:
    """Return whether something already listens on ``host:port``.

    SO_REUSEADDR matches what Twisted does for listeners, so connections in
    TIME_WAIT from a homeserver that was just stopped do not count as "in use".
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                return True
            raise
    return False


def free_loopback_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago (for tests and demos)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def terminate_group(pid: int, *, grace: float) -> None:
    """Stop process group ``pid``: SIGTERM, wait up to ``grace`` s, then SIGKILL.

    The homeserver is started as the leader of its own session, so its pid is
    also its process group id and any helper it spawned goes down with it.
    """
    _signal_group(pid, signal.SIGTERM)
    if wait_gone(pid, grace):
        return
    _signal_group(pid, signal.SIGKILL)
    if not wait_gone(pid, 10.0):
        raise HomeserverError(f"homeserver process {pid} survived SIGKILL")


def wait_gone(pid: int, timeout: float) -> bool:
    """Wait until ``pid`` has exited; return whether it did within ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        _reap(pid)
        if not process_alive(pid):
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)


def _reap(pid: int) -> None:
    # If this process started the homeserver, it is our child: collect its exit
    # status so it does not linger as a zombie. Not our child: nothing to do.
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def _signal_group(pid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:
        return
    except PermissionError:
        # Not a group leader we own (started by an older version?): signal the process.
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
