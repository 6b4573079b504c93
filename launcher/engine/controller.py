"""The sweep controller: a steady-state loop over worker slots, driven by studies, recorded in a journal.

The controller is the process the user started. Everything is validated first (nothing is
written for a bad spec or a missing dataset). Then it loops: fill every free slot at once (a
promoted trial's next segment first, else a new configuration from the study with the fewest
trials so far), poll all live jobs in one call, and ingest the segments that ended: take the ASHA
decision, tell the optimizer when a trial stops. Every step is a journal event; running the same
command again replays the journal and continues. MLflow is off this loop: a writer process
(engine.tracking_writer) follows the journal into the store, and the controller waits for it to
catch up when the sweep ends.

Failure policy: a trial whose code raised is FAILED (traceback in MLflow), told to its optimizer
as the worst loss, and the sweep goes on, until failed / ended trials exceeds
`search.max_failure_rate` (with at least MIN_FAILURES_TO_PAUSE failures): then no new work is
started, running jobs finish, and the sweep pauses, resumable. A job that died without a Python
error (killed, timed out, node lost) is infrastructure: retried from its checkpoint, not told.
"""
from __future__ import annotations

import json
import os
import time
from collections import deque
from pathlib import Path
from typing import Callable

from launcher import stop
from launcher.backends import Outcome, make_executor
from launcher.engine.journal import Journal
from launcher.engine.lock import sweep_lock
from launcher.engine.plan import plan_studies
from launcher.engine.preflight import prepare_out
from launcher.engine.progress import Progress
from launcher.engine.recovery import Live, Recovery, same_configuration
from launcher.engine.replay import after_decision
from launcher.engine.snapshot import Compactor
from launcher.engine.study import Study, TrialState
from launcher.engine.sweep_runs import result_time
from launcher.engine.tracking_writer import WriterProcess
from launcher.engine.trial_specs import build_trial_spec
from launcher.job.outbox import read_outbox
from launcher.job.trial import TrialSpec, result_name
from launcher.methods.registry import method_class
from launcher.spec.sweep import SweepSpec

MIN_FAILURES_TO_PAUSE = 3
MAX_INFRA_RETRIES = 3
INGEST_ROUND = 32
WRITER_GRACE_S = 10.0      # a stopped controller waits this long for MLflow to catch up with the journal


def _mean_metrics(trials: list[TrialState]) -> dict[str, float]:
    """The study's result as the report shows it: each test_* / best_val* metric averaged over the
    selected runs (its final retrains over seeds, or its best trial), with the number of seeds."""
    keys = [k for k in trials[0].last_metrics if k.startswith(("test_", "best_val"))
            and all(k in t.last_metrics for t in trials)]
    picked = {k: sum(float(t.last_metrics[k]) for t in trials) / len(trials) for k in keys}
    picked["selected_runs"] = float(len(trials))
    return picked


class Controller(Recovery):
    def __init__(self, spec: SweepSpec, *, echo: Callable[[str], None] = print, retry_failed: bool = False):
        self.spec = spec
        self.retry_failed = retry_failed
        self.out = Path(spec.out)
        self.echo = echo
        self.journal = Journal(self.out / "journal.jsonl")
        self.plans = plan_studies(spec)
        self.studies: dict[str, Study] = {}
        self.queue: deque[tuple[TrialState, int | None]] = deque()   # segments waiting for a slot
        self.live: list[Live] = []
        self.counts = {"done": 0, "failed": 0}
        self.paused = False
        self.restore_only: int | None = None   # after replay: resubmit only this many queued segments first
        self.jobs: dict[str, dict] = {}              # trial id -> the "submitted" event of its segment in flight
        self.unsnapshotted = 0                       # journal events after its last snapshot (engine.snapshot)
        self.compactor: Compactor | None = None
        self.lock = sweep_lock(self.out)

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
        self.journal.append("asked", study=study.plan.name, trial_id=trial.trial_id, params=trial.params,
                            seed=trial.seed)
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
            paths = getattr(handle.job, "paths", None)      # where the job's own files are (to adopt it later)
            self.journal.append("submitted", trial_id=trial.trial_id, until_epoch=until_epoch, job_id=handle.job_id,
                                job_folder=str(paths.folder) if paths is not None else None)
            self.live.append(Live(handle, trial, until_epoch))

    def _ingest(self, study: Study, trial: TrialState, until_epoch: int | None, outcome: Outcome,
                job_id: str | None = None) -> None:
        # The outbox's line count only: the tracking writer copies the lines into MLflow.
        lines = len(read_outbox(self._trial_dir(trial)))
        if not outcome.ok:
            self._failed(study, trial, until_epoch, outcome, lines)
            return
        result = outcome.result
        metrics = dict(result["metrics"])
        if result.get("n_parameters") is not None:
            metrics["n_parameters"] = result["n_parameters"]
        metrics["wall_seconds"] = result["wall_seconds"]
        # Cost: job time summed over this trial's segments (x the CPUs or GPUs it held, in the report).
        trial.job_seconds += float(result["wall_seconds"])
        metrics["job_seconds"] = trial.job_seconds
        decision, next_epoch, loss = study.segment_done(trial, until_epoch, metrics, study.plan.objective)
        trial.ingested_lines = lines
        value = metrics.get(study.plan.objective) if study.plan.objective else None
        self.journal.append("segment_done", trial_id=trial.trial_id, until_epoch=until_epoch, metrics=metrics,
                            value=value, decision=decision, next_epoch=next_epoch, loss=loss, lines=lines,
                            study=study.plan.name, job_id=job_id)
        after_decision(self.queue, self.counts, study, trial, decision, next_epoch, loss)   # as a replay does

    def _failed(self, study: Study, trial: TrialState, until_epoch, outcome: Outcome, lines: int) -> None:
        trial.ingested_lines = lines
        infra = not outcome.user_error
        error = (outcome.error or "")[-2000:]
        if infra and trial.infra_retries < MAX_INFRA_RETRIES:
            trial.infra_retries += 1
            self.journal.append("trial_failed", trial_id=trial.trial_id, until_epoch=until_epoch, retry=True,
                                loss=None, error=error, study=study.plan.name, lines=lines)
            self.queue.appendleft((trial, until_epoch))
            return
        trial.status = "failed"
        trial.failed_at = until_epoch
        loss = study.failure_loss() if study.optimizer is not None else None
        study.tell(trial, loss)
        self.journal.append("trial_failed", trial_id=trial.trial_id, until_epoch=until_epoch, retry=False,
                            loss=loss, error=error, study=study.plan.name, lines=lines)
        self.counts["failed"] += 1
        self._check_failure_rate()

    def _check_failure_rate(self) -> None:
        failed, ended = self.counts["failed"], self.counts["failed"] + self.counts["done"]
        if failed >= MIN_FAILURES_TO_PAUSE and failed / ended > self.spec.search.max_failure_rate and not self.paused:
            self.paused = True
            self.journal.append("paused", failed=failed, ended=ended, max_failure_rate=self.spec.search.max_failure_rate)

    def _finish_studies(self) -> None:
        """Journal each study's result (the tracking writer marks the selected runs and closes the study
        runs). Finishing again (a resume of a finished sweep) journals the very same results."""
        for name, study in self.studies.items():
            best = study.best_trial()
            finals = [t.trial_id for t in study.final_trials() if t.status == "complete"]
            complete = all(t.status in ("complete", "stopped") for t in study.trials.values())
            fields = {"best": None, "selected": finals, "status": "FINISHED" if complete and study.trials else "FAILED"}
            if best is not None:
                result = self._trial_dir(best) / result_name(best.epochs_done or None)
                selected = [study.trials[t] for t in finals] or [best]
                fields.update(best=best.trial_id, selected=[t.trial_id for t in selected],
                              picked=_mean_metrics(selected), picked_time=result_time(result, 0.0),
                              selected_params=best.params)
            self.journal.append("study_finished", study=name, **fields)

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
        writer = WriterProcess(self.spec, self.echo)
        self.compactor = Compactor(self.out, self.plans, self.spec.executor.workers, self.unsnapshotted)
        try:
            summary = self._loop(replayed)
        finally:
            self.compactor.close(wait=not stop.requested())
            self._stop_writer(writer, stopping=stop.requested())
        return summary

    def _stop_writer(self, writer: WriterProcess, *, stopping: bool) -> None:
        """The writer copies what is journalled into MLflow and exits; a stopped sweep waits for it a few
        seconds only (what it has not copied, the next resume's writer does)."""
        started = time.monotonic()
        status = writer.finish(timeout_s=WRITER_GRACE_S if stopping else None)
        waited = time.monotonic() - started
        if status != 0 and not stopping:
            self.echo(f"warning: MLflow tracking stopped (exit {status}); the journal has every result: "
                      f"run `python -m launcher repair {self.out}` once the store is reachable")
        elif waited > 5 and not stopping:
            self.echo(f"MLflow caught up with the journal {waited:.0f} s after the last segment")

    def _loop(self, replayed: int) -> dict:
        if self.retry_failed:
            self._retry_failed()
        if replayed:
            self.echo(f"resuming from {self.journal.path}: {self.counts['done']} trials finished, "
                      f"{self.counts['failed']} failed, {len(self.queue)} segments to run again")
        executor = make_executor(self.spec.executor, self.out / "jobs")
        self._adopt_orphans(executor)
        progress = Progress(self.studies, self.counts)
        try:
            with self.journal.batched():      # events written at once, synced before submissions and waits
                self._rounds(executor, progress)
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

    def _rounds(self, executor, progress: Progress) -> None:
        while True:
            stop.check()            # a signal swallowed by a finalizer still stops the sweep
            self.lock.heartbeat()
            self.compactor.tick(self.journal.appended)
            batch = []
            while len(self.live) + len(batch) < self.spec.executor.workers:
                work = self._next_work()
                if work is None:
                    break
                spec = self._prepare(*work)
                if spec is not None:
                    batch.append((*work, spec))
            if batch:
                self.journal.sync()          # the round's asks are on disk before any of their jobs exists
                self._submit_batch(executor, batch)
            if not self.live:
                return
            self.restore_only = None
            polled = executor.poll([item.handle for item in self.live if item.ready is None]) \
                if any(item.ready is None for item in self.live) else []
            polled_ids = {id(handle) for handle in polled}
            ended = [item for item in self.live if item.ready is not None or id(item.handle) in polled_ids]
            # A round ingests at most INGEST_ROUND segments before the slots are refilled: when a thousand
            # end together, the first freed slots do not wait for the last one's ingest. The rest stay
            # live, ended: the next poll returns them again.
            ended = ended[:INGEST_ROUND]
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
                self.journal.sync()
                time.sleep(executor.poll_seconds)

    def _summary(self) -> dict:
        trials = sum(len(s.trials) for s in self.studies.values())
        return {"trials": trials, "done": self.counts["done"], "failed": self.counts["failed"]}

