"""The MLflow UI on a real sweep store, loaded in a real headless browser (Debian chromium).

In CI chromium is installed by .ci/run and this test must run; on a machine without it, it is
skipped with the reason."""
import json
import os
import queue
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from launcher.__main__ import main
from launcher.ui import start_ui, stop_ui

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ROOT = Path(__file__).resolve().parents[1]
pytestmark = [pytest.mark.slow]
needs_chromium = pytest.mark.skipif(CHROMIUM is None and not os.environ.get("CI"), reason="chromium not installed")

SWEEP = """
name: uisweep
out: {out}
tasks:
  - dataset: ETTh1
    horizons: [24]
    context: 96
methods:
  naive: {{}}
  seasonal_naive: {{}}
executor: {{backend: inline, workers: 1}}
"""


def browse(url: str, *extra: str) -> subprocess.CompletedProcess:
    assert CHROMIUM, "CI must install chromium (see .ci/run)"
    return subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                           "--virtual-time-budget=15000", "--window-size=1400,1000", *extra, url],
                          capture_output=True, text=True, timeout=120)


@needs_chromium
def test_ui_shows_the_sweep_experiment_with_its_trial_runs(write_sweep, tmp_path):
    out = tmp_path / "out"
    assert main(["sweep", str(write_sweep(SWEEP.format(out=out)))]) == 0
    client = MlflowClient(f"sqlite:///{out / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("uisweep").experiment_id
    trials = client.search_runs([experiment], "tags.`launcher.kind` = 'trial'")
    studies = client.search_runs([experiment], "tags.`launcher.kind` = 'study'")
    server, url = start_ui(out)
    try:
        shot = tmp_path / "experiment.png"
        browse(url, f"--screenshot={shot}")
        assert shot.exists() and shot.stat().st_size > 20_000       # a rendered page, not a blank one
        page = browse(url, "--dump-dom").stdout
        # the experiment page lists the sweep run; study runs and their trial runs nest below it
        assert ">uisweep<" in page
        # the study and trial runs, opened side by side in the UI's comparison page
        ids = json.dumps([r.info.run_id for r in studies + trials])
        compare = url.split("#")[0] + "#/compare-runs?runs=" + urllib.parse.quote(ids) + \
            "&experiments=" + urllib.parse.quote(json.dumps([experiment]))
        page = browse(compare, "--dump-dom").stdout
        for name in ("ETTh1-24/naive", "ETTh1-24__naive__s0", "ETTh1-24__seasonal_naive__s0"):
            assert name in page, f"{name} not on the comparison page"
    finally:
        stop_ui(server)
    assert server.poll() is not None

    # the self-contained HTML report, in the same browser, with no server at all
    html = out / "report.html"
    shot = tmp_path / "report.png"
    browse(html.as_uri(), f"--screenshot={shot}")
    assert shot.exists() and shot.stat().st_size > 20_000
    page = browse(html.as_uri(), "--dump-dom").stdout
    assert "ETTh1-24" in page and "seasonal_naive" in page and "<img" in page   # table and embedded plots


def test_ui_on_a_folder_that_is_not_a_sweep_exits_2(tmp_path, capsys):
    assert main(["ui", str(tmp_path)]) == 2
    assert "not a sweep folder" in capsys.readouterr().err


# ------------------------------------------------------------------------- stopping `launcher ui` by signal

def _children(pid: int) -> list[int]:
    """Process ids whose parent is `pid` (from /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc to find the server's process")
@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT], ids=lambda s: s.name)
def test_signal_to_ui_stops_the_mlflow_server_and_its_workers(write_sweep, tmp_path, stop):
    out = tmp_path / "out"
    assert main(["sweep", str(write_sweep(SWEEP.format(out=out)))]) == 0
    port = _free_port()
    ui = subprocess.Popen([sys.executable, "-m", "launcher", "ui", str(out), "--port", str(port)], cwd=ROOT,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(x) for x in ui.stdout], daemon=True).start()
    servers: list[int] = []
    try:
        seen, line = [], ""
        while "MLflow UI for" not in line:          # printed once the server answers
            try:
                line = lines.get(timeout=120)
            except queue.Empty:
                pytest.fail(f"ui printed no URL within 120 s: {''.join(seen)}")
            seen.append(line)
        servers = _children(ui.pid)                 # the server leads its own process group
        assert servers and _port_open(port)
        ui.send_signal(stop)
        ui.wait(timeout=30)
        deadline = time.time() + 10
        while any(_group_alive(pid) for pid in servers) and time.time() < deadline:
            time.sleep(0.2)
        assert not any(_group_alive(pid) for pid in servers), f"the mlflow server outlived ui ({stop.name})"
        for pid in servers:
            with pytest.raises(ProcessLookupError):
                os.killpg(pid, 0)
        assert not _port_open(port)
    finally:
        for pid in servers + [ui.pid]:              # never leave a server behind, even when the test fails
            if _group_alive(pid):
                os.killpg(pid, signal.SIGKILL)
        ui.wait(timeout=10)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
