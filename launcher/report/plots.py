"""Figures of the comparison report (matplotlib, Agg backend, PNG bytes, deterministic).

1. The paper's Figure 1: x = data each method used (log scale), y = mean % improvement of the first
   metric over the baseline column, with a 95% t-interval over tasks. "Data used" = training
   observations, (train + val rows) x channels averaged over the column's tasks, for supervised
   methods and baselines; for a foundation model its pretraining observations (plus the task's
   training observations when it is fine-tuned), from `FM_PRETRAINING` below. A method whose data
   size is not known is left out, and a note says so.
   Forecasting only: the training size of genomics and satellite tasks is not read here yet.
2. Per-task bars of the first metric with their 95% intervals over seeds, one figure per domain section
   (genomics and satellite: the task's own metric at the validation-selected epoch, named on its tick).
"""
from __future__ import annotations

import io
import statistics
from dataclasses import dataclass, field

from launcher.report.model import Column, Document, Report, aggregates, as_document, t_interval

# Pretraining data of time-series foundation models, in observations (time points), with the source.
# Keyed by method name; a method missing here is left out of Figure 1 with a note.
FM_PRETRAINING: dict[str, tuple[float, str]] = {
    "moirai": (27e9, "LOTSA, \"over 27B observations\": Woo et al., Unified Training of Universal Time Series "
                     "Forecasting Transformers, ICML 2024 (arXiv:2402.02592), abstract"),
    "timesfm": (100e9, "\"100 billion real world time-points\": Das et al., A decoder-only foundation model for "
                       "time-series forecasting, ICML 2024 (arXiv:2310.10688); Google Research blog, 2 Feb 2024"),
}
# Foundation models whose pretraining corpus is known but not its size in observations.
FM_PRETRAINING_UNKNOWN: dict[str, str] = {
    "fracast": "Fracast-0's README (PyPI fracast 0.1.0) names its pretraining corpora (GIFT-Eval pretrain, LOTSA, "
               "Chronos datasets, BOOM, fev) by download size in GiB only, not in observations",
}
# Rows of the standard files split by ratio (Zeng et al., AAAI 2023, arXiv:2205.13504, Table 1); the
# ETT splits are fixed by the protocol (tasks.timeseries.split_sizes).
STANDARD_ROWS: dict[str, int] = {"electricity": 26304, "traffic": 17544, "weather": 52696, "illness": 966,
                                 "exchange_rate": 7588}
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
           "#bcbd22", "#17becf")


@dataclass
class Figure:
    filename: str
    title: str
    caption: str
    png: bytes
    notes: list[str] = field(default_factory=list)
    domain: str = "forecasting"    # the report section it belongs to


def training_observations(task: str) -> int | None:
    """(train + val rows) x channels of a forecasting task named DATASET-HORIZON; None if unknown."""
    from tasks.timeseries import DATASETS, split_sizes

    info = DATASETS.get(task.rsplit("-", 1)[0])
    if info is None or (info.split == "ratio" and info.name not in STANDARD_ROWS):
        return None
    n_train, n_val, _ = split_sizes(info.split, STANDARD_ROWS.get(info.name, 0))
    return (n_train + n_val) * info.channels


def data_used(report: Report, column: Column) -> tuple[float | None, str | None]:
    """Observations the column's method learned from (x of Figure 1), or None and why not."""
    metric = report.metrics[0].name
    kind = column.reference.kind if column.published else column.kind
    tasks = [t for t in report.tasks if report.cell(metric, t, column.name).mean is not None]
    sizes = [n for n in map(training_observations, tasks) if n is not None]
    train = statistics.fmean(sizes) if sizes else None
    if "FM" in kind:
        known = column.reference.pretraining_observations if column.published else \
            FM_PRETRAINING.get(column.method, (None,))[0]
        if known is None:
            why = FM_PRETRAINING_UNKNOWN.get(column.method, "its pretraining data size is not in "
                                                            "launcher.report.plots.FM_PRETRAINING")
            return None, f"Figure 1 leaves out `{column.name}`: {why}."
        return float(known) + (0.0 if "zero-shot" in kind or train is None else train), None
    if kind.startswith(("supervised", "baseline", "published")):
        if train is None:
            return None, f"Figure 1 leaves out `{column.name}`: the training size of its tasks is not known."
        return train, None
    return None, f"Figure 1 leaves out `{column.name}`: a {kind!r} method has no training-data size."


def _png(fig) -> bytes:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100, metadata={"Software": None})
    return buffer.getvalue()


def _new_figure(width: float, height: float):
    """A figure outside pyplot (no global state, no backend switch); the Agg canvas draws it."""
    from matplotlib.figure import Figure as MplFigure

    return MplFigure(figsize=(width, height), layout="constrained")


def figure_data_vs_improvement(report: Report) -> Figure | None:
    metric = report.metrics[0]
    if not report.baseline:
        return None
    agg, notes, points = aggregates(report, metric), [], []
    for index, column in enumerate(report.columns):
        gains = agg[column.name].gains
        x, why = data_used(report, column) if gains else (None, None)
        if not gains:
            notes.append(f"Figure 1 leaves out `{column.name}`: no task where it and `{report.baseline}` both "
                         f"have a result.")
        elif why:
            notes.append(why)
        else:
            interval = t_interval(gains)
            half = 0.0 if interval is None else (interval[1] - interval[0]) / 2
            points.append((column, index, x, statistics.fmean(gains), half))
    fig = _new_figure(8.0, 4.5)
    ax = fig.add_subplot()
    ax.axhline(0.0, color="#999999", linewidth=0.8)
    for column, index, x, y, half in points:
        same = [p[0].name for p in points if p[2] == x]          # dodge points of equal data size
        dodge = 10 ** (0.025 * (same.index(column.name) - (len(same) - 1) / 2))
        marker = "D" if column.published else "^" if "FM" in column.kind else "s" if column.kind == "baseline" else "o"
        color = PALETTE[index % len(PALETTE)]
        ax.errorbar([x * dodge], [y], yerr=[[half], [half]], fmt=marker, color=color, capsize=3,
                    markerfacecolor="none" if column.published else color, label=column.name)
    ax.set_xscale("log")
    ax.set_xlabel("data used (observations, log scale)")
    ax.set_ylabel(f"mean % improvement of {metric.label} over {report.baseline}")
    ax.set_title("Data used vs. improvement over the baseline (the paper's Figure 1)")
    if points:
        xs = [p[2] for p in points]
        ax.set_xlim(min(xs) / 3, max(xs) * 3)
    ax.grid(True, which="major", linewidth=0.3)
    if points:
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    caption = (f"Figure 1: data used by each method (training observations = (train + val rows) x channels, "
               f"averaged over its tasks; a foundation model: its pretraining observations) vs. its mean % "
               f"improvement of {metric.label} over `{report.baseline}` across tasks; bars: 95% t-interval "
               f"over tasks. Hollow diamonds: published numbers. Points of equal data size are spread 0.025 decade apart along x "
               f"so that none hides another.")
    return Figure("report_figure1.png", "Figure 1: data used vs. improvement", caption, _png(fig), notes)


def figure_per_task(report: Report) -> Figure:
    metric = report.metrics[0]
    columns, tasks = report.columns, report.tasks
    width = min(24.0, max(6.0, 0.22 * len(tasks) * max(1, len(columns)) + 2.0))
    fig = _new_figure(width, 4.2)
    ax = fig.add_subplot()
    bar = 0.8 / max(1, len(columns))
    for index, column in enumerate(columns):
        xs, heights, errors = [], [], []
        for t, task in enumerate(tasks):
            cell = report.cell(metric.name, task, column.name)
            if cell.mean is None:
                continue
            interval = cell.interval
            xs.append(t - 0.4 + bar * (index + 0.5))
            heights.append(cell.mean)
            errors.append(float("nan") if interval is None else (interval[1] - interval[0]) / 2)
        if not xs:
            continue
        ax.bar(xs, heights, width=bar, yerr=errors, capsize=2, color=PALETTE[index % len(PALETTE)],
               hatch="//" if column.published else None, label=column.name, edgecolor="white", linewidth=0.3)
    forecasting = report.domain == "forecasting"
    ax.set_xticks(range(len(tasks)))
    ax.set_xticklabels([report.row_label(t) for t in tasks], rotation=45, ha="right")
    ax.set_ylabel(f"{metric.label} ({'lower' if metric.direction == 'min' else 'higher'} is better)")
    ax.set_title(("" if forecasting else f"{report.info.title}: ") +
                 f"{metric.label} per task; error bars: 95% t-interval over seeds")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    caption = (f"{metric.label} per task and column (mean over seeds; error bars: 95% t-interval where there are "
               f"two or more seeds). Missing, failed and pending cells have no bar; hatched: published numbers.")
    if not forecasting:
        caption += " Each task's bars are in its own metric, named after the task on the x axis."
    return Figure("report_tasks.png" if forecasting else f"report_{report.domain}_tasks.png",
                  f"{metric.label} per task" if forecasting else f"{report.info.title}: {metric.label} per task",
                  caption, _png(fig), domain=report.domain)


def make_figures(report: Report | Document) -> list[Figure]:
    """Figure 1 for the forecasting section (where the data sizes are known), per-task bars for every section."""
    figures = []
    for section in as_document(report).sections:
        if section.domain == "forecasting":
            figures.append(figure_data_vs_improvement(section))
        figures.append(figure_per_task(section))
    return [f for f in figures if f is not None]
