"""The method seam: a recipe that fits a model family to a task and returns its scores.

A method is one class, and the class says everything the launcher must know before anything runs
(`Declaration`): its name, kind, task domains, parameters with defaults (`params.Param`), default
search space, validation objective, whether it is deterministic, the `distributed` strategies it
supports and default SLURM resources. `registry.py` collects the classes; a user's own method is any
subclass of `Method` / `EpochMethod` named by import path (`my_pkg.fm:MyMethod`) or entry point.

A method runs inside a trial job. It gets the loaded task, its resolved parameters (validated by
`launcher.spec` against `params`) and a `report` callback that appends one line to the trial's outbox
(the controller's tracking writer copies those lines into MLflow). It returns a `MethodResult`.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, ClassVar

from launcher.methods.params import Param

Report = Callable[[int, dict[str, float]], None]


@dataclass
class MethodResult:
    metrics: dict[str, float]                       # final metrics, e.g. test_mse, test_mae
    n_parameters: int | None = None                 # learned parameters of the final model
    info: dict[str, Any] = field(default_factory=dict)   # chosen hyperparameters etc. (logged as params)
    notes: list[str] = field(default_factory=list)  # caveats the report must show (leakage, subsampling)


KINDS = ("supervised", "baseline", "fine-tuned FM", "zero-shot FM", "benchmark")
DOMAINS = ("forecasting", "genomics", "satellite")
STRATEGIES = ("none", "ddp", "deepspeed")


class Declaration:
    """What a method class declares, read by the spec checks, the planner and the report without
    running (or importing the heavy parts of) the method. Class attributes, not instance state."""

    name: ClassVar[str] = ""                       # the name sweep files use: `methods: {<name>: {...}}`
    kind: ClassVar[str] = "supervised"             # one of KINDS: the report's label
    domains: ClassVar[tuple[str, ...]] = ("forecasting",)   # task domains it applies to
    params: ClassVar[dict[str, Param]] = {}        # every key a sweep row may set, with defaults
    # Multi-fidelity methods: the space searched when a sweep row gives none ({} = nothing searched),
    # and the validation metric reported per epoch with its direction, or domain -> (metric, direction).
    default_space: ClassVar[dict[str, dict]] = {}
    objective: ClassVar[tuple[str, str] | dict[str, tuple[str, str]] | None] = None
    deterministic: ClassVar[bool] = False          # same result for every seed: run once, labelled
    strategies: ClassVar[tuple[str, ...]] = ("none",)   # `distributed.strategy` values it supports
    default_resources: ClassVar[dict[str, Any]] = {}    # SLURM resources its trials get unless the row says
    multi_fidelity: ClassVar[bool] = False         # trained in epochs and segments (EpochMethod)

    @classmethod
    def check_params(cls, params: dict[str, Any]) -> dict[str, str]:
        """Checks across params, or beyond one Param's kind and range, before anything runs: param name ->
        what is wrong with it (the spec layer reports it at that param's file:line). Override as needed."""
        return {}

    @classmethod
    def preflight_problems(cls, params: dict[str, Any], domain: str) -> list[str]:
        """What keeps this row from running on a task of `domain`, found without running it (e.g. an FM
        checkpoint folder that is missing or incomplete): checked before anything is submitted."""
        return []

    @classmethod
    def study_overhead_epochs(cls, params: dict[str, Any], domain: str) -> float:
        """One-off work a study does besides its trials, in epochs of its model (e.g. DASHA's architecture
        search, shared by every trial of the study); used for the expected GPU-hours of `--dry-run`."""
        return 0.0

    @classmethod
    def objective_for(cls, domain: str) -> tuple[str | None, str]:
        """(objective metric, "min"/"max") on a task of `domain`; (None, "min") when it has none."""
        entry = cls.objective or (None, "min")
        return entry.get(domain, (None, "min")) if isinstance(entry, dict) else entry


class Method(Declaration, ABC):
    """A one-shot method: fit and score in one go."""

    needs_task = True
    # A folder shared by all trials of a sweep, for results that several trials would otherwise
    # recompute (e.g. a fit that does not depend on the horizon). Set by the trial job; None: no cache.
    cache_dir: Path | None = None

    @abstractmethod
    def run(self, task: Any, params: dict[str, Any], report: Report) -> MethodResult:
        ...


class EpochMethod(Declaration, ABC):
    """A multi-fidelity method: trained in epochs, run in segments that end in a checkpoint.

    `run_segment` restores the newest checkpoint in `trial_dir` (if any), trains up to
    `until_epoch`, reports one outbox line per epoch (step = epoch), and returns the metrics of
    the last epoch, which must include `epoch` and the method's objective (`objective`).
    Promotion to the next ASHA rung and requeue after preemption use this same resume path.
    """

    multi_fidelity = True
    needs_task = True
    cache_dir: Path | None = None
    # How this trial's training is spread over ranks (launcher.training.ranks.DistributedSpec); set by the trial job.
    distributed: Any = None

    @abstractmethod
    def run_segment(self, task: Any, params: dict[str, Any], trial_dir: Path, until_epoch: int,
                    report: Report) -> MethodResult:
        ...
