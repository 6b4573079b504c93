"""The comparison report of sweeps (the paper's Table 3): rows = tasks, columns = methods. Load + public API.

A cell = the test metric at the validation-selected checkpoint (tuned study: its selected trial; fixed
study: one run per seed), mean and 95% t-interval over seeds. Expected cells come from plan.json, so
missing, failed and pending cells are shown, never dropped. Rendering: `report_render`; figures:
`report_plots`. Several folders: the union of rows and columns; a column name two sweeps share is one
column when they ran it on disjoint tasks, else kept twice as "name [sweep]" so no number hides another.
"""
from __future__ import annotations

import json
import math
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from .errors import SpecError
from .methods.params import DETERMINISTIC, METHOD_KIND
from .config import read_record, record_task_names
from .tracking import Tracker, recorded_uri


@dataclass(frozen=True)
class Metric:
    name: str
    label: str
    direction: str = "min"         # "min": lower is better, "max": higher is better

    def gain(self, value: float, base: float) -> float:     # % improvement over base, > 0 = better
        return 100.0 * ((base - value) if self.direction == "min" else (value - base)) / abs(base)


# Everything domain-specific the report needs, in one place: metrics with their direction, the
# default baseline column (first one present), and what the units are.
DOMAINS = {
    "forecasting": {
        "metrics": (Metric("test_mse", "test MSE"), Metric("test_mae", "test MAE")),
        "baselines": ("auto_arima", "naive"),
        "units": "normalized units (z-scored with train statistics), averaged over channels x stride-1 "
                 "test windows x horizon steps",
    },
}
DOMAIN = "forecasting"
METRICS: tuple[Metric, ...] = DOMAINS[DOMAIN]["metrics"]
CONFIDENCE = 0.95
TUNED_ARMS = ("tuned", "random")


def t_interval(values: Sequence[float], confidence: float = CONFIDENCE) -> tuple[float, float] | None:
    """Two-sided t interval of the mean: mean +/- t(0.5 + c/2, n-1) * s / sqrt(n); None for n < 2."""
    if len(values) < 2:
        return None
    from scipy.stats import t     # scipy: required by mlflow and statsmodels

    mean = statistics.fmean(values)
    half = float(t.ppf(0.5 + confidence / 2, len(values) - 1)) * statistics.stdev(values) / math.sqrt(len(values))
    return mean - half, mean + half


@dataclass
class Cell:
    values: list[float] = field(default_factory=list)   # one per seed (a tuned study: its selected trial)
    failed: int = 0
    pending: int = 0               # runs still to come (the sweep is not finished)
    published: bool = False

    @property
    def mean(self) -> float | None:
        return statistics.fmean(self.values) if self.values else None

    @property
    def interval(self) -> tuple[float, float] | None:
        return t_interval(self.values)

    @property
    def status(self) -> str:
        return "ok" if self.values else "not published" if self.published else \
            "pending" if self.pending else "failed" if self.failed else "missing"


@dataclass(frozen=True)
class Reference:                   # one published method's numbers (sweeps/reference/*.yaml)
    name: str
    kind: str
    citation: str
    protocol: str
    file: str
    results: dict                  # task -> {metric: value}
    decimals: int = 3
    pretraining_observations: float | None = None


@dataclass
class Column:
    name: str
    method: str
    kind: str
    deterministic: bool = False
    reference: Reference | None = None

    @property
    def published(self) -> bool:
        return self.reference is not None


@dataclass
class Cost:
    cpu_seconds: float = 0.0       # job seconds x CPUs held, over every trial run of the column
    gpu_seconds: float = 0.0       # job seconds x GPUs held (runs with launcher.gpus > 0)
    job_seconds: float = 0.0       # wall time of the jobs, summed
    runs: int = 0
    failed: int = 0
    untagged: int = 0              # runs without a launcher.cpus tag (counted as 1 CPU)


@dataclass
class Report:
    sweeps: list[tuple[str, str]]  # (name, state: finished | paused | unfinished | unknown)
    tasks: list[str]
    columns: list[Column]
    cells: dict                    # (metric, task, column) -> Cell
    n_parameters: dict             # column -> set of ints
    costs: dict                    # column -> Cost
    notes: dict                    # column -> set of notes from the runs
    baseline: str | None
    remarks: list[str] = field(default_factory=list)
    metrics: tuple[Metric, ...] = METRICS
    references: list[Reference] = field(default_factory=list)

    def own(self) -> list[Column]:
        return [c for c in self.columns if not c.published]

    def cell(self, metric: str, task: str, column: str) -> Cell:
        return self.cells[(metric, task, column)]


# --------------------------------------------------------------------------- loading
def _state(folder: Path) -> str:
    """finished | paused | unfinished (running, or killed) from the journal's last lifecycle event."""
    states = {"sweep_started": "unfinished", "sweep_finished": "finished", "paused": "paused"}
    journal = folder / "journal.jsonl"
    events = [json.loads(x).get("event") for x in journal.read_text().splitlines() if x.endswith("}")] \
        if journal.exists() else []
    return next((states[e] for e in reversed(events) if e in states), "unfinished" if events else "unknown")


def _load_sweep(folder: Path, index: int) -> dict:
    spec = read_record(folder)
    tasks = [name for t in spec["tasks"] for name in record_task_names(t)]
    if (folder / "plan.json").exists():
        plan = json.loads((folder / "plan.json").read_text())
    else:                          # a folder written before plan.json existed: one fixed column per method
        plan = [{"task": t, "column": m["name"], "method": m["name"], "arm": "fixed", "trials": 1}
                for t in tasks for m in spec["methods"]]
    columns = {p["column"]: p["method"] for p in plan}
    expected = {(p["task"], p["column"]): (p.get("arm", "fixed"), int(p.get("trials", 1))) for p in plan}
    cells = {(m.name, t, c): Cell() for m in METRICS for t, c in expected}
    params, notes, costs = ({c: set() for c in columns}, {c: set() for c in columns}, {c: Cost() for c in columns})
    state = _state(folder)
    tracker = Tracker(recorded_uri(spec, folder), spec["name"])
    for run in tracker.runs(kind="trial"):
        tags, status, metrics = run.data.tags, run.info.status, run.data.metrics
        task, column = tags.get("launcher.task"), tags.get("launcher.column", tags.get("launcher.method"))
        if (task, column) not in expected:
            continue
        cost, seconds = costs[column], float(metrics.get("job_seconds", metrics.get("wall_seconds", 0.0)))
        gpus, cpus = float(tags.get("launcher.gpus") or 0), tags.get("launcher.cpus")
        cost.runs, cost.failed = cost.runs + 1, cost.failed + (status == "FAILED")
        cost.job_seconds, cost.untagged = cost.job_seconds + seconds, cost.untagged + (cpus is None)
        if gpus > 0:
            cost.gpu_seconds += seconds * gpus
        else:
            cost.cpu_seconds += seconds * float(cpus or 1)
        counted = status == "FINISHED" and (expected[(task, column)][0] not in TUNED_ARMS
                                            or tags.get("launcher.selected") == "true")
        for metric in METRICS:
            cell = cells[(metric.name, task, column)]
            if counted and metric.name in metrics:
                cell.values.append(float(metrics[metric.name]))
            elif status == "FAILED":
                cell.failed += 1
        if counted:
            params[column].update([int(metrics["n_parameters"])] if "n_parameters" in metrics else [])
            notes[column].update(filter(None, tags.get("launcher.notes", "").split(" | ")))
    running = state in ("unfinished", "paused")
    for (_, task, column), cell in cells.items():
        arm, trials = expected[(task, column)]
        if arm in TUNED_ARMS:      # failed trials of a tuned study do not fail its selected result
            cell.failed, cell.pending = (0 if cell.values else cell.failed), int(running and not cell.values)
        else:
            cell.pending = max(0, trials - len(cell.values) - cell.failed) if running else 0
    return {"index": index, "name": spec["name"], "state": state, "tasks": tasks, "columns": columns,
            "cells": cells, "params": params, "notes": notes, "costs": costs,
            "baseline": (spec.get("report") or {}).get("baseline"),
            "task_sets": {c: {t for t, col in expected if col == c} for c in columns}}


def load_reference(path: Path) -> list[Reference]:
    """Published numbers from a YAML file (format: sweeps/reference/README.md); SpecError if malformed."""
    import yaml

    def bad(message: str, key: str | None = None) -> SpecError:
        return SpecError(message, file=str(path), key=key, hint="see sweeps/reference/README.md for the format")

    try:
        doc = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as err:
        raise bad(f"cannot read reference file: {err}") from None
    if not isinstance(doc, dict) or not isinstance((doc.get("source") or {}).get("citation"), str):
        raise bad("expected a `source:` mapping with a `citation:` text", "source")
    if not isinstance(doc.get("entries"), list) or not doc["entries"]:
        raise bad("expected a non-empty `entries:` list", "entries")
    known, found = {m.name for m in METRICS}, []
    for i, entry in enumerate(doc["entries"]):
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str) or not isinstance(entry.get("results"), dict):
            raise bad("each entry needs `name:` and `results:` (task -> {metric: value})", f"entries[{i}]")
        for task, values in entry["results"].items():
            if not isinstance(values, dict) or any(m not in known or isinstance(v, bool) or not isinstance(v, (int, float))
                                                   or not math.isfinite(v) for m, v in values.items()):
                raise bad(f"expected {{metric: number}}, metrics among {sorted(known)}", f"entries[{i}].results.{task}")
        results = {str(t): {m: float(v) for m, v in vs.items()} for t, vs in entry["results"].items()}
        found.append(Reference(entry["name"], str(entry.get("kind", "supervised")), doc["source"]["citation"],
                               str(entry.get("protocol", doc.get("protocol", ""))), Path(path).name, results,
                               int(entry.get("decimals", doc.get("decimals", 3))), entry.get("pretraining_observations")))
    return found


def _columns(sweeps: list[dict]) -> tuple[list[Column], dict]:
    """Report columns of several sweeps, and (sweep index, sweep column) -> report column name."""
    owners: dict[str, list[dict]] = {}
    for s in sweeps:
        for name in s["columns"]:
            owners.setdefault(name, []).append(s)
    columns, label_of = [], {}
    for name, group in owners.items():
        sets = [s["task_sets"][name] for s in group]
        merge = sum(map(len, sets)) == len(set().union(*sets)) and len({s["columns"][name] for s in group}) == 1
        for s in group:
            label = name if merge else f"{name} [{s['name']}]"
            if not merge and any(c.name == label for c in columns):    # two sweeps of the same name
                label = f"{name} [{s['name']} #{s['index'] + 1}]"
            label_of[(s["index"], name)] = label
            if not merge or s is group[0]:
                method = s["columns"][name]
                columns.append(Column(label, method, METHOD_KIND.get(method, "?"), method in DETERMINISTIC))
    return columns, label_of


def load_report(folders: Sequence[Path] | Path, references: Sequence[Path] = (), baseline: str | None = None) -> Report:
    folders = [Path(folders)] if isinstance(folders, (str, Path)) else [Path(f) for f in folders]
    sweeps = [_load_sweep(f, i) for i, f in enumerate(folders)]
    tasks = list(dict.fromkeys(t for s in sweeps for t in s["tasks"]))
    datasets = list(dict.fromkeys(t.rsplit("-", 1)[0] for t in tasks))    # rows: dataset, then horizon
    tasks.sort(key=lambda t: (datasets.index(t.rsplit("-", 1)[0]), int(t.rsplit("-", 1)[1])
                              if t.rsplit("-", 1)[-1].isdigit() else 0))
    columns, label_of = _columns(sweeps)
    cells, costs = {}, {c.name: Cost() for c in columns}
    params, notes = {c.name: set() for c in columns}, {c.name: set() for c in columns}
    for s in sweeps:
        for name in s["columns"]:
            label = label_of[(s["index"], name)]
            params[label] |= s["params"][name]
            notes[label] |= s["notes"][name]
            for attr, value in vars(s["costs"][name]).items():
                setattr(costs[label], attr, getattr(costs[label], attr) + value)
        for (metric, task, name), cell in s["cells"].items():
            cells[(metric, task, label_of[(s["index"], name)])] = cell
    remarks, refs = [], [r for path in references for r in load_reference(path)]
    for ref in refs:
        column = Column(f"published: {ref.name}", ref.name, f"published ({ref.kind})", reference=ref)
        columns.append(column)
        params[column.name], notes[column.name] = set(), set()
        outside = sorted(set(ref.results) - set(tasks))
        if outside:
            remarks.append(f"`{column.name}` also publishes {len(outside)} task(s) outside this report's rows "
                           f"({', '.join(outside)}): not shown.")
        for task in tasks:
            for m in METRICS:
                value = ref.results.get(task, {}).get(m.name)
                cells[(m.name, task, column.name)] = Cell([] if value is None else [value], published=True)
    for c in columns:              # a task another sweep brought in, never planned for this column: missing
        for key in ((m.name, t, c.name) for m in METRICS for t in tasks):
            cells.setdefault(key, Cell())
    own = [c for c in columns if not c.published]
    wanted = baseline or next((s["baseline"] for s in sweeps if s["baseline"]), None)
    if wanted:                     # a column name, else the first column running that method
        chosen = next((c.name for c in own if c.name == wanted), None) or \
            next((c.name for c in own if c.method == wanted), None)
        if baseline and chosen is None:
            raise SpecError(f"--baseline {baseline!r} is not a column of this report", key="--baseline",
                            hint=f"choose one of: {', '.join(c.name for c in own)}")
        if chosen and chosen != wanted:
            remarks.append(f"baseline `{wanted}` is a method of several columns: % improvement is over `{chosen}`.")
    else:
        chosen = next((c.name for d in DOMAINS[DOMAIN]["baselines"] for c in own if c.name == d), None)
    return Report([(s["name"], s["state"]) for s in sweeps], tasks, columns, cells, params, costs, notes, chosen,
                  remarks, METRICS, refs)


# --------------------------------------------------------------------------- aggregates
def ranks(values: dict[str, float], direction: str = "min") -> dict[str, float]:
    """Rank 1 = best; ties share the mean of their ranks."""
    order = sorted(values, key=lambda k: values[k] if direction == "min" else -values[k])
    result, i = {}, 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        for k in range(i, j + 1):
            result[order[k]] = (i + j) / 2 + 1
        i = j + 1
    return result


@dataclass
class Aggregate:
    scores: list[float]            # cell means over the tasks where the column has a result
    ranks: list[float]             # among the report's own columns
    ranks_all: list[float]         # among all columns, published ones included
    gains: list[float]             # % improvement over the baseline, per task where both have a result

    @property
    def average(self) -> float | None:
        return statistics.fmean(self.scores) if self.scores else None


def aggregates(report: Report, metric: Metric) -> dict[str, Aggregate]:
    result = {c.name: Aggregate([], [], [], []) for c in report.columns}
    for task in report.tasks:
        means = {c.name: report.cell(metric.name, task, c.name).mean for c in report.columns}
        present = {k: v for k, v in means.items() if v is not None}
        own = {c.name for c in report.own()}
        for name, rank in ranks({k: v for k, v in present.items() if k in own}, metric.direction).items():
            result[name].ranks.append(rank)
        for name, rank in ranks(present, metric.direction).items():
            result[name].ranks_all.append(rank)
        base = means.get(report.baseline) if report.baseline else None
        for name, value in present.items():
            result[name].scores.append(value)
            if base:
                result[name].gains.append(metric.gain(value, base))
    return result


def write_report(folders: Sequence[Path] | Path, *, references: Sequence[Path] = (), baseline: str | None = None,
                 plots: bool = True) -> str:
    """Write report.md, report.csv, report.html (and the figures as PNG) into the first folder;
    return the Markdown."""
    from .report_plots import make_figures
    from .report_render import render_csv, render_html, render_markdown

    report = load_report(folders, references, baseline)
    figures = make_figures(report) if plots else []
    out = Path(folders if isinstance(folders, (str, Path)) else folders[0])
    markdown = render_markdown(report, figures)
    (out / "report.md").write_text(markdown)
    (out / "report.csv").write_text(render_csv(report))
    (out / "report.html").write_text(render_html(report, figures))
    for figure in figures:
        (out / figure.filename).write_bytes(figure.png)
    return markdown
