"""One daemon per data directory: an exclusive lock file holding the owner's pid.

The lock is an ``flock`` on ``DATA_DIR/halo-agent.lock``, taken before the job
database is opened.  The kernel drops it when the owner exits, even after a
``kill -9``, so a stale file never blocks a restart; the pid inside only names the
owner in the refusal of a second daemon.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from typing import Optional

from agent.errors import ConfigError

LOCK_NAME = "halo-agent.lock"


class DataDirLock:
    """Hold the data directory's lock from :meth:`acquire` to :meth:`release`.

    ``acquire`` raises :class:`ConfigError` naming ``--data-dir`` and the owning pid
    when another process holds it; the file and the directory are then left as they
    were.
    """

    def __init__(self, data_dir: Path) -> None:
        self.path = Path(data_dir) / LOCK_NAME
        self._fd: Optional[int] = None

    def acquire(self) -> DataDirLock:
        fd = os.open(str(self.path), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            owner = _read_pid(fd)
            os.close(fd)
            who = f"pid {owner}" if owner else "another process"
            raise ConfigError("--data-dir", str(self.path.parent),
                              f"a data directory no other halo-agent daemon uses; {who} holds "
                              f"{self.path} (stop it, or give this one another --data-dir)"
                              ) from None
        except BaseException:
            os.close(fd)
            raise
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        os.fsync(fd)
        self._fd = fd
        return self

    def release(self) -> None:
        """Drop the lock (the file stays; an unlocked file means no owner)."""
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def __enter__(self) -> DataDirLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


def _read_pid(fd: int) -> Optional[int]:
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
        return int(text) if text.isdigit() else None
    except OSError:
        return None
