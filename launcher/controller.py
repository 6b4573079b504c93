"""The sweep controller: a steady-state loop over worker slots, driven by studies, recorded in a journal.

The controller is the process the user started. Everything is validated first (nothing is
written for a bad spec or a missing dataset). Then it loops: fill every free slot at once (a
promoted trial's next segment first, else a new configuration from the study with the fewest
trials so far), poll all live jobs in one call, and ingest the segments that ended: copy their
outbox into MLflow, take the ASHA decision, tell the optimizer when a trial stops. Every step is
a journal event; running the same command again replays the journal and continues.

Failure policy: a trial whose code raised is FAILED (traceback in MLflow), told to its optimizer
as the worst loss, and the sweep goes on, until failed / ended trials exceeds
`search.max_failure_rate` (with at least MIN_FAILURES_TO_PAUSE failures): then no new work is
started, running jobs finish, and the sweep pauses, resumable. A job that died without a Python
error (killed, timed out, node lost) is infrastructure: retried from its checkpoint, not told.
"""
from __future__ import annotations

import json
import os
import socket
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from .config import SweepSpec, spec_to_dict
from .executors import Handle, Outcome, make_executor
from .journal import Journal
from .lock import sweep_lock
from .methods.params import METHOD_KIND, METHOD_PARAMS
from .plan import plan_studies
from .preflight import git_revision, prepare_out
from .progress import Progress
from .study import Study, TrialState
from .sweep_runs import SweepRuns, outbox_lines
from .tracking import Tracker, default_uri, relocate_artifacts
from .trial import TrialSpec
from .trial_specs import build_trial_spec, gpus_per_trial, threads_per_trial

MIN_FAILURES_TO_PAUSE = 3
MAX_INFRA_RETRIES = 3


@dataclass
class Live:
    handle: Handle | None
    trial: TrialState
    until_epoch: int | None
    ready: Outcome | None = None    # a segment found already completed on disk (after a crash)


class Controller:
    def __init__(self, spec: SweepSpec, *, echo: Callable[[str], None] = print, retry_failed: bool = False):
        self.spec = spec
        self.retry_failed = retry_failed
        self.out = Path(spec.out)
        self.echo = echo
        self.journal = Journal(self.out / "journal.jsonl")
        self.plans = plan_studies(spec)
        self.studies: dict[str, Study] = {}
        self.tracker: Tracker | None = None
        self.run_ids: dict[str, str] = {}
        self.queue: deque[tuple[TrialState, int | None]] = deque()   # segments waiting for a slot
        self.live: list[Live] = []
        self.counts = {"done": 0, "failed": 0}
        self.paused = False
        self.restore_only: int | None = None   # after replay: resubmit only this many queued segments first
        self.history: dict[str, list[dict]] = {}     # trial id -> its journalled ends (to rebuild MLflow)
        self.jobs: dict[str, dict] = {}              # trial id -> the "submitted" event of its segment in flight
        self.lock = sweep_lock(self.out)

    # ------------------------------------------------------------------ tracking
    def _open_tracking(self) -> None:
        uri = self.spec.tracking.uri or default_uri(self.out)
        if not self.spec.tracking.uri:      # a moved or copied folder: artifacts go to this folder, not the old one
            relocate_artifacts(uri, self.out / "mlartifacts")
        self.tracker = Tracker(uri, self.spec.name, artifact_root=self.out / "mlartifacts")
        self.common_tags = {"launcher.sweep": self.spec.name, "launcher.git": git_revision(Path(__file__).parent),
                            "launcher.host": socket.gethostname(), "launcher.backend": self.spec.executor.backend}
        self.runs = SweepRuns(self.tracker, self.run_ids)
        lost = self.runs.missing()
        if lost:
            self.echo(f"the MLflow store lacks {len(lost)} of the {len(self.run_ids)} runs this sweep journalled: "
                      "rebuilding them from the journal and the trial folders")
            self._rebuild(lost)
        self.runs.close_orphans()
        self._sweep_and_study_runs()

    def _sweep_and_study_runs(self) -> None:
        if "sweep" not in self.run_ids:
            self._create("sweep", self.spec.name, "sweep", None, self.common_tags, {"config": spec_to_dict(self.spec)})
        for plan in self.plans:
            if plan.name not in self.run_ids:
                tags = {**self.common_tags, "launcher.study": plan.name, "launcher.task": plan.task,
                        "launcher.method": plan.method, "launcher.arm": plan.arm, "launcher.column": plan.column,
                        "launcher.method_kind": METHOD_KIND[plan.method]}
                params = {"optimizer": plan.optimizer, "trials": plan.trials,
                          "space": plan.space.to_dict() if plan.space else None,
                          "asha": vars(plan.asha) if plan.asha else None}
                self._create(plan.name, plan.name, "study", self.run_ids["sweep"], tags, params)

    # ------------------------------------------------------------------ rebuild (the journal is the truth)
    def _rebuild(self, lost: list[str]) -> int:
        """Recreate the runs the store lost, from the journal's history and the trial folders; the
        runs it still has are re-parented when their parent was recreated. Returns runs created."""
        for key in lost:
            del self.run_ids[key]
        created = len(self.run_ids)
        self._sweep_and_study_runs()
        trials = {t.trial_id: (s, t) for s in self.studies.values() for t in s.trials.values()}
        for key in [k for k in lost if k.startswith("trial:")]:
            found = trials.get(key[len("trial:"):])
            if found is not None:
                self._relog_trial(*found)
        for key, run_id in self.run_ids.items():      # kept runs point at their (maybe new) parents
            if key.startswith("trial:") and key[len("trial:"):] in trials:
                parent = self.run_ids[trials[key[len("trial:"):]][0].plan.name]
            elif key in self.studies:
                parent = self.run_ids["sweep"]
            else:
                continue
            if key not in lost:
                self.tracker.set_tags(run_id, {"mlflow.parentRunId": parent})
        return len(self.run_ids) - created

    def _relog_trial(self, study: Study, trial: TrialState) -> None:
        """A lost trial run, again: its params and tags, outbox curves, each ended segment, its end."""
        submitted = self.jobs.get(trial.trial_id, {}).get("job_id", "rebuilt")
        run_id = self._trial_run(study, trial, submitted)
        trial_dir = self._trial_dir(trial)
        copied = 0
        for event in self.history.get(trial.trial_id, []):
            if event["event"] == "segment_done":
                lines = outbox_lines(trial_dir, event["lines"])
                self.tracker.log_outbox_lines(run_id, lines[copied:])
                spec = self._trial_spec(study, trial, event["until_epoch"])
                result_file = trial_dir / spec.result_name
                result = json.loads(result_file.read_text()) if result_file.exists() else {"metrics": event["metrics"]}
                self.runs.log_segment(run_id, step=int(event["until_epoch"] or 0), metrics=event["metrics"],
                                      result=result, result_file=result_file, new_lines=lines[copied:],
                                      decision=event["decision"], asha=study.plan.asha is not None,
                                      fallback_time=event["time"])
                copied = max(copied, event["lines"])
            elif event["event"] == "trial_failed" and not event["retry"]:
                error_file = trial_dir / "error.txt"
                self.runs.log_failure(run_id, error_file.read_text() if error_file.exists() else event["error"])
            elif event["event"] == "retry_failed":
                self.tracker.client.update_run(run_id, status="RUNNING")
        self.tracker.log_outbox_lines(run_id, outbox_lines(trial_dir, trial.ingested_lines)[copied:])

    def _create(self, key: str, name: str, kind: str, parent: str | None, tags: dict, params: dict | None) -> str:
        run_id = self.tracker.create_run(name, kind, parent=parent, tags=tags, params=params)
        self.run_ids[key] = run_id
        self.journal.append("run_created", name=key, run_id=run_id)
        return run_id

    def _trial_run(self, study: Study, trial: TrialState, job_id: str) -> str:
        key = f"trial:{trial.trial_id}"
        if key in self.run_ids:      # later segments and retries log into the same run
            self.tracker.set_tags(self.run_ids[key], {"launcher.job_id": job_id})
            return self.run_ids[key]
        plan = study.plan
        tags = {**self.common_tags, "launcher.study": plan.name, "launcher.trial": trial.trial_id,
                "launcher.task": plan.task, "launcher.dataset": plan.dataset, "launcher.horizon": plan.horizon,
                "launcher.method": plan.method, "launcher.arm": plan.arm, "launcher.column": plan.column,
                "launcher.method_kind": METHOD_KIND[plan.method], "launcher.seed": trial.seed,
                "launcher.job_id": job_id, "launcher.trial_dir": str(self._trial_dir(trial)),
                "launcher.cpus": threads_per_trial(self.spec, plan), "launcher.gpus": gpus_per_trial(self.spec, plan),
                "launcher.final": str(trial.final).lower()}
        return self._create(key, trial.trial_id, "trial", self.run_ids[plan.name], tags,
                            {"method": trial.params, "seed": trial.seed, "context": plan.context,
                             "horizon": plan.horizon, "dataset": plan.dataset})

    # ------------------------------------------------------------------ replay
    def _replay(self) -> int:
        """Rebuild studies, optimizers, rungs and queues from the journal. Returns events replayed."""
        in_flight: dict[str, int | None] = {}
        owner: dict[str, Study] = {}
        ingest_round: list[str] = []    # trials of the last ingest round not yet ingested
        events = 0
        for event in self.journal.replay():
            events += 1
            kind = event["event"]
            if kind == "run_created":
                self.run_ids[event["name"]] = event["run_id"]
            elif kind == "asked":
                study = self.studies[event["study"]]
                owner[event["trial_id"]] = study
                trial = study.replay_ask(event["trial_id"], event["params"])
                in_flight[trial.trial_id] = study.first_target()   # asked: its first segment is due
            elif kind == "final_asked":
                study = self.studies[event["study"]]
                owner[event["trial_id"]] = study
                trial = study.add_final(event["trial_id"], event["params"], event["seed"])
                in_flight[trial.trial_id] = study.plan.final_epochs
            elif kind == "submitted":
                trial = owner[event["trial_id"]].trials[event["trial_id"]]
                self._unqueue(trial)
                owner[event["trial_id"]].schedule(trial, event["until_epoch"])
                in_flight[event["trial_id"]] = event["until_epoch"]
                self.jobs[event["trial_id"]] = event
            elif kind == "retry_failed":
                for trial_id, until_epoch in event["segments"]:
                    trial = owner[trial_id].trials[trial_id]
                    self._retry(trial)
                    in_flight[trial_id] = until_epoch
                    self.history.setdefault(trial_id, []).append(event)
            elif kind == "ingesting":
                ingest_round = list(event["trial_ids"])
            elif kind in ("segment_done", "trial_failed"):
                # the segment ended: it is no longer running, nor waiting in an ingest round
                if event["trial_id"] in ingest_round:
                    ingest_round.remove(event["trial_id"])
                study = owner[event["trial_id"]]
                trial = study.trials[event["trial_id"]]
                in_flight.pop(trial.trial_id, None)
                self.jobs.pop(trial.trial_id, None)
                self.history.setdefault(trial.trial_id, []).append(event)
            if kind == "segment_done":
                trial.ingested_lines = event["lines"]
                trial.job_seconds = event["metrics"].get("job_seconds", trial.job_seconds)
                decision, next_epoch, loss = study.segment_done(trial, event["until_epoch"], event["metrics"],
                                                                study.plan.objective)
                self._after_decision(study, trial, decision, next_epoch, loss)
            elif kind == "trial_failed":
                if event["retry"]:
                    trial.infra_retries += 1
                    self.queue.appendleft((trial, event["until_epoch"]))
                else:
                    trial.status = "failed"
                    trial.failed_at = event["until_epoch"]
                    study.tell(trial, event["loss"])
                    self.counts["failed"] += 1
        # Segments that were running (or asked and not yet started) when the controller stopped
        # go first, in their original order; one whose result file is already on disk is
        # ingested instead of run again (see _submit).
        for trial_id, until_epoch in reversed(list(in_flight.items())):
            self.queue.appendleft((owner[trial_id].trials[trial_id], until_epoch))
        # Killed halfway through ingesting a batch of ended segments: finish that batch before
        # starting anything new, so asks and tells keep the order of an uninterrupted run.
        self.restore_only = len(in_flight) if ingest_round else None
        return events

    def _retry(self, trial: TrialState) -> None:
        """A failed trial runs its failed segment again (`resume --retry-failed`, after a fix)."""
        trial.status = "running"
        self.counts["failed"] -= 1

    def _retry_failed(self) -> None:
        failed = [t for s in self.studies.values() for t in s.trials.values() if t.status == "failed"]
        if not failed:
            return
        segments = [(t.trial_id, t.failed_at) for t in failed]
        self.journal.append("retry_failed", segments=segments)
        for trial in failed:
            self._retry(trial)
            self.history.setdefault(trial.trial_id, []).append({"event": "retry_failed"})
            self.queue.append((trial, trial.failed_at))
            if f"trial:{trial.trial_id}" in self.run_ids:     # the same run goes on
                self.tracker.client.update_run(self.run_ids[f"trial:{trial.trial_id}"], status="RUNNING")
        self.echo(f"retrying {len(failed)} failed trial(s)")

    def _unqueue(self, trial: TrialState) -> None:
        for item in list(self.queue):
            if item[0] is trial:
                self.queue.remove(item)

    # ------------------------------------------------------------------ decisions
    def _after_decision(self, study: Study, trial: TrialState, decision: str, next_epoch: int | None,
                        loss: float | None) -> None:
        """In-memory consequences of a journalled decision (the same live and on replay)."""
        if decision == "continue":
            self.queue.append((trial, next_epoch))
            return
        study.tell(trial, loss)
        self.counts["done"] += 1

    def _trial_dir(self, trial: TrialState) -> Path:
        return self.out / "trials" / trial.trial_id

    def _trial_spec(self, study: Study, trial: TrialState, until_epoch: int | None) -> TrialSpec:
        return build_trial_spec(self.spec, study.plan, trial, until_epoch, self._trial_dir(trial))

    # ------------------------------------------------------------------ the loop
    def _next_work(self) -> tuple[Study, TrialState, int | None] | None:
        if self.restore_only is not None:
            if self.restore_only == 0:
                return None
            self.restore_only -= 1
        if self.paused:
            return None
        for study in self.studies.values():
            if study.can_finalize():
                self._start_final_stage(study)
        if self.queue:
            trial, until_epoch = self.queue.popleft()
            return self.studies[trial.study], trial, until_epoch
        askable = [s for s in self.studies.values() if s.can_ask()]
        if not askable:
            return None
        study = min(askable, key=lambda s: s.asked)     # first in plan order among the least tried
        trial = study.ask()
        self.journal.append("asked", study=study.plan.name, trial_id=trial.trial_id, params=trial.params)
        return study, trial, study.first_target()

    def _start_final_stage(self, study: Study) -> None:
        """Retrain the study's best configuration once per sweep seed (`search.final_epochs` epochs each)."""
        best = study.best_trial()
        declared = set(METHOD_PARAMS.get(study.plan.method, {}))
        for seed in self.spec.seeds:
            trial_id = f"{study.plan.slug}__final-s{seed}"
            # relative to the sweep folder, so a moved or copied folder still finds the weights
            params = study.final_params(seed, str(Path("trials") / best.trial_id), declared)
            self.journal.append("final_asked", study=study.plan.name, trial_id=trial_id, params=params, seed=seed,
                                best=best.trial_id)
            self.queue.append((study.add_final(trial_id, params, seed), study.plan.final_epochs))

    def _prepare(self, study: Study, trial: TrialState, until_epoch: int | None) -> TrialSpec | None:
        """Bookkeeping before a segment is submitted; None when its result is already on disk."""
        spec = self._trial_spec(study, trial, until_epoch)
        result_file = Path(spec.trial_dir) / spec.result_name
        if result_file.exists() and not _same_configuration(result_file, spec):
            self._set_aside(Path(spec.trial_dir))
        if result_file.exists():
            # A segment that completed while no controller was watching: ingest it at the next
            # poll, exactly where the live run would have, instead of running it again.
            result = json.loads(result_file.read_text())
            self._trial_run(study, trial, "recovered")
            study.schedule(trial, until_epoch)
            # Journalled like a submission, so a replay takes this segment off the queue exactly once.
            self.journal.append("submitted", trial_id=trial.trial_id, until_epoch=until_epoch, job_id="recovered")
            self.live.append(Live(None, trial, until_epoch, ready=Outcome(True, result=result)))
            return None
        Path(spec.trial_dir).mkdir(parents=True, exist_ok=True)
        (Path(spec.trial_dir) / "error.txt").unlink(missing_ok=True)
        study.schedule(trial, until_epoch)
        return spec

    def _set_aside(self, trial_dir: Path) -> None:
        """A trial folder whose result belongs to another configuration (left by an older run under the
        same trial id): moved aside, never ingested into this trial's run."""
        target = trial_dir.with_name(f"{trial_dir.name}.stale-{int(time.time())}")
        trial_dir.rename(target)
        self.echo(f"warning: {trial_dir} held results of another configuration; moved to {target.name}")

    def _submit_batch(self, executor, batch: list[tuple[Study, TrialState, int | None, TrialSpec]]) -> None:
        """Submit prepared segments together: the SLURM backend turns them into job arrays."""
        if not batch:
            return
        specs = [spec for *_, spec in batch]
        many = getattr(executor, "submit_many", None)
        handles = many(specs) if many is not None else [executor.submit(spec) for spec in specs]
        for (study, trial, until_epoch, _), handle in zip(batch, handles):
            self._trial_run(study, trial, handle.job_id)
            self.journal.append("submitted", trial_id=trial.trial_id, until_epoch=until_epoch, job_id=handle.job_id)
            self.live.append(Live(handle, trial, until_epoch))

    def _copy_outbox(self, trial: TrialState) -> tuple[int, list[dict]]:
        """Copy the outbox lines MLflow has not seen yet; (lines ingested in all, the new lines)."""
        outbox = self._trial_dir(trial) / "outbox.jsonl"
        if not outbox.exists():
            return trial.ingested_lines, []
        lines = outbox.read_text().splitlines()
        complete = [s for s in lines if s.endswith("}")]   # a line being written has no closing brace yet
        new = [json.loads(s) for s in complete[trial.ingested_lines:]]
        self.tracker.log_outbox_lines(self.run_ids[f"trial:{trial.trial_id}"], new)
        return trial.ingested_lines + len(new), new

    def _ingest(self, study: Study, trial: TrialState, until_epoch: int | None, outcome: Outcome) -> None:
        run_id = self.run_ids[f"trial:{trial.trial_id}"]
        lines, new_lines = self._copy_outbox(trial)
        if not outcome.ok:
            self._failed(study, trial, until_epoch, outcome, run_id, lines)
            return
        result = outcome.result
        metrics = dict(result["metrics"])
        if result.get("n_parameters") is not None:
            metrics["n_parameters"] = result["n_parameters"]
        metrics["wall_seconds"] = result["wall_seconds"]
        # Cost: job time summed over this trial's segments (x the CPUs or GPUs it held, in the report).
        trial.job_seconds += float(result["wall_seconds"])
        metrics["job_seconds"] = trial.job_seconds
        step = int(until_epoch) if until_epoch is not None else 0
        decision, next_epoch, loss = study.segment_done(trial, until_epoch, metrics, study.plan.objective)
        trial.ingested_lines = lines
        # MLflow first, journal second: a kill in between re-ingests idempotently on resume.
        result_file = self._trial_dir(trial) / self._trial_spec(study, trial, until_epoch).result_name
        self.runs.log_segment(run_id, step=step, metrics=metrics, result=result, result_file=result_file,
                              new_lines=new_lines, decision=decision, asha=study.plan.asha is not None,
                              fallback_time=time.time())
        value = metrics.get(study.plan.objective) if study.plan.objective else None
        self.journal.append("segment_done", trial_id=trial.trial_id, until_epoch=until_epoch, metrics=metrics,
                            value=value, decision=decision, next_epoch=next_epoch, loss=loss, lines=lines,
                            study=study.plan.name)
        self._after_decision(study, trial, decision, next_epoch, loss)

    def _failed(self, study: Study, trial: TrialState, until_epoch, outcome: Outcome, run_id: str, lines: int) -> None:
        trial.ingested_lines = lines
        infra = not outcome.user_error
        if infra and trial.infra_retries < MAX_INFRA_RETRIES:
            trial.infra_retries += 1
            self.journal.append("trial_failed", trial_id=trial.trial_id, until_epoch=until_epoch, retry=True,
                                loss=None, error=(outcome.error or "")[-2000:], study=study.plan.name)
            self.queue.appendleft((trial, until_epoch))
            return
        trial.status = "failed"
        trial.failed_at = until_epoch
        loss = study.failure_loss() if study.optimizer is not None else None
        study.tell(trial, loss)
        self.runs.log_failure(run_id, outcome.error)
        self.journal.append("trial_failed", trial_id=trial.trial_id, until_epoch=until_epoch, retry=False,
                            loss=loss, error=(outcome.error or "")[-2000:], study=study.plan.name)
        self.counts["failed"] += 1
        self._check_failure_rate()

    def _check_failure_rate(self) -> None:
        failed, ended = self.counts["failed"], self.counts["failed"] + self.counts["done"]
        if failed >= MIN_FAILURES_TO_PAUSE and failed / ended > self.spec.search.max_failure_rate and not self.paused:
            self.paused = True
            self.journal.append("paused", failed=failed, ended=ended, max_failure_rate=self.spec.search.max_failure_rate)

    def _finish_studies(self) -> None:
        for name, study in self.studies.items():
            run_id = self.run_ids[name]
            best = study.best_trial()
            finals = [t for t in study.final_trials() if t.status == "complete"]
            for final in finals:     # the retrains over seeds are the study's reported result
                self.tracker.set_tags(self.run_ids[f"trial:{final.trial_id}"], {"launcher.selected": "true"})
            if best is not None:
                if not finals:
                    self.tracker.set_tags(self.run_ids[f"trial:{best.trial_id}"], {"launcher.selected": "true"})
                self.tracker.set_tags(run_id, {"launcher.selected_trial": best.trial_id})
                picked = {k: v for k, v in best.last_metrics.items() if k.startswith(("test_", "best_val"))}
                self.tracker.log_metrics(run_id, picked)
                self.tracker.log_params(run_id, {"selected": best.params})
            complete = all(t.status in ("complete", "stopped") for t in study.trials.values())
            self.tracker.finish(run_id, "FINISHED" if complete and study.trials else "FAILED")
        self.tracker.finish(self.run_ids["sweep"], "FINISHED")

    def _start(self) -> int:
        """Under the folder's lock: the folder checked or created, the journal's torn tail cut off,
        the journal replayed, the MLflow runs opened (rebuilt when lost). Returns events replayed."""
        prepare_out(self.spec, self.plans)
        cut = self.journal.repair_tail()
        if cut:
            self.echo(f"the journal's last line was torn ({cut} bytes, kept in journal.torn): dropped; "
                      "its event is redone")
        self.studies = {plan.name: Study(plan, self.spec.executor.workers) for plan in self.plans}
        return self._replay()

    def repair(self) -> dict:
        """`launcher repair DIR`: rebuild the MLflow runs from the journal; run nothing."""
        with self.lock:
            self._start()
            finished = any(e["event"] == "sweep_finished" for e in self.journal.replay())
            uri = self.spec.tracking.uri or default_uri(self.out)
            if not self.spec.tracking.uri:
                relocate_artifacts(uri, self.out / "mlartifacts")
            self.tracker = Tracker(uri, self.spec.name, artifact_root=self.out / "mlartifacts")
            self.common_tags = {"launcher.sweep": self.spec.name, "launcher.git": git_revision(Path(__file__).parent),
                                "launcher.host": socket.gethostname(), "launcher.backend": self.spec.executor.backend}
            self.runs = SweepRuns(self.tracker, self.run_ids)
            lost = self.runs.missing()
            created = self._rebuild(lost) if lost else 0
            self.runs.close_orphans()
            if finished:
                self._finish_studies()
        return {"runs_created": created, "runs_kept": len(self.run_ids) - created, "finished": finished}

    def _adopt_orphans(self, executor) -> None:
        """Segments a killed controller left running (local processes, SLURM jobs) are watched to
        their end, not started a second time."""
        adopt = getattr(executor, "adopt", None)
        if adopt is None:
            return
        for trial, until_epoch in list(self.queue):
            event = self.jobs.get(trial.trial_id)
            if event is None or event.get("until_epoch") != until_epoch:
                continue
            handle = adopt(str(event["job_id"]), self._trial_spec(self.studies[trial.study], trial, until_epoch))
            if handle is not None:
                self._unqueue(trial)
                self.live.append(Live(handle, trial, until_epoch))
                if self.restore_only:
                    self.restore_only -= 1
                self.echo(f"adopted job {handle.job_id} of {trial.trial_id}, still running from before")

    def run(self) -> dict:
        with self.lock:
            return self._run()

    def _run(self) -> dict:
        replayed = self._start()
        self.journal.append("sweep_started", pid=os.getpid(), studies=len(self.studies), resumed=replayed > 0)
        self._open_tracking()
        if self.retry_failed:
            self._retry_failed()
        if replayed:
            self.echo(f"resuming from {self.journal.path}: {self.counts['done']} trials finished, "
                      f"{self.counts['failed']} failed, {len(self.queue)} segments to run again")
        executor = make_executor(self.spec.executor, self.out / "jobs")
        self._adopt_orphans(executor)
        progress = Progress(self.studies, self.counts)
        try:
            while True:
                self.lock.heartbeat()
                batch = []
                while len(self.live) + len(batch) < self.spec.executor.workers:
                    work = self._next_work()
                    if work is None:
                        break
                    spec = self._prepare(*work)
                    if spec is not None:
                        batch.append((*work, spec))
                self._submit_batch(executor, batch)
                if not self.live:
                    break
                self.restore_only = None
                polled = executor.poll([item.handle for item in self.live if item.ready is None]) \
                    if any(item.ready is None for item in self.live) else []
                ended = [item for item in self.live
                         if item.ready is not None or any(item.handle is h for h in polled)]
                if ended:
                    self.journal.append("ingesting", trial_ids=[item.trial.trial_id for item in ended])
                for item in ended:       # in submission order: the same order on every replay
                    self.live.remove(item)
                    outcome = item.ready or executor.outcome(item.handle)
                    self._ingest(self.studies[item.trial.study], item.trial, item.until_epoch, outcome)
                progress.show(len(self.live), len(self.queue), ended[-1].trial.study if ended else None)
                if not ended:
                    time.sleep(executor.poll_seconds)
        finally:
            progress.close()
            for item in self.live:     # interrupted: leave no orphan processes behind
                try:
                    item.handle.job.cancel(check=False)
                except Exception:
                    pass
        if self.paused:
            return {**self._summary(), "paused": True}
        self._finish_studies()
        self.journal.append("sweep_finished", **self.counts)
        return {**self._summary(), "paused": False}

    def _summary(self) -> dict:
        trials = sum(len(s.trials) for s in self.studies.values())
        return {"trials": trials, "done": self.counts["done"], "failed": self.counts["failed"]}


def _same_configuration(result_file: Path, spec: TrialSpec) -> bool:
    """Was this result produced by the configuration the journal says this trial has? (Paths that
    follow the folder, like `init_from`, are left out: a moved folder changes them, not the meaning.)"""
    try:
        recorded = json.loads(result_file.read_text()).get("spec", {}).get("params", {})
    except (OSError, ValueError, AttributeError):
        return False
    strip = (lambda params: json.dumps({k: v for k, v in params.items() if k != "init_from"}, sort_keys=True))
    return isinstance(recorded, dict) and strip(recorded) == strip(spec.params)
