"""`python -m launcher ui DIR`: the MLflow UI on a sweep's own store.

Starts `mlflow server` (one worker, no job runner: light enough for a laptop) on the sweep's
SQLite store, waits until it answers, and prints the address of the sweep's experiment, where
study runs and their trial runs appear as parents and children with params, tags and curves.

The server runs in its own process group, so a terminal's Ctrl-C does not reach it directly:
`serve_until_signal` waits on it and stops the whole group on Ctrl-C, SIGTERM (kill, systemd, a
job scheduler) or SIGHUP (the terminal closed), so no server is left behind.
"""
from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path

from launcher.errors import SpecError
from launcher.spec.load import read_record
from launcher.tracking import recorded_uri


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def store_of(folder: Path) -> tuple[str, str]:
    """(tracking URI, experiment name) of a sweep folder."""
    record = read_record(folder)
    return recorded_uri(record, Path(folder)), record["name"]


def serve_store(uri: str, log: Path, *, artifact_root: Path | None = None, host: str = "127.0.0.1",
                port: int | None = None, timeout_s: float = 90.0) -> tuple[subprocess.Popen, str]:
    """`mlflow server` (one worker, no job runner) on the store `uri`, in its own process group, its output in
    `log`; returns it once it answers, with its base URL. Not answering in time: stopped, RuntimeError."""
    port = port or free_port(host)
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false", "MLFLOW_DISABLE_TELEMETRY": "true"}
    extra = ["--default-artifact-root", str(artifact_root)] if artifact_root is not None else []
    with open(log, "w") as out:      # the server keeps its own copy
        server = subprocess.Popen([sys.executable, "-m", "mlflow", "server", "--backend-store-uri", uri,
                                   "--host", host, "--port", str(port), "--workers", "1", *extra],
                                  stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                  env=env, start_new_session=True)
    base = f"http://{host}:{port}"
    try:
        deadline = time.time() + timeout_s
        while time.time() < deadline:
            if server.poll() is not None:
                raise RuntimeError(f"mlflow server exited with code {server.returncode}; see {log}")
            try:
                urllib.request.urlopen(f"{base}/health", timeout=2).read()
                return server, base
            except OSError:
                time.sleep(0.3)
        raise RuntimeError(f"mlflow server did not answer within {timeout_s:.0f} s; see {log}")
    except BaseException:           # not answering, or interrupted while waiting: leave no server behind
        stop_ui(server)
        raise


@contextlib.contextmanager
def served_store(uri: str, folder: Path, **options):
    """`serve_store` for a `with` block (benchmarks, tests): yields the base URL, stops the server after."""
    server, base = serve_store(uri, Path(folder) / "server.log", **options)
    try:
        yield base
    finally:
        stop_ui(server)


def start_ui(folder: Path, *, host: str = "127.0.0.1", port: int | None = None,
             timeout_s: float = 90.0) -> tuple[subprocess.Popen, str]:
    """Start the server; return it and the URL of the sweep's experiment page."""
    uri, experiment = store_of(folder)
    if uri.startswith("http"):
        raise SpecError(f"this sweep logs to the MLflow server at {uri}: open it there",
                        hint="`launcher ui` serves sweeps that use their own SQLite store")
    server, base = serve_store(uri, Path(folder) / "ui.log", host=host, port=port, timeout_s=timeout_s)
    try:
        return server, f"{base}/#/experiments/{_experiment_id(base, experiment)}/runs"
    except BaseException:
        stop_ui(server)
        raise


def _experiment_id(base: str, name: str) -> str:
    query = urllib.parse.urlencode({"experiment_name": name})
    with urllib.request.urlopen(f"{base}/api/2.0/mlflow/experiments/get-by-name?{query}", timeout=10) as answer:
        return json.load(answer)["experiment"]["experiment_id"]


def stop_ui(server: subprocess.Popen, timeout_s: float = 15.0) -> None:
    """Stop the server and its workers: its whole process group (it runs in its own session).

    SIGTERM first, SIGKILL for whatever of the group is still there after `timeout_s`; also when the
    server process itself has already exited but a worker of its group has not.
    """
    group = server.pid               # start_new_session: the server leads its own group
    try:
        os.killpg(group, signal.SIGTERM)
    except ProcessLookupError:
        server.poll()
        return
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        server.poll()                # reap the leader, or the group never empties
        if not _group_alive(group):
            return
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(group, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        server.wait(timeout=5)


def _group_alive(group: int) -> bool:
    try:
        os.killpg(group, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# Signals that stop `launcher ui` the way Ctrl-C does: kill / systemd / schedulers, and a closed terminal.
STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name))


def _interrupt(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


@contextlib.contextmanager
def stop_signals_interrupt(signals: tuple[int, ...] = STOP_SIGNALS):
    """Within the block, SIGTERM and SIGHUP raise KeyboardInterrupt, as Ctrl-C does; restored after.

    Outside the main thread (where Python cannot install handlers) the block runs unchanged.
    """
    with _handlers(signals, _interrupt):
        yield


@contextlib.contextmanager
def _handlers(signals: tuple[int, ...], handler):
    """Install `handler` for `signals` in the block (main thread only), then restore the previous ones."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.signal(sig, handler) for sig in signals}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def serve_until_signal(server: subprocess.Popen, announce: str | None = None) -> int | None:
    """Print `announce`, wait until the server exits or Ctrl-C / SIGTERM / SIGHUP arrives; stop its
    whole group either way.

    Returns the server's exit code if it exited by itself, None when a signal stopped it. While the
    server is being stopped, further signals are ignored so the stop runs to the end.
    """
    code = None
    try:
        with stop_signals_interrupt():
            if announce:
                print(announce, flush=True)
            code = server.wait()
    except KeyboardInterrupt:
        pass
    finally:
        with _handlers((signal.SIGINT, *STOP_SIGNALS), signal.SIG_IGN):
            stop_ui(server)
    return code
