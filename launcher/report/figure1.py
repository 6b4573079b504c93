"""The paper's Figure 1 across domains: data used vs. mean % improvement over the domain's baseline.

One panel per domain section of the report (forecasting, genomics, satellite) and, when there are several,
a last panel with every point of every domain. x = the data each method learned from, log scale, in the
domain's unit (`UNITS`): a supervised method or baseline its training data, averaged over the tasks where it
has a result; a foundation model (FM) its pretraining observations (`pretraining_observations` of a published
column's reference file, `FM_PRETRAINING` for a column run here), plus the task's training data when it is
fine-tuned, as the paper counts "total pretraining and fine-tuning data". y = the mean over tasks of the %
improvement of the section's first metric over the section's baseline column (the same numbers as the
tables' "mean % better than" row), with a 95% t-interval over tasks.

Points are never moved to keep them apart: methods with equal data keep equal x and are told apart by marker
shape (kind), colour (column) and a label offset next to each point. A column that cannot be placed is named
in the figure's notes with the reason (an FM whose pretraining size is not known, a task set of unknown
training size, no task shared with the baseline). `figure1_points` returns exactly what is drawn.
"""
from __future__ import annotations

import statistics
import textwrap
from dataclasses import dataclass
from typing import TYPE_CHECKING

from launcher.report.model import Column, Document, Report, aggregates, as_document, t_interval

if TYPE_CHECKING:
    from launcher.report.drawing import Figure

# Pretraining data of time-series foundation models run by this project, in observations (time points), with
# the source. Keyed by method (or column) name; a published column takes `pretraining_observations` from its
# reference file instead. An FM found in neither is left out of Figure 1 and named in the notes.
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
# Training images of satellite tasks: task -> (images, source). The task registry (tasks.satellite) records no
# split sizes, and none has been copied here from a readable source yet, so satellite supervised columns are left
# out of Figure 1 with a note until a size is added here with where it was read.
SATELLITE_TRAIN_IMAGES: dict[str, tuple[int, str]] = {}
# The unit of x per domain: what "observations" counts there (a reference file's pretraining_observations too).
UNITS = {"forecasting": "observations: time points x channels", "genomics": "nucleotides",
         "satellite": "images"}
TRAINING_SIZE = {
    "forecasting": "(train + val rows) x channels of the dataset's standard split",
    "genomics": "training sequences x sequence length (the NT benchmark's train sizes, tasks.genomics nt_train_size; "
                "else what the runs recorded they trained on)",
    "satellite": "training images (launcher.report.figure1.SATELLITE_TRAIN_IMAGES; else what the runs recorded "
                 "they trained on)",
}
NO_TRAINING_SIZE = {
    "forecasting": "a dataset outside the standard files of tasks.timeseries",
    "genomics": "the task registry has a training-set size for the Nucleotide Transformer benchmark tasks only "
                "(not for GUE tasks), and its runs recorded none",
    "satellite": "no training-set size of a satellite task is recorded (launcher.report.figure1."
                 "SATELLITE_TRAIN_IMAGES), and its runs recorded none",
}
# Marker shape by kind of method; published numbers are drawn hollow.
MARKERS = {"baseline": "s", "supervised": "o", "zero-shot FM": "^", "fine-tuned FM": "v"}
MARKER_NAMES = {"s": "square", "o": "circle", "^": "triangle up", "v": "triangle down", "D": "diamond"}
DOMAIN_COLORS = {"forecasting": "#1f77b4", "genomics": "#2ca02c", "satellite": "#d62728"}


@dataclass(frozen=True)
class Point:
    """One plotted point of Figure 1."""
    domain: str
    label: str                     # the report column
    x: float                       # data used, in UNITS[domain]
    y: float                       # mean % improvement over the section's baseline
    marker: str                    # matplotlib marker, by kind (MARKERS)
    low: float | None              # 95% t-interval over tasks of the per-task improvements (None: one task)
    high: float | None
    kind: str                      # "baseline", "supervised", "zero-shot FM", "fine-tuned FM", ...
    published: bool
    n_tasks: int                   # tasks the improvement averages over


def training_observations(task: str, domain: str = "forecasting") -> int | None:
    """The training data of one task in UNITS[domain]; None if unknown.
    forecasting: (train + val rows) x channels of a task named DATASET-HORIZON; genomics: NT train sequences x
    sequence length (nucleotides); satellite: training images from SATELLITE_TRAIN_IMAGES."""
    if domain == "genomics":
        from tasks.genomics import genomics_task_info

        try:
            info = genomics_task_info(task)
        except ValueError:
            return None
        return None if info.nt_train_size is None else info.nt_train_size * info.length
    if domain == "satellite":
        from tasks.satellite import ALIASES

        known = SATELLITE_TRAIN_IMAGES.get(ALIASES.get(task, task))
        return None if known is None else known[0]
    from tasks.timeseries import DATASETS, split_sizes

    info = DATASETS.get(task.rsplit("-", 1)[0])
    if info is None or (info.split == "ratio" and info.name not in STANDARD_ROWS):
        return None
    n_train, n_val, _ = split_sizes(info.split, STANDARD_ROWS.get(info.name, 0))
    return (n_train + n_val) * info.channels


def _kind(column: Column) -> str:
    return column.reference.kind if column.published else column.kind


def _marker(kind: str) -> str:
    if "FM" in kind:
        return MARKERS["zero-shot FM"] if "zero-shot" in kind else MARKERS["fine-tuned FM"]
    return MARKERS.get(kind, "D")


def _pretraining(column: Column) -> tuple[float | None, str]:
    """An FM column's pretraining observations, or None and why not."""
    if column.published:
        if column.reference.pretraining_observations is not None:
            return float(column.reference.pretraining_observations), ""
        return None, (f"its reference file `{column.reference.file}` gives no `pretraining_observations` for "
                      f"{column.reference.name!r}")
    for key in (column.method, column.name):
        if key in FM_PRETRAINING:
            return FM_PRETRAINING[key][0], ""
    return None, FM_PRETRAINING_UNKNOWN.get(column.method, f"`{column.method}` is not in "
                                            "launcher.report.figure1.FM_PRETRAINING")


def _data_used(report: Report, column: Column) -> tuple[float | None, str | None, list[str], list[str]]:
    """(x, why it is None, tasks of unknown training size that x leaves out, tasks it averages over)."""
    metric, kind, domain = report.metrics[0].name, _kind(column), report.domain
    tasks = [t for t in report.tasks if report.cell(metric, t, column.name).mean is not None]
    # the registry's size of the task's standard split, else the training data its runs recorded
    sizes = {t: training_observations(t, domain) or report.train_sizes.get(t) for t in tasks}
    known = [n for n in sizes.values() if n is not None]
    unknown = [t for t, n in sizes.items() if n is None]
    train = statistics.fmean(known) if known else None
    if "FM" in kind:
        pretraining, why = _pretraining(column)
        if pretraining is None:
            return None, f"it is a foundation model whose pretraining data size is not known: {why}", [], []
        if "zero-shot" in kind or train is None:      # zero-shot, or fine-tuning data negligible and unknown
            return pretraining, None, [], []
        return pretraining + train, None, unknown, [t for t in tasks if t not in unknown]
    if kind.startswith(("supervised", "baseline")):
        if train is None:
            return None, (f"the training size of its tasks ({', '.join(unknown)}) is not known: "
                          f"{NO_TRAINING_SIZE[domain]}"), [], []
        return train, None, unknown, [t for t in tasks if t not in unknown]
    return None, f"a {kind!r} method has no training-data size", [], []


def data_used(report: Report, column: Column) -> tuple[float | None, str | None]:
    """Observations the column's method learned from (x of Figure 1), or None and a note saying why not."""
    x, why, _, _ = _data_used(report, column)
    return (x, None) if why is None else (None, f"Figure 1 leaves out `{column.name}`: {why}.")


def figure1_points(source: Report | Document) -> tuple[list[Point], list[str]]:
    """The points Figure 1 draws, in report order (section, then column), and the notes on what it leaves out."""
    doc = as_document(source)
    points, notes = [], []
    for section in doc.sections:
        where = f" ({section.info.title.lower()})" if len(doc.sections) > 1 else ""
        if not section.baseline:
            notes.append(f"Figure 1 has no {section.info.title.lower()} points: that section has no baseline "
                         f"column to improve on.")
            continue
        metric = section.metrics[0]
        agg = aggregates(section, metric)
        for column in section.columns:
            gains = agg[column.name].gains
            if not gains:
                notes.append(f"Figure 1 leaves out `{column.name}`{where}: no task where it and "
                             f"`{section.baseline}` both have a result.")
                continue
            x, why, unknown, counted = _data_used(section, column)
            if why:
                notes.append(f"Figure 1 leaves out `{column.name}`{where}: {why}.")
                continue
            if unknown:
                notes.append(f"Figure 1: x of `{column.name}`{where} averages the training size of "
                             f"{len(counted)} of its {len(counted) + len(unknown)} tasks ({', '.join(counted)}); "
                             f"not known for {', '.join(unknown)}: {NO_TRAINING_SIZE[section.domain]}.")
            interval = t_interval(gains)
            kind = _kind(column)
            points.append(Point(section.domain, column.name, float(x), statistics.fmean(gains), _marker(kind),
                                None if interval is None else interval[0], None if interval is None else interval[1],
                                kind, column.published, len(gains)))
    return points, notes


# --------------------------------------------------------------------------- drawing
LABEL_GAP, LABEL_DX = 11.0, 16.0      # pixels between stacked labels; from a point to its label


def _label_offsets(ax, points: list[Point]) -> list[float]:
    """Vertical offsets (pixels) of each point's label, right of the point, so that no two labels overlap: labels
    that would collide are stacked LABEL_GAP apart, each stack centred on its points. The points themselves stay
    where their data put them."""
    ax.figure.draw_without_rendering()               # settle the layout, so data -> pixel is final
    spots = []
    for p in points:
        px, py = ax.transData.transform((p.x, p.y))
        spots.append((px + LABEL_DX, px + LABEL_DX + 5.2 * len(p.label), py))
    order = sorted(range(len(points)), key=lambda i: -spots[i][2])
    stacks: list[list[int]] = []                     # labels chained by horizontal overlap, top to bottom
    for i in order:
        left, right, _ = spots[i]
        for stack in stacks:
            if any(spots[j][0] < right and left < spots[j][1] for j in stack):
                stack.append(i)
                break
        else:
            stacks.append([i])
    wanted = [spot[2] for spot in spots]
    for stack in stacks:                             # merge neighbours closer than LABEL_GAP until none are
        groups = [[i] for i in stack]
        while True:
            close = [g for g in range(len(groups) - 1)
                     if _top(groups[g], spots) - LABEL_GAP * len(groups[g]) < _top(groups[g + 1], spots)]
            if not close:
                break
            groups[close[0]:close[0] + 2] = [groups[close[0]] + groups[close[0] + 1]]
        for group in groups:
            for k, i in enumerate(group):
                wanted[i] = _top(group, spots) - LABEL_GAP * k
    return [wanted[i] - spots[i][2] for i in range(len(points))]


def _top(group: list[int], spots) -> float:
    """The height of a group's first label when the group is centred on its points (the mean of their heights)."""
    return sum(spots[i][2] for i in group) / len(group) + LABEL_GAP * (len(group) - 1) / 2


def _panel(ax, points: list[Point], colors: dict[str, str], *, labels: bool) -> None:
    ax.axhline(0.0, color="#999999", linewidth=0.8, zorder=0)
    for p in points:                                 # intervals first and light, so markers at equal x stay visible
        color = colors[p.domain if not labels else p.label]
        if p.low is not None:
            ax.errorbar([p.x], [p.y], yerr=[[p.y - p.low], [p.high - p.y]], fmt="none", ecolor=color, capsize=3,
                        elinewidth=1.0, alpha=0.55)
    for p in points:
        color = colors[p.domain if not labels else p.label]
        ax.plot([p.x], [p.y], marker=p.marker, linestyle="None", color=color, markersize=7, markeredgewidth=1.3,
                markerfacecolor="white" if p.published else color, zorder=3)
    ax.set_xscale("log")
    if points:
        xs = [p.x for p in points]
        ax.set_xlim(min(xs) / 4, max(xs) * (60 if labels else 4))
        ys = [v for p in points for v in (p.y, p.low, p.high) if v is not None] + [0.0]
        pad = 0.08 * max(1e-9, max(ys) - min(ys)) or 1.0
        ax.set_ylim(min(ys) - pad, max(ys) + pad)
    ax.grid(True, which="major", linewidth=0.3)
    if labels and points:
        pt = 72 / ax.figure.dpi
        for p, dy in zip(points, _label_offsets(ax, points)):
            ax.annotate(p.label, (p.x, p.y), xytext=(LABEL_DX * pt, dy * pt), textcoords="offset points",
                        fontsize=7, va="center", annotation_clip=False,
                        arrowprops=dict(arrowstyle="-", linewidth=0.5, color="#555555", shrinkA=0, shrinkB=4))


def _wrap(text: str, width: int) -> str:
    return "\n".join(textwrap.wrap(text, width))


def draw_figure1(source: Report | Document):
    """The matplotlib figure of Figure 1 (panels in section order, then the all-domains one) and the points and
    notes it was drawn from; None when no section has a baseline."""
    from matplotlib.lines import Line2D

    from launcher.report.drawing import PALETTE, new_figure

    doc = as_document(source)
    sections = [s for s in doc.sections if s.baseline]
    if not sections:
        return None
    points, notes = figure1_points(doc)
    across = len(doc.sections) > 1
    panels = len(sections) + across
    rows, cols = (2, 2) if panels == 4 else (1, panels)
    width = max(8.0, 5.6 * cols)
    fig = new_figure(width, 4.6 * rows + 0.7)
    for index, section in enumerate(sections):
        ax = fig.add_subplot(rows, cols, index + 1)
        mine = [p for p in points if p.domain == section.domain]
        colors = {c.name: PALETTE[i % len(PALETTE)] for i, c in enumerate(section.columns)}   # as its bars
        _panel(ax, mine, colors, labels=True)
        metric = section.metrics[0]
        better = "lower" if metric.direction == "min" else "higher"
        ax.set_title(_wrap(f"{section.info.title}: improvement over `{section.baseline}`", 48), fontsize=10)
        ax.set_xlabel(_wrap(f"data used ({UNITS[section.domain]}, log scale)", 52), fontsize=8)
        ax.set_ylabel(_wrap(f"mean % improvement of {metric.label} ({better} is better)", 44), fontsize=8)
        if not mine:
            ax.text(0.5, 0.5, "no point: no method here has a known data size\n(the notes say why)",
                    transform=ax.transAxes, ha="center", va="center", fontsize=9, color="#666666")
            ax.set_xticks([])
            ax.set_yticks([])
    if across:
        ax = fig.add_subplot(rows, cols, panels)
        _panel(ax, points, DOMAIN_COLORS, labels=False)
        ax.set_title("All domains (colour: domain)", fontsize=10)
        ax.set_xlabel("data used (each domain in its own unit, log scale)", fontsize=8)
        ax.set_ylabel("mean % improvement over the domain's baseline", fontsize=8)
        present = [s.domain for s in sections if any(p.domain == s.domain for p in points)]
        ax.legend([Line2D([], [], color=DOMAIN_COLORS[d], marker="o", linestyle="") for d in present],
                  [d for d in present], fontsize=7, loc="best")
    kinds = [("baseline method", "s", False), ("supervised", "o", False), ("zero-shot FM", "^", False),
             ("fine-tuned FM", "v", False), ("published (hollow)", "o", True)]
    fig.legend([Line2D([], [], color="#444444", marker=m, linestyle="", markerfacecolor="white" if hollow else
                       "#444444") for _, m, hollow in kinds], [k for k, _, _ in kinds], loc="outside lower center",
               ncols=len(kinds) if width > 10 else 3, fontsize=8, frameon=False)
    fig.suptitle(_wrap("Data used vs. mean % improvement over the domain's baseline (the paper's Figure 1)",
                       int(12 * width)), fontsize=11)
    return fig, points, notes


def figure_data_vs_improvement(source: Report | Document) -> Figure | None:
    """Figure 1 of the report: one panel per domain section, and one across domains when there are several;
    its notes name every column left out and why. It belongs to the one section, or to the whole report."""
    from launcher.report.drawing import Figure, png_bytes

    doc = as_document(source)
    drawn = draw_figure1(doc)
    if drawn is None:
        return None
    fig, _, notes = drawn
    domain = doc.sections[0].domain if len(doc.sections) == 1 else "all"
    return Figure("report_figure1.png", "Figure 1: data used vs. improvement",
                  _caption([s for s in doc.sections if s.baseline], len(doc.sections) > 1), png_bytes(fig), notes,
                  domain=domain)


def _caption(sections: list[Report], across: bool) -> str:
    baselines = "; ".join(
        f"{s.info.title.lower()}: `{s.baseline}`, {s.metrics[0].label} "
        + ("(lower is better: 100 x (baseline - method) / baseline)" if s.metrics[0].direction == "min" else
           "(higher is better: 100 x (method - baseline) / |baseline|)") for s in sections)
    sizes = "; ".join(f"{s.info.title.lower()}: {TRAINING_SIZE[s.domain]}" for s in sections)
    return ("Figure 1 (after the paper's Figure 1): one panel per domain"
            + (", and all domains together in the last" if across else "")
            + ". x = data each method used, log scale: a supervised method or baseline its training data, averaged "
            f"over its tasks ({sizes}); a foundation model its pretraining observations (a published column: the "
            f"`pretraining_observations` of its reference file, in the domain's unit) plus, when fine-tuned, the "
            f"task's training data. y = mean over tasks of the % improvement over the domain's baseline column, the "
            f"one the tables' \"% better than\" rows use ({baselines}); bars: 95% t-interval over tasks. Marker "
            f"shape = kind: square a baseline method (naive, ARIMA), circle supervised, triangle up zero-shot FM, "
            f"triangle down fine-tuned FM, diamond any other; hollow = published numbers. Methods with equal data keep the same x: labels are "
            f"offset, points are never moved."
            + (" In the all-domains panel the colour is the domain and each domain's x is in its own unit "
               f"({'; '.join(f'{s.info.title.lower()}: {UNITS[s.domain]}' for s in sections)}): compare orders of "
               "magnitude, not values." if across else ""))
