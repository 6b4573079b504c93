"""The journal survives kill -9: a sweep killed at 20 random moments and resumed each time ends
with the same trials, configurations and results as an uninterrupted run, no segment completed
twice, and exactly one tell per finished trial.

Real parts: the CLI in a subprocess, SIGKILL, nevergrad (TwoPointsDE and RandomSearch), ASHA,
the SQLite MLflow store. The inline backend makes the run deterministic (a fixed seed).
"""
import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from launcher.__main__ import main

SWEEP = """
name: killme
out: {out}
seeds: [0, 1]
tasks:
  - dataset: ETTh1
    horizons: [96]
methods:
  synthetic: {{seconds_per_epoch: 0.01}}
search:
  trials: 10
  random_control: true
  final_epochs: 3
  scheduler: {{type: asha, eta: 2, grace: 1, max_epochs: 8}}
executor: {{backend: inline, workers: 2}}
"""


def journal(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "journal.jsonl").read_text().splitlines() if line.endswith("}")]


def summary(out: Path) -> dict:
    events = journal(out)
    asked = {e["trial_id"]: e["params"] for e in events if e["event"] in ("asked", "final_asked")}
    done = {e["trial_id"]: (e["until_epoch"], e["decision"], e["loss"]) for e in events
            if e["event"] == "segment_done" and e["decision"] != "continue"}
    return {"asked": asked, "final": done}


def completed_segments(out: Path) -> Counter:
    counts = Counter()
    for log in (out / "trials").glob("*/segments.jsonl"):
        for line in log.read_text().splitlines():
            counts[(log.parent.name, json.loads(line)["until_epoch"])] += 1
    return counts


@pytest.mark.slow
def test_kill_9_at_20_moments_then_resume_equals_uninterrupted(write_sweep, tmp_path):
    reference_out = tmp_path / "reference"
    assert main(["sweep", str(write_sweep(SWEEP.format(out=reference_out), "ref.yaml"))]) == 0
    reference = summary(reference_out)
    # 10 search trials per arm, then the best of each arm retrained once per seed (2 arms x 2 seeds)
    assert len(reference["asked"]) == 24 and len(reference["final"]) == 24
    assert sum("__final-s" in t for t in reference["asked"]) == 4

    out = tmp_path / "killed"
    sweep = write_sweep(SWEEP.format(out=out), "killed.yaml")
    rng = random.Random(1234)
    kills, finished = 0, False
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    while not finished:
        command = [sys.executable, "-m", "launcher", "sweep", str(sweep)]
        proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
        if kills < 20:
            # wait until this controller has journalled something new, then kill it at a random moment
            start_lines = len(journal(out)) if (out / "journal.jsonl").exists() else 0
            deadline = time.time() + 60
            while proc.poll() is None and time.time() < deadline:
                if (out / "journal.jsonl").exists() and len(journal(out)) > start_lines + 1:
                    break
                time.sleep(0.02)
            time.sleep(rng.uniform(0.0, 0.4))
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                kills += 1
            proc.wait()
        else:
            assert proc.wait(timeout=300) == 0
            finished = True
    assert kills == 20

    resumed = summary(out)
    assert resumed["asked"] == reference["asked"]          # same trials, same configurations
    assert resumed["final"] == reference["final"]          # same rungs reached, same decisions and tells
    assert all(n == 1 for n in completed_segments(out).values()), completed_segments(out)
    events = journal(out)
    tells = [e for e in events if e["event"] == "segment_done" and e["decision"] != "continue"]
    assert len(tells) == len({e["trial_id"] for e in tells}) == 24   # one decision per finished trial
    assert sum(e["loss"] is not None for e in tells) == 20             # the retrains are never told

    # MLflow: one run per trial, and every metric history has strictly increasing, unique steps
    client = MlflowClient(f"sqlite:///{out / 'mlflow.db'}")
    exp = client.get_experiment_by_name("killme")
    runs = client.search_runs([exp.experiment_id], "tags.`launcher.kind` = 'trial'", max_results=1000)
    live = [r for r in runs if r.info.status != "KILLED"]
    assert sorted(r.data.tags["launcher.trial"] for r in live) == sorted(reference["asked"])
    for run in live:
        steps = [m.step for m in client.get_metric_history(run.info.run_id, "val_loss")]
        assert steps == sorted(set(steps)), (run.data.tags["launcher.trial"], steps)
