"""An http(s) tracking server that is down or never answers: one clear error, exit 2, within the
timeout, before anything is written. Real sockets: a port just closed, and a listener that accepts
connections but never replies."""
from __future__ import annotations

import os
import socket
import time

import pytest

from launcher.__main__ import main
from launcher.errors import SpecError
from launcher.tracking import check_tracking


@pytest.fixture
def closed_port():
    """A port nothing listens on: bound, then closed (connections are refused)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return port


@pytest.fixture
def silent_port():
    """A listening socket that never accepts or answers: the kernel completes the handshake and the
    request waits forever for its reply."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    yield sock.getsockname()[1]
    sock.close()


def _spec(tmp_path, port: int):
    path = tmp_path / "sweep.yaml"
    path.write_text(f"name: remote\ntasks:\n  - dataset: ETTh1\n    horizons: [96]\nmethods:\n  naive: {{}}\n"
                    f"tracking:\n  uri: http://127.0.0.1:{port}\n")
    return path


def test_refused_connection_is_a_spec_error(closed_port):
    start = time.monotonic()
    with pytest.raises(SpecError) as info:
        check_tracking(f"http://127.0.0.1:{closed_port}", timeout_s=5)
    assert time.monotonic() - start < 5
    text = str(info.value)
    assert text.startswith(f"tracking.uri: cannot reach the MLflow tracking server http://127.0.0.1:{closed_port}: "), text
    assert "refused" in text.lower() and "mlflow server" in text and "\n" not in text


def test_silent_server_times_out(silent_port):
    start = time.monotonic()
    with pytest.raises(SpecError) as info:
        check_tracking(f"http://127.0.0.1:{silent_port}", timeout_s=1)
    assert 0.9 < time.monotonic() - start < 5
    assert f"server http://127.0.0.1:{silent_port}: no answer within 1 s" in str(info.value)


def test_the_check_bounds_mlflows_own_http_calls(closed_port, monkeypatch):
    for name in ("MLFLOW_HTTP_REQUEST_TIMEOUT", "MLFLOW_HTTP_REQUEST_MAX_RETRIES"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(SpecError):
        check_tracking(f"http://127.0.0.1:{closed_port}", timeout_s=1)
    from mlflow.environment_variables import (
        MLFLOW_HTTP_REQUEST_MAX_RETRIES,
        MLFLOW_HTTP_REQUEST_TIMEOUT,
    )

    assert MLFLOW_HTTP_REQUEST_TIMEOUT.get() <= 30 and MLFLOW_HTTP_REQUEST_MAX_RETRIES.get() <= 2
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "300")    # the user's own setting wins
    with pytest.raises(SpecError):
        check_tracking(f"http://127.0.0.1:{closed_port}", timeout_s=1)
    assert os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] == "300"


def test_cli_refused_server_exits_2_and_writes_nothing(tmp_path, closed_port, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = _spec(tmp_path, closed_port)
    start = time.monotonic()
    assert main(["sweep", str(path), "--out", str(tmp_path / "out")]) == 2
    assert time.monotonic() - start < 10
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: tracking.uri: cannot reach the MLflow tracking server http://127.0.0.1:{closed_port}"), err
    assert err.count("\n") == 0, err
    assert [p.name for p in tmp_path.iterdir()] == ["sweep.yaml"]        # no output folder, no store


@pytest.mark.slow
def test_cli_silent_server_exits_2_within_the_timeout(tmp_path, silent_port, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = _spec(tmp_path, silent_port)
    start = time.monotonic()
    assert main(["sweep", str(path), "--out", str(tmp_path / "out")]) == 2
    assert time.monotonic() - start < 20                                # the default 10 s check, not a hang
    assert "no answer within 10 s" in capsys.readouterr().err
    assert [p.name for p in tmp_path.iterdir()] == ["sweep.yaml"]


def test_local_stores_are_not_contacted(tmp_path):
    check_tracking(f"sqlite:///{tmp_path}/mlflow.db")
    check_tracking(str(tmp_path / "mlruns"))
    assert list(tmp_path.iterdir()) == []


@pytest.fixture
def http_server():
    """A real HTTP server on a free port; `codes` maps a path prefix to the status it answers."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    codes: dict[str, int] = {}
    seen: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            seen.append(self.path)
            code = next((c for prefix, c in codes.items() if self.path.startswith(prefix)), 404)
            self.send_response(code)
            self.end_headers()
            self.wfile.write(b"OK")

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", codes, seen
    server.shutdown()
    server.server_close()


def test_answering_servers(http_server):
    uri, codes, seen = http_server
    codes["/health"] = 200
    check_tracking(uri + "/")                                    # an MLflow server: /health says OK
    codes.clear()
    codes["/api/2.0/mlflow/experiments/search"] = 200
    check_tracking(uri)                                          # no /health (a proxy): the REST API answers
    assert seen == ["/health", "/health", "/api/2.0/mlflow/experiments/search?max_results=1"]
    codes.clear()
    codes["/api/"] = 403
    with pytest.raises(SpecError, match=r"refused the request \(HTTP 403\).*MLFLOW_TRACKING_TOKEN"):
        check_tracking(uri)
    codes["/health"] = 503
    with pytest.raises(SpecError, match=rf"server {uri} answered {uri}/health with HTTP 503"):
        check_tracking(uri)


def test_a_local_sqlite_store_uses_the_write_ahead_log_and_a_deleted_one_never_replays_its_old_log(tmp_path):
    import sqlite3

    from launcher.tracking import Tracker, use_write_ahead_log

    db = tmp_path / "mlflow.db"
    tracker = Tracker(f"sqlite:///{db}", "wal")
    run = tracker.create_run("r", "trial")
    tracker.log_metrics(run, {"loss": 1.0}, step=1)
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    # a kill leaves mlflow.db-wal beside the store; the user deletes mlflow.db only
    stale = db.with_name("mlflow.db-wal")
    stale.write_bytes(b"not a log of the new store")
    db.unlink()
    assert use_write_ahead_log(f"sqlite:///{db}")
    assert not stale.exists() and list(tmp_path.glob("mlflow.db-wal.stale-*"))
    with sqlite3.connect(db) as conn:       # (MLflow caches its engine per URI: checked with sqlite3 here)
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert conn.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()[0] == 0
    # not for a server; a URI's ?options are not part of the file name
    assert not use_write_ahead_log("http://127.0.0.1:5000")
    assert use_write_ahead_log(f"sqlite:///{tmp_path / 'other.db'}?timeout=30")
    assert (tmp_path / "other.db").exists() and not list(tmp_path.glob("other.db?*"))
