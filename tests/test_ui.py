"""The MLflow UI on a real sweep store, loaded in a real headless browser (Debian chromium).

In CI chromium is installed by .ci/run and this test must run; on a machine without it, it is
skipped with the reason."""
import json
import os
import shutil
import subprocess
import urllib.parse

import pytest
from mlflow.tracking import MlflowClient

from launcher.__main__ import main
from launcher.ui import start_ui, stop_ui

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(CHROMIUM is None and not os.environ.get("CI"), reason="chromium not installed")]

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
