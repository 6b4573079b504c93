"""From a study's trial to the TrialSpec its job runs, and what that job holds (threads, GPUs).

Pure functions of the sweep spec: the controller calls them at submit time, and the numbers they give
(CPUs, GPUs per trial) are the ones MLflow records for the report's cost rows.
"""
from __future__ import annotations

import os
from pathlib import Path

from launcher.engine.study import StudyPlan, TrialState
from launcher.job.trial import TrialSpec
from launcher.spec.sweep import SweepSpec, TaskSpec


def _task_of(spec: SweepSpec, plan: StudyPlan) -> TaskSpec | None:
    return next((t for t in spec.tasks if t.dataset == plan.dataset), None)


def _slurm_resources(spec: SweepSpec, plan: StudyPlan):
    from launcher.backends.slurm_resources import SlurmResources, trial_resources

    base = SlurmResources.from_dict({"time_min": spec.executor.timeout_min, **(spec.executor.slurm or {})})
    return trial_resources(base, plan.resources, plan.distributed)


def threads_per_trial(spec: SweepSpec, plan: StudyPlan) -> int:
    """CPU threads one trial job uses: its SLURM cpus_per_task, or this machine's cores shared by the slots."""
    backend = spec.executor.backend
    if backend == "inline":
        return os.cpu_count() or 1
    if backend == "slurm":
        return _slurm_resources(spec, plan).cpus_per_task
    return max(1, (os.cpu_count() or 1) // spec.executor.workers)


def gpus_per_trial(spec: SweepSpec, plan: StudyPlan) -> int:
    """GPUs one trial job holds (the report's GPU-hours): SLURM gpus_per_node x nodes; none elsewhere."""
    if spec.executor.backend != "slurm":
        return 0
    resources = _slurm_resources(spec, plan)
    return resources.gpus_per_node * resources.nodes


def build_trial_spec(spec: SweepSpec, plan: StudyPlan, trial: TrialState, until_epoch: int | None,
                     trial_dir: Path) -> TrialSpec:
    task = _task_of(spec, plan)
    if task is None:
        options = {}
    elif task.domain == "forecasting":   # a user's own file: date column, channels, split, season
        options = {k: v for k, v in task.forecast_options().items() if v is not None}
    else:
        options = {"max_train": task.max_train, "val_fraction": task.val_fraction}
    if task is not None and task.loader:    # a task of one's own from code: its loader builds it
        options["loader"] = task.loader
    params = dict(trial.params)
    if params.get("init_from") and not Path(params["init_from"]).is_absolute():   # relative to the sweep folder
        params["init_from"] = str(Path(spec.out) / params["init_from"])
    return TrialSpec(trial_id=trial.trial_id, study=plan.name, dataset=plan.dataset, horizon=plan.horizon,
                     context=plan.context, method=plan.implementation, params=params, seed=trial.seed,
                     trial_dir=str(trial_dir), data_root=str(spec.data_root) if spec.data_root else None,
                     data_path=str(task.path) if task is not None and task.path else None,
                     threads=threads_per_trial(spec, plan), until_epoch=until_epoch,
                     distributed=plan.distributed, resources=plan.resources, domain=plan.domain,
                     task_options=options)
