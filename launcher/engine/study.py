"""One study = one (task, method, arm) inside a sweep: its trials, optimizer and ASHA rungs.

The study decides *what* runs next (a new configuration asked from Nevergrad, or nothing when its
budget is spent) and *what a finished segment means* (continue to the next rung, stop, or
complete). Every decision is also a journal event, and `replay_*` rebuilds the same state from
those events, so a controller killed at any moment resumes where it was.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from typing import Any

from launcher.engine.asha import Asha, AshaConfig
from launcher.spec.space import SearchSpace, make_optimizer

FAILURE_LOSS_MARGIN = 1.0   # a failed trial is told a loss worse than any trial that reported


@dataclass
class StudyPlan:
    name: str                     # "ETTh1-96/dlinear" or "ETTh1-96/dlinear[random]"
    slug: str                     # file-system safe: "ETTh1-96__dlinear" / "ETTh1-96__dlinear-random"
    task: str
    dataset: str
    horizon: int
    context: int
    method: str                   # the method row's name (its report column): "dlinear", "wrn"
    arm: str                      # "tuned", "random" (control arm) or "fixed" (nothing searched)
    fixed_params: dict[str, Any]
    space: SearchSpace | None     # None: nothing searched (fixed params, one trial per seed)
    optimizer: str | None
    trials: int                   # configurations to try (or seeds, when nothing is searched)
    seeds: tuple[int, ...]
    asha: AshaConfig | None       # None: one-shot method, or trained straight to max_epochs
    epochs: int | None            # epochs of a fixed multi-fidelity trial (no ASHA)
    epoch_budget: int | None      # optional cap on the epochs this study may train in total
    objective: str | None = None  # validation metric the method reports per epoch
    mode: str = "min"
    optimizer_seed: int = 0
    distributed: dict | None = None   # the method's `distributed` block (ranks per trial)
    resources: dict | None = None     # the method's SLURM resource overrides
    domain: str = "forecasting"       # the task's domain (tasks.registry)
    final_epochs: int | None = None   # tuned studies: retrain the best configuration per seed for this long
    implementation: str = ""          # what runs: a registered method name or a class's import path
    kind: str = "supervised"          # the method's kind (its class declares it): the report's label
    deterministic: bool = False       # same result for every seed (run once)

    def __post_init__(self):
        if not self.implementation:
            self.implementation = self.method

    @property
    def column(self) -> str:
        """The report column this study fills."""
        return f"{self.method} (random search)" if self.arm == "random" else self.method


@dataclass
class TrialState:
    trial_id: str
    study: str
    params: dict[str, Any]
    seed: int
    epochs_done: int = 0
    scheduled_to: int = 0         # the furthest epoch a segment was submitted for
    status: str = "running"       # running, stopped, complete, failed
    infra_retries: int = 0
    ingested_lines: int = 0
    job_seconds: float = 0.0      # wall time of its completed segments
    last_metrics: dict[str, float] = field(default_factory=dict)
    final: bool = False           # a final retrain of the study's best configuration (not a search trial)
    failed_at: int | None = None  # the segment (target epoch) that failed, to run again on --retry-failed
    candidate: Any = None         # the nevergrad candidate, for tell (last: the fields before it are its JSON row)


TRIAL_FIELDS = tuple(f.name for f in fields(TrialState))[:-1]     # its JSON row: all but the candidate


class Study:
    def __init__(self, plan: StudyPlan, num_workers: int):
        self.plan = plan
        self.asha = Asha(plan.asha) if plan.asha else None
        self.optimizer = None
        if plan.space is not None:
            self.optimizer = make_optimizer(plan.optimizer, plan.space, budget=plan.trials,
                                            num_workers=num_workers, seed=plan.optimizer_seed)
        self.trials: dict[str, TrialState] = {}
        self.asked = 0
        # the best ended search trial so far and its key: an ended trial's key never changes, so the
        # pick is kept as trials end (O(1) per event) instead of searched for on every progress line
        self._best: tuple[tuple, TrialState] | None = None
        # While the journal is replayed: the optimizer's asks and tells, in order, played into it only at
        # the end and only if the study will ask again (a study done asking never consults it: a resume
        # of a long sweep does not rebuild the optimizers of its finished studies)
        self._replayed: list[tuple[str, TrialState, Any]] | None = None
        self._unplayed: list[tuple[str, TrialState, Any]] | None = None   # that log, kept for the next ask
        self.epochs_scheduled = 0

    # -- what runs next ---------------------------------------------------------------------------
    def can_ask(self) -> bool:
        if self.asked >= self.plan.trials:
            return False
        budget = self.plan.epoch_budget
        return budget is None or self.epochs_scheduled < budget

    def ask(self) -> TrialState:
        """A new trial: the optimizer's next configuration, or the next seed of a fixed method."""
        index = self.asked
        trial_id = f"{self.plan.slug}__t{index:03d}" if self.optimizer else f"{self.plan.slug}__s{self.plan.seeds[index]}"
        if self.optimizer is not None:
            if self._unplayed is not None:
                self._rebuild_optimizer()
            candidate = self.optimizer.ask()
            searched = self.plan.space.sample_to_params(candidate.value)
            params = {**self.plan.fixed_params, **searched}
        else:
            candidate, params = None, dict(self.plan.fixed_params)
        return self._add(trial_id, params, candidate)

    def begin_replay(self) -> None:
        self._replayed = []

    def replay_ask(self, trial_id: str, params: dict[str, Any]) -> TrialState:
        """Rebuild an ask from the journal. The optimizer's side is deferred to `end_replay`."""
        trial = self._add(trial_id, params, None)
        if self._replayed is not None:
            self._replayed.append(("ask", trial, None))
        else:
            trial.candidate = self._optimizer_replay_ask(params)
        return trial

    def _optimizer_replay_ask(self, params: dict[str, Any]) -> Any:
        """The optimizer asks again (same seed, same history); the journalled configuration wins if the
        two ever differ."""
        if self.optimizer is None:
            return None
        candidate = self.optimizer.ask()
        searched = {k: params[k] for k in self.plan.space.names}
        if self.plan.space.sample_to_params(candidate.value) != searched:
            candidate = self.optimizer.parametrization.spawn_child(new_value=searched)
        return candidate

    def end_replay(self) -> bool:
        """The journal is replayed: if the study asks again, its optimizer gets the asks and tells in their
        journal order (the very state an uninterrupted run has) at its next ask, not now: nevergrad takes
        milliseconds per ask and tell, and a resume resubmits the segments it found in flight first.
        Tells that come before that ask join the log, in order. A study that asks no more never builds
        it. Returns whether it will be rebuilt."""
        log, self._replayed = self._replayed or [], None
        if self.optimizer is None or not self.can_ask():
            return False
        self._unplayed = log
        return True

    def _rebuild_optimizer(self) -> None:
        log, self._unplayed = self._unplayed, None
        for kind, trial, loss in log:
            if kind == "ask":
                trial.candidate = self._optimizer_replay_ask(trial.params)
            else:
                self.tell(trial, loss)

    # -- a replay's state as JSON (engine.snapshot): what the journal's events built, nothing else -------
    def replay_state(self) -> dict:
        """Everything `replay_*`, `schedule`, `segment_done` and `tell` built while the journal was replayed
        (called between `begin_replay` and `end_replay`; nevergrad's own state is not in it: the ask/tell
        log is, to be played into a fresh optimizer at the study's next ask)."""
        return {
            "asked": self.asked, "epochs_scheduled": self.epochs_scheduled,
            # rows of TRIAL_FIELDS, not objects: a 200,000-trial snapshot parses in half the time
            "trial_fields": list(TRIAL_FIELDS),
            "trials": [[getattr(t, f) for f in TRIAL_FIELDS] for t in self.trials.values()],
            "asha": self.asha.to_state() if self.asha is not None else None,
            "best": None if self._best is None else [list(self._best[0]), self._best[1].trial_id],
            "log": [[kind, trial.trial_id, loss] for kind, trial, loss in (self._replayed or [])],
        }

    def load_replay_state(self, state: dict) -> None:
        """The inverse of `replay_state`, on a fresh study inside `begin_replay`."""
        self.asked, self.epochs_scheduled = int(state["asked"]), int(state["epochs_scheduled"])
        if state["trial_fields"] != list(TRIAL_FIELDS):
            raise ValueError(f"trial fields {state['trial_fields']}, not {list(TRIAL_FIELDS)}")
        self.trials = {row[0]: TrialState(*row) for row in state["trials"]}
        if self.asha is not None:
            self.asha = Asha.from_state(self.plan.asha, state["asha"])
        best = state["best"]
        self._best = None if best is None else (tuple(best[0]), self.trials[best[1]])
        self._replayed = [(kind, self.trials[trial_id], loss) for kind, trial_id, loss in state["log"]]

    def _add(self, trial_id: str, params: dict[str, Any], candidate: Any) -> TrialState:
        if self.optimizer is None:       # fixed parameters: one trial per seed
            seed = self.plan.seeds[self.asked]
            if "seed" in params:
                params["seed"] = seed
        else:                            # tuned: the seed is searched, or the sweep's first seed
            seed = int(params.get("seed", self.plan.seeds[0]))
        trial = TrialState(trial_id, self.plan.name, params, seed, candidate=candidate)
        self.trials[trial_id] = trial
        self.asked += 1
        return trial

    def first_target(self) -> int | None:
        """The epoch a new trial trains to in its first segment (None: a one-shot method)."""
        if self.asha is not None:
            return self.asha.config.rungs()[0]
        return self.plan.epochs

    def schedule(self, trial: TrialState, until_epoch: int | None) -> None:
        """Count epochs against the study's budget once, however often a segment is retried."""
        if until_epoch is not None and until_epoch > trial.scheduled_to:
            self.epochs_scheduled += until_epoch - trial.scheduled_to
            trial.scheduled_to = until_epoch

    # -- the final stage: retrain the best configuration once per seed ----------------------------
    def search_trials(self) -> list[TrialState]:
        return [t for t in self.trials.values() if not t.final]

    def final_trials(self) -> list[TrialState]:
        return [t for t in self.trials.values() if t.final]

    def can_finalize(self) -> bool:
        """The search is over (no more asks, every search trial ended) and its retrain has not started."""
        if self.plan.final_epochs is None or self.optimizer is None or self.final_trials():
            return False
        if self.can_ask() or any(t.status == "running" for t in self.search_trials()):
            return False
        return self.best_trial() is not None

    def final_params(self, seed: int, best_trial_dir: str, declared: set[str]) -> dict[str, Any]:
        """The best configuration, re-seeded for one replicate (and told where its initial weights are)."""
        best = self.best_trial()
        params = dict(best.params)
        if "final_seed" in declared:          # the seed is itself tuned (DASHA): keep it, vary the rest
            params["final_seed"] = seed
        elif "seed" in params and "seed" not in self.plan.space.names:
            params["seed"] = seed
        if "init_from" in declared:
            params["init_from"] = best_trial_dir
        return params

    def add_final(self, trial_id: str, params: dict[str, Any], seed: int) -> TrialState:
        trial = TrialState(trial_id, self.plan.name, dict(params), seed, final=True)
        self.trials[trial_id] = trial
        return trial

    # -- what a finished segment means ------------------------------------------------------------
    def segment_done(self, trial: TrialState, until_epoch: int | None, metrics: dict[str, float],
                     objective: str | None) -> tuple[str, int | None, float | None]:
        """Returns (decision, next target epoch, loss to tell). decision: continue / stop / complete."""
        trial.last_metrics = metrics
        if until_epoch is not None:
            trial.epochs_done = until_epoch
        if trial.final:                  # retrains are reported, never told to the optimizer
            trial.status = "complete"
            return "complete", None, None
        if self.asha is None:
            trial.status = "complete"
            self._ended(trial)
            return "complete", None, self._loss_without_asha(metrics, objective)
        value = metrics.get(objective, math.nan) if objective else math.nan
        decision = self.asha.report(trial.trial_id, until_epoch, float(value))
        if decision == "continue":
            return decision, self.asha.next_epoch(trial.trial_id), None
        trial.status = "complete" if decision == "complete" else "stopped"
        self._ended(trial)
        return decision, None, self.asha.fidelity_loss(trial.trial_id)

    def _ended(self, trial: TrialState) -> None:
        if self.optimizer is None:
            return
        if self.asha is not None and self.plan.fixed_params.get("protocol") == "reference":
            # DASHA's `protocol: reference`: the reference's Ray Tune picks the best last-reported value,
            # whatever rung the trial stopped at (a lucky first rung can win over trials trained longer)
            key = (*self.asha.last_report_key(trial.trial_id), trial.trial_id)
        elif self.asha is not None:
            key = (*self.asha.fidelity_key(trial.trial_id), trial.trial_id)
        else:
            sign = 1.0 if self.plan.mode == "min" else -1.0
            value = sign * trial.last_metrics.get(self.plan.objective, math.inf)
            key = (value if not math.isnan(value) else math.inf, trial.trial_id)
        if self._best is None or key < self._best[0]:
            self._best = (key, trial)

    def _loss_without_asha(self, metrics: dict[str, float], objective: str | None) -> float | None:
        if self.optimizer is None or objective is None:
            return None
        value = float(metrics.get(objective, math.nan))
        if not math.isfinite(value):
            return self.failure_loss()
        return value if self.plan.mode == "min" else -value

    def failure_loss(self) -> float:
        if self.asha is not None:
            return float(len(self.asha.config.rungs())) + FAILURE_LOSS_MARGIN
        return math.inf

    def tell(self, trial: TrialState, loss: float | None) -> None:
        if self._replayed is not None:
            self._replayed.append(("tell", trial, loss))
            return
        if self._unplayed is not None:
            self._unplayed.append(("tell", trial, loss))
            return
        if self.optimizer is not None and loss is not None and trial.candidate is not None:
            self.optimizer.tell(trial.candidate, loss if math.isfinite(loss) else 1e12)

    # -- results ----------------------------------------------------------------------------------
    def best_trial(self) -> TrialState | None:
        """The tuned study's pick, on validation only: with ASHA the best fidelity loss (highest
        rung reached, then rank there; DASHA `protocol: reference`: the best last-reported value,
        Ray Tune's rule); without, the best objective. None for fixed studies,
        whose seeds are all reported."""
        if self.optimizer is None or self._best is None:
            return None
        return self._best[1]
