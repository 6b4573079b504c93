"""Before a sweep runs: data files found, the output folder prepared (or recognised for a resume),
and the `--dry-run` plan. Nothing here submits or logs anything."""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

from .config import SweepSpec, spec_to_dict
from .errors import SpecError
from .plan import plan_studies
from .study import StudyPlan
from .tracking import default_uri

# Keys that may change between runs on one folder without changing what the results mean.
RESUMABLE_CHANGES = ("executor", "description", "source")


def check_data(spec: SweepSpec) -> None:
    """Every task's data must be found before anything is written or submitted."""
    from tasks.classification import DatasetError
    from tasks.timeseries import DatasetNotFoundError, find_dataset_file

    for task in spec.tasks:
        try:
            if task.domain == "forecasting":
                find_dataset_file(task.dataset, task.path or spec.data_root)
            elif task.domain == "genomics":
                from tasks.genomics import find_task_files

                find_task_files(task.dataset, spec.data_root, task.path)
            else:
                from tasks.satellite import find_satellite_task

                find_satellite_task(task.dataset, spec.data_root, task.path, cache_dir=Path(spec.out) / "cache")
        except (DatasetNotFoundError, DatasetError) as err:
            raise SpecError(str(err), file=str(spec.source), key=f"tasks[{task.dataset}]",
                            hint="set data_root in the sweep file or LAUNCHER_DATA_ROOT") from None


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
            raise SpecError(f"{out} already holds a different sweep (its sweep.json differs from {spec.source})",
                            hint="pass --out NEW_FOLDER, or delete the folder to start over")
        return
    out.mkdir(parents=True, exist_ok=True)
    columns = [{"study": s.name, "task": s.task, "column": s.column, "method": s.method, "arm": s.arm,
                "trials": s.trials, "objective": s.objective, "mode": s.mode}
               for s in studies]
    (out / "plan.json").write_text(json.dumps(columns, indent=2))
    recorded.write_text(json.dumps(resolved, indent=2, sort_keys=True))


def describe_plan(spec: SweepSpec) -> str:
    """What `--dry-run` prints: every study, its budget, the backend and where results would go."""
    plans = plan_studies(spec)
    trials = sum(p.trials for p in plans)
    lines = [f"sweep {spec.name}: {len(plans)} studies, up to {trials} trials",
             f"  backend {spec.executor.backend}, {spec.executor.workers} worker slot(s), timeout {spec.executor.timeout_min} min",
             f"  output  {spec.out}",
             f"  tracking {spec.tracking.uri or default_uri(Path(spec.out))}", "", "studies:"]
    for p in plans:
        if p.space is not None:
            how = f"{p.trials} trials by {p.optimizer}" + (f", ASHA rungs {list(p.asha.rungs())}" if p.asha else "")
            how += f"; searched: {', '.join(d.name for d in p.space.domains)}"
        else:
            fixed = ", ".join(f"{k}={v}" for k, v in sorted(p.fixed_params.items()))
            how = f"{p.trials} run(s), seeds {list(p.seeds)}" + (f"; {fixed}" if fixed else "")
        lines.append(f"  {p.name:<34} {how}")
    return "\n".join(lines)
