"""The journal survives kill -9, SIGTERM and torn writes: a sweep killed at 20 random moments (every
third of them leaving the journal's last line torn, as a kill in the middle of its write would), stopped
by SIGTERM at 8 more, and resumed each time ends with the same trials, configurations, decisions and
report as an uninterrupted run, no segment completed twice, no MLflow point logged twice, and
exactly one tell per finished trial.

Real parts: the CLI in a subprocess, SIGKILL/SIGTERM, nevergrad (TwoPointsDE and RandomSearch), ASHA,
the SQLite MLflow store. The inline backend makes the run deterministic (a fixed seed). The search
space is written out of alphabetical order, in a nested mapping, and two tasks x two arms make four
tuned studies, so a resume that rebuilt the space or the studies in another order would show.
"""
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from launcher.__main__ import main
from launcher.job.trial import result_name

SWEEP = """
name: killme
out: {out}
seeds: [0, 1]
tasks:
  - dataset: ETTh1
    horizons: [96, 192]
methods:
  synthetic:
    seconds_per_epoch: 0.01
    space:
      y: {{float: [0.0, 1.0]}}
      x: {{float: [0.0, 1.0]}}
search:
  trials: 6
  random_control: true
  final_epochs: 3
  scheduler: {{type: asha, eta: 2, grace: 1, max_epochs: 8}}
executor: {{backend: inline, workers: 2}}
"""
KILLS, TERMS = 20, 8
STUDIES, TRIALS, SEEDS = 4, 6, 2
# cost rows measure wall-clock time: they differ between any two runs, interrupted or not
TIMED = ("cpu_hours", "gpu_hours", "job_seconds")


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


def report_rows(out: Path) -> list[str]:
    rows = (out / "report.csv").read_text().splitlines()
    return [row for row in rows if not (",cost," in row and any(f",{name}," in row for name in TIMED))]


def tear_last_line(path: Path, rng: random.Random) -> None:
    """Cut the journal's last line somewhere inside it, as a kill in the middle of its write would."""
    data = path.read_bytes()
    start = data.rstrip(b"\n").rfind(b"\n") + 1
    path.write_bytes(data[:rng.randint(start + 1, len(data) - 2)])


@pytest.mark.slow
def test_kill_9_sigterm_and_torn_writes_then_resume_equals_uninterrupted(write_sweep, tmp_path):
    reference_out = tmp_path / "reference"
    assert main(["sweep", str(write_sweep(SWEEP.format(out=reference_out), "ref.yaml"))]) == 0
    reference = summary(reference_out)
    finals = STUDIES * SEEDS
    assert len(reference["asked"]) == STUDIES * TRIALS + finals and len(reference["final"]) == len(reference["asked"])
    assert sum("__final-s" in t for t in reference["asked"]) == finals

    out = tmp_path / "killed"
    sweep = write_sweep(SWEEP.format(out=out), "killed.yaml")
    rng = random.Random(1234)
    stops = ["kill"] * KILLS + ["term"] * TERMS
    rng.shuffle(stops)
    done, torn, finished = Counter(), 0, False
    # a journal snapshot every 7 events (engine.snapshot): most resumes start from one written by a child
    # of a controller that was then killed (the child with it), some from one the torn tail invalidates
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "LAUNCHER_SNAPSHOT_EVERY": "7"}
    while not finished:
        command = [sys.executable, "-m", "launcher", "sweep", str(sweep)]
        proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, text=True)
        if stops:
            # wait until this controller has journalled something new, then stop it at a random moment
            start_lines = len(journal(out)) if (out / "journal.jsonl").exists() else 0
            deadline = time.time() + 60
            while proc.poll() is None and time.time() < deadline:
                if (out / "journal.jsonl").exists() and len(journal(out)) > start_lines + 1:
                    break
                time.sleep(0.02)
            time.sleep(rng.uniform(0.0, 0.4))
            if proc.poll() is None:
                how = stops.pop()
                proc.send_signal(signal.SIGKILL if how == "kill" else signal.SIGTERM)
                _, err = proc.communicate(timeout=60)
                if how == "term":
                    assert proc.returncode in (143, 0) and "Traceback" not in err, err
                    done[how] += proc.returncode == 143
                else:
                    done[how] += 1
                    if done["kill"] % 3 == 1:          # every third kill, from the first
                        tear_last_line(out / "journal.jsonl", rng)
                        torn += 1
            else:
                assert proc.wait() == 0, proc.stderr.read()
                finished = True
        else:
            _, err = proc.communicate(timeout=300)
            assert proc.returncode == 0, err
            finished = True
    assert done["kill"] >= KILLS - 3 and done["term"] >= TERMS - 3 and torn >= 5, (done, torn)

    assert (out / "journal.snapshot.json").exists() and not (reference_out / "journal.snapshot.json").exists()
    resumed = summary(out)
    assert resumed["asked"] == reference["asked"]          # same trials, same configurations
    assert resumed["final"] == reference["final"]          # same rungs reached, same decisions and tells
    assert all(n == 1 for n in completed_segments(out).values()), completed_segments(out)
    events = journal(out)
    tells = [e for e in events if e["event"] == "segment_done" and e["decision"] != "continue"]
    assert len(tells) == len({e["trial_id"] for e in tells}) == len(reference["asked"])
    assert sum(e["loss"] is not None for e in tells) == STUDIES * TRIALS   # the retrains are never told
    assert report_rows(out) == report_rows(reference_out)                  # the same report, cell for cell

    # MLflow: one run per trial, and no (run, key, step) logged twice
    client = MlflowClient(f"sqlite:///{out / 'mlflow.db'}")
    exp = client.get_experiment_by_name("killme")
    runs = client.search_runs([exp.experiment_id], "tags.`launcher.kind` = 'trial'", max_results=1000)
    live = [r for r in runs if r.info.status != "KILLED"]    # (a killed controller's unjournalled runs are in the trash)
    assert sorted(r.data.tags["launcher.trial"] for r in live) == sorted(reference["asked"])
    with sqlite3.connect(out / "mlflow.db") as db:
        assert db.execute("SELECT run_uuid, key, step FROM metrics GROUP BY run_uuid, key, step "
                          "HAVING COUNT(*) > 1").fetchall() == []
    for run in live:
        steps = [m.step for m in client.get_metric_history(run.info.run_id, "val_loss")]
        assert steps == sorted(set(steps)), (run.data.tags["launcher.trial"], steps)


ONE_STUDY = """
name: torn
out: {out}
seeds: [0]
tasks:
  - dataset: ETTh1
    horizons: [96]
methods:
  synthetic:
    space:
      x: {{float: [0.0, 1.0]}}
      y: {{float: [0.0, 1.0]}}
search:
  trials: 4
  final_epochs: 2
  scheduler: {{type: asha, eta: 2, grace: 1, max_epochs: 4}}
executor: {{backend: inline, workers: 1}}
"""


def duplicated_points(db: Path) -> list:
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT run_uuid, key, step, COUNT(*) FROM metrics GROUP BY run_uuid, key, step "
                            "HAVING COUNT(*) > 1").fetchall()


def test_a_resume_that_re_ingests_an_older_segment_logs_no_point_twice(write_sweep, tmp_path):
    """The journal loses a trial's `segment_done` (a torn last line) after the inline job had already run
    the trial's next segment: the resumed controller ingests the older segment again, with the later
    outbox lines, then the later segment from its result file, whose last step was copied by that first
    ingest. The later segment's final metrics must not log that step a second time."""
    out = tmp_path / "run"
    sweep = write_sweep(ONE_STUDY.format(out=out))
    assert main(["sweep", str(sweep)]) == 0
    assert duplicated_points(out / "mlflow.db") == []
    events = journal(out)
    # a trial promoted past its first rung: its segment_done(continue) is followed by a later segment
    first = next(i for i, e in enumerate(events) if e["event"] == "segment_done" and e["decision"] == "continue")
    trial = events[first]["trial_id"]
    assert (out / "trials" / trial / result_name(events[first]["next_epoch"])).exists()
    # The store as it was (runs, params, curves up to that event) is what a killed controller left;
    # keep it whole (it only holds more points), and cut the journal so that event is the torn last line.
    lines = (out / "journal.jsonl").read_text().splitlines(keepends=True)
    (out / "journal.jsonl").write_text("".join(lines[:first]) + lines[first][:len(lines[first]) // 2])
    assert main(["sweep", str(sweep)]) == 0
    assert duplicated_points(out / "mlflow.db") == []
    resumed = journal(out)
    assert sum(e["event"] == "segment_done" and e["trial_id"] == trial for e in resumed) == \
        sum(e["event"] == "segment_done" and e["trial_id"] == trial for e in events)
