"""The method seam: a recipe that fits a model family to a task and returns its scores.

A method runs inside a trial job. It gets the loaded task, its resolved parameters (declared in
`params.py`, validated by `launcher.spec.sweep`) and a `report` callback that appends one line to the
trial's outbox (the controller copies those lines into MLflow). It returns a `MethodResult`.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

Report = Callable[[int, dict[str, float]], None]


@dataclass
class MethodResult:
    metrics: dict[str, float]                       # final metrics, e.g. test_mse, test_mae
    n_parameters: int | None = None                 # learned parameters of the final model
    info: dict[str, Any] = field(default_factory=dict)   # chosen hyperparameters etc. (logged as params)
    notes: list[str] = field(default_factory=list)  # caveats the report must show (leakage, subsampling)


class Method(ABC):
    """A one-shot method: fit and score in one go."""

    name: str = ""  # its kind and determinism are declared in params.py, readable without imports
    needs_task = True
    # A folder shared by all trials of a sweep, for results that several trials would otherwise
    # recompute (e.g. a fit that does not depend on the horizon). Set by the trial job; None: no cache.
    cache_dir: Path | None = None

    @abstractmethod
    def run(self, task: Any, params: dict[str, Any], report: Report) -> MethodResult:
        ...


class EpochMethod(ABC):
    """A multi-fidelity method: trained in epochs, run in segments that end in a checkpoint.

    `run_segment` restores the newest checkpoint in `trial_dir` (if any), trains up to
    `until_epoch`, reports one outbox line per epoch (step = epoch), and returns the metrics of
    the last epoch, which must include `epoch` and the method's objective (see params.OBJECTIVE).
    Promotion to the next ASHA rung and requeue after preemption use this same resume path.
    """

    name: str = ""
    needs_task = True
    cache_dir: Path | None = None
    # How this trial's training is spread over ranks (launcher.training.runtime.DistributedSpec); set by the trial job.
    distributed: Any = None

    @abstractmethod
    def run_segment(self, task: Any, params: dict[str, Any], trial_dir: Path, until_epoch: int,
                    report: Report) -> MethodResult:
        ...
