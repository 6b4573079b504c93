"""From a validated sweep spec to the list of trials to run (pure: no I/O)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .config import SweepSpec
from .methods.params import DETERMINISTIC
from .trial import TrialSpec


@dataclass(frozen=True)
class Study:
    name: str          # "<task>/<method>", e.g. "ETTh1-96/autoar"
    task: str          # "ETTh1-96"
    dataset: str
    horizon: int
    method: str


def trial_id(task: str, method: str, seed: int) -> str:
    return f"{task}__{method}__s{seed}"


def plan_trials(spec: SweepSpec, *, threads: int = 1) -> tuple[list[Study], list[TrialSpec]]:
    """Tasks x horizons x methods x seeds. A deterministic method runs once (first seed)."""
    studies: list[Study] = []
    trials: list[TrialSpec] = []
    for task in spec.tasks:
        for horizon in task.horizons:
            task_name = f"{task.dataset}-{horizon}"
            for method in spec.methods:
                study = Study(f"{task_name}/{method.name}", task_name, task.dataset, horizon, method.name)
                studies.append(study)
                seeds = spec.seeds[:1] if method.name in DETERMINISTIC else spec.seeds
                for seed in seeds:
                    tid = trial_id(task_name, method.name, seed)
                    trials.append(TrialSpec(
                        trial_id=tid, study=study.name, dataset=task.dataset, horizon=horizon,
                        context=task.context, method=method.name, params=dict(method.params), seed=seed,
                        trial_dir=str(Path(spec.out) / "trials" / tid),
                        data_root=str(spec.data_root) if spec.data_root else None,
                        data_path=str(task.path) if task.path else None, threads=threads,
                    ))
    return studies, trials
