"""The controller's recovery half: what it does to pick up where a stopped controller left off.

- `_replay`: rebuild studies, optimizers, ASHA rungs and queues from the journal, event by event
  (engine.replay), from its last snapshot on (engine.snapshot);
- `_adopt_orphans`: segments a killed controller left running (local processes, SLURM jobs) are
  watched to their end, never started a second time;
- `repair`: the journal is the source of truth; the tracking writer (engine.tracking_writer) makes
  again the runs the MLflow store lost, from it and from the trial folders;
- `_retry_failed`: failed trials run again after their cause was fixed (`resume --retry-failed`);
- `_set_aside`: a trial folder holding another configuration's result is moved away, never ingested.

`Recovery` is mixed into `launcher.engine.controller.Controller` and works on its state (studies, queue,
live jobs, journal); it is a file of its own so that the steady-state loop reads on its own.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

from launcher.backends.base import Handle, Outcome
from launcher.engine.replay import unqueue
from launcher.engine.snapshot import replay_state
from launcher.engine.study import TrialState
from launcher.engine.tracking_writer import TrackingWriter
from launcher.job.trial import TrialSpec


@dataclass
class Live:
    handle: Handle | None
    trial: TrialState
    until_epoch: int | None
    ready: Outcome | None = None    # a segment found already completed on disk (after a crash)


class Recovery:
    # ------------------------------------------------------------------ replay
    def _replay(self) -> int:
        """Rebuild studies, optimizers, rungs and queues from the journal (from its last snapshot on,
        engine.snapshot). Returns the journal's events (replayed or covered by the snapshot)."""
        data = self.journal.read_bytes()
        state, loaded = replay_state(self.out, self.plans, self.spec.executor.workers, data, studies=self.studies)
        if loaded.note:
            self.echo(loaded.note)
        self.unsnapshotted = state.events - loaded.mark.lines
        self.studies, self.queue, self.counts, self.jobs = state.studies, state.queue, state.counts, state.jobs
        in_flight, owner = state.in_flight, state.owner
        for study in self.studies.values():      # optimizers rebuilt (at their next ask) only for studies that ask again
            study.end_replay()
        # Killed between the final asks of one study: ask the rest now, as the next events would have.
        for study in self.studies.values():
            if study.final_trials():
                for trial in self._ask_finals(study):
                    owner[trial.trial_id] = study
                    in_flight[trial.trial_id] = study.plan.final_epochs
        # Segments that were running (or asked and not yet started) when the controller stopped
        # go first, in their original order; one whose result file is already on disk is
        # ingested instead of run again (see _submit).
        for trial_id, until_epoch in reversed(list(in_flight.items())):
            self.queue.appendleft((owner[trial_id].trials[trial_id], until_epoch))
        # Killed halfway through ingesting a batch of ended segments: finish that batch before
        # starting anything new, so asks and tells keep the order of an uninterrupted run.
        self.restore_only = len(in_flight) if state.ingest_round else None
        return state.events

    def _retry_failed(self) -> None:
        failed = [t for s in self.studies.values() for t in s.trials.values() if t.status == "failed"]
        if not failed:
            return
        segments = [(t.trial_id, t.failed_at) for t in failed]
        self.journal.append("retry_failed", segments=segments)
        for trial in failed:       # a failed trial runs its failed segment again (after a fix)
            trial.status = "running"
            self.counts["failed"] -= 1
            self.queue.append((trial, trial.failed_at))
        self.echo(f"retrying {len(failed)} failed trial(s)")

    def _set_aside(self, trial_dir: Path) -> None:
        """A trial folder whose result belongs to another configuration (left by an older run under the
        same trial id): moved aside, never ingested into this trial's run."""
        target = trial_dir.with_name(f"{trial_dir.name}.stale-{int(time.time())}")
        trial_dir.rename(target)
        self.echo(f"warning: {trial_dir} held results of another configuration; moved to {target.name}")

    def repair(self) -> dict:
        """`launcher repair DIR`: bring the MLflow runs in line with the journal (runs the store lost are
        made again, writes a killed writer left undone are done); run nothing."""
        with self.lock:
            self._start()
            kinds = {e["event"] for e in self.journal.replay()}
            finished = "sweep_finished" in kinds
            if finished and "study_finished" not in kinds:    # a folder journalled before study results were
                self._finish_studies()
            writer = TrackingWriter(self.spec, echo=self.echo)
            writer.open()
            writer.catch_up()
        return {"runs_created": writer.created, "runs_kept": len(writer.run_ids) - writer.created,
                "finished": finished}

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
            handle = adopt(str(event["job_id"]), self._trial_spec(self.studies[trial.study], trial, until_epoch),
                           event.get("job_folder"))
            if handle is not None:
                unqueue(self.queue, trial)
                self.live.append(Live(handle, trial, until_epoch))
                if self.restore_only:
                    self.restore_only -= 1
                self.echo(f"adopted job {handle.job_id} of {trial.trial_id}, still running from before")
        reap = getattr(executor, "reap_unknown", None)
        if reap is not None:
            reaped = reap({item.handle.job_id for item in self.live if item.handle is not None})
            if reaped:
                self.echo(f"stopped {reaped} job process(es) a killed controller started but never journalled")


def same_configuration(result_file: Path, spec: TrialSpec) -> bool:
    """Was this result produced by the configuration the journal says this trial has? (Paths that
    follow the folder, like `init_from`, are left out: a moved folder changes them, not the meaning.)"""
    try:
        recorded = json.loads(result_file.read_text()).get("spec", {}).get("params", {})
    except (OSError, ValueError, AttributeError):
        return False
    def strip(params: dict) -> str:
        return json.dumps({k: v for k, v in params.items() if k != "init_from"}, sort_keys=True)

    return isinstance(recorded, dict) and strip(recorded) == strip(spec.params)
