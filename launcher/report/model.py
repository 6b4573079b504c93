"""The comparison report of sweeps (the paper's Table 3): one section per task domain (forecasting,
genomics, satellite), rows = tasks, columns = methods. Data model, aggregates and the public API.

A cell = the test metric at the validation-selected checkpoint (tuned study: its selected trial or its
final retrains; fixed study: one run per seed), mean and 95% t-interval over seeds. Forecasting cells are
test MSE / MAE (lower is better); genomics and satellite cells are each task's own literature metric (MCC,
F1, accuracy or average precision; higher is better), at the validation-selected epoch and, in a second
table, at the last epoch. Expected cells come from plan.json, so missing, failed and pending cells are
shown, never dropped. Loading: `load.py`; rendering: `render.py`; figures: `plots.py`; `write_report` in `__init__`.
Several folders: the union of rows and columns; a column name two sweeps share is one column when they
ran it on disjoint tasks, else kept twice as "name [sweep]" so no number hides another.
"""
from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field
from typing import Sequence


@dataclass(frozen=True)
class Metric:
    name: str
    label: str
    direction: str = "min"         # "min": lower is better, "max": higher is better

    def gain(self, value: float, base: float) -> float:     # % improvement over base, > 0 = better
        return 100.0 * ((base - value) if self.direction == "min" else (value - base)) / abs(base)


@dataclass(frozen=True)
class DomainInfo:
    """Everything domain-specific the report needs, in one place."""
    name: str
    title: str                     # the section heading
    metrics: tuple[Metric, ...]    # with their direction; one table each
    baselines: tuple[str, ...]     # default baseline column: the first one present (a column name, else a method)
    cells: str                     # what a cell holds, for the "Cells:" paragraph


SCORE_METRICS = (Metric("test_score", "test score at the validation-selected epoch", "max"),
                 Metric("test_score_last", "test at last epoch", "max"))
CLASSIFICATION_CELLS = (
    "each task's own test metric, named in its row after the task (MCC, F1, accuracy or average precision: the "
    "metric the literature reports for that task; higher is better), at the epoch selected on validation data (a "
    "tuned study: the trial its optimizer selected on validation data, or its final retrains over seeds); the "
    "table \"test at last epoch\" holds the same metric at the last training epoch, with no selection")
DOMAINS: dict[str, DomainInfo] = {
    "forecasting": DomainInfo(
        "forecasting", "Forecasting", (Metric("test_mse", "test MSE"), Metric("test_mae", "test MAE")),
        ("auto_arima", "naive"),
        "the test metric at the validation-selected checkpoint (a tuned study: the trial its optimizer selected on "
        "validation data), in normalized units (z-scored with train statistics), averaged over channels x stride-1 "
        "test windows x horizon steps"),
    "genomics": DomainInfo("genomics", "Genomics", SCORE_METRICS, ("backbone",), CLASSIFICATION_CELLS),
    "satellite": DomainInfo("satellite", "Satellite imagery", SCORE_METRICS, ("backbone",), CLASSIFICATION_CELLS),
}
METRICS: tuple[Metric, ...] = DOMAINS["forecasting"].metrics
# `report --metric`: one metric for every genomics/satellite task instead of each task's literature metric
# (the trials record MCC, F1 and accuracy for every single-label task at the validation-selected epoch)
METRIC_CHOICES = ("literature", "mcc", "f1", "accuracy")


def domain_metrics(domain: str, metric: str | None = None) -> tuple[Metric, ...]:
    """The metrics a domain's tables show: its own, or for classification domains the one `metric` chosen."""
    if domain == "forecasting" or metric in (None, "literature"):
        return DOMAINS[domain].metrics
    if metric not in METRIC_CHOICES:
        raise ValueError(f"unknown report metric {metric!r}; choose one of {', '.join(METRIC_CHOICES)}")
    label = {"mcc": "MCC", "f1": "F1", "accuracy": "accuracy"}[metric]
    return (Metric(f"test_{metric}", f"test {label} at the validation-selected epoch", "max"),
            Metric(f"test_{metric}_last", f"test {label} at last epoch", "max"))
CONFIDENCE = 0.95
TUNED_ARMS = ("tuned", "random")
# How a task's literature metric (tasks.classification.METRICS) is named in its row label.
TASK_METRIC_LABELS = {"mcc": "MCC", "f1": "F1", "accuracy": "accuracy", "average_precision": "macro AP",
                      "average_precision_micro": "micro AP"}


def registry_task_metric(task: str, domain: str) -> str | None:
    """The literature metric of a genomics or satellite task from the task registry; None if unknown."""
    try:
        if domain == "genomics":
            from tasks.genomics import genomics_task_info

            return genomics_task_info(task).metric
        if domain == "satellite":
            from tasks.satellite import satellite_task_info

            return satellite_task_info(task).metric
    except ValueError:
        return None
    return None


def t_interval(values: Sequence[float], confidence: float = CONFIDENCE) -> tuple[float, float] | None:
    """Two-sided t interval of the mean: mean +/- t(0.5 + c/2, n-1) * s / sqrt(n); None for n < 2."""
    if len(values) < 2:
        return None
    from scipy.stats import t  # scipy: required by mlflow and statsmodels

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
    """One domain's section: its tasks, the columns that ran (or publish) any of them, their cells and cost."""
    sweeps: list[tuple[str, str]]  # (name, state: finished | paused | unfinished | unknown)
    tasks: list[str]
    columns: list[Column]
    cells: dict                    # (metric, task, column) -> Cell
    n_parameters: dict             # column -> set of ints
    costs: dict                    # column -> Cost (the column's trial runs on this domain's tasks)
    notes: dict                    # column -> set of notes from the runs
    baseline: str | None
    remarks: list[str] = field(default_factory=list)
    metrics: tuple[Metric, ...] = METRICS
    references: list[Reference] = field(default_factory=list)
    domain: str = "forecasting"
    task_metrics: dict = field(default_factory=dict)    # task -> literature metric (classification domains)
    train_sizes: dict = field(default_factory=dict)     # task -> training data its runs recorded (Figure 1's unit)

    @property
    def info(self) -> DomainInfo:
        return DOMAINS[self.domain]

    def own(self) -> list[Column]:
        return [c for c in self.columns if not c.published]

    def cell(self, metric: str, task: str, column: str) -> Cell:
        return self.cells[(metric, task, column)]

    def row_label(self, task: str) -> str:
        metric = self.task_metrics.get(task)
        return f"{task} ({TASK_METRIC_LABELS.get(metric, metric)})" if metric else task


@dataclass
class Document:
    """The whole report: one section per domain present (forecasting, genomics, satellite, in that order)."""
    sweeps: list[tuple[str, str]]
    sections: list[Report]
    references: list[Reference] = field(default_factory=list)
    remarks: list[str] = field(default_factory=list)    # not tied to a section (published tasks outside the rows)

    @property
    def nested(self) -> bool:      # a forecasting-only report keeps its flat layout, with no domain headings
        return [s.domain for s in self.sections] != ["forecasting"]


def as_document(source: Report | Document) -> Document:
    return source if isinstance(source, Document) else Document(source.sweeps, [source], source.references)


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
