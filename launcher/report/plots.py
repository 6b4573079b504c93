"""Figures of the comparison report (matplotlib, Agg backend, PNG bytes, deterministic).

1. The paper's Figure 1 across domains (`figure1.py`): data used vs. mean % improvement over each domain's
   baseline, one panel per domain section and one with every domain; `figure1_points` is what it draws.
2. Per-task bars of each section's first metric with their 95% intervals over seeds, one figure per domain
   section (genomics and satellite: the task's own metric at the validation-selected epoch, named on its tick).
   An interval is clipped to the range of its metric (`metric_range`: MSE/MAE >= 0; accuracy, F1 and average
   precision in [0, 1]; MCC in [-1, 1]); `task_bars` is what it draws.
"""
from __future__ import annotations

import math
import textwrap
from dataclasses import dataclass

from launcher.report.drawing import PALETTE, Figure, new_figure, png_bytes
from launcher.report.figure1 import (
    FM_PRETRAINING,
    FM_PRETRAINING_UNKNOWN,
    STANDARD_ROWS,
    Point,
    data_used,
    draw_figure1,
    figure1_points,
    figure_data_vs_improvement,
    training_observations,
)
from launcher.report.model import Document, Metric, Report, as_document

__all__ = ["FM_PRETRAINING", "FM_PRETRAINING_UNKNOWN", "PALETTE", "STANDARD_ROWS", "Bar", "Figure", "Point",
           "data_used", "draw_figure1", "draw_per_task", "figure1_points", "figure_data_vs_improvement",
           "figure_per_task", "make_figures", "metric_range", "task_bars", "training_observations"]

@dataclass(frozen=True)
class Bar:
    """One bar of a per-task figure: a cell's mean and its interval, clipped to the metric's range."""
    task: str
    column: str
    mean: float
    low: float | None              # None: no interval (one seed, or published)
    high: float | None
    clipped: bool                  # the t-interval reached past the metric's range


def metric_range(report: Report, task: str, metric: Metric) -> tuple[float, float]:
    """The values a task's metric can take: MSE and MAE >= 0; MCC in [-1, 1]; accuracy, F1, average precision in
    [0, 1]; a classification task whose metric is not known: [-1, 1] (it may be an MCC)."""
    if report.domain == "forecasting":
        return 0.0, math.inf
    name = report.task_metrics.get(task) or metric.name.removeprefix("test_").removesuffix("_last")
    return (0.0, 1.0) if name in ("f1", "accuracy") or name.startswith("average_precision") else (-1.0, 1.0)


def task_bars(report: Report) -> list[Bar]:
    """The bars of the section's per-task figure (its first metric), column by column, task by task."""
    metric, bars = report.metrics[0], []
    for column in report.columns:
        for task in report.tasks:
            cell = report.cell(metric.name, task, column.name)
            if cell.mean is None:
                continue
            interval, (lowest, highest) = cell.interval, metric_range(report, task, metric)
            if interval is None:
                bars.append(Bar(task, column.name, cell.mean, None, None, False))
                continue
            low, high = max(interval[0], lowest), min(interval[1], highest)
            bars.append(Bar(task, column.name, cell.mean, low, high, (low, high) != interval))
    return bars


def draw_per_task(report: Report):
    """The matplotlib figure of the section's per-task bars, and the bars it draws."""
    metric = report.metrics[0]
    columns, tasks = report.columns, report.tasks
    width = min(24.0, max(7.0, 0.22 * len(tasks) * max(1, len(columns)) + 3.0))
    fig = new_figure(width, 4.6)
    ax = fig.add_subplot()
    bar = 0.8 / max(1, len(columns))
    bars = task_bars(report)
    for index, column in enumerate(columns):
        mine = [b for b in bars if b.column == column.name]
        if not mine:
            continue
        xs = [tasks.index(b.task) - 0.4 + bar * (index + 0.5) for b in mine]
        errors = [[math.nan if b.low is None else b.mean - b.low for b in mine],
                  [math.nan if b.high is None else b.high - b.mean for b in mine]]
        ax.bar(xs, [b.mean for b in mine], width=bar, yerr=errors, capsize=2, color=PALETTE[index % len(PALETTE)],
               hatch="//" if column.published else None, label=column.name, edgecolor="white", linewidth=0.3)
    forecasting = report.domain == "forecasting"
    if not forecasting and bars:                # the whole range of the scores, never past it
        ax.set_ylim(min(0.0, min(b.mean if b.low is None else b.low for b in bars)) - 0.02, 1.02)
        ax.axhline(1.0, color="#bbbbbb", linewidth=0.6, linestyle="--", zorder=0)
    ax.set_xticks(range(len(tasks)))
    ax.set_xticklabels([report.row_label(t) for t in tasks], rotation=45 if len(tasks) > 1 else 0,
                       ha="right" if len(tasks) > 1 else "center")
    better = "lower" if metric.direction == "min" else "higher"
    ax.set_ylabel("\n".join(textwrap.wrap(f"{metric.label} ({better} is better)", 34)), fontsize=9)
    what = ("" if forecasting else f"{report.info.title}: ") + f"{metric.label}, per task"
    ax.set_title("\n".join(textwrap.wrap(what, int(11 * width))) + "\nerror bars: 95% t-interval over seeds, "
                 "clipped to the metric's range", fontsize=10)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return fig, bars


def figure_per_task(report: Report) -> Figure:
    metric, forecasting = report.metrics[0], report.domain == "forecasting"
    fig, bars = draw_per_task(report)
    clipped = sorted({(b.task, b.column) for b in bars if b.clipped})
    caption = (f"{metric.label} per task and column (mean over seeds; error bars: 95% t-interval where there are "
               f"two or more seeds, clipped to the range the metric can take: "
               + ("MSE and MAE are never below 0" if forecasting else
                  "accuracy, F1 and average precision in [0, 1], MCC in [-1, 1]")
               + "). Missing, failed and pending cells have no bar; hatched: published numbers.")
    if not forecasting:
        caption += " Each task's bars are in its own metric, named after the task on the x axis."
    if clipped:
        caption += (f" Clipped at the metric's bound: {len(clipped)} interval(s) ("
                    + ", ".join(f"{c} on {t}" for t, c in clipped[:6]) + (", ..." if len(clipped) > 6 else "") + ").")
    return Figure("report_tasks.png" if forecasting else f"report_{report.domain}_tasks.png",
                  f"{metric.label} per task" if forecasting else f"{report.info.title}: {metric.label} per task",
                  caption, png_bytes(fig), domain=report.domain)


def make_figures(report: Report | Document) -> list[Figure]:
    """Figure 1 across the report's domains (first), then per-task bars for every section."""
    doc = as_document(report)
    figures = [figure_data_vs_improvement(doc)] + [figure_per_task(section) for section in doc.sections]
    return [f for f in figures if f is not None]
