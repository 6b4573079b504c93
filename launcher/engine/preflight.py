"""Before a sweep runs: data files found, the output folder prepared (or recognised for a resume),
and the `--dry-run` plan. Nothing here submits or logs anything."""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

from launcher.engine.plan import plan_studies
from launcher.engine.study import StudyPlan
from launcher.errors import SpecError
from launcher.spec.load import spec_to_dict
from launcher.spec.sweep import SweepSpec
from launcher.tracking import sweep_uri

# Keys that may change between runs on one folder without changing what the results mean.
# `out` too: a sweep folder may be moved or copied and resumed where it now is.
RESUMABLE_CHANGES = ("executor", "description", "source", "out")


def check_data(spec: SweepSpec) -> None:
    """Every task's data must be found, and read where that is cheap, before anything is written or submitted.

    Forecasting: each file is read once (however many tasks and horizons use it) by the loader the trials
    use, and every task is built from it in memory (split sizes for its context and every horizon, z-scoring),
    so a dirty or short file is one `SpecError` naming the file, line and column (a task with its own date
    column or channels reads its file so; the spec validation already read it once). Genomics: the split files
    are parsed and their labels checked (bases and lengths are checked by the trials' one-hot encoding, which
    holds the whole task in memory). Satellite: the folder is only found; images are read by the trials.
    Nothing is cached on disk.
    """
    from tasks.classification import DatasetError
    from tasks.timeseries import DATASETS as BUILT_IN
    from tasks.timeseries import (
        DatasetFormatError,
        DatasetNotFoundError,
        TaskSizeError,
        check_task_fits,
        find_dataset_file,
        load_forecast_task,
        load_series,
        task_split_sizes,
        user_series,
    )

    # (resolved file, how it is read) -> (file, its tasks)
    forecast_files: dict[tuple, tuple[Path, list]] = {}
    for task in spec.tasks:
        if task.loader:
            _check_task_from_code(task, spec)
            continue
        try:
            if task.domain == "forecasting":
                file = Path(task.path) if task.path else find_dataset_file(task.dataset, spec.data_root)
                reading = (task.dataset not in BUILT_IN or task.date_column is not None, task.date_column,
                           task.target_channels)
                forecast_files.setdefault((file.resolve(), reading), (file, []))[1].append(task)
            elif task.domain == "genomics":
                _check_genomics_files(task, spec)
            else:
                from tasks.satellite import find_satellite_task

                find_satellite_task(task.dataset, spec.data_root, task.path, cache_dir=Path(spec.out) / "cache")
        except (DatasetNotFoundError, DatasetError) as err:
            raise SpecError(str(err), file=str(spec.source), key=f"tasks[{task.dataset}]",
                            hint="set data_root in the sweep file or LAUNCHER_DATA_ROOT") from None
    for (_, (user, date_column, channels)), (file, tasks) in forecast_files.items():
        task = tasks[0]
        try:
            channels = None if channels is None else list(channels)
            series = user_series(file, date_column=date_column, target_channels=channels) if user else \
                load_series(file, target_channels=channels)
            for task in tasks:
                own = task.split() is not None or task.dataset not in BUILT_IN
                sizes = task_split_sizes(task.dataset, file, series, task.split()) if own else None
                check_task_fits(task.dataset, file, len(series.values), task.context, task.horizons,
                                sizes=sizes, split=task.split())
                load_forecast_task(task.dataset, min(task.horizons), context=task.context, path=file, series=series,
                                   split=task.split(), freq=task.freq)
        except TaskSizeError as err:
            raise SpecError(err.detail, file=str(spec.source), key=f"tasks[{task.dataset}]",
                            hint=err.hint) from None
        except DatasetFormatError as err:
            if err.path is None:
                raise SpecError(str(err), file=str(spec.source), key=f"tasks[{task.dataset}]") from None
            raise SpecError(f"{err.detail} (data of task {task.dataset} in {spec.source})", file=str(err.path),
                            line=err.line, hint=err.hint) from None


def _check_genomics_files(task, spec: SweepSpec) -> None:
    """Parse a genomics task's files and check their labels, as the trials' loader does first."""
    from tasks.genomics import IENHANCER_LABELS, find_task_files, genomics_task_info
    from tasks.genomics_formats import read_ienhancer, read_split, read_task_table

    layout, files = find_task_files(task.dataset, spec.data_root, task.path)
    n_classes = genomics_task_info(task.dataset).n_classes
    if layout == "ienhancer":
        labels = IENHANCER_LABELS[task.dataset]
        splits = [read_ienhancer({stem: files[f"{split}_{stem}"] for stem in labels}, labels)
                  for split in ("train", "test")]
    elif layout == "table":    # one table of many tasks: this task's rows
        splits = list(read_task_table(files["table"], task.dataset).values())
    else:
        splits = [read_split(file) for file in files.values()]
    for split in splits:
        split.check_labels(n_classes)


def git_revision(where: Path) -> str:
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=where, capture_output=True, text=True,
                             timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=where,
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return (sha or "unknown") + ("-dirty" if dirty else "")


def _what_results_mean(recorded: dict) -> dict:
    kept = {k: v for k, v in recorded.items() if k not in RESUMABLE_CHANGES}
    if isinstance(kept.get("search"), dict):   # raising the failure cap to resume a paused sweep is fine
        kept["search"] = {k: v for k, v in kept["search"].items() if k != "max_failure_rate"}
    return kept


def prepare_out(spec: SweepSpec, studies: list[StudyPlan]) -> None:
    """Create the sweep folder, or accept it if it holds this very sweep (then it resumes).

    Changing the backend, the number of workers or the description is allowed on a rerun;
    changing tasks, methods, parameters, seeds, search or tracking is a different sweep: refused.
    """
    out = Path(spec.out)
    recorded = out / "sweep.json"
    resolved = json.loads(json.dumps(spec_to_dict(spec)))
    if recorded.exists():
        previous = json.loads(recorded.read_text())
        if _what_results_mean(previous) != _what_results_mean(resolved):
            old = (previous.get("search") or {}).get("optimizer")
            new = resolved["search"].get("optimizer")
            if old and old != new and _what_results_mean(previous) == _what_results_mean(
                    {**resolved, "search": {**resolved["search"], "optimizer": old}}):
                # e.g. started before the default became TwoPointsDE_LHS, or preset dasha RandomSearch
                raise SpecError(f"{out} was started with optimizer {old}; {spec.source} now resolves to {new} (the "
                                f"default or the preset changed, or the file did)",
                                hint=f"to resume it, add `optimizer: {old}` under `search:` in {spec.source}; "
                                     "or pass --out NEW_FOLDER to start over")
            raise SpecError(f"{out} already holds a different sweep (its sweep.json differs from {spec.source})",
                            hint="pass --out NEW_FOLDER, or delete the folder to start over")
        return
    out.mkdir(parents=True, exist_ok=True)
    columns = [{"study": s.name, "task": s.task, "column": s.column, "method": s.method, "arm": s.arm,
                "trials": s.trials, "objective": s.objective, "mode": s.mode,
                "implementation": s.implementation, "kind": s.kind, "deterministic": s.deterministic}
               for s in studies]
    (out / "plan.json").write_text(json.dumps(columns, indent=2))
    # Written in the file's key order (a search space's order is part of what the optimizer sees),
    # with the folder itself as "." so that a moved or copied folder still describes itself.
    recorded.write_text(json.dumps({**resolved, "out": "."}, indent=2))


def check_method_rows(spec: SweepSpec) -> None:
    """What each method row needs besides data, found before anything is written or submitted (an FM's
    checkpoint folder, with the exact command that fetches it): one SpecError listing every problem."""
    from launcher.methods.registry import method_class

    domains = sorted({t.domain for t in spec.tasks})
    problems = []
    for row in spec.methods:
        cls = method_class(row.method)
        for domain in (d for d in domains if d in cls.domains):
            problems += [f"methods.{row.name} ({domain}): {p}" for p in cls.preflight_problems(row.params, domain)]
    if problems:
        raise SpecError("; ".join(dict.fromkeys(problems)), file=str(spec.source),
                        hint="fetch the checkpoint(s), set allow_download: true, or use stand_in: tiny")


def _check_task_from_code(task, spec: SweepSpec) -> None:
    """A task of one's own from code: its loader runs once (the first horizon) and must build a task of the
    standard types, so a broken loader is one message before anything is submitted, not a failure per trial."""
    from tasks.classification import ClassificationTask
    from tasks.registry import load_task
    from tasks.timeseries import ForecastTask

    expected = ForecastTask if task.domain == "forecasting" else ClassificationTask
    where = dict(file=str(spec.source), key=f"tasks[{task.dataset}]")
    try:
        built = load_task(task.domain, task.dataset, horizon=min(task.horizons) if task.horizons else None,
                          context=task.context or None, data_root=spec.data_root,
                          options={"loader": task.loader, "max_train": task.max_train,
                                   "val_fraction": task.val_fraction})
    except Exception as err:  # the user's loader: whatever it raises is reported, never a traceback
        raise SpecError(f"the loader {task.loader} raised {type(err).__name__}: {err}", **where,
                        hint="run the loader on its own to debug it") from None
    if not isinstance(built, expected):
        raise SpecError(f"the loader {task.loader} returned a {type(built).__name__}, expected a "
                        f"{expected.__module__}.{expected.__name__}", **where,
                        hint="build the task with the types of tasks.timeseries / tasks.classification")


def describe_plan(spec: SweepSpec) -> str:
    """What `--dry-run` prints: every study, its budget, the backend and where results would go."""
    plans = plan_studies(spec)
    trials = sum(p.trials for p in plans)
    lines = [f"sweep {spec.name}: {len(plans)} studies, up to {trials} trials",
             f"  backend {spec.executor.backend}, {spec.executor.workers} worker slot(s), timeout {spec.executor.timeout_min} min",
             f"  output  {spec.out}",
             f"  tracking {sweep_uri(spec)}", "", "studies:"]
    for p in plans:
        if p.space is not None:
            how = f"{p.trials} trials by {p.optimizer}" + (f", ASHA rungs {list(p.asha.rungs())}" if p.asha else "")
            how += f"; searched: {', '.join(d.name for d in p.space.domains)}"
        else:
            fixed = ", ".join(f"{k}={v}" for k, v in sorted(p.fixed_params.items()))
            how = f"{p.trials} run(s), seeds {list(p.seeds)}" + (f"; {fixed}" if fixed else "")
        lines.append(f"  {p.name:<34} {how}")
    return "\n".join(lines)
