"""One writer per node home: an OS lock held for as long as a process writes it.

Owns HOME/run/home.lock. The daemon holds it for its whole life, and every
command that writes the store or the keys with the daemon stopped holds it for
its run, so a second `rrn run` (systemd runs the node, someone starts it by
hand) or an import into a live store is refused before it touches anything.

It is an flock(2) on an open file, not a pid file: the kernel drops it when the
holder exits, however it exits, so it can never go stale. The file's text says
who holds it (command, pid, since when), for the message the next one gets.
"""

from __future__ import annotations

import contextlib
import datetime
import fcntl
import os
from pathlib import Path
from types import TracebackType

from rrn.protocol.errors import ConfigError

__all__ = ["HomeInUse", "HomeLock"]


class HomeInUse(ConfigError):
    """Another process holds the home."""


class HomeLock:
    """The lock of one home, taken at once or not at all (never waited for)."""

    def __init__(self, home: Path, holder: str) -> None:
        self.path = home / "run" / "home.lock"
        self.holder = holder
        self._fd: int | None = None

    def acquire(self) -> HomeLock:
        """Take the lock; HomeInUse naming the holder if another process has it."""
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            held_by = os.pread(fd, 512, 0).decode(errors="replace").strip() or "another process"
            os.close(fd)
            raise HomeInUse(
                f"{self.path.parent.parent} is in use by {held_by}; "
                "stop it first (one process writes a node home at a time)"
            ) from None
        except BaseException:
            os.close(fd)
            raise
        since = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
        text = f"{self.holder} (pid {os.getpid()}, since {since})\n".encode()
        os.ftruncate(fd, 0)
        os.pwrite(fd, text, 0)
        self._fd = fd
        return self

    def release(self) -> None:
        """Let go (the text stays; it says who held it last)."""
        if self._fd is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def __enter__(self) -> HomeLock:
        return self if self.held else self.acquire()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()
