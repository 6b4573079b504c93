"""Reading sweep folders (sweep.json, plan.json, journal.jsonl, the MLflow store) and published numbers
into a `report.Document`: one `report.Report` section per task domain present."""
from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path
from typing import Sequence

from launcher.engine.journal import Journal
from launcher.errors import SpecError
from launcher.report.model import (
    DOMAINS,
    METRIC_CHOICES,
    TUNED_ARMS,
    Cell,
    Column,
    Cost,
    Document,
    Reference,
    Report,
    domain_metrics,
    registry_task_metric,
)
from launcher.spec.load import read_record
from launcher.spec.sweep import record_task_names
from launcher.tracking import Tracker, recorded_uri


def _state(folder: Path) -> str:
    """finished | paused | unfinished (running, or killed) from the journal's last lifecycle event."""
    states = {"sweep_started": "unfinished", "sweep_finished": "finished", "paused": "paused"}
    journal = folder / "journal.jsonl"
    events = [e["event"] for e in Journal(journal).replay(strict=False)]
    return next((states[e] for e in reversed(events) if e in states), "unfinished" if events else "unknown")


def _load_sweep(folder: Path, index: int, metric: str | None = None) -> dict:
    spec = read_record(folder)
    domain_of = {name: t.get("domain", "forecasting") for t in spec["tasks"] for name in record_task_names(t)}
    tasks = list(domain_of)
    if (folder / "plan.json").exists():
        plan = json.loads((folder / "plan.json").read_text())
    else:                          # a folder written before plan.json existed: one fixed column per method
        plan = [{"task": t, "column": m["name"], "method": m.get("method") or m["name"], "arm": "fixed", "trials": 1}
                for t in tasks for m in spec["methods"]]
    # column -> (what runs, its kind, deterministic); plan.json files written before named rows carry only
    # the method's name, whose declaration the registry still has
    columns = {p["column"]: _column_identity(p) for p in plan}
    expected = {(p["task"], p["column"]): (p.get("arm", "fixed"), int(p.get("trials", 1))) for p in plan}
    for task, _ in expected:
        domain_of.setdefault(task, "forecasting")
    metrics_of = {t: domain_metrics(domain_of[t], metric) for t in domain_of}
    literature_rows = metric is None       # (`metric` names a loop variable below)
    cells = {(m.name, t, c): Cell() for t, c in expected for m in metrics_of[t]}
    keys = {(domain_of[t], c) for t, c in expected}        # per (domain, column): size, notes and cost
    params, notes, costs = ({k: set() for k in keys}, {k: set() for k in keys}, {k: Cost() for k in keys})
    task_metrics: dict[str, str] = {}
    leaky: dict[tuple[str, str, str], list[float]] = {}     # (metric, task, column) -> test-selected values
    train_sizes: dict[str, int] = {}
    state = _state(folder)
    tracker = Tracker(recorded_uri(spec, folder), spec["name"])
    for run in tracker.runs(kind="trial"):
        tags, status, metrics = run.data.tags, run.info.status, run.data.metrics
        task, column = tags.get("launcher.task"), tags.get("launcher.column", tags.get("launcher.method"))
        if (task, column) not in expected:
            continue
        key = (domain_of[task], column)
        cost, seconds = costs[key], float(metrics.get("job_seconds", metrics.get("wall_seconds", 0.0)))
        gpus, cpus = float(tags.get("launcher.gpus") or 0), tags.get("launcher.cpus")
        cost.runs, cost.failed = cost.runs + 1, cost.failed + (status == "FAILED")
        cost.job_seconds, cost.untagged = cost.job_seconds + seconds, cost.untagged + (cpus is None)
        if gpus > 0:
            cost.gpu_seconds += seconds * gpus
        else:
            cost.cpu_seconds += seconds * float(cpus or 1)
        counted = status == "FINISHED" and (expected[(task, column)][0] not in TUNED_ARMS
                                            or tags.get("launcher.selected") == "true")
        for metric in metrics_of[task]:
            cell = cells[(metric.name, task, column)]
            if counted and metric.name in metrics:
                cell.values.append(float(metrics[metric.name]))
            elif status == "FAILED":
                cell.failed += 1
        named = tags.get("launcher.metric") or run.data.params.get("metric")     # the run's own word, if any
        if named and task not in task_metrics:
            task_metrics[task] = named
        used = run.data.params.get("chosen.train_observations")     # the training data the run recorded
        if counted and used and used.isdigit():
            train_sizes[task] = max(train_sizes.get(task, 0), int(used))
        scored = run.data.params.get("chosen.score_metric")         # DASHA protocol reference: MCC everywhere
        literature = registry_task_metric(task, domain_of[task]) if domain_of[task] != "forecasting" else None
        if counted and scored and literature and scored != literature and literature_rows:
            notes[key].add(f"test_score on {task} is {scored} (protocol reference), not the row's {literature}")
        if counted:
            for m in metrics_of[task]:
                if f"{m.name}_testselected_leaky" in metrics:
                    leaky.setdefault((m.name, task, column), []).append(float(metrics[f"{m.name}_testselected_leaky"]))
        if counted:
            params[key].update([int(metrics["n_parameters"])] if "n_parameters" in metrics else [])
            notes[key].update(filter(None, tags.get("launcher.notes", "").split(" | ")))
    _add_leaky_columns(leaky, columns, expected, cells, metrics_of, domain_of, params, notes, costs)
    running = state in ("unfinished", "paused")
    for (_, task, column), cell in cells.items():
        arm, trials = expected[(task, column)]
        if arm in TUNED_ARMS:      # failed trials of a tuned study do not fail its selected result
            cell.failed, cell.pending = (0 if cell.values else cell.failed), int(running and not cell.values)
        else:
            cell.pending = max(0, trials - len(cell.values) - cell.failed) if running else 0
    return {"index": index, "name": spec["name"], "state": state, "tasks": tasks, "domain_of": domain_of,
            "columns": columns, "cells": cells, "params": params, "notes": notes, "costs": costs,
            "task_metrics": task_metrics, "train_sizes": train_sizes,
            "baseline": (spec.get("report") or {}).get("baseline"),
            "task_sets": {c: {t for t, col in expected if col == c} for c in columns}}


LEAKY_SUFFIX = " · test-selected (LEAKY)"


def _add_leaky_columns(leaky, columns, expected, cells, metrics_of, domain_of, params, notes, costs) -> None:
    """Runs that also recorded their test score at the best-TEST epoch (DASHA `protocol: reference`, the
    authors' selection) get a column of those numbers beside their own, so the test-selection effect is
    read off the table; it is labelled LEAKY and costs nothing extra (the same runs)."""
    owners = list(dict.fromkeys(c for _, _, c in leaky))
    ordered = {}
    for name, identity in columns.items():       # each twin right after its column
        ordered[name] = identity
        if name in owners:
            ordered[name + LEAKY_SUFFIX] = identity
    columns.clear()
    columns.update(ordered)
    for column in owners:
        twin = column + LEAKY_SUFFIX
        for (task, owner), plan in list(expected.items()):
            if owner != column:
                continue
            expected[(task, twin)] = plan
            for m in metrics_of[task]:
                values = leaky.get((m.name, task, column))
                if values is None and m.name.endswith("_last"):    # no selection at the last epoch: the same
                    values = cells[(m.name, task, column)].values
                cells[(m.name, task, twin)] = Cell(list(values or []))
            key, own = (domain_of[task], twin), (domain_of[task], column)
            params[key], costs[key] = set(params[own]), Cost()
            notes[key] = {"LEAKY: the test score at the epoch with the best TEST score, of the same final runs "
                          f"as `{column}` (the reference code's checkpoint selection); its cost is {column}'s"}


REFERENCE_DIR = Path(__file__).resolve().parents[2] / "sweeps" / "reference"


def stands_in_for(task: str) -> str | None:
    """The published task a report task stands in for (GUE prom_300_tata for NT promoter_tata), if any."""
    from tasks.genomics import GENOMICS_TASKS

    info = GENOMICS_TASKS.get(task)
    return getattr(info, "substitute_for", None)


def _reference_files(references: Sequence[Path | str], tasks: set[str]) -> list[Path]:
    """The files asked for; "all" stands for every file in sweeps/reference/ with at least one of `tasks`
    (or of the published tasks they stand in for)."""
    import yaml

    tasks = tasks | {stand for stand in map(stands_in_for, tasks) if stand}

    files: list[Path] = []
    for ref in references:
        if str(ref) != "all":
            files.append(Path(ref))
            continue
        for path in sorted(REFERENCE_DIR.glob("*.yaml")):
            doc = yaml.safe_load(path.read_text()) or {}
            covered = {str(task) for e in doc.get("entries") or [] for task in (e.get("results") or {})}
            if covered & tasks:
                files.append(path)
    return list(dict.fromkeys(files))


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
    known = list(dict.fromkeys(m.name for d in DOMAINS for c in (None, *METRIC_CHOICES[1:])
                               for m in domain_metrics(d, c)))
    found = []
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


def _column_identity(entry: dict) -> tuple[str, str, bool]:
    method = entry.get("implementation") or entry["method"]
    if "kind" in entry:
        return method, entry["kind"], bool(entry.get("deterministic"))
    from launcher.methods.registry import PluginError, method_class

    try:
        cls = method_class(method)
    except PluginError:
        return method, "?", False
    return method, cls.kind, cls.deterministic


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
                method, kind, deterministic = s["columns"][name]
                columns.append(Column(label, method, kind, deterministic))
    return columns, label_of


def _pick(own: list[Column], wanted: str) -> str | None:
    """A column of that name, else the first column running that method."""
    return next((c.name for c in own if c.name == wanted), None) or next((c.name for c in own if c.method == wanted), None)


def _baseline(section: Report, wanted: str | None) -> str | None:
    """The section's baseline column: `wanted` (--baseline, else a sweep's report.baseline) where the section
    has it, else the domain's default; remarks say when `wanted` was not taken as given."""
    own, where = section.own(), f" in the {section.info.title.lower()} section" if section.domain != "forecasting" else ""
    chosen = _pick(own, wanted) if wanted else None
    if chosen and chosen != wanted:
        section.remarks.append(f"baseline `{wanted}` is a method of several columns{where}: % improvement is over "
                               f"`{chosen}`.")
    if chosen is None:
        chosen = next((c for c in (_pick(own, d) for d in section.info.baselines) if c), None)
        if wanted:
            section.remarks.append(f"baseline `{wanted}` is not a column{where or ' of this report'}: % improvement "
                                   + (f"is over the domain's default `{chosen}`." if chosen else "is not shown."))
    return chosen


def load_document(folders: Sequence[Path] | Path, references: Sequence[Path] = (), baseline: str | None = None,
                  metric: str | None = None) -> Document:
    """Every domain section of the report of `folders`; `metric` (mcc, f1, accuracy) shows that metric for every
    genomics and satellite task instead of each task's literature metric (None / "literature")."""
    if metric not in (None, *METRIC_CHOICES):
        raise SpecError(f"unknown report metric {metric!r}", key="--metric", hint=f"choose one of {', '.join(METRIC_CHOICES)}")
    chosen = None if metric == "literature" else metric      # (`metric` names loop variables below)
    folders = [Path(folders)] if isinstance(folders, (str, Path)) else [Path(f) for f in folders]
    sweeps = [_load_sweep(f, i, chosen) for i, f in enumerate(folders)]
    domain_of = {t: d for s in sweeps for t, d in s["domain_of"].items()}
    tasks = list(dict.fromkeys(t for s in sweeps for t in s["tasks"]))
    forecasting = [t for t in tasks if domain_of[t] == "forecasting"]
    datasets = list(dict.fromkeys(t.rsplit("-", 1)[0] for t in forecasting))    # rows: dataset, then horizon
    forecasting.sort(key=lambda t: (datasets.index(t.rsplit("-", 1)[0]), int(t.rsplit("-", 1)[1])
                                    if t.rsplit("-", 1)[-1].isdigit() else 0))
    rows = {d: forecasting if d == "forecasting" else [t for t in tasks if domain_of[t] == d] for d in DOMAINS}
    present = [d for d in DOMAINS if rows[d]] or ["forecasting"]
    columns, label_of = _columns(sweeps)
    cells, task_sets, costs, params, notes, task_metrics = {}, {c.name: set() for c in columns}, {}, {}, {}, {}
    for s in sweeps:
        for name, label in ((n, label_of[(s["index"], n)]) for n in s["columns"]):
            task_sets[label] |= s["task_sets"][name]
        for (domain, name), cost in s["costs"].items():
            key = (domain, label_of[(s["index"], name)])
            params.setdefault(key, set()).update(s["params"][(domain, name)])
            notes.setdefault(key, set()).update(s["notes"][(domain, name)])
            for attr, value in vars(cost).items():
                setattr(costs.setdefault(key, Cost()), attr, getattr(costs[key], attr) + value)
        for (metric, task, name), cell in s["cells"].items():
            cells[(metric, task, label_of[(s["index"], name)])] = cell
        for task, metric in s["task_metrics"].items():
            task_metrics.setdefault(task, metric)
    state = [(s["name"], s["state"]) for s in sweeps]
    sections = []
    for d in present:
        mine = rows[d]
        cols = [c for c in columns if task_sets[c.name] & set(mine)] if d != "forecasting" or len(present) > 1 \
            else list(columns)
        sections.append(Report(state, mine, cols, cells, {c.name: params.get((d, c.name), set()) for c in cols},
                               {c.name: costs.get((d, c.name), Cost()) for c in cols},
                               {c.name: notes.get((d, c.name), set()) for c in cols}, None, [],
                               domain_metrics(d, chosen), [], d,
                               {t: chosen or task_metrics.get(t) or registry_task_metric(t, d) for t in mine
                                if d != "forecasting"}))
    for section in sections:
        section.train_sizes = {t: max(s["train_sizes"][t] for s in sweeps if t in s["train_sizes"])
                               for t in section.tasks if any(t in s["train_sizes"] for s in sweeps)}
    remarks, refs = [], [r for path in _reference_files(references, set(tasks)) for r in load_reference(path)]
    if chosen and any(s.domain != "forecasting" for s in sections):
        remarks.append(f"Genomics and satellite cells show test {chosen} for every task (--metric {chosen}), not "
                       f"each task's literature metric; multi-label tasks (average precision) have none.")
    published_as = {t: stands_in_for(t) for t in tasks}     # a row's task -> the published task it stands in for
    for ref in refs:
        column = Column(f"published: {ref.name}", ref.name, f"published ({ref.kind})", reference=ref)
        outside = sorted(set(ref.results) - set(tasks) - set(published_as.values()))
        if outside:
            remarks.append(f"`{column.name}` also publishes {len(outside)} task(s) outside this report's rows "
                           f"({', '.join(outside)}): not shown.")
        for section in sections:   # in each section with one of its tasks (a forecasting-only report: always)
            source_of = {t: t if t in ref.results else published_as.get(t) for t in section.tasks}
            if not {s for s in source_of.values() if s in ref.results} and len(sections) > 1:
                continue
            section.columns.append(column)
            section.references.append(ref)
            section.n_parameters[column.name], section.notes[column.name] = set(), set()
            for task in section.tasks:
                source = source_of[task]
                if source != task and source in ref.results:
                    section.notes[column.name].add(
                        f"{task}: the published number is for {source}, which this row's task stands in for "
                        "(another dataset of the same source: a stand-in, not the same test set)")
                for m in section.metrics:
                    value = ref.results.get(source, {}).get(m.name) if source else None
                    cells[(m.name, task, column.name)] = Cell([] if value is None else [value], published=True)
    for section in sections:       # a task another sweep brought in, never planned for this column: missing
        for key in ((m.name, t, c.name) for m in section.metrics for t in section.tasks for c in section.columns):
            cells.setdefault(key, Cell())
    wanted = baseline or next((s["baseline"] for s in sweeps if s["baseline"]), None)
    for section in sections:
        section.baseline = _baseline(section, wanted)
    if baseline and not any(_pick(s.own(), baseline) for s in sections):
        raise SpecError(f"--baseline {baseline!r} is not a column of this report", key="--baseline",
                        hint=f"choose one of: {', '.join(dict.fromkeys(c.name for s in sections for c in s.own()))}")
    return Document(state, sections, refs, remarks)


def load_report(folders: Sequence[Path] | Path, references: Sequence[Path] = (), baseline: str | None = None,
                domain: str | None = None, metric: str | None = None) -> Report:
    """One domain's section (default: the first present), with the report-wide remarks ahead of its own."""
    doc = load_document(folders, references, baseline, metric)
    section = next((s for s in doc.sections if domain in (None, s.domain)), None)
    if section is None:
        raise ValueError(f"no {domain} tasks in this report; domains: {', '.join(s.domain for s in doc.sections)}")
    return replace(section, remarks=doc.remarks + section.remarks)
