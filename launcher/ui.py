"""`python -m launcher ui DIR`: the MLflow UI on a sweep's own store.

Starts `mlflow server` (one worker, no job runner: light enough for a laptop) on the sweep's
SQLite store, waits until it answers, and prints the address of the sweep's experiment, where
study runs and their trial runs appear as parents and children with params, tags and curves.
"""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

from .errors import SpecError
from .config import read_record
from .tracking import recorded_uri


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def store_of(folder: Path) -> tuple[str, str]:
    """(tracking URI, experiment name) of a sweep folder."""
    record = read_record(folder)
    return recorded_uri(record, Path(folder)), record["name"]


def start_ui(folder: Path, *, host: str = "127.0.0.1", port: int | None = None,
             timeout_s: float = 90.0) -> tuple[subprocess.Popen, str]:
    """Start the server; return it and the URL of the sweep's experiment page."""
    uri, experiment = store_of(folder)
    if uri.startswith("http"):
        raise SpecError(f"this sweep logs to the MLflow server at {uri}: open it there",
                        hint="`launcher ui` serves sweeps that use their own SQLite store")
    port = port or free_port(host)
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false", "MLFLOW_DISABLE_TELEMETRY": "true"}
    log = open(Path(folder) / "ui.log", "w")
    server = subprocess.Popen([sys.executable, "-m", "mlflow", "server", "--backend-store-uri", uri,
                               "--host", host, "--port", str(port), "--workers", "1"],
                              stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                              env=env, start_new_session=True)
    base = f"http://{host}:{port}"
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"mlflow server exited with code {server.returncode}; see {Path(folder) / 'ui.log'}")
        try:
            urllib.request.urlopen(f"{base}/health", timeout=2).read()
            break
        except OSError:
            time.sleep(0.3)
    else:
        stop_ui(server)
        raise RuntimeError(f"mlflow server did not answer within {timeout_s:.0f} s; see {Path(folder) / 'ui.log'}")
    return server, f"{base}/#/experiments/{_experiment_id(base, experiment)}/runs"


def _experiment_id(base: str, name: str) -> str:
    query = urllib.parse.urlencode({"experiment_name": name})
    with urllib.request.urlopen(f"{base}/api/2.0/mlflow/experiments/get-by-name?{query}", timeout=10) as answer:
        return json.load(answer)["experiment"]["experiment_id"]


def stop_ui(server: subprocess.Popen) -> None:
    """Stop the server and its workers (it runs in its own process group)."""
    if server.poll() is not None:
        return
    try:
        os.killpg(server.pid, 15)
        server.wait(timeout=15)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        os.killpg(server.pid, 9)
