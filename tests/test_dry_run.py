"""`sweep --dry-run`: stable output (golden file), nothing written, sbatch never called, an honest GPU-hour bound."""
from __future__ import annotations

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
