"""Sweeps through `executor: slurm` on the real local cluster: job ids in MLflow, 2-rank DDP and DeepSpeed
trials started by srun, and preemption (an external `scontrol requeue`, and `scancel --signal=USR2`)
after which a trial resumes from its checkpoint and ends with the same weights, bit for bit, as a
run that was never interrupted, with MLflow steps strictly increasing.

Real parts only: slurmctld/slurmd (bash slurm/up.sh), submitit, gloo process groups, DeepSpeed on CPU,
the controller in a subprocess, an SQLite MLflow store.
"""
from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from mlflow.tracking import MlflowClient

from launcher.backends.slurm_resources import run_command
from launcher.methods.linear import LinearMethod
from launcher.training.epoch_loop import final_weights
from tasks.timeseries import load_forecast_task

pytestmark = [pytest.mark.slow, pytest.mark.slurm]

SWEEP = """
name: {name}
out: {out}
tasks:
  - dataset: ETTh1
    horizons: [96]
    context: 336
methods:
  linear:
    max_windows_per_epoch: {windows}
    dropout: 0.1
    space: {{}}
{extra}search:
  scheduler: {{type: none, max_epochs: {epochs}}}
executor:
  backend: slurm
  workers: 2
  timeout_min: 20
  slurm: {{cpus_per_task: 1, mem: 8G}}
"""


@pytest.fixture(autouse=True)
def cluster(slurm_cluster):
    """Every test here needs the local cluster (conftest's slurm_cluster)."""


def write_sweep(tmp_path: Path, name: str, epochs: int, windows: int = 256, extra: str = "") -> tuple[Path, Path]:
    out = tmp_path / name
    path = tmp_path / f"{name}.yaml"
    path.write_text(SWEEP.format(name=name, out=out, epochs=epochs, windows=windows, extra=extra))
    return path, out


def journal(out: Path) -> list[dict]:
    path = out / "journal.jsonl"
    return [json.loads(x) for x in path.read_text().splitlines() if x.endswith("}")] if path.exists() else []


def trial_runs(out: Path, name: str) -> list:
    client = MlflowClient(f"sqlite:///{out / 'mlflow.db'}")
    experiment = client.get_experiment_by_name(name)
    return client, client.search_runs([experiment.experiment_id], "tags.`launcher.kind` = 'trial'")


def steps_of(client, run, metric: str = "val_mse") -> list[int]:
    return [m.step for m in client.get_metric_history(run.info.run_id, metric)]


def run_sweep(path: Path, timeout: float = 480) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "launcher", "sweep", str(path)], capture_output=True, text=True,
                          timeout=timeout)


def test_forecasting_sweep_runs_on_slurm_and_records_job_ids(tmp_path):
    path, out = write_sweep(tmp_path, "plain", epochs=2,
                            extra="  naive: {}\n  seasonal_naive: {}\n")
    done = run_sweep(path)
    assert done.returncode == 0, done.stderr[-3000:]
    client, runs = trial_runs(out, "plain")
    assert len(runs) == 3 and all(r.info.status == "FINISHED" for r in runs)
    submitted = {e["trial_id"]: e["job_id"] for e in journal(out) if e["event"] == "submitted"}
    for run in runs:
        job_id = run.data.tags["launcher.job_id"]
        assert job_id == submitted[run.data.tags["launcher.trial"]]
        assert job_id.split("_")[0].isdigit(), job_id           # a SLURM job (or array task) id
    # the scheduler knows these jobs ended well (accounting)
    ids = ",".join(sorted({r.data.tags["launcher.job_id"].split("_")[0] for r in runs}))
    states = run_command(["sacct", "-n", "-X", "-P", "-j", ids, "-o", "State"]).stdout.split()
    assert states and set(states) == {"COMPLETED"}, states


@pytest.mark.parametrize("strategy, stage", [("ddp", 0), ("deepspeed", 2)])
def test_two_rank_trials_started_by_srun_log_once(tmp_path, strategy, stage):
    extra = f"    distributed: {{strategy: {strategy}, zero_stage: {stage}, ranks: 2}}\n"
    path, out = write_sweep(tmp_path, strategy, epochs=2)
    path.write_text(path.read_text().replace("    space: {}\n", "    space: {}\n" + extra))
    done = run_sweep(path)
    assert done.returncode == 0, done.stderr[-3000:]
    client, runs = trial_runs(out, strategy)
    assert len(runs) == 1
    run = runs[0]
    assert steps_of(client, run) == [1, 2], "each epoch logged once, by rank 0 alone"
    assert run.data.metrics["world_size"] == 2
    trial_dir = Path(run.data.tags["launcher.trial_dir"])
    logs = sorted((out / "jobs").rglob("*_log.out"))
    ranks = {p.name.rsplit("_", 2)[-2] for p in logs}           # srun writes one log per task: ..._<task>_log.out
    assert {"0", "1"} <= ranks, [p.name for p in logs]
    if strategy == "deepspeed":
        shards = list(trial_dir.glob("checkpoints/epoch_000002/deepspeed/*optim_states.pt"))
        assert len(shards) == 2


def uninterrupted_weights(tmp_path: Path, params: dict, epochs: int) -> dict:
    task = load_forecast_task("ETTh1", 96, context=336)
    method = LinearMethod()
    method.distributed = None
    method.run_segment(task, dict(params), tmp_path / "reference", epochs, lambda *a: None)
    return final_weights(tmp_path / "reference" / "checkpoints")


def interrupt(out: Path, after_step: int, command: list[str], timeout: float = 240) -> str:
    """Wait until the trial has logged `after_step`, then run `command` + its job id. Returns the job id."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        submitted = [e for e in journal(out) if e["event"] == "submitted"]
        outboxes = list((out / "trials").glob("*/outbox.jsonl")) if (out / "trials").exists() else []
        if submitted and outboxes and len(outboxes[0].read_text().splitlines()) >= after_step:
            job_id = submitted[-1]["job_id"]
            done = run_command([*command, job_id])
            assert done.returncode == 0, done.stderr
            return job_id
        time.sleep(0.2)
    raise AssertionError(f"the trial never reached step {after_step}")


@pytest.mark.parametrize("how", ["requeue", "usr2"])
def test_preempted_trial_resumes_bit_identically(tmp_path, how):
    epochs = 12
    path, out = write_sweep(tmp_path, f"preempt_{how}", epochs=epochs, windows=4096)
    proc = subprocess.Popen([sys.executable, "-m", "launcher", "sweep", str(path)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        command = ["scontrol", "requeue"] if how == "requeue" else ["scancel", "--signal=USR2"]
        job_id = interrupt(out, after_step=3, command=command)
        _, stderr = proc.communicate(timeout=480)
    finally:
        proc.kill()
    assert proc.returncode == 0, stderr[-3000:]
    client, runs = trial_runs(out, f"preempt_{how}")
    assert len(runs) == 1
    run = runs[0]
    # the job was really stopped and started again, under the same MLflow run
    restarts = run_command(["sacct", "-n", "-P", "--duplicates", "-j", job_id, "-o", "JobID,State"]).stdout
    assert "REQUEUED" in restarts or "PREEMPTED" in restarts or how == "usr2", restarts
    trial_dir = Path(run.data.tags["launcher.trial_dir"])
    if how == "usr2":   # submitit called the trial's checkpoint() and requeued it
        assert (trial_dir / "requeues.jsonl").exists()
    steps = steps_of(client, run)
    assert steps == list(range(1, epochs + 1)), steps          # strictly increasing, none repeated, none lost
    asked = next(e for e in journal(out) if e["event"] == "asked")
    reference = uninterrupted_weights(tmp_path, asked["params"], epochs)
    resumed = final_weights(trial_dir / "checkpoints")
    assert reference.keys() == resumed.keys() and all(torch.equal(reference[k], resumed[k]) for k in reference)


ORPHAN_SWEEP = """
name: orphan
out: {out}
tasks:
  - dataset: ETTh1
    horizons: [96]
methods:
  synthetic: {{seconds_per_epoch: 12.0, space: {{}}}}
search:
  scheduler: {{type: none, max_epochs: 3}}
executor:
  backend: slurm
  workers: 1
  timeout_min: 10
  slurm: {{cpus_per_task: 1, mem: 2G}}
"""


def test_a_job_left_by_a_killed_controller_is_adopted_not_submitted_again(tmp_path):
    out = tmp_path / "orphan"
    path = tmp_path / "orphan.yaml"
    path.write_text(ORPHAN_SWEEP.format(out=out))
    controller = subprocess.Popen([sys.executable, "-m", "launcher", "sweep", str(path)],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while not any(e["event"] == "submitted" for e in journal(out)) and time.time() < deadline:
        time.sleep(0.1)
    controller.kill()                                   # kill -9: the SLURM job goes on without it
    controller.wait()
    job_id = next(e["job_id"] for e in journal(out) if e["event"] == "submitted")
    queued = run_command(["squeue", "-h", "-j", job_id, "-o", "%T"]).stdout.split()
    assert queued and queued[0] in ("PENDING", "RUNNING", "CONFIGURING"), queued
    resumed = subprocess.run([sys.executable, "-m", "launcher", "resume", str(out)], capture_output=True,
                             text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"adopted job {job_id}" in resumed.stdout, resumed.stdout
    submitted = [e["job_id"] for e in journal(out) if e["event"] == "submitted"]
    assert submitted == [job_id]                        # never submitted a second time
    segments = (out / "trials").glob("*/segments.jsonl")
    assert [len(s.read_text().splitlines()) for s in segments] == [1]
    client, runs = trial_runs(out, "orphan")
    assert len(runs) == 1 and runs[0].info.status == "FINISHED"
