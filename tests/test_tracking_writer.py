"""MLflow off the controller's critical path (engine/tracking_writer.py): the controller's loop never
waits on the store; the writer dies with its controller; whatever the writer had done or not done when
it died, the next one brings MLflow to exactly what an uninterrupted writer leaves (every write after
its watermark redone, none doubled)."""
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from launcher.__main__ import main
from tests.test_sweep_folder_safety import family

SWEEP = """
name: writer
out: {out}
seeds: [0]
tasks:
  - dataset: ETTh1
    horizons: [96]
methods:
  synthetic: {{}}
search:
  trials: 24
  scheduler: {{type: asha, eta: 3, grace: 1, max_epochs: 9}}
executor:
  backend: simulated
  workers: 4
  simulated: {{epoch_seconds: 60, jitter: 0.3}}
"""


def journal_events(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "journal.jsonl").read_text().splitlines()]


def store(out: Path) -> dict:
    """What MLflow holds (every metric point, param and tag of every live run), independent of run ids."""
    with sqlite3.connect(out / "mlflow.db") as db:
        names = dict(db.execute("SELECT run_uuid, name FROM runs WHERE lifecycle_stage = 'active'"))
        def rows(query: str) -> list:
            return sorted((names[r[0]], *r[1:]) for r in db.execute(query) if r[0] in names)
        return {"runs": sorted(names.values()),
                "status": rows("SELECT run_uuid, status FROM runs"),
                "metrics": rows("SELECT run_uuid, key, value, timestamp, step FROM metrics"),
                "params": rows("SELECT run_uuid, key, value FROM params"),
                "tags": rows("SELECT run_uuid, key, value FROM tags WHERE key NOT IN ('mlflow.parentRunId')")}


def children(pid: int) -> list[int]:
    return family(pid)[1:]


def state(pid: int) -> str | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return None


def wait_for(condition, timeout: float, what: str):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.01)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.mark.slow
def test_the_loop_never_waits_on_mlflow_and_the_writer_dies_with_its_controller(write_sweep, tmp_path):
    out = tmp_path / "out"
    path = write_sweep(SWEEP.format(out=out))
    controller = subprocess.Popen([sys.executable, "-m", "launcher", "sweep", str(path)],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        # The writer is the controller's child (the simulated backend starts no job processes). Frozen at
        # once: MLflow can make no progress from here on.
        writer = wait_for(lambda: children(controller.pid), 120, "the tracking writer to start")[0]
        os.kill(writer, signal.SIGSTOP)
        # The whole sweep still runs to its end: every segment ingested, every study's result journalled.
        wait_for(lambda: (out / "journal.jsonl").exists()
                 and any(e["event"] == "sweep_finished" for e in journal_events(out)), 180, "the sweep's end")
        assert state(writer) == "T"
        asked = {e["trial_id"] for e in journal_events(out) if e["event"] == "asked"}
        assert len(asked) == 24
        # The controller now waits for MLflow to catch up: kill -9 it there. Its writer goes with it.
        assert controller.poll() is None
        controller.kill()
        controller.wait(timeout=30)
        wait_for(lambda: state(writer) in (None, "Z"), 10, "the writer to die with its controller")
    finally:
        if controller.poll() is None:
            controller.kill()
    # The next controller's writer redoes what the killed one had not done; nothing is run again.
    segments = sum(1 for e in journal_events(out) if e["event"] == "segment_done")
    assert main(["resume", str(out)]) == 0
    assert sum(1 for e in journal_events(out) if e["event"] == "segment_done") == segments
    held = store(out)
    assert sorted(name for name in held["runs"] if name in asked) == sorted(asked)       # each trial once
    assert {status for run, status in held["status"] if run in asked} == {"FINISHED"}
    assert len({(run, key, step) for run, key, _, _, step in held["metrics"]}) == len(held["metrics"])


@pytest.mark.parametrize("cut", [0.0, 0.35, 0.7, 0.999])
def test_a_writer_that_died_anywhere_is_redone_to_the_same_store(write_sweep, tmp_path, cut):
    """The store after a sweep, then the writer's watermark set back to a line boundary as if it had died
    there after writing past it (its writes are in the store, its record is not): `repair` redoes every
    event after the watermark and the store is the same, point for point, tag for tag."""
    out = tmp_path / "out"
    path = write_sweep(SWEEP.format(out=out))
    assert main(["sweep", str(path)]) == 0
    before = store(out)
    asked = {e["trial_id"] for e in journal_events(out) if e["event"] == "asked"}
    assert sorted(r for r in before["runs"] if r in asked) == sorted(asked) and len(asked) == 24
    journal = (out / "journal.jsonl").read_bytes()
    boundary = journal.rfind(b"\n", 0, max(1, int(len(journal) * cut))) + 1
    record = out / "tracking.jsonl"
    lines = [json.loads(line) for line in record.read_text().splitlines()]
    kept = [line for line in lines if line["event"] != "applied"]
    kept.append({"event": "applied", "offset": boundary, "time": time.time()})
    record.write_text("".join(json.dumps(line) + "\n" for line in kept))
    assert main(["repair", str(out)]) == 0
    assert store(out) == before
    applied = [json.loads(line) for line in record.read_text().splitlines() if '"applied"' in line]
    assert applied[-1]["offset"] == len((out / "journal.jsonl").read_bytes())


def test_the_study_run_holds_the_report_cell_and_the_sweep_run_the_files(write_sweep, tmp_path):
    """A tuned study with final retrains over two seeds: its MLflow run's test metrics are the report's
    cells (the mean over the retrains), and the sweep run carries the sweep file, its record and the
    report files as artifacts."""
    from mlflow.tracking import MlflowClient

    from launcher.report import load_document

    out = tmp_path / "out"
    text = SWEEP.format(out=out).replace("seeds: [0]", "seeds: [0, 1]").replace(
        "  scheduler:", "  final_epochs: 3\n  scheduler:")
    path = write_sweep(text)
    assert main(["sweep", str(path)]) == 0
    client = MlflowClient(f"sqlite:///{out / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("writer").experiment_id
    (study,) = client.search_runs([experiment], "tags.`launcher.kind` = 'study'")
    section = load_document(out).sections[0]
    column = section.columns[0].name
    for metric in ("test_mse", "test_mae"):
        cell = section.cell(metric, "ETTh1-96", column)
        assert len(cell.values) == 2 and study.data.metrics[metric] == pytest.approx(cell.mean, rel=1e-12)
    assert study.data.metrics["selected_runs"] == 2
    (sweep_run,) = client.search_runs([experiment], "tags.`launcher.kind` = 'sweep'")
    files = {a.path for folder in ("sweep", "report") for a in client.list_artifacts(sweep_run.info.run_id, folder)}
    assert {f"sweep/{path.name}", "sweep/sweep.json", "report/report.md", "report/report.csv",
            "report/report.html"} <= files and any(f.endswith(".png") for f in files)
    fetched = client.download_artifacts(sweep_run.info.run_id, "report/report.md", str(tmp_path))
    assert Path(fetched).read_text() == (out / "report.md").read_text()
