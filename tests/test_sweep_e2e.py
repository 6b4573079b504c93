"""End to end: sweep file -> controller -> trial jobs -> MLflow store -> comparison table.

Everything is real: submitit executors, a SQLite MLflow store, the embedded ETTh1 file.
Expected numbers are recomputed here by brute force from the raw CSV, not read from the code.
"""
import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from launcher.__main__ import main
from tests.conftest import ROOT

SMALL = """
name: small
out: {out}
tasks:
  - dataset: ETTh1
    horizons: [24]
    context: 96
methods:
  naive: {{}}
  seasonal_naive: {{period: 24}}
  autoar: {{lags: [8], max_diff: 1}}
executor: {{backend: {backend}, workers: 2}}
"""


def brute_force_naive_mse(horizon: int, context: int, period: int | None = None) -> tuple[float, float]:
    """ETTh1 protocol written out plainly: 12/4/4 months, train z-score, stride-1 windows."""
    raw = pd.read_csv(ROOT / "tasks" / "data" / "ETTh1.csv.gz").drop(columns=["date"]).to_numpy(float)
    train = raw[:8640]
    z = (raw - train.mean(0)) / train.std(0)
    test = z[11520 - context:14400]
    errors_sq, errors_abs = [], []
    for start in range(len(test) - context - horizon + 1):
        past = test[start:start + context]
        future = test[start + context:start + context + horizon]
        if period is None:
            guess = np.repeat(past[-1:], horizon, axis=0)
        else:
            guess = np.concatenate([past[-period:]] * (horizon // period + 1))[:horizon]
        errors_sq.append(((future - guess) ** 2).mean())
        errors_abs.append(np.abs(future - guess).mean())
    return float(np.mean(errors_sq)), float(np.mean(errors_abs))


def trial_runs(out):
    client = MlflowClient(f"sqlite:///{out / 'mlflow.db'}")
    exp = client.get_experiment_by_name("small")
    runs = client.search_runs([exp.experiment_id], max_results=1000)
    return client, runs


def test_inline_sweep_logs_runs_and_prints_table(write_sweep, tmp_path, capsys):
    out = tmp_path / "out"
    sweep = write_sweep(SMALL.format(out=out, backend="inline"))
    assert main(["sweep", str(sweep)]) == 0
    printed = capsys.readouterr().out

    client, runs = trial_runs(out)
    kinds = {r.info.run_id: r.data.tags["launcher.kind"] for r in runs}
    assert sorted(kinds.values()) == ["study"] * 3 + ["sweep"] + ["trial"] * 3
    by_id = {r.info.run_id: r for r in runs}
    sweep_id = next(i for i, k in kinds.items() if k == "sweep")
    for run in runs:
        parent = run.data.tags.get("mlflow.parentRunId")
        if kinds[run.info.run_id] == "study":
            assert parent == sweep_id
        if kinds[run.info.run_id] == "trial":
            assert kinds[parent] == "study"
            assert by_id[parent].data.tags["launcher.method"] == run.data.tags["launcher.method"]
            assert run.info.status == "FINISHED"

    trials = {r.data.tags["launcher.method"]: r for r in runs if kinds[r.info.run_id] == "trial"}
    mse, mae = brute_force_naive_mse(24, 96)
    assert trials["naive"].data.metrics["test_mse"] == pytest.approx(mse, rel=1e-9)
    assert trials["naive"].data.metrics["test_mae"] == pytest.approx(mae, rel=1e-9)
    s_mse, _ = brute_force_naive_mse(24, 96, period=24)
    assert trials["seasonal_naive"].data.metrics["test_mse"] == pytest.approx(s_mse, rel=1e-9)
    assert trials["autoar"].data.params["chosen.chosen_p"] == "8"
    assert trials["autoar"].data.metrics["n_parameters"] == 9      # 8 lags + intercept

    # the printed table carries the same numbers, rounded, in the row of the task
    row = next(line for line in printed.splitlines() if line.startswith("| ETTh1-24 |"))
    assert f"{mse:.4f}" in row and f"{s_mse:.4f}" in row
    assert (out / "report.md").read_text() in printed
    csv = pd.read_csv(out / "report.csv")
    assert set(csv["status"]) == {"ok"}


def test_rerun_skips_finished_trials_and_refuses_another_sweep(write_sweep, tmp_path, capsys):
    out = tmp_path / "out"
    sweep = write_sweep(SMALL.format(out=out, backend="inline"))
    assert main(["sweep", str(sweep)]) == 0
    _, before = trial_runs(out)
    assert main(["sweep", str(sweep), "--workers", "1"]) == 0     # executor settings may change
    _, after = trial_runs(out)
    assert len(after) == len(before)                     # nothing ran again
    assert "3 trials finished, 0 failed, 0 segments to run again" in capsys.readouterr().out

    other = write_sweep(SMALL.format(out=out, backend="inline").replace("horizons: [24]", "horizons: [48]"),
                        name="other.yaml")
    assert main(["sweep", str(other)]) == 2
    assert "already holds a different sweep" in capsys.readouterr().err


def test_failed_trial_is_recorded_and_the_sweep_goes_on(write_sweep, tmp_path, capsys):
    out = tmp_path / "out"
    text = SMALL.format(out=out, backend="inline").replace(
        "  autoar: {lags: [8], max_diff: 1}\n",
        f"  autoar: {{lags: [8], max_diff: 1}}\n  fracast: {{model_dir: {tmp_path / 'no-such-checkpoint'}}}\n")
    sweep = write_sweep(text)
    assert main(["sweep", str(sweep)]) == 1              # some trial failed
    printed = capsys.readouterr().out
    client, runs = trial_runs(out)
    failed = [r for r in runs if r.info.status == "FAILED" and r.data.tags["launcher.kind"] == "trial"]
    assert [r.data.tags["launcher.method"] for r in failed] == ["fracast"]
    error = client.download_artifacts(failed[0].info.run_id, "error.txt", str(tmp_path))
    assert "no-such-checkpoint" in open(error).read()
    finished = [r for r in runs if r.info.status == "FINISHED" and r.data.tags["launcher.kind"] == "trial"]
    assert len(finished) == 3
    row = next(line for line in printed.splitlines() if line.startswith("| ETTh1-24 |"))
    assert row.rstrip().endswith("| failed |")


def test_dry_run_writes_nothing(write_sweep, tmp_path, capsys):
    out = tmp_path / "out"
    sweep = write_sweep(SMALL.format(out=out, backend="local"))
    before = sorted(p.name for p in tmp_path.iterdir())
    assert main(["sweep", str(sweep), "--dry-run"]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    printed = capsys.readouterr().out
    assert "3 studies, up to 3 trials" in printed and "ETTh1-24/autoar" in printed and "lags=[8]" in printed


def test_missing_dataset_exits_2_and_names_the_path(write_sweep, tmp_path, capsys):
    empty = tmp_path / "data"
    empty.mkdir()
    sweep = write_sweep(f"name: m\nout: {tmp_path / 'out'}\ndata_root: {empty}\n"
                        "tasks:\n  - dataset: ETTm1\nmethods:\n  naive: {}\n")
    assert main(["sweep", str(sweep)]) == 2
    err = capsys.readouterr().err
    assert str(empty) in err and "ETTm1" in err
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_local_backend_runs_trials_as_processes(write_sweep, tmp_path):
    out = tmp_path / "out"
    sweep = write_sweep(SMALL.format(out=out, backend="local"))
    proc = subprocess.run([sys.executable, "-m", "launcher", "sweep", str(sweep)], cwd=tmp_path,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert "| ETTh1-24 |" in proc.stdout
    _, runs = trial_runs(out)
    trials = [r for r in runs if r.data.tags["launcher.kind"] == "trial"]
    job_ids = {r.data.tags["launcher.job_id"] for r in trials}
    assert len(job_ids) == 3 and all(j.isdigit() for j in job_ids)   # one OS process (pid) per trial
    results = [json.loads((out / "trials" / r.data.tags["launcher.trial"] / "result.json").read_text())
               for r in trials]
    assert all(res["metrics"]["test_mse"] > 0 for res in results)


def test_dlinear_tuned_with_asha_on_real_data_reports_test_at_best_val(write_sweep, tmp_path, capsys):
    out = tmp_path / "out"
    sweep = write_sweep(f"""
name: small
out: {out}
tasks:
  - dataset: ETTh1
    horizons: [24]
    context: 96
methods:
  dlinear: {{max_windows_per_epoch: 300}}
search:
  trials: 4
  scheduler: {{type: asha, eta: 2, grace: 1, max_epochs: 2}}
executor: {{backend: inline, workers: 2}}
""")
    assert main(["sweep", str(sweep)]) == 0
    client, runs = trial_runs(out)
    trials = [r for r in runs if r.data.tags["launcher.kind"] == "trial"]
    assert len(trials) == 4
    selected = [r for r in trials if r.data.tags.get("launcher.selected") == "true"]
    assert len(selected) == 1
    run = selected[0]
    # the reported test metric is the one at the epoch with the best validation MSE
    val = client.get_metric_history(run.info.run_id, "val_mse")
    test = client.get_metric_history(run.info.run_id, "test_mse_last")
    best_epoch = min(val, key=lambda m: (m.value, m.step)).step
    expected = next(m.value for m in test if m.step == best_epoch)
    assert run.data.metrics["test_mse"] == pytest.approx(expected, rel=1e-12)
    row = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("| ETTh1-24 |"))
    assert f"{expected:.4f}" in row
