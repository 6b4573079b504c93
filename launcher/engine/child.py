"""Processes the controller forks (they share its parsed sweep, and die with it)."""
from __future__ import annotations

import os
import signal
import sys
from typing import Callable


def die_with_parent(parent: int) -> None:
    """Linux: SIGKILL this process when the controller dies, whatever kills it."""
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)         # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
    if os.getppid() != parent:                # the controller died before the line above ran
        os._exit(1)


def fork_quiet_child(work: Callable[[], int]) -> int:
    """Fork a child that runs `work()` and exits with its status; returns the child's pid.

    The child closes every descriptor it inherited first: the folder lock's (the lock is free the moment
    the controller dies) and the tracking writer's pipe (the writer sees the controller's end close).
    It ignores Ctrl-C (the controller handles it) and dies with the controller. It prints nothing."""
    sys.stdout.flush()
    sys.stderr.flush()
    parent = os.getpid()
    pid = os.fork()
    if pid:
        return pid
    status = 1
    try:
        os.closerange(3, 65536)
        die_with_parent(parent)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        status = work()
    except BaseException:       # noqa: BLE001 - the child must never unwind into the controller's code
        pass
    finally:
        os._exit(status)
