"""A sweep tracked into a real MLflow tracking server (`mlflow server`, started here on a free port)
ends with the same runs and points a SQLite store gets: the REST store is stricter than SQLite (tag
values must be strings), so only a real server shows what it refuses."""
import pytest
from mlflow.tracking import MlflowClient

from launcher.__main__ import main
from launcher.ui import served_store

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
    with served_store(f"sqlite:///{tmp_path / 'server.db'}", tmp_path, artifact_root=tmp_path / "server-artifacts",
                      timeout_s=180) as uri:
        yield uri


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
