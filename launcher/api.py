"""The Python API: the command line's `sweep`, `resume`, `status` and `report` as functions, and the
report's numbers as a table (`results`).

    import launcher

    out = launcher.sweep("sweeps/smoke.yaml", out="runs/smoke", overrides={"executor.backend": "inline"})
    launcher.status(out)["state"]          # 'finished'
    print(launcher.report(out))            # the Markdown table; also writes report.md/.csv/.html
    table = launcher.results(out)          # one row per (task, column, seed, metric)

Bad input (a malformed spec, a missing dataset, a folder that is not a sweep) raises
`launcher.errors.SpecError`, with the same text the command line prints, before anything is written.
Nothing here calls `sys.exit`. A sweep paused by too many failed trials raises `SweepPaused` (the
command line exits with code 3); trials that failed without pausing it are counted in the message on
stderr and marked in the report, as on the command line.

`run_spec`, `resume_folder` and `sweep_status` are what `launcher.__main__` calls too, so the command
line and the API run one code path. Heavy modules (the controller, MLflow, torch, pandas) are imported
inside the functions: importing this module is cheap.
"""
from __future__ import annotations

import math
import os
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence

from launcher.errors import SpecError

if TYPE_CHECKING:
    import pandas

    from launcher.engine.progress import SweepStatus
    from launcher.spec.sweep import SweepSpec

__all__ = ["SpecError", "SweepPaused", "load_spec", "report", "results", "resume", "status", "sweep"]

DICT_SOURCE = "<sweep dict>"   # where errors in a spec given as a dict point (no file, no line)
RESULT_COLUMNS = ("domain", "task", "method", "kind", "seed", "metric", "value", "status", "selected_epoch",
                  "job_seconds", "column_cpu_hours", "column_gpu_hours")


class SweepPaused(RuntimeError):
    """The sweep paused: more trials failed than `search.max_failure_rate` allows. Finished work is kept;
    fix the cause (error.txt in each failed trial folder), then `launcher.resume(folder)`."""

    def __init__(self, folder: Path, summary: dict, max_failure_rate: float):
        super().__init__(f"sweep in {folder} paused: {summary['failed']} trials failed, more than "
                         f"search.max_failure_rate={max_failure_rate} of those that ended. Finished work is kept. "
                         f"Read the tracebacks (launcher.status({str(folder)!r}); error.txt in each failed trial "
                         f"folder), fix the cause, then call launcher.resume({str(folder)!r})")
        self.folder = folder
        self.summary = summary


@dataclass
class Outcome:
    """What one run of a sweep (or its dry run) came to."""
    folder: Path
    summary: dict | None = None    # the controller's counts (trials, done, failed, paused); None for a dry run
    markdown: str | None = None    # the report written at the end; None for a dry run or a paused sweep
    max_failure_rate: float | None = None


# --------------------------------------------------------------------------- shared with the command line
def run_spec(spec: SweepSpec, *, dry_run: bool = False, epoch_minutes: float = 5.0, retry_failed: bool = False,
             print_report: bool = True, calibrate: bool = False) -> Outcome:
    """Run a validated sweep to its end, as `launcher sweep` does: data preflight, tracking-store check,
    the folder's lock, the controller, then the report. A dry run prints the plan and writes nothing;
    with `calibrate` it first times one short segment per (task, method) on this machine, in a temporary
    folder (launcher.engine.calibrate), and uses those times for the expected GPU-hours.
    Progress and the closing lines go to stderr; the dry-run plan, and the report when `print_report`,
    to stdout."""
    from launcher.engine.lock import sweep_lock
    from launcher.engine.preflight import check_data, check_method_rows

    if calibrate and not dry_run:
        raise SpecError("--calibrate goes with --dry-run: it times one short segment per (task, method) for the "
                        "dry run's expected GPU-hours", hint="add --dry-run")
    if dry_run:
        from launcher.engine.dry_run import describe_dry_run

        for check in (check_data, check_method_rows):
            try:
                check(spec)
            except SpecError as missing:    # a cluster sweep previewed on a laptop: say so, do not stop
                print(f"warning: {missing}\n")
        measured = None
        if calibrate:
            from launcher.engine.calibrate import calibrate as measure_epochs
            from launcher.engine.plan import plan_studies

            measured = measure_epochs(spec, plan_studies(spec))
        print(describe_dry_run(spec, epoch_minutes, calibrated=measured))
        print("\n(dry run: nothing written, nothing submitted)")
        return Outcome(Path(spec.out))
    check_data(spec)
    check_method_rows(spec)
    from launcher.tracking import check_tracking, sweep_uri

    check_tracking(sweep_uri(spec))
    with sweep_lock(Path(spec.out)):    # one controller per folder; released by the kernel on kill -9
        return _run_locked(spec, retry_failed, print_report)


def _run_locked(spec: SweepSpec, retry_failed: bool, print_report: bool) -> Outcome:
    from launcher.engine.controller import Controller

    folder = Path(spec.out)
    print(f"sweep {spec.name}: results in {spec.out}", file=sys.stderr)
    summary = Controller(spec, retry_failed=retry_failed).run()
    if summary["paused"]:
        print(f"\nPAUSED: {summary['failed']} trials failed, more than search.max_failure_rate="
              f"{spec.search.max_failure_rate} of those that ended. Finished work is kept. Read the tracebacks "
              f"(python -m launcher status {spec.out}; error.txt in each failed trial folder), fix the cause, then "
              f"run: python -m launcher resume {spec.out}", file=sys.stderr)
        return Outcome(folder, summary, max_failure_rate=spec.search.max_failure_rate)
    from launcher.report import write_report
    from launcher.tracking import sweep_uri

    markdown = write_report(folder)
    from launcher.engine.tracking_writer import log_sweep_artifacts

    log_sweep_artifacts(spec, sorted(folder.glob("report*")))
    if print_report:
        print(markdown)
    store = sweep_uri(spec)
    print(f"{summary['done']} of {summary['trials']} trials finished, {summary['failed']} failed. "
          f"Report: {folder / 'report.md'}; MLflow: mlflow ui --backend-store-uri {store}", file=sys.stderr)
    return Outcome(folder, summary, markdown, spec.search.max_failure_rate)


def resume_folder(folder: str | os.PathLike, *, overrides: Mapping[str, Any] | None = None,
                  retry_failed: bool = False, print_report: bool = True) -> Outcome:
    """Continue the sweep recorded in `folder` (`launcher resume DIR`)."""
    from launcher.engine.lock import sweep_lock
    from launcher.spec.load import load_recorded_sweep, read_record

    folder = Path(folder)
    read_record(folder)                 # a sweep folder? (read only: nothing written before the lock)
    with sweep_lock(folder):            # a second controller is refused before it writes anything
        return run_spec(load_recorded_sweep(folder, overrides=overrides), retry_failed=retry_failed,
                        print_report=print_report)


def sweep_status(folder: str | os.PathLike) -> SweepStatus:
    """The progress of a sweep read from its journal alone (`launcher status DIR`)."""
    from launcher.engine.progress import read_status

    folder = Path(folder)
    if not (folder / "journal.jsonl").exists():
        raise SpecError(f"{folder} has no journal.jsonl: not a sweep folder, or the sweep never started",
                        hint="pass the output folder of `launcher sweep`")
    return read_status(folder)


# --------------------------------------------------------------------------- reading a spec
def load_spec(spec: str | os.PathLike | Mapping[str, Any], *, out: str | os.PathLike | None = None,
              overrides: Mapping[str, Any] | None = None) -> SweepSpec:
    """Validate a sweep given as a YAML file's path or as a dict shaped like that file.

    `out` and `overrides` (dotted keys, e.g. {"executor.backend": "inline"}) are applied like the command
    line's flags, and validated with the rest. Errors are `SpecError`s naming the file and line (a dict:
    the key path, in `<sweep dict>`); relative paths in a dict resolve against the working directory.
    """
    overrides = dict(overrides or {})
    if out is not None:
        overrides["out"] = os.fspath(out)
    if isinstance(spec, (str, os.PathLike)):
        from launcher.spec.load import load_sweep

        return load_sweep(spec, overrides=overrides or None)
    if not isinstance(spec, Mapping):
        raise SpecError(f"expected the path of a sweep YAML file or a dict shaped like one, got "
                        f"{type(spec).__name__}", file=DICT_SOURCE,
                        hint="e.g. {'name': 'demo', 'tasks': [{'dataset': 'ETTh1', 'horizons': [96]}], "
                             "'methods': {'naive': {}}}")
    from launcher.spec.validation import Validator, check_root
    from launcher.spec.yaml_nodes import apply_overrides

    root = _as_nodes(spec, "", 0, ())
    check_root(root)
    if overrides:
        apply_overrides(root, overrides)
    # source "<sweep dict>": its folder is "." (relative paths resolve against the working directory)
    return Validator(DICT_SOURCE, Path(DICT_SOURCE)).sweep(root)


def _as_nodes(value: Any, path: str, depth: int, parents: tuple[int, ...]):
    """A Python value as the tree of `Node`s a YAML file composes to, each pointing at its key path."""
    from launcher.spec.yaml_nodes import MAX_DEPTH, Node, join_key

    if depth > MAX_DEPTH:
        raise SpecError(f"values are nested more than {MAX_DEPTH} levels deep", file=DICT_SOURCE, key=path or None)
    if isinstance(value, (Mapping, list, tuple)):
        if id(value) in parents:
            raise SpecError("contains itself (a dict or list nested in itself)", file=DICT_SOURCE, key=path or None)
        parents = (*parents, id(value))
    if isinstance(value, Mapping):
        entries = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise SpecError(f"keys must be strings, got {type(key).__name__} {key!r}", file=DICT_SOURCE,
                                key=path or None)
            where = join_key(path, key)
            entries[key] = (Node(key, DICT_SOURCE, None, text=key, plain=True),
                            _as_nodes(item, where, depth + 1, parents))
        return Node(entries, DICT_SOURCE, None)
    if isinstance(value, (list, tuple)):
        return Node([_as_nodes(item, f"{path}[{i}]", depth + 1, parents) for i, item in enumerate(value)],
                    DICT_SOURCE, None)
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    elif not isinstance(value, (str, bool, int, float)) and value is not None and hasattr(value, "item"):
        value = value.item()           # a numpy scalar
    if isinstance(value, str):         # a Python str is a string, as a quoted YAML scalar is
        return Node(value, DICT_SOURCE, None, text=value, plain=False)
    if value is None or isinstance(value, (bool, int, float)):
        return Node(value, DICT_SOURCE, None, text=None if value is None else str(value), plain=True)
    raise SpecError(f"a {type(value).__name__} is not a value a sweep can hold", file=DICT_SOURCE,
                    key=path or None, hint="Use str, int, float, bool, None, lists and dicts.")


# --------------------------------------------------------------------------- the public functions
def sweep(spec: str | os.PathLike | Mapping[str, Any], *, out: str | os.PathLike | None = None,
          dry_run: bool = False, overrides: Mapping[str, Any] | None = None) -> Path:
    """Run a sweep to its end like `python -m launcher sweep FILE`; return its output folder.

    `spec`: the path of a sweep YAML file, or a dict shaped like one. `out`: the output folder (default:
    the spec's `out`, else runs/<name>). `overrides`: dotted keys set as on the command line, e.g.
    {"executor.backend": "inline", "executor.workers": 2}. Trials already finished in the folder are not
    run again. `dry_run`: print the plan (studies, resources, GPU-hour bound) and write nothing.
    Raises `SpecError` on bad input (nothing written), `SweepPaused` when too many trials failed.
    """
    loaded = load_spec(spec, out=out, overrides=overrides)
    return _finish(_stoppable(run_spec, loaded, dry_run=dry_run, print_report=False))


def resume(dir: str | os.PathLike, *, retry_failed: bool = False, overrides: Mapping[str, Any] | None = None) -> Path:
    """Continue a sweep from its folder (after a crash, a kill or a pause) like `launcher resume DIR`;
    return the folder. `retry_failed`: run the failed trials again (after fixing their cause)."""
    return _finish(_stoppable(resume_folder, dir, overrides=overrides, retry_failed=retry_failed,
                              print_report=False))


def _finish(outcome: Outcome) -> Path:
    if outcome.summary is not None and outcome.summary["paused"]:
        raise SweepPaused(outcome.folder, outcome.summary, outcome.max_failure_rate)
    return outcome.folder


def _stoppable(function, *args, **kwargs):
    """Call `function` with SIGTERM/SIGHUP stopping it like Ctrl-C (running trials cancelled, journal
    consistent), as on the command line; the caller's signal handlers are restored afterwards."""
    from launcher import stop

    previous = stop.install()           # main thread only; elsewhere nothing is installed
    try:
        return function(*args, **kwargs)
    except Exception:
        if stop.requested():            # a stop that surfaced from library code as another error
            stop.check()
        raise
    finally:
        stop.uninstall(previous)


def status(dir: str | os.PathLike) -> dict:
    """The progress of a sweep from its journal (what `launcher status DIR` shows), as plain data:

    state ("finished", "paused" or "unfinished": running, or stopped), finished, paused, the totals
    (budget, done, running, failed, pending), started / last event times (epoch seconds), elapsed_seconds,
    eta_seconds (None once finished), rungs (ASHA epoch -> trials that reached it) and studies
    (name -> trials, asked, running, done, failed, best, mode, objective).
    """
    s = sweep_status(dir)
    elapsed = (s.last - s.started) if s.started is not None and s.last is not None else None
    return {"state": "finished" if s.finished else "paused" if s.paused else "unfinished",
            "finished": s.finished, "paused": s.paused, **s.totals(), "started": s.started, "last": s.last,
            "elapsed_seconds": elapsed, "eta_seconds": None if s.finished else s.eta_seconds(),
            "rungs": dict(sorted(s.rungs.items())), "studies": {name: asdict(x) for name, x in s.studies.items()}}


def report(dirs: str | os.PathLike | Sequence[str | os.PathLike], *, references: Sequence[str | os.PathLike] = (),
           baseline: str | None = None, plots: bool = True, metric: str | None = None) -> str:
    """The comparison table of one or more sweep folders, as `launcher report DIR...` prints it (Markdown);
    writes report.md, report.csv, report.html (and the figures, unless `plots=False`) into the first folder.
    `references`: published-numbers files; `baseline`: the column for % improvement; `metric`: mcc, f1 or
    accuracy for every genomics/satellite task instead of each task's literature metric."""
    from launcher.report import write_report

    folders = Path(dirs) if isinstance(dirs, (str, os.PathLike)) else [Path(d) for d in dirs]
    return write_report(folders, references=[Path(f) for f in references], baseline=baseline, plots=plots,
                        metric=metric)


def results(dir: str | os.PathLike) -> pandas.DataFrame:
    """The numbers of a sweep folder's report as a tidy table: one row per (task, column, seed, metric).

    Loaded by the report's own code (`launcher.report.load_document`), so `value` holds exactly the
    numbers behind report.csv's cells. Columns: domain, task, method (the report's column name), kind,
    seed, metric, value, status ("ok"; a cell without a value -- "failed", "pending", "missing" -- is one
    row with value NaN), selected_epoch (the epoch the run's validation selected, for methods trained by
    epochs; else NaN), job_seconds (that run's job time over its segments) and column_cpu_hours /
    column_gpu_hours (the column's cost on the domain: every trial run of it, tuning included, as in
    the report's cost table).
    """
    import pandas as pd

    from launcher.report import load_document
    from launcher.report.model import TUNED_ARMS
    from launcher.spec.load import read_record
    from launcher.tracking import Tracker, recorded_uri

    folder = Path(dir)
    doc = load_document(folder)
    record = read_record(folder)
    tracker = Tracker(recorded_uri(record, folder), record["name"])
    runs: dict[tuple[str, str], list] = {}
    for run in tracker.runs(kind="trial"):
        tags = run.data.tags
        if run.info.status == "FINISHED":
            column = tags.get("launcher.column", tags.get("launcher.method"))
            runs.setdefault((tags.get("launcher.task"), column), []).append(run)

    def counted(run) -> bool:        # the report's rule: a tuned study counts its selected runs only
        return run.data.tags.get("launcher.arm", "fixed") not in TUNED_ARMS \
            or run.data.tags.get("launcher.selected") == "true"

    epochs: dict[str, int | None] = {}
    rows = []
    for section in doc.sections:
        for metric in section.metrics:
            for task in section.tasks:
                for column in section.own():
                    cell = section.cell(metric.name, task, column.name)
                    cost = section.costs.get(column.name)
                    common = {"domain": section.domain, "task": task, "method": column.name, "kind": column.kind,
                              "metric": metric.name,
                              "column_cpu_hours": cost.cpu_seconds / 3600 if cost else math.nan,
                              "column_gpu_hours": cost.gpu_seconds / 3600 if cost else math.nan}
                    if not cell.values:
                        rows.append({**common, "seed": None, "value": math.nan, "status": cell.status,
                                     "selected_epoch": None, "job_seconds": math.nan})
                        continue
                    candidates = runs.get((task, column.name), [])
                    used: set[str] = set()
                    for value in cell.values:
                        run = _the_run(value, metric.name, candidates, used, counted)
                        if run is None:
                            rows.append({**common, "seed": None, "value": value, "status": "ok",
                                         "selected_epoch": None, "job_seconds": math.nan})
                            continue
                        run_id = run.info.run_id
                        if run_id not in epochs:
                            epochs[run_id] = _selected_epoch(tracker, run)
                        seconds = run.data.metrics.get("job_seconds", run.data.metrics.get("wall_seconds"))
                        seed = run.data.tags.get("launcher.seed")
                        rows.append({**common, "seed": int(seed) if seed not in (None, "") else None,
                                     "value": value, "status": "ok", "selected_epoch": epochs[run_id],
                                     "job_seconds": math.nan if seconds is None else float(seconds)})
    table = pd.DataFrame(rows, columns=list(RESULT_COLUMNS))
    table["seed"] = table["seed"].astype("Int64")
    table["selected_epoch"] = table["selected_epoch"].astype("Int64")
    return table


def _the_run(value: float, metric: str, candidates: list, used: set, counted):
    """The run a cell's value came from: the first unused run (in the report's order) holding exactly that
    value, one the report counts preferred. Only its seed, epoch and time are read from it."""
    for wanted in (True, False):
        for run in candidates:
            if run.info.run_id in used or counted(run) is not wanted:
                continue
            got = run.data.metrics.get(metric)
            if got is not None and float(got) == value:
                used.add(run.info.run_id)
                return run
    return None


def _selected_epoch(tracker, run) -> int | None:
    """The epoch whose validation score the run kept (its best_val_* metric first reached its final value);
    None for a method not trained by epochs."""
    names = sorted(k for k in run.data.metrics if k.startswith("best_val_"))
    if not names:
        return None
    final = run.data.metrics[names[0]]
    if final is None or not math.isfinite(final):
        return None
    history = tracker.client.get_metric_history(run.info.run_id, names[0])
    return next((m.step for m in sorted(history, key=lambda m: (m.step, m.timestamp)) if m.step > 0
                 and m.value == final), None)
