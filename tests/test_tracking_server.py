"""A sweep tracked into a real MLflow tracking server (`mlflow server`, started here on a free port)
ends with the same runs and points a SQLite store gets: the REST store is stricter than SQLite (tag
values must be strings), so only a real server shows what it refuses."""
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import pytest
from mlflow.tracking import MlflowClient

from launcher.__main__ import main

pytestmark = pytest.mark.slow

SWEEP = """
name: served
out: {out}
seeds: [0]
tasks:
  - dataset: ETTh1
    horizons: [96]
methods:
  synthetic: {{}}
search:
  trials: 3
  final_epochs: 2
  scheduler: {{type: asha, eta: 2, grace: 1, max_epochs: 2}}
executor: {{backend: inline, workers: 1}}
tracking: {{uri: "{uri}"}}
"""


@pytest.fixture()
def server(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port),
                             "--backend-store-uri", f"sqlite:///{tmp_path / 'server.db'}",
                             "--default-artifact-root", str(tmp_path / "server-artifacts"), "--workers", "1"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    uri = f"http://127.0.0.1:{port}"
    deadline = time.time() + 180
    try:
        while True:
            try:
                urllib.request.urlopen(f"{uri}/health", timeout=2)
                break
            except OSError:
                assert proc.poll() is None and time.time() < deadline, "the MLflow server did not start"
                time.sleep(0.5)
        yield uri
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=60)


def test_a_sweep_tracks_into_a_tracking_server(write_sweep, tmp_path, server):
    out = tmp_path / "out"
    assert main(["sweep", str(write_sweep(SWEEP.format(out=out, uri=server)))]) == 0
    client = MlflowClient(server)
    experiment = client.get_experiment_by_name("served")
    runs = client.search_runs([experiment.experiment_id], max_results=100)
    kinds = sorted(r.data.tags["launcher.kind"] for r in runs)
    assert kinds == ["study", "sweep"] + ["trial"] * 4          # 3 tuned trials + 1 final retrain
    trial = next(r for r in runs if r.data.tags["launcher.kind"] == "trial")
    assert trial.data.tags["launcher.horizon"] == "96" and trial.info.status == "FINISHED"
    curve = client.get_metric_history(trial.info.run_id, "val_loss")
    assert [m.step for m in curve] == list(range(1, len(curve) + 1)) and curve
    assert not (out / "mlflow.db").exists()                     # nothing went to the folder's SQLite file
