"""`sweep --dry-run`: stable output (golden file), nothing written, sbatch never called, an honest GPU-hour bound."""
from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from launcher.__main__ import main
from launcher.backends.slurm_resources import ClusterLimits
from launcher.engine.dry_run import normalize_paths

GOLDEN = Path(__file__).parent / "golden" / "dry_run_slurm.txt"

SWEEP = """
name: dry
out: {out}
seeds: [0, 1]
tasks:
  - dataset: ETTh1
    horizons: [96]
methods:
  naive: {{}}
  linear:
    distributed: {{strategy: ddp, ranks: 2}}
    resources: {{gpus_per_node: 2, mem: 8G}}
search:
  trials: 6
  final_epochs: 5
  scheduler: {{type: asha, eta: 2, grace: 1, max_epochs: 4}}
executor:
  backend: slurm
  workers: 5
  timeout_min: 30
  slurm: {{partition: gpu, cpus_per_task: 4, account: lab, sbatch_extra: ["--exclusive"], setup: ["module load cuda"]}}
"""


@pytest.fixture
def sbatch_spy(tmp_path, monkeypatch):
    """An `sbatch` first on PATH that records any call: the dry run must never reach it."""
    bin_dir = tmp_path / "spy"
    bin_dir.mkdir()
    calls = tmp_path / "sbatch_calls.txt"
    spy = bin_dir / "sbatch"
    spy.write_text(f"#!/bin/sh\necho \"$@\" >> {calls}\nexit 1\n")
    spy.chmod(spy.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return calls


def test_dry_run_is_stable_writes_nothing_and_submits_nothing(tmp_path, monkeypatch, capsys, sbatch_spy):
    # the cluster's limits would make the text machine-dependent: pin them (the query itself is tested in test_slurm_*)
    monkeypatch.setattr(ClusterLimits, "read", classmethod(lambda cls: ClusterLimits(max_array_size=3, max_submit_jobs=100,
                                                                                       source="pinned by the test")))
    sweep = tmp_path / "sweep.yaml"
    sweep.write_text(SWEEP.format(out=tmp_path / "out"))
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    assert main(["sweep", str(sweep), "--dry-run", "--epoch-minutes", "6"]) == 0
    text = normalize_paths(capsys.readouterr().out).replace(str(tmp_path), "<tmp>")
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before, "the dry run wrote files"
    assert not sbatch_spy.exists(), "the dry run called sbatch"
    # upper bound by hand: linear = 6 trials x 4 epochs + 2 seeds x 5 final epochs = 34 epochs x 6 min x 2 GPUs
    assert f"GPU-hours upper bound: {34 * 6 * 2 / 60:.1f}" in text
    # expected: fewer epochs than the bound (ASHA stops trials early), never fewer than one rung per trial
    # (6 trials x 1 epoch) plus the final retrains (2 seeds x 5)
    expected = float(text.split("GPU-hours expected: ")[1].split()[0])
    assert (6 * 1 + 2 * 5) * 6 * 2 / 60 <= expected < 34 * 6 * 2 / 60
    assert "job time limit per segment: 30 min" in text
    # the first wave of 5 trials fits arrays of at most MaxArraySize 3
    assert "arrays of [3, 2]" in text
    assert "#SBATCH --gpus-per-node=2" in text and "#SBATCH --ntasks-per-node=2" in text   # the method's override
    assert "#SBATCH --partition=gpu" in text and "#SBATCH --exclusive" in text and "module load cuda" in text
    if os.environ.get("UPDATE_GOLDEN"):
        GOLDEN.write_text(text)
    assert text == GOLDEN.read_text()


def test_dry_run_of_a_cluster_sweep_without_local_data_warns_but_plans(tmp_path, capsys):
    sweep = tmp_path / "sweep.yaml"
    sweep.write_text(f"name: nodata\nout: {tmp_path / 'out'}\ntasks:\n  - dataset: H3\nmethods:\n  synthetic: {{}}\n"
                     "executor: {backend: slurm}\n")
    assert main(["sweep", str(sweep), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("warning: ") and "H3" in out and "sbatch script 1 of 1" in out
    assert not (tmp_path / "out").exists()


def test_a_methods_resources_override_the_executor_defaults(tmp_path):
    from launcher.backends.slurm import SlurmExecutor, SlurmResources
    from launcher.job.trial import TrialSpec

    executor = SlurmExecutor(tmp_path, SlurmResources(partition="cpu", cpus_per_task=2, time_min=30),
                             limits=ClusterLimits())
    spec = TrialSpec(trial_id="t", study="s", dataset="ETTh1", horizon=96, context=96, method="linear", params={},
                     seed=0, trial_dir=str(tmp_path / "t"), resources={"gpus_per_node": 2, "partition": "gpu"},
                     distributed={"strategy": "ddp", "ranks": 2})
    resources = executor.resources_for(spec)
    assert (resources.partition, resources.gpus_per_node, resources.cpus_per_task, resources.time_min,
            resources.tasks_per_node) == ("gpu", 2, 2, 30, 2)
    plain = TrialSpec(**{**spec.__dict__, "resources": None, "distributed": None})
    assert executor.resources_for(plain) == SlurmResources(partition="cpu", cpus_per_task=2, time_min=30)


# --------------------------------------------------------------------------- per-method epoch_minutes
PER_METHOD = """
name: per_method
out: {out}
seeds: [0, 1]
tasks:
  - dataset: ETTh1
    horizons: [96]
methods:
  naive:
    resources: {{gpus_per_node: 1}}
  linear:{linear_minutes}
    resources: {{gpus_per_node: 2}}
search:
  trials: 6
  final_epochs: 5
  scheduler: {{type: asha, eta: 2, grace: 1, max_epochs: 4}}
executor:
  backend: slurm
  workers: 5
  timeout_min: 30
  slurm: {{partition: gpu, time_min: 240}}
"""


def _dry_run(tmp_path, monkeypatch, capsys, text, *args):
    monkeypatch.setattr(ClusterLimits, "read", classmethod(lambda cls: ClusterLimits(source="pinned by the test")))
    sweep = tmp_path / "sweep.yaml"
    sweep.write_text(text)
    assert main(["sweep", str(sweep), "--dry-run", *args]) == 0
    return capsys.readouterr().out


def _studies(text: str) -> dict[str, tuple[int, float, str]]:
    """study -> (expected epochs, seconds per epoch, where the seconds come from), read from the printed table."""
    table = text.split("expected epochs per study")[1].split("\n\n")[0].splitlines()[1:]
    out = {}
    for line in table:
        name, epochs, rest = line.split()[0], line.split()[1], line.split(")", 1)[1]
        seconds, source = rest.split("s/epoch (")
        out[name] = (int(epochs), float(seconds), source.rstrip(")"))
    return out


def _hours(text: str, which: str) -> float:
    return float(text.split(f"GPU-hours {which}: ")[1].split()[0])


def test_a_method_rows_epoch_minutes_changes_only_its_own_studys_gpu_hours(tmp_path, monkeypatch, capsys):
    plain = _dry_run(tmp_path, monkeypatch, capsys, PER_METHOD.format(out=tmp_path / "out", linear_minutes=""),
                     "--epoch-minutes", "6")
    own = _dry_run(tmp_path, monkeypatch, capsys,
                   PER_METHOD.format(out=tmp_path / "out", linear_minutes="\n    epoch_minutes: 9.5"),
                   "--epoch-minutes", "6")
    before, after = _studies(plain), _studies(own)
    assert before["ETTh1-96/naive"] == after["ETTh1-96/naive"] == (1, 360.0, "--epoch-minutes")
    assert before["ETTh1-96/linear"][1:] == (360.0, "--epoch-minutes")
    assert after["ETTh1-96/linear"][1:] == (570.0, "epoch_minutes in the sweep file")
    linear = after["ETTh1-96/linear"][0]
    assert linear == before["ETTh1-96/linear"][0]          # the epochs do not change, only their price
    # recomputed from the printed epochs: naive 1 run x 6 min x 1 GPU, linear x its own 9.5 min x 2 GPUs
    assert _hours(own, "expected") == pytest.approx((1 * 6 * 1 + linear * 9.5 * 2) / 60, abs=0.05 + 0.5 * 9.5 * 2 / 60)
    assert _hours(own, "expected") - _hours(plain, "expected") == pytest.approx(linear * (9.5 - 6) * 2 / 60, abs=0.2)
    # the bound: linear 6 trials x 4 epochs + 2 seeds x 5 final = 34 epochs at 9.5 min x 2 GPUs; naive 1 x 6 x 1
    assert _hours(own, "upper bound") == pytest.approx(round((34 * 9.5 * 2 + 6) / 60, 1))
    assert _hours(plain, "upper bound") == pytest.approx(round((34 * 6 * 2 + 6) / 60, 1))
    assert "x each study's time per epoch above x GPUs per trial" in own
    assert not (tmp_path / "out").exists()


def test_epoch_minutes_is_a_planning_figure_not_part_of_the_recorded_sweep(tmp_path):
    from launcher.spec.load import load_sweep, spec_to_dict

    (tmp_path / "a.yaml").write_text(PER_METHOD.format(out=tmp_path / "out", linear_minutes=""))
    (tmp_path / "b.yaml").write_text(PER_METHOD.format(out=tmp_path / "out", linear_minutes="\n    epoch_minutes: 3"))
    a, b = load_sweep(tmp_path / "a.yaml"), load_sweep(tmp_path / "b.yaml")
    assert [m.epoch_minutes for m in b.methods] == [None, 3.0]
    record = spec_to_dict(b)      # sweep.json: a folder started without it resumes with it, and back
    assert record["methods"] == spec_to_dict(a)["methods"] and "epoch_minutes" not in json.dumps(record["methods"])


def test_the_header_names_the_time_limit_actually_used(tmp_path, monkeypatch, capsys):
    text = _dry_run(tmp_path, monkeypatch, capsys, PER_METHOD.format(out=tmp_path / "out", linear_minutes=""))
    header = text.splitlines()[1]
    # executor.slurm.time_min (240) is what sbatch gets, not executor.timeout_min (30)
    assert header == "  backend slurm, 5 worker slot(s), job time limit 240 min per segment (executor.slurm.time_min)"
    assert "#SBATCH --time=240" in text and "30 min" not in text
    # a method's own resources.time_min: both limits, and why
    override = PER_METHOD.format(out=tmp_path / "out", linear_minutes="").replace(
        "resources: {gpus_per_node: 2}", "resources: {gpus_per_node: 2, time_min: 45}")
    header = _dry_run(tmp_path, monkeypatch, capsys, override).splitlines()[1]
    assert "job time limit 45 min, 240 min per segment (executor.slurm.time_min; a method's resources.time_min" in header
    local = PER_METHOD.format(out=tmp_path / "out", linear_minutes="").replace("backend: slurm", "backend: local")
    assert _dry_run(tmp_path, monkeypatch, capsys, local).splitlines()[1] == \
        "  backend local, 5 worker slot(s), job time limit 30 min per trial job (executor.timeout_min)"
    inline = local.replace("backend: local", "backend: inline")
    assert "no job time limit" in _dry_run(tmp_path, monkeypatch, capsys, inline).splitlines()[1]


@pytest.mark.parametrize("value, message", [("0", "must be > 0, got 0"), ("-2", "must be > 0, got -2"),
                                            ("fast", "expected a number, got 'fast'"),
                                            ("2000000", "must be <= 1000000")])
def test_a_bad_epoch_minutes_exits_2_with_its_line(tmp_path, capsys, value, message):
    sweep = tmp_path / "sweep.yaml"
    sweep.write_text(PER_METHOD.format(out=tmp_path / "out", linear_minutes=f"\n    epoch_minutes: {value}"))
    line = 1 + PER_METHOD.format(out="", linear_minutes="\n    epoch_minutes: x").splitlines().index("    epoch_minutes: x")
    assert main(["sweep", str(sweep), "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {sweep}:{line}: methods.linear.epoch_minutes: {message}"), err
    assert not (tmp_path / "out").exists()


def test_calibrate_needs_dry_run_and_epoch_minutes_must_be_positive(tmp_path, capsys):
    sweep = tmp_path / "sweep.yaml"
    sweep.write_text(PER_METHOD.format(out=tmp_path / "out", linear_minutes=""))
    assert main(["sweep", str(sweep), "--calibrate"]) == 2
    assert "--calibrate goes with --dry-run" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exited:
        main(["sweep", str(sweep), "--dry-run", "--epoch-minutes", "0"])
    assert exited.value.code == 2
    assert not (tmp_path / "out").exists()
