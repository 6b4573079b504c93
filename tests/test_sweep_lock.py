"""The sweep folder's lock: flock between processes, and the lease that covers filesystems where flock
is not shared between hosts (the other host is simulated by its lease record: a second host cannot
exist here)."""
import json
import os
import socket
import subprocess
import sys
import time

import pytest

from launcher.engine.lock import LOCK_NAME, STALE_AFTER_S, SweepLock, sweep_lock
from launcher.errors import SpecError


def write_lease(folder, **fields):
    folder.mkdir(parents=True, exist_ok=True)
    lease = {"host": socket.gethostname(), "pid": os.getpid(), "command": "launcher sweep x.yaml",
             "started": time.time(), "heartbeat": time.time(), **fields}
    (folder / LOCK_NAME).write_text(json.dumps(lease))


def test_another_process_holding_the_flock_is_named(tmp_path):
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time; from pathlib import Path; from launcher.engine.lock import SweepLock\n"
        f"SweepLock(Path({str(tmp_path)!r})).acquire(); print('held', flush=True); time.sleep(60)")],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(SpecError, match=rf"in use by another controller \(pid {holder.pid} on host "):
            SweepLock(tmp_path).acquire()
    finally:
        holder.kill()
        holder.wait()
    with SweepLock(tmp_path):        # the kernel dropped the dead holder's lock: no stale lock
        pass


def test_a_live_lease_of_another_host_refuses_even_when_flock_is_granted(tmp_path):
    write_lease(tmp_path, host="node-elsewhere", pid=4242, heartbeat=time.time() - 5)
    with pytest.raises(SpecError, match="pid 4242 on host node-elsewhere"):
        SweepLock(tmp_path).acquire()
    assert json.loads((tmp_path / LOCK_NAME).read_text())["host"] == "node-elsewhere"   # left as it was


def test_a_stale_lease_of_another_host_is_taken_over(tmp_path):
    write_lease(tmp_path, host="node-elsewhere", pid=4242, heartbeat=time.time() - STALE_AFTER_S - 1)
    with SweepLock(tmp_path):
        lease = json.loads((tmp_path / LOCK_NAME).read_text())
        assert lease["host"] == socket.gethostname() and lease["pid"] == os.getpid()
    assert (tmp_path / LOCK_NAME).read_text() == ""          # released: no lease left behind


def test_a_lease_of_a_dead_process_on_this_host_is_taken_over(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    write_lease(tmp_path, pid=dead.pid)
    with SweepLock(tmp_path):
        pass


def test_the_lock_is_reentrant_in_one_process_and_held_until_the_outermost_release(tmp_path):
    outer = sweep_lock(tmp_path).acquire()
    inner = sweep_lock(tmp_path)
    assert inner is outer
    inner.acquire()
    inner.release()
    probe = subprocess.run([sys.executable, "-c", (
        "from pathlib import Path; from launcher.engine.lock import SweepLock\n"
        f"SweepLock(Path({str(tmp_path)!r})).acquire()")], capture_output=True, text=True)
    assert probe.returncode != 0 and "in use by another controller" in probe.stderr
    outer.release()
    with SweepLock(tmp_path):
        pass


def test_out_at_a_file_is_a_clear_error(tmp_path):
    target = tmp_path / "a_file"
    target.write_text("x")
    with pytest.raises(SpecError, match="exists and is not a folder"):
        SweepLock(target).acquire()
