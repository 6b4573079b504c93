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
from pathlib import Path
from typing import Callable

from launcher import stop
from launcher.backends import Outcome, make_executor
from launcher.engine.journal import Journal
from launcher.engine.lock import sweep_lock
from launcher.engine.plan import plan_studies
from launcher.engine.preflight import git_revision, prepare_out
from launcher.engine.progress import Progress
from launcher.engine.recovery import Live, Recovery, same_configuration
from launcher.engine.study import Study, TrialState
from launcher.engine.sweep_runs import SweepRuns, result_time
from launcher.engine.trial_specs import build_trial_spec, gpus_per_trial, threads_per_trial
from launcher.job.outbox import read_outbox
from launcher.job.trial import TrialSpec, result_name
from launcher.methods.registry import method_class
from launcher.spec.load import spec_to_dict
from launcher.spec.sweep import SweepSpec
from launcher.tracking import Tracker, relocate_artifacts, sweep_uri

MIN_FAILURES_TO_PAUSE = 3
MAX_INFRA_RETRIES = 3


class Controller(Recovery):
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
    def _connect(self) -> None:
        uri = sweep_uri(self.spec)
        if not self.spec.tracking.uri:      # a moved or copied folder: artifacts go to this folder, not the old one
            relocate_artifacts(uri, self.out / "mlartifacts")
        self.tracker = Tracker(uri, self.spec.name, artifact_root=self.out / "mlartifacts")
        self.common_tags = {"launcher.sweep": self.spec.name, "launcher.git": git_revision(Path(__file__).parent),
                            "launcher.host": socket.gethostname(), "launcher.backend": self.spec.executor.backend}
        self.runs = SweepRuns(self.tracker, self.run_ids)

    def _open_tracking(self) -> None:
        self._connect()
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
                        "launcher.method_kind": plan.kind}
                params = {"optimizer": plan.optimizer, "trials": plan.trials,
                          "space": plan.space.to_dict() if plan.space else None,
                          "asha": vars(plan.asha) if plan.asha else None}
                self._create(plan.name, plan.name, "study", self.run_ids["sweep"], tags, params)

    def _create(self, key: str, name: str, kind: str, parent: str | None, tags: dict, params: dict | None) -> str:
        run_id = self.tracker.create_run(name, kind, parent=parent, tags=tags, params=params)
        self.run_ids[key] = run_id
        self.journal.append("run_created", name=key, run_id=run_id)
        return run_id

    def _trial_run(self, study: Study, trial: TrialState, job_id: str) -> str:
        key = f"trial:{trial.trial_id}"
        if key in self.run_ids:      # later segments and retries log into the same run (job id: at ingest)
            return self.run_ids[key]
        plan = study.plan
        tags = {**self.common_tags, "launcher.study": plan.name, "launcher.trial": trial.trial_id,
                "launcher.task": plan.task, "launcher.dataset": plan.dataset, "launcher.horizon": plan.horizon,
                "launcher.method": plan.method, "launcher.arm": plan.arm, "launcher.column": plan.column,
                "launcher.method_kind": plan.kind, "launcher.seed": trial.seed,
                "launcher.job_id": job_id, "launcher.trial_dir": str(self._trial_dir(trial)),
                "launcher.cpus": threads_per_trial(self.spec, plan), "launcher.gpus": gpus_per_trial(self.spec, plan),
                "launcher.final": str(trial.final).lower()}
        return self._create(key, trial.trial_id, "trial", self.run_ids[plan.name], tags,
                            {"method": trial.params, "seed": trial.seed, "context": plan.context,
                             "horizon": plan.horizon, "dataset": plan.dataset})

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
        for trial in self._ask_finals(study):
            self.queue.append((trial, study.plan.final_epochs))

    def _ask_finals(self, study: Study) -> list[TrialState]:
        """The final retrains not asked yet (all of them, or those a killed controller did not get to)."""
        best = study.best_trial()
        declared = set(method_class(study.plan.implementation).params)
        asked = {t.trial_id for t in study.final_trials()}
        trials = []
        for seed in self.spec.seeds:
            trial_id = f"{study.plan.slug}__final-s{seed}"
            if trial_id in asked:
                continue
            # relative to the sweep folder, so a moved or copied folder still finds the weights
            params = study.final_params(seed, str(Path("trials") / best.trial_id), declared)
            self.journal.append("final_asked", study=study.plan.name, trial_id=trial_id, params=params, seed=seed,
                                best=best.trial_id)
            trials.append(study.add_final(trial_id, params, seed))
        return trials

    def _prepare(self, study: Study, trial: TrialState, until_epoch: int | None) -> TrialSpec | None:
        """Bookkeeping before a segment is submitted; None when its result is already on disk."""
        spec = self._trial_spec(study, trial, until_epoch)
        result_file = Path(spec.trial_dir) / spec.result_name
        if result_file.exists() and not same_configuration(result_file, spec):
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

    def _submit_batch(self, executor, batch: list[tuple[Study, TrialState, int | None, TrialSpec]]) -> None:
        """Submit prepared segments together: the SLURM backend turns them into job arrays."""
        if not batch:
            return
        specs = [spec for *_, spec in batch]
        many = getattr(executor, "submit_many", None)
        handles = many(specs) if many is not None else [executor.submit(spec) for spec in specs]
        for (study, trial, until_epoch, _), handle in zip(batch, handles):
            self._trial_run(study, trial, handle.job_id)
            paths = getattr(handle.job, "paths", None)      # where the job's own files are (to adopt it later)
            self.journal.append("submitted", trial_id=trial.trial_id, until_epoch=until_epoch, job_id=handle.job_id,
                                job_folder=str(paths.folder) if paths is not None else None)
            self.live.append(Live(handle, trial, until_epoch))

    def _ingest(self, study: Study, trial: TrialState, until_epoch: int | None, outcome: Outcome,
                job_id: str | None = None) -> None:
        run_id = self.run_ids[f"trial:{trial.trial_id}"]
        outbox = read_outbox(self._trial_dir(trial))     # MLflow has its first trial.ingested_lines lines
        lines = len(outbox)
        if not outcome.ok:
            self.tracker.log_outbox_lines(run_id, outbox[trial.ingested_lines:])
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
        new_lines, trial.ingested_lines = max(0, lines - trial.ingested_lines), lines
        # MLflow first, journal second: a kill in between re-ingests idempotently on resume.
        result_file = self._trial_dir(trial) / result_name(until_epoch)
        self.runs.log_segment(run_id, step=step, metrics=metrics, result=result, result_file=result_file,
                              outbox=outbox, new_lines=new_lines, decision=decision,
                              asha=study.plan.asha is not None, fallback_time=time.time(), job_id=job_id)
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
                # stamped with the time of the best trial's result: finishing again (a resume of a finished
                # or half-finished sweep) writes the very same points, never a second one
                result = self._trial_dir(best) / result_name(best.epochs_done or None)
                self.tracker.log_metrics(run_id, picked, timestamp_s=result_time(result, 0.0))
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
                stop.check()            # a signal swallowed by a finalizer still stops the sweep
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
                polled_ids = {id(handle) for handle in polled}
                ended = [item for item in self.live if item.ready is not None or id(item.handle) in polled_ids]
                if ended:
                    self.journal.append("ingesting", trial_ids=[item.trial.trial_id for item in ended])
                    ended_ids = {id(item) for item in ended}
                    self.live = [item for item in self.live if id(item) not in ended_ids]
                for item in ended:       # in submission order: the same order on every replay
                    outcome = item.ready or executor.outcome(item.handle)
                    self._ingest(self.studies[item.trial.study], item.trial, item.until_epoch, outcome,
                                 item.handle.job_id if item.handle is not None else "recovered")
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

