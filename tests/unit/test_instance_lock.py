"""The one-party-per-data-directory lock: within a process, across processes, after a crash."""

from __future__ import annotations

import fcntl
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from onceonly.errors import AlreadyRunning
from onceonly.service.instance_lock import LOCK_FILE, InstanceLock

_HOLDER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from onceonly.service.instance_lock import InstanceLock
    lock = InstanceLock(Path(sys.argv[1]))
    lock.acquire()
    print("locked", flush=True)
    time.sleep(600)
    """
)


def _start_holder(directory: Path) -> subprocess.Popen[str]:
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(directory)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None
    assert holder.stdout.readline().strip() == "locked"
    return holder


def test_two_acquisitions_in_one_process_conflict(tmp_path: Path) -> None:
    first = InstanceLock(tmp_path, what="the wallet")
    first.acquire()
    second = InstanceLock(tmp_path, what="the wallet")
    with pytest.raises(AlreadyRunning, match=f"the wallet already runs .*process {os.getpid()}"):
        second.acquire()
    assert not second.held
    first.release()
    with second:
        assert second.held
        assert (tmp_path / LOCK_FILE).read_text().strip() == str(os.getpid())
    assert (tmp_path / LOCK_FILE).read_text() == ""  # released: no pid left behind


def test_the_lock_file_is_private(tmp_path: Path) -> None:
    with InstanceLock(tmp_path):
        assert (tmp_path / LOCK_FILE).stat().st_mode & 0o777 == 0o600


def test_another_process_holding_the_lock_is_named_by_pid(tmp_path: Path) -> None:
    holder = _start_holder(tmp_path)
    try:
        with pytest.raises(AlreadyRunning) as caught:
            InstanceLock(tmp_path).acquire()
        assert caught.value.code == "already_running"
        assert caught.value.detail == {"pid": holder.pid}
        assert f"process {holder.pid}" in caught.value.message
    finally:
        holder.terminate()
        holder.wait(timeout=30)


def test_a_killed_holder_does_not_block_the_next_start(tmp_path: Path) -> None:
    holder = _start_holder(tmp_path)
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait(timeout=30)
    # Its pid is still in the file, but the kernel dropped the lock with the process.
    assert (tmp_path / LOCK_FILE).read_text().strip() == str(holder.pid)
    with InstanceLock(tmp_path) as lock:
        assert lock.held
        assert (tmp_path / LOCK_FILE).read_text().strip() == str(os.getpid())


def test_a_holder_that_has_not_written_its_pid_yet_is_reported_as_unknown(
    tmp_path: Path,
) -> None:
    # The instant between a holder's flock and its pid write: no pid is guessed.
    fd = os.open(tmp_path / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        with pytest.raises(AlreadyRunning, match="another process holds") as caught:
            InstanceLock(tmp_path).acquire()
        assert caught.value.detail == {"pid": None}
    finally:
        os.close(fd)
