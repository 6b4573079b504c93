"""One controller per sweep folder: an exclusive lock held for the controller's lifetime.

Two controllers on one folder would ask the same trials twice, log every point twice and fight
over the journal. So `sweep` and `resume` take `DIR/.lock` first:

- `fcntl.flock` on `DIR/.lock`: exclusive, non-blocking. The kernel releases it when the holder
  exits, kill -9 included, so a dead controller never leaves a stale lock behind.
- a lease in the same file (host, pid, command, start and heartbeat times as JSON): flock is not
  reliable on every shared filesystem (some NFS setups grant it on two hosts at once), so a
  controller that got the flock still refuses when the lease names a live holder: another host
  whose heartbeat is fresh (it is renewed every HEARTBEAT_S while the sweep runs), or a live
  process on this host.

The refusal is a `SpecError` (exit 2) naming the holder; nothing in the folder is changed by the
refused controller. Within one process the lock is re-entrant (the CLI takes it, the controller
takes it again).
"""
from __future__ import annotations

import fcntl
import json
import os
import socket
import sys
import time
from pathlib import Path

from launcher.errors import SpecError

LOCK_NAME = ".lock"
HEARTBEAT_S = 30.0           # how often a running controller renews its lease
STALE_AFTER_S = 180.0        # a lease of another host not renewed for this long is abandoned

_held: dict[Path, "SweepLock"] = {}


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:      # alive, another user's
        return True
    return True


class SweepLock:
    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self.path = self.folder / LOCK_NAME
        self.fd: int | None = None
        self.depth = 0
        self.beaten = 0.0

    # -- the lease record ------------------------------------------------------------------------
    def _lease(self) -> dict:
        return {"host": socket.gethostname(), "pid": os.getpid(), "command": " ".join(sys.argv)[:500],
                "started": self.started, "heartbeat": time.time()}

    def _write_lease(self) -> None:
        data = (json.dumps(self._lease(), sort_keys=True) + "\n").encode()
        os.ftruncate(self.fd, 0)
        os.pwrite(self.fd, data, 0)
        os.fsync(self.fd)
        self.beaten = time.time()

    @staticmethod
    def read_holder(path: Path) -> dict | None:
        try:
            holder = json.loads(Path(path).read_text() or "null")
        except (OSError, ValueError):
            return None
        return holder if isinstance(holder, dict) else None

    @staticmethod
    def describe(holder: dict | None) -> str:
        if not holder:
            return "another controller"
        since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(float(holder.get("started", 0))))
        return (f"another controller (pid {holder.get('pid')} on host {holder.get('host')}, since {since}: "
                f"{holder.get('command', '?')})")

    def _refuse(self, holder: dict | None) -> SpecError:
        return SpecError(f"{self.folder} is in use by {self.describe(holder)}",
                         hint="wait for it to finish, or stop it (Ctrl-C or kill PID) and run "
                              f"`python -m launcher resume {self.folder}`; `status` and `report` work meanwhile")

    def _lease_is_live(self, holder: dict | None) -> bool:
        if not holder or holder.get("pid") == os.getpid() and holder.get("host") == socket.gethostname():
            return False
        if holder.get("host") == socket.gethostname():
            return _pid_alive(int(holder.get("pid", 0)))
        return time.time() - float(holder.get("heartbeat", 0)) < STALE_AFTER_S

    # -- acquire / release -----------------------------------------------------------------------
    def acquire(self) -> "SweepLock":
        if self.depth:
            self.depth += 1
            return self
        if self.path.exists() and not self.path.is_file():
            raise SpecError(f"{self.path} is not a regular file", hint="remove it; it is the sweep's lock file")
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except FileExistsError:
            raise SpecError(f"{self.folder} exists and is not a folder", key="out",
                            hint="pass --out with a folder path") from None
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise self._refuse(self.read_holder(self.path)) from None
        holder = self.read_holder(self.path)
        if self._lease_is_live(holder):          # flock granted, but a live lease says otherwise (NFS)
            os.close(fd)
            raise self._refuse(holder)
        self.fd, self.depth, self.started = fd, 1, time.time()
        self._write_lease()
        _held[self.folder.resolve()] = self
        return self

    def heartbeat(self) -> None:
        """Renew the lease (cheap; called from the controller loop, acts every HEARTBEAT_S)."""
        if self.fd is not None and time.time() - self.beaten >= HEARTBEAT_S:
            self._write_lease()

    def release(self) -> None:
        if self.depth == 0:
            return
        self.depth -= 1
        if self.depth:
            return
        _held.pop(self.folder.resolve(), None)
        try:
            os.ftruncate(self.fd, 0)       # no lease left behind: the next controller starts clean
        finally:
            os.close(self.fd)              # closing the descriptor drops the flock
            self.fd = None

    def __enter__(self) -> "SweepLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def sweep_lock(folder: Path) -> SweepLock:
    """The lock of `folder`: the one this process already holds, or a new one to acquire."""
    return _held.get(Path(folder).resolve()) or SweepLock(Path(folder))
