"""The sweep controller: plan trials, submit them to free worker slots, copy results into MLflow.

The controller is the process the user started. It validates everything first (nothing is
written for a bad spec or a missing dataset), then loops: fill free slots, poll all live jobs
in one call, ingest the ones that ended, repeat. A trial that fails is recorded as failed with
its traceback and the sweep goes on. Re-running on the same folder skips finished trials.
"""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Callable

from .config import SweepSpec, spec_to_dict
from .errors import SpecError
from .executors import Handle, Outcome, make_executor
from .journal import Journal, finished_trials
from .methods.params import METHOD_KIND
from .plan import Study, plan_trials
from .tracking import Tracker, default_uri
from .trial import TrialSpec

POLL_SECONDS = 0.5


def check_data(spec: SweepSpec) -> None:
    """Every dataset file must be found before anything is written or submitted."""
    from tasks.timeseries import DatasetNotFoundError, find_dataset_file

    for task in spec.tasks:
        try:
            find_dataset_file(task.dataset, task.path or spec.data_root)
        except DatasetNotFoundError as err:
            raise SpecError(str(err), file=str(spec.source), key=f"tasks[{task.dataset}]",
                            hint="set data_root in the sweep file or LAUNCHER_DATA_ROOT") from None


def git_revision(where: Path) -> str:
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=where, capture_output=True, text=True,
                             timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=where,
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return (sha or "unknown") + ("-dirty" if dirty else "")


# Keys that may change between runs on one folder without changing what the results mean.
RESUMABLE_CHANGES = ("executor", "description")


def _what_results_mean(recorded: dict) -> dict:
    return {k: v for k, v in recorded.items() if k not in RESUMABLE_CHANGES}


def prepare_out(spec: SweepSpec) -> None:
    """Create the sweep folder, or accept it if it holds this very sweep (then finished trials are kept).

    Changing the backend, the number of workers or the description is allowed on a rerun;
    changing tasks, methods, parameters, seeds or tracking is a different sweep and is refused.
    """
    out = Path(spec.out)
    recorded = out / "sweep.json"
    resolved = spec_to_dict(spec)
    if recorded.exists():
        previous = json.loads(recorded.read_text())
        if _what_results_mean(previous) != _what_results_mean(json.loads(json.dumps(resolved))):
            raise SpecError(f"{out} already holds a different sweep (its sweep.json differs from {spec.source})",
                            hint="pass --out NEW_FOLDER, or delete the folder to start over")
        return
    out.mkdir(parents=True, exist_ok=True)
    recorded.write_text(json.dumps(resolved, indent=2, sort_keys=True))


class Progress:
    """One status line: done / running / failed / pending and elapsed time."""

    def __init__(self, total: int, stream=None):
        self.total, self.stream, self.started = total, stream or sys.stderr, time.time()
        self.tty = self.stream.isatty()
        self._last = ""

    def show(self, done: int, running: int, failed: int, pending: int, latest: str = "") -> None:
        elapsed = time.time() - self.started
        line = (f"[{done + failed}/{self.total}] done {done}  running {running}  failed {failed}  "
                f"pending {pending}  {elapsed:5.0f}s  {latest}")
        if line == self._last:
            return
        self._last = line
        if self.tty:
            self.stream.write("\r" + line[:150].ljust(150))
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self.tty:
            self.stream.write("\n")


class Controller:
    def __init__(self, spec: SweepSpec, *, echo: Callable[[str], None] = print):
        self.spec = spec
        self.out = Path(spec.out)
        self.echo = echo
        self.journal = Journal(self.out / "journal.jsonl")
        self.tracker: Tracker | None = None
        self.run_ids: dict[str, str] = {}    # sweep / study / trial name -> MLflow run id

    # -- tracking -------------------------------------------------------------------------------
    def _open_tracking(self, studies: list[Study]) -> None:
        uri = self.spec.tracking.uri or default_uri(self.out)
        self.tracker = Tracker(uri, self.spec.name, artifact_root=self.out / "mlartifacts")
        known = {e["name"]: e["run_id"] for e in self.journal.replay() if e["event"] == "run_created"}
        self.run_ids.update(known)
        common = {"launcher.sweep": self.spec.name, "launcher.git": git_revision(Path(__file__).parent),
                  "launcher.host": socket.gethostname(), "launcher.backend": self.spec.executor.backend}
        if "sweep" not in self.run_ids:
            self._create("sweep", self.spec.name, "sweep", None, common, {"config": spec_to_dict(self.spec)})
        for study in studies:
            if study.name not in self.run_ids:
                tags = {**common, "launcher.study": study.name, "launcher.task": study.task,
                        "launcher.method": study.method, "launcher.method_kind": METHOD_KIND[study.method]}
                self._create(study.name, study.name, "study", self.run_ids["sweep"], tags, None)

    def _create(self, key: str, name: str, kind: str, parent: str | None, tags: dict, params: dict | None) -> str:
        run_id = self.tracker.create_run(name, kind, parent=parent, tags=tags, params=params)
        self.run_ids[key] = run_id
        self.journal.append("run_created", name=key, run_id=run_id)
        return run_id

    def _trial_run(self, trial: TrialSpec, job_id: str) -> str:
        # A trial that was submitted before (a controller that died) gets a fresh run; the old one
        # is closed as KILLED so the report never mixes half a result in.
        key = f"trial:{trial.trial_id}"
        if key in self.run_ids:
            self.tracker.finish(self.run_ids[key], "KILLED")
        tags = {"launcher.sweep": self.spec.name, "launcher.study": trial.study,
                "launcher.trial": trial.trial_id, "launcher.task": trial.task_name,
                "launcher.dataset": trial.dataset, "launcher.horizon": trial.horizon,
                "launcher.method": trial.method, "launcher.method_kind": METHOD_KIND[trial.method],
                "launcher.seed": trial.seed, "launcher.job_id": job_id,
                "launcher.backend": self.spec.executor.backend, "launcher.trial_dir": trial.trial_dir}
        return self._create(key, trial.trial_id, "trial", self.run_ids[trial.study], tags,
                            {"method": trial.params, "seed": trial.seed, "context": trial.context,
                             "horizon": trial.horizon, "dataset": trial.dataset})

    def _ingest(self, trial: TrialSpec, outcome: Outcome) -> None:
        run_id = self.run_ids[f"trial:{trial.trial_id}"]
        outbox = Path(trial.trial_dir) / "outbox.jsonl"
        if outbox.exists():
            lines = [json.loads(s) for s in outbox.read_text().splitlines() if s.strip()]
            self.tracker.log_outbox_lines(run_id, lines)
        if not outcome.ok:
            self.tracker.log_text(run_id, outcome.error or "unknown error", "error.txt")
            self.tracker.finish(run_id, "FAILED")
            self.journal.append("trial_failed", trial_id=trial.trial_id, error=(outcome.error or "")[-2000:])
            return
        result = outcome.result
        metrics = dict(result["metrics"])
        if result.get("n_parameters") is not None:
            metrics["n_parameters"] = result["n_parameters"]
        metrics["wall_seconds"] = result["wall_seconds"]
        self.tracker.log_metrics(run_id, metrics)
        if result.get("info"):
            self.tracker.log_params(run_id, {"chosen": result["info"]})
        tags = {"launcher.host": result.get("host", "")}
        if result.get("notes"):
            tags["launcher.notes"] = " | ".join(result["notes"])
        self.tracker.set_tags(run_id, tags)
        self.tracker.log_text(run_id, json.dumps(result, indent=2, sort_keys=True), "result.json")
        self.tracker.finish(run_id, "FINISHED")
        self.journal.append("trial_finished", trial_id=trial.trial_id, metrics=metrics)

    def _close_studies(self, studies: list[Study], trials: list[TrialSpec]) -> None:
        done = finished_trials(self.journal)
        for study in studies:
            members = [t.trial_id for t in trials if t.study == study.name]
            status = "FINISHED" if all(m in done for m in members) else "FAILED"
            self.tracker.finish(self.run_ids[study.name], status)
        self.tracker.finish(self.run_ids["sweep"], "FINISHED")

    # -- the loop -------------------------------------------------------------------------------
    def run(self) -> dict:
        studies, trials = plan_trials(self.spec, threads=self._threads_per_trial())
        prepare_out(self.spec)
        self.journal.append("sweep_started", pid=os.getpid(), trials=len(trials))
        self._open_tracking(studies)
        already = finished_trials(self.journal)
        pending = [t for t in trials if t.trial_id not in already]
        if already:
            self.echo(f"resuming: {len(already)} of {len(trials)} trials already finished in {self.out}")
        executor = make_executor(self.spec.executor.backend, self.out / "jobs", self.spec.executor.timeout_min)
        by_id = {t.trial_id: t for t in trials}
        live: list[Handle] = []
        done, failed = len(already), 0
        progress = Progress(len(trials))
        workers = self.spec.executor.workers
        try:
            while pending or live:
                while pending and len(live) < workers:
                    trial = pending.pop(0)
                    Path(trial.trial_dir).mkdir(parents=True, exist_ok=True)
                    for stale in ("outbox.jsonl", "result.json", "error.txt"):
                        (Path(trial.trial_dir) / stale).unlink(missing_ok=True)
                    handle = executor.submit(trial)
                    self._trial_run(trial, handle.job_id)
                    self.journal.append("trial_submitted", trial_id=trial.trial_id, job_id=handle.job_id)
                    live.append(handle)
                ended = executor.poll(live)
                for handle in ended:
                    live.remove(handle)
                    outcome = executor.outcome(handle)
                    self._ingest(by_id[handle.trial_id], outcome)
                    done, failed = (done + 1, failed) if outcome.ok else (done, failed + 1)
                    latest = handle.trial_id + (" ok" if outcome.ok else " FAILED")
                    progress.show(done, len(live), failed, len(pending), latest)
                if not ended:
                    progress.show(done, len(live), failed, len(pending))
                    time.sleep(POLL_SECONDS)
        finally:
            progress.close()
            for handle in live:   # interrupted: do not leave orphan processes behind
                try:
                    handle.job.cancel(check=False)
                except Exception:
                    pass
        self._close_studies(studies, trials)
        self.journal.append("sweep_finished", done=done, failed=failed)
        return {"trials": len(trials), "done": done, "failed": failed}

    def _threads_per_trial(self) -> int:
        if self.spec.executor.backend == "inline":
            return os.cpu_count() or 1
        return max(1, (os.cpu_count() or 1) // self.spec.executor.workers)


def describe_plan(spec: SweepSpec) -> str:
    """What `--dry-run` prints: every trial, the backend and where results would go. Writes nothing."""
    studies, trials = plan_trials(spec)
    lines = [f"sweep {spec.name}: {len(studies)} studies, {len(trials)} trials",
             f"  backend {spec.executor.backend}, {spec.executor.workers} worker slot(s), timeout {spec.executor.timeout_min} min",
             f"  output  {spec.out}",
             f"  tracking {spec.tracking.uri or default_uri(Path(spec.out))}", "", "trials:"]
    for t in trials:
        params = ", ".join(f"{k}={v}" for k, v in sorted(t.params.items()))
        lines.append(f"  {t.trial_id:<36} seed {t.seed}  {params}")
    return "\n".join(lines)
