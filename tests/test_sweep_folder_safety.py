"""A sweep folder under a hostile world: a second controller, SIGTERM, kill -9 with a trial still
running, a torn or damaged journal, a deleted MLflow store, a moved folder, failed trials retried
after a fix. Real parts: the CLI in subprocesses, real signals, submitit local processes, SQLite MLflow.
"""
import contextlib
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from launcher.__main__ import main

SWEEP = """
name: safety
out: {out}
seeds: [0, 1]
tasks:
  - dataset: ETTh1
    horizons: [96]
methods:
  synthetic:
    seconds_per_epoch: {seconds}
    space:
      y: {{float: [0.0, 1.0]}}
      x: {{float: [0.0, 1.0]}}
search:
  trials: {trials}
  scheduler: {{type: asha, eta: 2, grace: 1, max_epochs: 4}}
executor: {{backend: {backend}, workers: {workers}}}
"""


def sweep_file(write_sweep, out, *, seconds=0.0, trials=4, backend="inline", workers=2, name="s.yaml"):
    return write_sweep(SWEEP.format(out=out, seconds=seconds, trials=trials, backend=backend, workers=workers), name)


def cli(*args, **kwargs) -> subprocess.Popen:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([sys.executable, "-m", "launcher", *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env, **kwargs)


def events(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "journal.jsonl").read_text().splitlines()]


def wait_for(predicate, timeout=120.0, what="condition"):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def snapshot(folder: Path) -> dict:
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*")) if p.is_file()}


def segments_run(out: Path) -> Counter:
    counts = Counter()
    for log in (out / "trials").glob("*/segments.jsonl"):
        for line in log.read_text().splitlines():
            counts[(log.parent.name, json.loads(line)["until_epoch"])] += 1
    return counts


def duplicated_points(out: Path) -> list:
    with sqlite3.connect(out / "mlflow.db") as db:
        return db.execute("SELECT run_uuid, key, step, COUNT(*) FROM metrics GROUP BY run_uuid, key, step "
                          "HAVING COUNT(*) > 1").fetchall()


def family(pid: int) -> list[int]:
    """A process and all its descendants (a controller, its MLflow writer, its trial jobs)."""
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        for task in Path(f"/proc/{current}/task").glob("*"):
            try:
                todo += [int(child) for child in (task / "children").read_text().split()]
            except OSError:
                pass
    return found


def signal_family(pid: int, signum: int) -> None:
    for member in family(pid):
        try:
            os.kill(member, signum)
        except ProcessLookupError:
            pass


def live_processes_of(folder: Path) -> list[int]:
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if str(folder).encode() in (proc / "cmdline").read_bytes():
                    state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
                    if state != "Z":
                        found.append(int(proc.name))
            except OSError:
                pass
    return found


@pytest.mark.slow
def test_a_second_controller_is_refused_fast_and_changes_nothing(write_sweep, tmp_path):
    out = tmp_path / "out"
    path = sweep_file(write_sweep, out, seconds=0.3)
    first = cli("sweep", path)
    try:
        wait_for(lambda: (out / "journal.jsonl").exists() and any(e["event"] == "submitted" for e in events(out)),
                 what="the first controller to submit")
        # frozen, with its MLflow writer and jobs: the folder cannot change under the comparison
        signal_family(first.pid, signal.SIGSTOP)
        before = snapshot(out)
        for args in (("sweep", path), ("sweep", path, "--out", out), ("resume", out), ("resume", out, "--retry-failed"),
                     ("repair", out)):
            started = time.time()
            second = cli(*args)
            _, err = second.communicate(timeout=60)
            assert second.returncode == 2, (args, err)
            assert time.time() - started < 10          # the lock answers at once (interpreter start included)
            assert err.count("\n") == 1 and "in use by another controller" in err and f"pid {first.pid}" in err, err
        assert snapshot(out) == before                 # not one byte changed by the refused controllers
    finally:
        signal_family(first.pid, signal.SIGCONT)
    assert first.wait(timeout=300) == 0
    client = MlflowClient(f"sqlite:///{out / 'mlflow.db'}")
    exp = client.get_experiment_by_name("safety")
    trials = client.search_runs([exp.experiment_id], "tags.`launcher.kind` = 'trial'")
    assert len(trials) == 4 and not duplicated_points(out)
    # the lock is released: a later resume runs (and has nothing to do)
    assert main(["resume", str(out)]) == 0


@pytest.mark.slow
def test_sigterm_stops_like_ctrl_c_and_kill_9_orphans_are_adopted_not_rerun(write_sweep, tmp_path):
    out = tmp_path / "out"
    path = sweep_file(write_sweep, out, seconds=1.0, trials=3, backend="local", workers=2)
    jobs = out / "jobs"
    # SIGTERM while trials run: one message, exit 143, the running trial processes stopped with it
    controller = cli("sweep", path)
    wait_for(lambda: list(out.glob("trials/*/outbox.jsonl")), what="a trial to report an epoch")
    controller.send_signal(signal.SIGTERM)
    _, err = controller.communicate(timeout=60)
    assert controller.returncode == 143, err
    assert "stopped by SIGTERM" in err and "Traceback" not in err, err
    wait_for(lambda: not live_processes_of(jobs), timeout=20, what="the trial processes to stop")

    # kill -9 while a trial runs: its process survives the controller; `resume` adopts it, never starts a twin
    before = len(events(out))
    controller = cli("resume", out)
    wait_for(lambda: any(e["event"] == "submitted" for e in events(out)[before:]) and live_processes_of(jobs),
             what="a journalled trial process of the resumed controller")
    controller.send_signal(signal.SIGKILL)
    controller.wait()
    orphans = live_processes_of(jobs)
    assert orphans, "expected the running trial to outlive its controller"
    for pid in orphans:          # held still, so that it is surely running when the next controller looks
        os.kill(pid, signal.SIGSTOP)
    said: list[str] = []
    resumed = cli("resume", out)
    reader = threading.Thread(target=lambda: said.extend(resumed.stdout), daemon=True)
    reader.start()
    try:     # the resumed controller has looked at the journal and the running jobs
        wait_for(lambda: any("resuming from" in line for line in said), timeout=120, what="the resume to start")
        time.sleep(3)
    finally:
        for pid in orphans:
            with contextlib.suppress(ProcessLookupError):     # an unjournalled one was stopped for good
                os.kill(pid, signal.SIGCONT)
    assert resumed.wait(timeout=300) == 0, resumed.stderr.read()
    # a journalled orphan is adopted (watched, not restarted; usually the case here), an unjournalled one
    # killed, one that ended meanwhile recovered from its result file; in every case:
    assert all(n == 1 for n in segments_run(out).values()), segments_run(out)   # no segment ran twice
    assert not duplicated_points(out)
    for log in (out / "trials").glob("*/segments.jsonl"):       # and never two copies at once
        spans = sorted((json.loads(x)["started"], json.loads(x)["ended"]) for x in log.read_text().splitlines())
        assert all(a[1] <= b[0] + 1e-3 for a, b in zip(spans, spans[1:])), spans


def _finished_sweep(write_sweep, tmp_path, name="out") -> Path:
    out = tmp_path / name
    assert main(["sweep", str(sweep_file(write_sweep, out, name=f"{name}.yaml"))]) == 0
    return out


@pytest.mark.slow
def test_a_torn_last_journal_line_is_cut_off_not_appended_to(write_sweep, tmp_path, capsys):
    out = _finished_sweep(write_sweep, tmp_path)
    journal = out / "journal.jsonl"
    text = journal.read_bytes()
    journal.write_bytes(text[:-25])                      # the sweep_finished line, torn mid-write
    assert main(["resume", str(out)]) == 0
    lines = journal.read_bytes().splitlines()
    assert all(json.loads(line) for line in lines)       # every line is a whole event again
    assert (out / "journal.torn").read_bytes().strip() == text[:-25].splitlines()[-1].strip()
    assert main(["report", str(out)]) == 0 and main(["status", str(out)]) == 0


@pytest.mark.slow
def test_a_damaged_line_inside_the_journal_is_refused_with_its_line(write_sweep, tmp_path, capsys):
    out = _finished_sweep(write_sweep, tmp_path)
    journal = out / "journal.jsonl"
    lines = journal.read_text().splitlines(keepends=True)
    lines[5] = '{"event": "segment_d\x00garbage\n'
    journal.write_text("".join(lines))
    before = journal.read_bytes()
    capsys.readouterr()
    assert main(["resume", str(out)]) == 2
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and errors[0].startswith(f"error: {journal}:6: damaged journal line"), err
    assert journal.read_bytes() == before                # nothing appended to a journal it cannot trust
    assert main(["status", str(out)]) == 0               # the read-only views still work


def trial_points(out: Path) -> list:
    """Every metric point of every live trial run, by trial id (read with sqlite: MLflow caches a store
    per URI inside one process, and this process must not see the deleted file's old handle)."""
    with sqlite3.connect(out / "mlflow.db") as db:
        return sorted(db.execute(
            "SELECT t.value, r.status, m.key, m.step, m.value, m.timestamp FROM runs r "
            "JOIN tags t ON t.run_uuid = r.run_uuid AND t.key = 'launcher.trial' "
            "JOIN metrics m ON m.run_uuid = r.run_uuid WHERE r.lifecycle_stage = 'active'").fetchall())


def run_cli(*args) -> str:
    done = cli(*args)
    _, err = done.communicate(timeout=300)
    assert done.returncode == 0, err
    return err


@pytest.mark.slow
def test_a_deleted_mlflow_store_is_rebuilt_from_the_journal(write_sweep, tmp_path):
    out = _finished_sweep(write_sweep, tmp_path)
    report = (out / "report.csv").read_text()
    original = trial_points(out)
    assert len({row[0] for row in original}) == 4
    (out / "mlflow.db").unlink()
    shutil.rmtree(out / "mlartifacts")
    run_cli("repair", out)
    assert (out / "report.csv").read_text() == report    # every cell and cost row back, byte for byte
    assert trial_points(out) == original                  # same points, same timestamps
    assert not duplicated_points(out)
    assert list((out / "mlartifacts").rglob("result.json"))
    # one trial run deleted by hand: resume puts it back under its parent
    with sqlite3.connect(out / "mlflow.db") as db:
        victim = db.execute("SELECT run_uuid FROM tags WHERE key = 'launcher.trial' LIMIT 1").fetchone()[0]
        for table in ("tags", "metrics", "latest_metrics", "params", "runs"):
            db.execute(f"DELETE FROM {table} WHERE run_uuid = ?", (victim,))
    run_cli("resume", out)
    assert trial_points(out) == original
    assert (out / "report.csv").read_text() == report


@pytest.mark.slow
def test_a_moved_folder_resumes_where_it_now_is(write_sweep, tmp_path):
    out = tmp_path / "first"
    path = sweep_file(write_sweep, out, seconds=0.05, trials=4)
    controller = cli("sweep", path)
    wait_for(lambda: (out / "journal.jsonl").exists() and sum(e["event"] == "segment_done" for e in events(out)) >= 2,
             what="two segments")
    controller.send_signal(signal.SIGKILL)
    controller.wait()
    moved = tmp_path / "elsewhere" / "moved"
    moved.parent.mkdir()
    shutil.move(str(out), str(moved))
    assert main(["resume", str(moved)]) == 0
    assert not out.exists()                                 # nothing written where the folder used to be
    client = MlflowClient(f"sqlite:///{moved / 'mlflow.db'}")
    exp = client.get_experiment_by_name("safety")
    assert exp.artifact_location == (moved / "mlartifacts").resolve().as_uri()
    runs = client.search_runs([exp.experiment_id], "tags.`launcher.kind` = 'trial'")
    assert len(runs) == 4 and all(r.info.artifact_uri.startswith(exp.artifact_location) for r in runs)
    assert json.loads((moved / "sweep.json").read_text())["out"] == "."


@pytest.mark.slow
def test_failed_trials_run_again_after_a_fix_with_retry_failed(write_sweep, tmp_path, capsys):
    out = tmp_path / "out"
    text = SWEEP.format(out=out, seconds=0.0, trials=1, backend="inline", workers=1).replace(
        "    space:\n      y: {float: [0.0, 1.0]}\n      x: {float: [0.0, 1.0]}\n", "    space: {}\n")
    path = write_sweep(text)
    for seed in (0, 1):       # something outside the spec breaks the trials (here: a corrupt checkpoint)
        folder = out / "trials" / f"ETTh1-96__synthetic__s{seed}"
        folder.mkdir(parents=True)
        (folder / "checkpoint.json").write_text("{not json")
    assert main(["sweep", str(path)]) == 1
    client = MlflowClient(f"sqlite:///{out / 'mlflow.db'}")
    exp = client.get_experiment_by_name("safety")
    failed = {r.info.run_id for r in client.search_runs([exp.experiment_id], "tags.`launcher.kind` = 'trial'")
              if r.info.status == "FAILED"}
    assert len(failed) == 2
    for folder in (out / "trials").iterdir():          # the fix
        (folder / "checkpoint.json").unlink()
    assert main(["resume", str(out)]) == 1             # without the flag a failure stays a failure
    assert main(["resume", str(out), "--retry-failed"]) == 0
    runs = client.search_runs([exp.experiment_id], "tags.`launcher.kind` = 'trial'")
    assert {r.info.run_id for r in runs} == failed     # the same runs went on
    assert all(r.info.status == "FINISHED" and r.data.metrics["test_mse"] > 0 for r in runs)
    cells = [line for line in (out / "report.csv").read_text().splitlines() if ",cell," in line]
    assert cells and all(",ok," in line for line in cells), cells


@pytest.mark.slow
def test_ctrl_c_at_the_terminal_prints_one_message_not_child_tracebacks(write_sweep, tmp_path):
    out = tmp_path / "out"
    path = sweep_file(write_sweep, out, seconds=1.0, trials=3, backend="local", workers=2)
    controller = cli("sweep", path, start_new_session=True)     # its own process group, like a terminal's job
    wait_for(lambda: list(out.glob("trials/*/outbox.jsonl")), what="a trial to report an epoch")
    os.killpg(controller.pid, signal.SIGINT)                    # what Ctrl-C does: every process of the group
    _, err = controller.communicate(timeout=60)
    assert controller.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err and "KeyboardInterrupt" not in err, err
    wait_for(lambda: not live_processes_of(out / "jobs"), timeout=20, what="the trial processes to stop")


def test_a_folder_started_under_the_old_default_optimizer_says_how_to_resume_it(write_sweep, tmp_path, capsys):
    out = tmp_path / "out"
    text = SWEEP.format(out=out, seconds=0.0, trials=2, backend="inline", workers=1)
    sweep = write_sweep(text)
    assert main(["sweep", str(sweep)]) == 0
    # what a launcher from before the default changed recorded for this very file
    record = json.loads((out / "sweep.json").read_text())
    record["search"]["optimizer"] = "TwoPointsDE"
    (out / "sweep.json").write_text(json.dumps(record, indent=2))
    journal_before = (out / "journal.jsonl").read_bytes()
    assert main(["sweep", str(sweep)]) == 2
    err = capsys.readouterr().err
    assert "started with optimizer TwoPointsDE" in err and "resolves to TwoPointsDE_LHS" in err
    assert "add `optimizer: TwoPointsDE`" in err and "Traceback" not in err
    assert (out / "journal.jsonl").read_bytes() == journal_before         # nothing lost, nothing written
    # naming it, as the message says, resumes the folder (finished: nothing to run)
    write_sweep(text.replace("search:\n", "search:\n  optimizer: TwoPointsDE\n"))
    assert main(["sweep", str(sweep)]) == 0
    # any other change is another sweep
    write_sweep(text.replace("search:\n", "search:\n  optimizer: TwoPointsDE\n").replace("trials: 2", "trials: 3"))
    assert main(["sweep", str(sweep)]) == 2
    assert "already holds a different sweep" in capsys.readouterr().err
