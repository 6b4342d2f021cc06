"""One running party per data directory: an exclusive lock on a file inside it.

Two processes driving one Matrix device from one data directory would each
advance its Olm/Megolm state on their own; the states diverge, the peers'
messages become undecryptable to one of them and requests are lost. Every
long-running party therefore holds :class:`InstanceLock` on its data directory
while it runs, and a second start fails at once with
:class:`~onceonly.errors.AlreadyRunning` naming the holder's pid.

The lock is ``flock(LOCK_EX | LOCK_NB)`` on ``onceonly.lock``: the kernel drops
it when the holder's file descriptor closes, so a crashed or killed holder
never blocks the next start (no stale-pid guessing). ``flock`` locks belong to
the open file, so two acquisitions in one process conflict as well. The file
stays in place after release: removing it could let two processes lock two
different files of the same name.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path
from types import TracebackType
from typing import Final, Self

from onceonly.errors import AlreadyRunning, StoreError

LOCK_FILE: Final = "onceonly.lock"
"""The lock file's name inside a party's data directory."""

_MAX_PID_BYTES: Final = 32


class InstanceLock:
    """An exclusive, non-blocking lock on ``directory``. Nothing happens before :meth:`acquire`.

    Args:
        directory: The party's data directory (it must exist).
        what: Names the party in the error ("the wallet", "the issuer service").
    """

    def __init__(self, directory: Path, *, what: str = "a party") -> None:
        self.path = directory / LOCK_FILE
        self._what = what
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        """True between a successful :meth:`acquire` and :meth:`release`."""
        return self._fd is not None

    def acquire(self) -> None:
        """Take the lock and record our pid in the lock file.

        Raises:
            AlreadyRunning: another process (or another lock in this one) holds it;
                ``detail["pid"]`` is the holder's pid when it has written it.
            StoreError: the lock file cannot be created or written.
        """
        if self._fd is not None:
            return
        try:
            # No O_TRUNC: opening must not wipe the pid of a holder we are about to meet.
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise StoreError(f"cannot create the lock file {self.path}: {exc.strerror}") from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_pid(fd)
            os.close(fd)
            raise self._busy(holder) from None
        except OSError as exc:
            os.close(fd)
            raise StoreError(f"cannot lock {self.path}: {exc.strerror}") from exc
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
        except OSError as exc:
            os.close(fd)
            raise StoreError(f"cannot write the lock file {self.path}: {exc.strerror}") from exc
        self._fd = fd

    def release(self) -> None:
        """Give the lock up (closing the file releases it); a no-op when not held."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)  # no pid left behind that looks like a holder
        os.close(fd)

    def _busy(self, holder: int | None) -> AlreadyRunning:
        by = f"process {holder}" if holder is not None else "another process"
        return AlreadyRunning(
            f"{self._what} already runs on {self.path.parent} ({by} holds {LOCK_FILE});"
            " stop it first, two processes on one data directory corrupt its Matrix device",
            detail={"pid": holder},
        )

    def __enter__(self) -> Self:
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()


def _read_pid(fd: int) -> int | None:
    # The holder writes its pid right after locking; in that instant the file may
    # still be empty, which is reported as an unknown holder rather than guessed.
    try:
        text = os.pread(fd, _MAX_PID_BYTES, 0).decode("ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None
    return int(text) if text.isdigit() else None
