"""Every task name the launcher knows, its domain, and one loader for all domains.

Domains: `forecasting` (tasks.timeseries: a dataset x horizons), `genomics` (tasks.genomics) and
`satellite` (tasks.satellite). Names are unique across domains, so a sweep file names a task by its
dataset alone and the domain follows.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from tasks.plugins import DOMAINS, TaskSource, load_task_source, plugin_tasks

__all__ = ["DOMAINS", "TaskSource", "known_tasks", "load_task", "load_task_source", "plugin_tasks", "task_name"]


def known_tasks() -> dict[str, str]:
    """Task/dataset name -> domain."""
    from tasks.genomics import list_genomics_tasks
    from tasks.satellite import list_satellite_tasks
    from tasks.timeseries import DATASETS

    names = {name: "forecasting" for name in DATASETS}
    names.update({name: "genomics" for name in list_genomics_tasks()})
    names.update({name: "satellite" for name in list_satellite_tasks()})
    return names


def task_name(dataset: str, domain: str, horizon: int | None) -> str:
    """The name a task goes by in studies, MLflow and the report: `ETTh1-96`, `prom_300_tata`."""
    return f"{dataset}-{horizon}" if domain == "forecasting" else dataset


def load_task(domain: str, dataset: str, *, horizon: int | None = None, context: int | None = None,
              data_root: str | Path | None = None, path: str | Path | None = None, seed: int = 0,
              cache_dir: str | Path | None = None, options: dict[str, Any] | None = None):
    """Load one task of any domain; `options` holds domain-specific keys: forecasting date_column,
    target_channels, split, freq (a user's own file, `tasks.timeseries.load_forecast_task`); genomics and
    satellite val_fraction, max_train."""
    options = {k: v for k, v in (options or {}).items() if v is not None}
    if "loader" in options:            # a task of one's own (tasks.plugins): its loader builds the task
        source = load_task_source(options.pop("loader"))
        if source.domain == "forecasting":
            return source(horizon=horizon, context=context, data_root=data_root, **options)
        return source(seed=seed, data_root=data_root, **options)
    if domain == "forecasting":
        from tasks.timeseries import load_forecast_task

        return load_forecast_task(dataset, horizon, data_root=data_root, context=context, path=path, **options)
    if domain == "genomics":
        from tasks.genomics import load_genomics_task

        return load_genomics_task(dataset, data_root=data_root, path=path, seed=0, **options)
    if domain == "satellite":
        from tasks.satellite import load_satellite_task

        return load_satellite_task(dataset, data_root=data_root, path=path, seed=0, cache_dir=cache_dir, **options)
    raise ValueError(f"unknown domain {domain!r}; expected one of {', '.join(DOMAINS)}")
