"""MLflow off the controller's critical path: a writer that follows the journal into the store.

The controller only journals (one fsynced line per event) and goes straight back to refilling slots;
this writer, a child process of the controller, tails `journal.jsonl` and makes the MLflow writes each
event implies: the sweep and study runs, a trial's run when its first segment is submitted, a
segment's outbox curves, final metrics, tags and result when it ends, failures, the selected trials.
On a cluster's controller node it runs on another core; the controller's cost per event no longer
contains MLflow's (a commit per transaction on SQLite, a round trip per call to a server).

Its own record, `tracking.jsonl` (append-only, fsynced), holds the run id of each run key ("sweep",
a study name, "trial:<id>") and a watermark: the journal bytes whose writes are done. Every write can
be repeated without changing what MLflow holds (sweep_runs.SweepRuns), so a writer killed anywhere
(kill -9 of the controller kills it too) redoes, at the next start, the events after its watermark.

The journal stays the only source of truth: at start the writer checks that every run it recorded is
still in the store; runs the store lost (a deleted `mlflow.db`, a run removed by hand) are made again
by applying the journal's events for them from the first line (`launcher repair DIR` does the same
without running anything). Runs the store holds that no record knows (made by a writer killed between
creating a run and recording it) are closed and moved to MLflow's trash.
"""
from __future__ import annotations

import fcntl
import json
import os
import select
import signal
import socket
import sys
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from launcher.engine.child import die_with_parent
from launcher.engine.journal import Journal
from launcher.engine.plan import plan_studies
from launcher.engine.preflight import git_revision
from launcher.engine.sweep_runs import SweepRuns, outbox_lines
from launcher.engine.trial_specs import gpus_per_trial, threads_per_trial
from launcher.job.trial import result_name
from launcher.jsonl import complete_lines, parse_object, read_objects
from launcher.spec.load import spec_to_dict
from launcher.spec.sweep import SweepSpec
from launcher.tracking import Tracker, relocate_artifacts, sweep_uri

RECORD = "tracking.jsonl"
BATCH_EVENTS = 500          # journal events applied between two watermarks


@dataclass
class TrialRecord:
    """What the writer knows of a trial from the journal (enough for its run's tags and writes)."""
    study: str
    params: dict
    seed: int
    final: bool
    job_id: str = "rebuilt"
    copied: int = 0          # outbox lines the store holds


class TrackingWriter:
    def __init__(self, spec: SweepSpec, *, echo: Callable[[str], None] = print):
        self.spec = spec
        self.out = Path(spec.out)
        self.echo = echo
        self.plans = {plan.name: plan for plan in plan_studies(spec)}
        self.journal_path = self.out / "journal.jsonl"
        self.record = Journal(self.out / RECORD)
        self.run_ids: dict[str, str] = {}
        self.trials: dict[str, TrialRecord] = {}
        self.offset = 0                    # journal bytes read (complete lines)
        self.watermark = 0                 # journal bytes whose writes are done
        self.lost: set[str] = set()        # run keys made again from the first line
        self.created = 0                   # runs this writer made

    # ------------------------------------------------------------------ start
    def open(self) -> None:
        uri = sweep_uri(self.spec)
        if not self.spec.tracking.uri:      # a moved or copied folder: artifacts go to this folder, not the old one
            relocate_artifacts(uri, self.out / "mlartifacts")
        self.tracker = Tracker(uri, self.spec.name, artifact_root=self.out / "mlartifacts")
        self.common_tags = {"launcher.sweep": self.spec.name, "launcher.git": git_revision(Path(__file__).parent),
                            "launcher.host": socket.gethostname(), "launcher.backend": self.spec.executor.backend}
        self.runs = SweepRuns(self.tracker, self.run_ids)
        self._read_record()
        lost = self.runs.missing()
        if lost:
            self.echo(f"the MLflow store lacks {len(lost)} of the {len(self.run_ids)} runs this sweep journalled: "
                      "rebuilding them from the journal and the trial folders")
            for key in lost:
                del self.run_ids[key]
            self.lost = set(lost)
        self.runs.close_orphans()
        self._sweep_and_study_runs()
        if any(key == "sweep" or key in self.plans for key in self.lost):
            self._reparent()

    def _read_record(self) -> None:
        """Run ids and the watermark from `tracking.jsonl`; run ids an older controller journalled."""
        for event in read_objects(self.record.path):
            if event.get("event") == "run_created":
                self.run_ids[event["name"]] = event["run_id"]
            elif event.get("event") == "applied":
                self.watermark = int(event["offset"])
        # folders from before this writer existed journalled run ids (checked in bytes: parsing a long
        # journal for nothing costs seconds)
        legacy = self.journal_path.exists() and b'"run_created"' in self.journal_path.read_bytes()
        for event in read_objects(self.journal_path) if legacy else []:
            if event.get("event") == "run_created":
                self.run_ids.setdefault(event["name"], event["run_id"])
        size = self.journal_path.stat().st_size if self.journal_path.exists() else 0
        if self.watermark > size:           # not this journal's watermark: everything again (idempotent)
            self.watermark = 0

    def _create(self, key: str, name: str, kind: str, parent: str | None, tags: dict, params: dict | None) -> str:
        run_id = self.tracker.create_run(name, kind, parent=parent, tags=tags, params=params)
        self.run_ids[key] = run_id
        self.created += 1
        self.record.append("run_created", name=key, run_id=run_id)
        return run_id

    def _sweep_and_study_runs(self) -> None:
        if "sweep" not in self.run_ids:
            self._create("sweep", self.spec.name, "sweep", None, self.common_tags, {"config": spec_to_dict(self.spec)})
        for plan in self.plans.values():
            if plan.name not in self.run_ids:
                tags = {**self.common_tags, "launcher.study": plan.name, "launcher.task": plan.task,
                        "launcher.method": plan.method, "launcher.arm": plan.arm, "launcher.column": plan.column,
                        "launcher.method_kind": plan.kind}
                params = {"optimizer": plan.optimizer, "trials": plan.trials,
                          "space": plan.space.to_dict() if plan.space else None,
                          "asha": vars(plan.asha) if plan.asha else None}
                self._create(plan.name, plan.name, "study", self.run_ids["sweep"], tags, params)

    def _reparent(self) -> None:
        """Kept runs point at their parents, which may have been made again."""
        for key, run_id in self.run_ids.items():
            if key.startswith("trial:") and key[len("trial:"):] in self.trials:
                parent = self.run_ids[self.trials[key[len("trial:"):]].study]
            elif key in self.plans:
                parent = self.run_ids["sweep"]
            else:
                continue
            self.tracker.set_tags(run_id, {"mlflow.parentRunId": parent})

    def _trial_run(self, trial_id: str) -> str:
        key = f"trial:{trial_id}"
        if key in self.run_ids:      # later segments and retries log into the same run (job id: at ingest)
            return self.run_ids[key]
        trial = self.trials[trial_id]
        plan = self.plans[trial.study]
        tags = {**self.common_tags, "launcher.study": plan.name, "launcher.trial": trial_id,
                "launcher.task": plan.task, "launcher.dataset": plan.dataset, "launcher.horizon": plan.horizon,
                "launcher.method": plan.method, "launcher.arm": plan.arm, "launcher.column": plan.column,
                "launcher.method_kind": plan.kind, "launcher.seed": trial.seed,
                "launcher.job_id": trial.job_id, "launcher.trial_dir": str(self.out / "trials" / trial_id),
                "launcher.cpus": threads_per_trial(self.spec, plan), "launcher.gpus": gpus_per_trial(self.spec, plan),
                "launcher.final": str(trial.final).lower()}
        return self._create(key, trial_id, "trial", self.run_ids[plan.name], tags,
                            {"method": trial.params, "seed": trial.seed, "context": plan.context,
                             "horizon": plan.horizon, "dataset": plan.dataset})

    # ------------------------------------------------------------------ events
    def _writes(self, key: str) -> bool:
        """Is this event's write due: past the watermark, or for a run the store lost."""
        return self.offset > self.watermark or key in self.lost

    def apply(self, event: dict) -> None:
        kind = event.get("event")
        trial_id = event.get("trial_id")
        if kind == "asked":
            plan = self.plans[event["study"]]
            params = event["params"]
            seed = event.get("seed")
            if seed is None:     # journals before the seed was journalled: the rule of Study._add
                seed = int(trial_id.rsplit("__s", 1)[1]) if plan.space is None else int(params.get("seed", plan.seeds[0]))
            self.trials[trial_id] = TrialRecord(event["study"], params, int(seed), final=False)
        elif kind == "final_asked":
            self.trials[trial_id] = TrialRecord(event["study"], event["params"], int(event["seed"]), final=True)
        elif kind == "submitted":
            self.trials[trial_id].job_id = str(event["job_id"])
            if self._writes(f"trial:{trial_id}"):
                self._trial_run(trial_id)
        elif kind == "segment_done":
            self._segment_done(event)
        elif kind == "trial_failed":
            self._trial_failed(event)
        elif kind == "retry_failed":
            for failed_id, _ in event["segments"]:
                key = f"trial:{failed_id}"
                if self._writes(key) and key in self.run_ids:     # the same run goes on
                    self.tracker.client.update_run(self.run_ids[key], status="RUNNING")
        elif kind == "study_finished":
            if self._writes(event["study"]) or any(self._writes(f"trial:{t}") for t in event["selected"]):
                self._study_finished(event)
        elif kind == "sweep_finished":
            if self._writes("sweep"):
                self.tracker.finish(self.run_ids["sweep"], "FINISHED")

    def _segment_done(self, event: dict) -> None:
        trial = self.trials[event["trial_id"]]
        key = f"trial:{event['trial_id']}"
        if self._writes(key):
            run_id = self._trial_run(event["trial_id"])
            trial_dir = self.out / "trials" / event["trial_id"]
            lines = outbox_lines(trial_dir, event["lines"])
            result_file = trial_dir / result_name(event["until_epoch"])
            try:
                result = json.loads(result_file.read_text())
            except (OSError, ValueError):
                result = {"metrics": event["metrics"]}
            self.runs.log_segment(run_id, step=int(event["until_epoch"] or 0), metrics=event["metrics"],
                                  result=result, result_file=result_file, outbox=lines,
                                  new_lines=max(0, len(lines) - trial.copied), decision=event["decision"],
                                  asha=self.plans[trial.study].asha is not None, fallback_time=event["time"],
                                  job_id=event.get("job_id"))
        trial.copied = max(trial.copied, int(event["lines"]))

    def _trial_failed(self, event: dict) -> None:
        trial = self.trials[event["trial_id"]]
        key = f"trial:{event['trial_id']}"
        lines = event.get("lines")
        if self._writes(key):
            run_id = self._trial_run(event["trial_id"])
            trial_dir = self.out / "trials" / event["trial_id"]
            if lines is not None:       # the curves the failed segment reported before it died
                self.tracker.log_outbox_lines(run_id, outbox_lines(trial_dir, lines)[trial.copied:])
            if not event["retry"]:
                error_file = trial_dir / "error.txt"
                error = error_file.read_text() if error_file.exists() else event.get("error")
                self.runs.log_failure(run_id, error)
        if lines is not None:
            trial.copied = max(trial.copied, int(lines))

    def _study_finished(self, event: dict) -> None:
        run_id = self.run_ids[event["study"]]
        for trial_id in event["selected"]:      # the retrains over seeds (or the best trial) are the result
            self.tracker.set_tags(self._trial_run(trial_id), {"launcher.selected": "true"})
        if event.get("best"):
            self.tracker.set_tags(run_id, {"launcher.selected_trial": event["best"]})
            # stamped with the time of the best trial's result: finishing again writes the very same points
            self.tracker.log_metrics(run_id, event["picked"], timestamp_s=event["picked_time"])
            self.tracker.log_params(run_id, {"selected": event["selected_params"]})
        self.tracker.finish(run_id, event["status"])

    # ------------------------------------------------------------------ following the journal
    def step(self) -> int:
        """Apply the complete journal lines appended since the last call (at most BATCH_EVENTS past the
        watermark), then move the watermark. Returns the lines read."""
        try:
            with open(self.journal_path, "rb") as fh:
                fh.seek(self.offset)
                data = fh.read(1 << 22)
        except FileNotFoundError:
            return 0
        applied = read = 0
        for raw in complete_lines(data):
            read += 1
            self.offset += len(raw) + 1
            event = parse_object(raw)
            if event is not None and isinstance(event.get("event"), str):   # a damaged line: the controller's to judge
                self.apply(event)
            if self.offset > self.watermark:      # lines before the watermark only rebuild the writer's view
                applied += 1
                if applied >= BATCH_EVENTS:
                    break
        if applied:
            self.watermark = self.offset
            self.record.append("applied", offset=self.offset)
        return read

    def catch_up(self) -> int:
        """Everything journalled so far (`repair`, and a controller's last drain)."""
        total = 0
        while (count := self.step()):
            total += count
        return total


def log_sweep_artifacts(spec: SweepSpec, files: list[Path]) -> int:
    """The sweep run gets the sweep file, its record and the report (md, csv, html, figures) as artifacts,
    so MLflow alone holds what was asked and what came out. Called after the writer has caught up (the
    files go to the artifact store, no run's data changes). Returns the files logged."""
    out = Path(spec.out)
    run_ids = {e["name"]: e["run_id"] for e in read_objects(out / RECORD) if e.get("event") == "run_created"}
    if "sweep" not in run_ids:
        return 0
    tracker = Tracker(sweep_uri(spec), spec.name, artifact_root=out / "mlartifacts")
    logged = 0
    for path in [spec.source, out / "sweep.json", *files]:
        if Path(path).is_file():
            folder = "report" if Path(path).parent == out and Path(path).name.startswith("report") else "sweep"
            tracker.client.log_artifact(run_ids["sweep"], str(path), folder)
            logged += 1
    return logged


# ---------------------------------------------------------------------- the child process
class WriterProcess:
    """The writer in a child process of the controller (forked: it shares the parsed sweep). It follows
    the journal until the controller closes the pipe between them, then applies what is left and exits.
    It dies with the controller (a kill -9 of the controller leaves no writer behind)."""

    def __init__(self, spec: SweepSpec, echo: Callable[[str], None] = print):
        sys.stdout.flush()
        sys.stderr.flush()
        read_end, self.write_end = os.pipe()
        parent = os.getpid()
        self.pid = os.fork()
        if self.pid == 0:                       # the child
            os.close(self.write_end)
            os._exit(_child_main(spec, read_end, echo, parent))
        os.close(read_end)

    def finish(self, timeout_s: float | None = None) -> int | None:
        """Tell the writer that no more events come; wait for it (up to `timeout_s`, then SIGTERM: it
        stops after its current write). Returns its exit status (0: everything journalled is in MLflow)."""
        if self.write_end is not None:
            os.close(self.write_end)
            self.write_end = None
        import time

        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while True:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                return os.waitstatus_to_exitcode(status)
            if deadline is not None and time.monotonic() > deadline:
                os.kill(self.pid, signal.SIGTERM)
                deadline = None
                _, status = os.waitpid(self.pid, 0)
                return os.waitstatus_to_exitcode(status)
            time.sleep(0.02)


def _child_main(spec: SweepSpec, read_end: int, echo: Callable[[str], None], parent: int) -> int:
    stopping: list[int] = []
    try:
        die_with_parent(parent)
        signal.signal(signal.SIGINT, signal.SIG_IGN)       # Ctrl-C is the controller's to handle
        for signum in (signal.SIGTERM, signal.SIGHUP):
            signal.signal(signum, lambda number, frame: stopping.append(number))
        _close_inherited_lock(spec)
        with open(Path(spec.out) / ".tracking.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)               # a writer of a killed controller is gone first
            writer = TrackingWriter(spec, echo=echo)
            writer.open()
            while not stopping:
                if writer.step():
                    continue
                readable, _, _ = select.select([read_end], [], [], 0.05)
                if readable and not os.read(read_end, 1):   # the controller is done: drain and exit
                    while not stopping and writer.step():
                        pass
                    break
        sys.stdout.flush()
        return 0
    except BaseException:       # noqa: BLE001 - the child must never unwind into the controller's code
        try:
            (Path(spec.out) / "tracking.error.txt").write_text(traceback.format_exc())
            print(f"MLflow tracking stopped: {traceback.format_exc().strip().splitlines()[-1]} "
                  f"(details in {Path(spec.out) / 'tracking.error.txt'})", file=sys.stderr, flush=True)
        except BaseException:   # noqa: BLE001
            pass
        return 1


def _close_inherited_lock(spec: SweepSpec) -> None:
    """The controller's folder lock is its own: the child closes its copy of the descriptor, so the lock
    is free the moment the controller dies."""
    from launcher.engine.lock import sweep_lock

    lock = sweep_lock(Path(spec.out))
    if lock.fd is not None:
        os.close(lock.fd)
        lock.fd = None
