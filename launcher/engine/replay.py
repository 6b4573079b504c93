"""What a prefix of the journal means: studies, ASHA rungs, the queue and the segments in flight.

`ReplayState.apply` takes the journal's events one by one, in order; after any prefix its state is the
state a replay of that prefix builds, so it can be written out (`to_json`, engine.snapshot) and a later
resume can load it and apply only the events after it. What a resume does with the result (rebuild
the optimizers, ask a killed controller's missing final retrains, put the in-flight segments first)
is the controller's (`Recovery._replay`): those steps journal new events, which a pure replay never does.
"""
from __future__ import annotations

from collections import deque
from typing import Any

from launcher.engine.study import Study, TrialState


def after_decision(queue: deque, counts: dict[str, int], study: Study, trial: TrialState, decision: str,
                   next_epoch: int | None, loss: float | None) -> None:
    """In-memory consequences of a journalled decision (the same live and on replay)."""
    if decision == "continue":
        queue.append((trial, next_epoch))
        return
    study.tell(trial, loss)
    counts["done"] += 1


def unqueue(queue: deque, trial: TrialState) -> None:
    for item in list(queue):
        if item[0] is trial:
            queue.remove(item)


class ReplayState:
    """The studies (in replay mode: `begin_replay` called), and the bookkeeping of the replay itself."""

    def __init__(self, studies: dict[str, Study]):
        self.studies = studies
        self.queue: deque[tuple[TrialState, int | None]] = deque()   # segments waiting for a slot
        self.counts = {"done": 0, "failed": 0}
        self.jobs: dict[str, dict] = {}              # trial id -> the "submitted" event of its segment in flight
        self.in_flight: dict[str, int | None] = {}   # trial id -> segment asked or submitted, not yet ended
        self.owner: dict[str, Study] = {}            # trial id -> its study
        self.ingest_round: list[str] = []            # trials of the last ingest round not yet ingested
        self.events = 0
        for study in studies.values():
            study.begin_replay()

    def apply(self, event: dict) -> None:
        self.events += 1
        kind = event["event"]
        if kind == "asked":
            study = self.studies[event["study"]]
            self.owner[event["trial_id"]] = study
            trial = study.replay_ask(event["trial_id"], event["params"])
            self.in_flight[trial.trial_id] = study.first_target()   # asked: its first segment is due
        elif kind == "final_asked":
            study = self.studies[event["study"]]
            self.owner[event["trial_id"]] = study
            trial = study.add_final(event["trial_id"], event["params"], event["seed"])
            self.in_flight[trial.trial_id] = study.plan.final_epochs
        elif kind == "submitted":
            study = self.owner[event["trial_id"]]
            trial = study.trials[event["trial_id"]]
            unqueue(self.queue, trial)
            study.schedule(trial, event["until_epoch"])
            self.in_flight[event["trial_id"]] = event["until_epoch"]
            self.jobs[event["trial_id"]] = event
        elif kind == "retry_failed":
            for trial_id, until_epoch in event["segments"]:
                trial = self.owner[trial_id].trials[trial_id]
                trial.status = "running"          # a failed trial runs its failed segment again
                self.counts["failed"] -= 1
                self.in_flight[trial_id] = until_epoch
        elif kind == "ingesting":
            self.ingest_round = list(event["trial_ids"])
        elif kind in ("segment_done", "trial_failed"):
            self._ended(event)

    def _ended(self, event: dict) -> None:
        # the segment ended: it is no longer running, nor waiting in an ingest round
        trial_id = event["trial_id"]
        if trial_id in self.ingest_round:
            self.ingest_round.remove(trial_id)
        study = self.owner[trial_id]
        trial = study.trials[trial_id]
        self.in_flight.pop(trial_id, None)
        self.jobs.pop(trial_id, None)
        if event["event"] == "segment_done":
            trial.ingested_lines = event["lines"]
            trial.job_seconds = event["metrics"].get("job_seconds", trial.job_seconds)
            decision, next_epoch, loss = study.segment_done(trial, event["until_epoch"], event["metrics"],
                                                            study.plan.objective)
            after_decision(self.queue, self.counts, study, trial, decision, next_epoch, loss)
        elif event["retry"]:
            trial.infra_retries += 1
            self.queue.appendleft((trial, event["until_epoch"]))
        else:
            trial.status = "failed"
            trial.failed_at = event["until_epoch"]
            study.tell(trial, event["loss"])
            self.counts["failed"] += 1

    # -- as JSON ----------------------------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        return {
            "events": self.events,
            "queue": [[trial.trial_id, until] for trial, until in self.queue],
            "counts": dict(self.counts),
            "jobs": self.jobs,
            "in_flight": [[trial_id, until] for trial_id, until in self.in_flight.items()],
            "ingest_round": self.ingest_round,
            "studies": {name: study.replay_state() for name, study in self.studies.items()},
        }

    def load_json(self, state: dict[str, Any]) -> None:
        """The inverse of `to_json`, on a fresh ReplayState over fresh studies of the same plans."""
        if sorted(state["studies"]) != sorted(self.studies):
            raise ValueError("the snapshot's studies are not this sweep's")
        for name, study in self.studies.items():
            study.load_replay_state(state["studies"][name])
            for trial_id in study.trials:
                self.owner[trial_id] = study
        self.events = int(state["events"])
        self.queue = deque((self.owner[trial_id].trials[trial_id], until) for trial_id, until in state["queue"])
        self.counts = {"done": int(state["counts"]["done"]), "failed": int(state["counts"]["failed"])}
        self.jobs = dict(state["jobs"])
        self.in_flight = {trial_id: until for trial_id, until in state["in_flight"]}
        self.ingest_round = list(state["ingest_round"])
