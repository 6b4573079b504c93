"""The comparison table: rows = dataset x horizon, columns = methods, like the paper's Table 3.

Built from the sweep's MLflow store (finished trial runs) and its recorded spec (which cells
were expected), so missing or failed cells are shown as such, never dropped. Deterministic:
the same store gives the same bytes.
"""
from __future__ import annotations

import csv
import io
import json
import math
import statistics
from dataclasses import dataclass, field
from pathlib import Path

from .errors import SpecError
from .methods.params import DETERMINISTIC, METHOD_KIND
from .tracking import KIND_TAG, Tracker, default_uri

METRICS = (("test_mse", "test MSE"), ("test_mae", "test MAE"))


@dataclass
class Cell:
    values: list[float] = field(default_factory=list)   # one per finished seed
    failed: int = 0

    @property
    def mean(self) -> float | None:
        return sum(self.values) / len(self.values) if self.values else None


@dataclass
class Table:
    sweep: str
    tasks: list[str]
    methods: list[str]
    cells: dict[tuple[str, str, str], Cell]            # (metric, task, method)
    n_parameters: dict[str, set]
    notes: dict[str, set]
    baseline: str | None
    method_of: dict[str, str] = field(default_factory=dict)   # column -> method name
    tuned: set[str] = field(default_factory=set)              # columns filled by a tuned study

    def kind(self, column: str) -> str:
        return METHOD_KIND.get(self.method_of.get(column, column), "?")

    def deterministic(self, column: str) -> bool:
        return self.method_of.get(column, column) in DETERMINISTIC


def _expected(spec: dict, folder: Path) -> tuple[list[str], list[str], dict[str, str], set[str]]:
    """Tasks (rows), columns, and the method behind each column (a tuned method may have a
    random-search control column beside it)."""
    tasks = [f"{t['dataset']}-{h}" for t in spec["tasks"] for h in t["horizons"]]
    plan_file = folder / "plan.json"
    if plan_file.exists():
        columns: dict[str, str] = {}
        tuned: set[str] = set()
        for entry in json.loads(plan_file.read_text()):
            columns.setdefault(entry["column"], entry["method"])
            if entry.get("arm") in ("tuned", "random"):
                tuned.add(entry["column"])
        return tasks, list(columns), columns, tuned
    names = [m["name"] for m in spec["methods"]]
    return tasks, names, {n: n for n in names}, set()


def load_table(folder: Path) -> Table:
    folder = Path(folder)
    recorded = folder / "sweep.json"
    if not recorded.exists():
        raise SpecError(f"{folder} is not a sweep folder (no sweep.json)",
                        hint="pass the --out folder of a `launcher sweep` run")
    spec = json.loads(recorded.read_text())
    tasks, methods, method_of, tuned = _expected(spec, folder)
    uri = (spec.get("tracking") or {}).get("uri") or default_uri(folder)
    tracker = Tracker(uri, spec["name"])
    cells = {(m, t, meth): Cell() for m, _ in METRICS for t in tasks for meth in methods}
    n_parameters: dict[str, set] = {m: set() for m in methods}
    notes: dict[str, set] = {m: set() for m in methods}
    for run in tracker.runs(kind="trial"):
        tags, status = run.data.tags, run.info.status
        key_task, key_method = tags.get("launcher.task"), tags.get("launcher.column", tags.get("launcher.method"))
        if key_task not in tasks or key_method not in methods:
            continue
        from_tuned_study = tags.get("launcher.arm") in ("tuned", "random")
        if from_tuned_study and status == "FINISHED" and tags.get("launcher.selected") != "true":
            continue    # a tuned study reports its validation-selected trial only
        for metric, _ in METRICS:
            cell = cells[(metric, key_task, key_method)]
            if status == "FINISHED" and metric in run.data.metrics:
                cell.values.append(run.data.metrics[metric])
            elif status == "FAILED":
                cell.failed += 1
        if status == "FINISHED":
            if "n_parameters" in run.data.metrics:
                n_parameters[key_method].add(int(run.data.metrics["n_parameters"]))
            for note in filter(None, tags.get("launcher.notes", "").split(" | ")):
                notes[key_method].add(note)
    baseline = (spec.get("report") or {}).get("baseline")
    return Table(spec["name"], tasks, methods, cells, n_parameters, notes, baseline, method_of, tuned)


def _ranks(values: dict[str, float]) -> dict[str, float]:
    """Rank 1 = lowest error; ties share the mean of their ranks."""
    order = sorted(values, key=lambda m: values[m])
    ranks: dict[str, float] = {}
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        for k in range(i, j + 1):
            ranks[order[k]] = (i + j) / 2 + 1
        i = j + 1
    return ranks


def aggregates(table: Table, metric: str) -> dict[str, dict[str, float | int]]:
    """Average score and average rank per method, over the tasks where the method has a result."""
    sums = {m: [] for m in table.methods}
    rank_lists = {m: [] for m in table.methods}
    for task in table.tasks:
        row = {m: table.cells[(metric, task, m)].mean for m in table.methods}
        present = {m: v for m, v in row.items() if v is not None}
        for m, v in present.items():
            sums[m].append(v)
        for m, r in _ranks(present).items():
            rank_lists[m].append(r)
    return {m: {"average": (sum(sums[m]) / len(sums[m])) if sums[m] else math.nan,
                "average_rank": (sum(rank_lists[m]) / len(rank_lists[m])) if rank_lists[m] else math.nan,
                "n_tasks": len(sums[m])} for m in table.methods}


def improvements(table: Table, metric: str, baseline: str) -> dict[str, list[float]]:
    """Per method, the % error reduction against the baseline on each task where both have a result."""
    gains: dict[str, list[float]] = {m: [] for m in table.methods}
    for task in table.tasks:
        base = table.cells[(metric, task, baseline)].mean
        if not base:
            continue
        for m in table.methods:
            value = table.cells[(metric, task, m)].mean
            if value is not None:
                gains[m].append(100.0 * (base - value) / base)
    return gains


def _fmt_pct(values: list[float], how) -> str:
    return f"{how(values):.2f}" if values else "—"


def _fmt_cell(cell: Cell) -> str:
    if cell.mean is None:
        return "failed" if cell.failed else "missing"
    text = f"{cell.mean:.4f}"
    if len(cell.values) > 1:
        text += f" (n={len(cell.values)})"
    return text


def render_markdown(table: Table) -> str:
    out = io.StringIO()
    out.write(f"# Sweep `{table.sweep}`: forecasting comparison\n\n")
    out.write("Test metrics in normalized units (z-scored with train statistics), averaged over channels x "
              "stride-1 test windows x horizon steps; lower is better; **bold** = best in the row.\n")
    n_tasks = len(table.tasks)
    for metric, label in METRICS:
        out.write(f"\n## {label}\n\n")
        out.write("| task | " + " | ".join(table.methods) + " |\n")
        out.write("|---|" + "---|" * len(table.methods) + "\n")
        for task in table.tasks:
            row = {m: table.cells[(metric, task, m)] for m in table.methods}
            present = [c.mean for c in row.values() if c.mean is not None]
            best = min(present) if present else None
            texts = []
            for m in table.methods:
                text = _fmt_cell(row[m])
                if best is not None and row[m].mean == best:
                    text = f"**{text}**"
                texts.append(text)
            out.write(f"| {task} | " + " | ".join(texts) + " |\n")
        agg = aggregates(table, metric)

        def partial(m: str) -> str:
            return "" if agg[m]["n_tasks"] == n_tasks else f" ({agg[m]['n_tasks']}/{n_tasks} tasks)"

        out.write("| average | " + " | ".join(f"{agg[m]['average']:.4f}{partial(m)}" for m in table.methods) + " |\n")
        out.write("| average rank | " + " | ".join(f"{agg[m]['average_rank']:.2f}" for m in table.methods) + " |\n")
        if table.baseline in table.methods:
            gains = improvements(table, metric, table.baseline)
            out.write(f"| mean % better than {table.baseline} | "
                      + " | ".join(_fmt_pct(gains[m], statistics.mean) for m in table.methods) + " |\n")
            out.write(f"| median % better than {table.baseline} | "
                      + " | ".join(_fmt_pct(gains[m], statistics.median) for m in table.methods) + " |\n")
    out.write("\n## Methods\n\n| method | kind | parameters | runs per task |\n|---|---|---|---|\n")
    for m in table.methods:
        params = ", ".join(str(p) for p in sorted(table.n_parameters[m])) or "?"
        runs = "1 (deterministic: seeds do not change it)" if table.deterministic(m) else \
            "tuned: the validation-selected trial" if m in table.tuned else "one per seed (n in cell)"
        out.write(f"| {m} | {table.kind(m)} | {params} | {runs} |\n")
    all_notes = [(m, n) for m in table.methods for n in sorted(table.notes[m])]
    if all_notes:
        out.write("\n## Notes\n\n")
        for m, note in all_notes:
            out.write(f"- **{m}**: {note}\n")
    return out.getvalue()


def render_csv(table: Table) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["task", "method", "kind", "metric", "mean", "n", "status", "values"])
    for metric, _ in METRICS:
        for task in table.tasks:
            for m in table.methods:
                cell = table.cells[(metric, task, m)]
                status = "ok" if cell.values else ("failed" if cell.failed else "missing")
                mean = "" if cell.mean is None else repr(cell.mean)
                writer.writerow([task, m, table.kind(m), metric, mean, len(cell.values), status,
                                 ";".join(repr(v) for v in cell.values)])
    return out.getvalue()


def write_report(folder: Path) -> str:
    table = load_table(folder)
    markdown = render_markdown(table)
    (Path(folder) / "report.md").write_text(markdown)
    (Path(folder) / "report.csv").write_text(render_csv(table))
    return markdown
