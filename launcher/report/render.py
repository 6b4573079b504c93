"""Rendering of a loaded `Report`: Markdown (terminal, report.md), long-format CSV, self-contained HTML.

A report of one domain is flat (its metric tables, cost, figures, notes); a report with genomics or
satellite tasks has one `##` section per domain, its tables one level down, and one list of notes at the
end. Markdown and HTML are rendered from one list of blocks, so they always say the same thing. The
HTML has inline CSS and the figures as base64 data URIs: one file, no external assets. Floats have
fixed formats and nothing depends on the clock, so the same report gives the same bytes.
"""
from __future__ import annotations

import base64
import csv
import html
import io
import math
import re
import statistics

from launcher.report.model import CONFIDENCE, Cell, Column, Document, Metric, Report, aggregates, as_document

AVG_RMSE = "Avg RMSE"   # the paper's row: mean over the settings (task x horizon) of sqrt(test MSE)

DASH = "—"


# --------------------------------------------------------------------------- cell texts
def label(column: Column) -> str:
    return column.name + ("†" if column.deterministic else "")


def cell_text(cell: Cell, column: Column) -> str:
    if cell.mean is None:
        if column.published:
            return DASH
        extra = f" ({cell.failed} failed)" if cell.status == "pending" and cell.failed else ""
        return cell.status + extra
    if column.published:
        return f"{cell.mean:.{column.reference.decimals}f}"
    text, extras = f"{cell.mean:.4f}", []
    interval = cell.interval
    if interval is not None:
        text += f" ± {(interval[1] - interval[0]) / 2:.4f}"
        extras.append(f"n={len(cell.values)}")
    elif not column.deterministic:
        extras.append("1 seed")
    if cell.failed:
        extras.append(f"{cell.failed} failed")
    if cell.pending:
        extras.append(f"{cell.pending} pending")
    return text + (f" ({'; '.join(extras)})" if extras else "")


def _params(values: set) -> str:
    if not values:
        return "?"
    low, high = min(values), max(values)
    return f"{low:,}" if low == high else f"{low:,}–{high:,}"


def _duration(seconds: float) -> str:
    whole = int(round(seconds))
    return f"{whole // 3600}:{whole % 3600 // 60:02d}:{whole % 60:02d}"


def _cost(report: Report, column: Column) -> str:
    cost = report.costs.get(column.name)
    if cost is None or column.published:
        return DASH
    parts = [f"{cost.gpu_seconds / 3600:.4f} GPU-h"] if cost.gpu_seconds else []
    if cost.cpu_seconds or not parts:
        parts.append(f"{cost.cpu_seconds / 3600:.4f} CPU-h")
    return " + ".join(parts)


def _mean(values: list[float], digits: int, how=statistics.fmean) -> str:
    return f"{how(values):.{digits}f}" if values else DASH


# --------------------------------------------------------------------------- the document
def _metric_blocks(report: Report, metric: Metric, level: str = "h2") -> list[tuple]:
    columns, n_tasks = report.columns, len(report.tasks)
    better = "lower" if metric.direction == "min" else "higher"
    rows = []
    for task in report.tasks:
        cells = {c.name: report.cell(metric.name, task, c.name) for c in columns}
        own = [cells[c.name].mean for c in report.own() if cells[c.name].mean is not None]
        best = (min(own) if metric.direction == "min" else max(own)) if own else None
        texts = []
        for c in columns:
            text = cell_text(cells[c.name], c)
            bold = not c.published and best is not None and cells[c.name].mean == best
            texts.append(f"**{text}**" if bold else text)
        rows.append([report.row_label(task)] + texts)
    agg = aggregates(report, metric)

    def over(values: list[float], digits: int, how=statistics.fmean) -> str:    # "(k/n tasks)" when partial
        return _mean(values, digits, how) + ("" if len(values) in (0, n_tasks) else f" ({len(values)}/{n_tasks} tasks)")

    rows.append(["average"] + [over(agg[c.name].scores, 4) for c in columns])
    if metric.name == "test_mse":        # the paper's "Avg RMSE": the mean over settings of sqrt(MSE)
        rows.append([AVG_RMSE] + [over([math.sqrt(v) for v in agg[c.name].scores], 4) for c in columns])
    rows.append(["average rank"] + [DASH if c.published else over(agg[c.name].ranks, 2) for c in columns])
    if report.references:
        rows.append(["average rank incl. published"] + [over(agg[c.name].ranks_all, 2) for c in columns])
    if report.baseline:
        for name, how in (("mean", statistics.fmean), ("median", statistics.median)):
            rows.append([f"{name} % better than {report.baseline}"]
                        + [over(agg[c.name].gains, 2, how) for c in columns])
    return [(level, f"{metric.label} ({better} is better)"), ("table", ["task"] + [label(c) for c in columns], rows)]


def _cost_blocks(report: Report, level: str = "h2") -> list[tuple]:
    columns = report.columns
    rows = [["kind"] + [c.kind for c in columns],
            ["parameters"] + [DASH if c.published else _params(report.n_parameters[c.name]) for c in columns]]
    runs = []
    for c in columns:
        cost = report.costs.get(c.name)
        runs.append(DASH if cost is None or c.published else
                    f"{cost.runs}" + (f" ({cost.failed} failed)" if cost.failed else ""))
    rows.append(["trial runs"] + runs)
    rows.append(["cost"] + [_cost(report, c) for c in columns])
    rows.append(["job time (h:mm:ss)"] + [DASH if c.published or c.name not in report.costs
                                          else _duration(report.costs[c.name].job_seconds) for c in columns])
    return [(level, "Cost and size"), ("table", [""] + [label(c) for c in columns], rows)]


def _notes(doc: Document, figures) -> list[str]:
    def each(make) -> list[str]:   # the sections' notes; nested, each named after the domains that have it
        if not doc.nested:
            return [note for s in doc.sections for note in make(s)]
        where: dict[str, list[str]] = {}
        for s in doc.sections:
            for note in make(s):
                where.setdefault(note, []).append(s.info.title)
        return [f"{', '.join(titles)}: {note}" for note, titles in where.items()]

    notes = each(lambda s: [f"**{c.name}**: {note}" for c in s.columns for note in sorted(s.notes.get(c.name, ()))])
    notes.append("cost = sum over every trial run of the column (all trials of a tuned study, whatever their "
                 "status) of job seconds x the CPUs it held (GPUs, for a run that held GPUs) / 3600; job time = "
                 "the same job seconds, summed. A failed run counts the job time of its completed segments only.")
    untagged = sum(cost.untagged for s in doc.sections for cost in s.costs.values() if cost is not None)
    if untagged:
        notes.append(f"{untagged} trial run(s) carry no launcher.cpus tag (recorded before it existed): "
                     "counted as 1 CPU each.")
    notes += each(lambda s: [
        f"% better than `{s.baseline}`: 100 x (baseline - method) / baseline per task (reversed for higher-is-better "
        "metrics), over the tasks where both have a result." if s.baseline and s.metrics[0].direction == "min" else
        f"% better than `{s.baseline}`: 100 x (method - baseline) / |baseline| per task (higher is better), over the "
        "tasks where both have a result." if s.baseline else
        f"no baseline column in this report (defaults: {', '.join(s.info.baselines)}; or pass --baseline), so no "
        "% improvement rows."])
    notes += each(lambda s: [] if s.domain == "forecasting" else [
        "\"average\" averages each task's own metric (MCC, F1, accuracy, average precision) as they are: a summary, "
        "not one quantity; ranks and % improvement compare like with like, task by task.",
        "\"test at last epoch\": the same test metric after the last training epoch, with no selection on "
        "validation data; it is shown next to the validation-selected table, never instead of it."])
    if doc.references:
        notes.append("`published:` columns are numbers copied from papers, not runs of this sweep. They use "
                     "other lookbacks, windows and codebases (e.g. some loaders drop the last incomplete test "
                     "batch), so they do not sit on the same test windows as this sweep: they are never bold, "
                     "have no interval, and are ranked with the other columns only in the row "
                     "\"average rank incl. published\".")
        for ref in doc.references:
            notes.append(f"`published: {ref.name}` ({ref.file}): {ref.citation} Protocol: {ref.protocol}")
    notes.extend(doc.remarks)
    notes += each(lambda s: s.remarks)
    for figure in figures:
        notes.extend(figure.notes)
    return notes


def document(source: Report | Document, figures=()) -> list[tuple]:
    doc = as_document(source)
    names = " + ".join(f"`{name}`" for name, _ in doc.sweeps)
    blocks: list[tuple] = [("h1", f"Comparison report: sweep{'s' if len(doc.sweeps) > 1 else ''} {names}")]
    for name, state in doc.sweeps:
        if state in ("unfinished", "paused"):
            why = "paused after too many failed trials" if state == "paused" else "still running, or stopped early"
            blocks.append(("p", f"**Sweep `{name}` is not finished** ({why}): *pending* cells have runs still to "
                                f"come and the aggregates cover finished cells only. "
                                f"`python -m launcher resume DIR` continues it."))
    level, common = ("h3" if doc.nested else "h2"), (
        f"A cell is the mean over seeds ± the half-width of the {CONFIDENCE:.0%} t-interval, n = seeds; \"(1 seed)\": "
        f"a single seed, no interval; † deterministic method, run once (seeds would not change it). **Bold**: best of "
        f"this report's own columns in the row. Failed, missing and pending cells are shown as such, never dropped; "
        f"\"(k/n tasks)\": an aggregate over the k tasks where the column has a result.")
    if doc.nested:
        blocks.append(("p", f"One section per task domain. In every table: {common[0].lower()}{common[1:]}"))
    for section in doc.sections:
        if doc.nested:
            n = len(section.tasks)
            blocks.append(("h2", f"{section.info.title} ({n} task{'s' if n != 1 else ''})"))
        blocks.append(("p", f"Cells: {section.info.cells}." + ("" if doc.nested else f" {common}")))
        for metric in section.metrics:
            blocks.extend(_metric_blocks(section, metric, level))
        blocks.extend(_cost_blocks(section, level))
        mine = [f for f in figures if getattr(f, "domain", "forecasting") == section.domain]
        if mine:
            blocks.append((level, "Figures"))
            for figure in mine:
                blocks += [("img", figure.filename, figure.title), ("p", figure.caption)]
    across = [f for f in figures if getattr(f, "domain", "forecasting") not in {s.domain for s in doc.sections}]
    if across:                     # a figure of the whole report (Figure 1 over several domains)
        blocks.append(("h2", "Across domains"))
        for figure in across:
            blocks += [("img", figure.filename, figure.title), ("p", figure.caption)]
    blocks.extend([("h2", "Notes"), ("ul", _notes(doc, figures))])
    return blocks


# --------------------------------------------------------------------------- Markdown
def render_markdown(report: Report | Document, figures=()) -> str:
    parts = []
    for block in document(report, figures):
        kind = block[0]
        if kind in ("h1", "h2", "h3"):
            parts.append("#" * int(kind[1]) + " " + block[1])
        elif kind == "p":
            parts.append(block[1])
        elif kind == "ul":
            parts.append("\n".join(f"- {item}" for item in block[1]))
        elif kind == "img":
            parts.append(f"![{block[2]}]({block[1]})")
        elif kind == "table":
            header, rows = block[1], block[2]
            lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
            lines += ["| " + " | ".join(row) + " |" for row in rows]
            parts.append("\n".join(lines))
    return "\n\n".join(parts) + "\n"


# --------------------------------------------------------------------------- HTML
CSS = """body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:2em auto;max-width:75em;color:#222;
padding:0 1em;line-height:1.45}table{border-collapse:collapse;margin:1em 0;font-size:.9em}
th,td{border:1px solid #ccc;padding:.3em .6em;text-align:right;white-space:nowrap}
th:first-child,td:first-child{text-align:left}th{background:#f2f2f2}tr:nth-child(even) td{background:#fafafa}
code{background:#f2f2f2;padding:0 .2em}figure{margin:1.5em 0}img{max-width:100%}
li{margin:.3em 0}"""


def _inline(text: str) -> str:
    text = html.escape(text, quote=False)
    text = re.sub(r"`([^`]+)`", r"<code>\1</code>", text)
    text = re.sub(r"\*\*(.+?)\*\*", r"<b>\1</b>", text)
    return re.sub(r"\*([^*]+)\*", r"<i>\1</i>", text)


def render_html(report: Report | Document, figures=()) -> str:
    by_name = {figure.filename: figure for figure in figures}
    title = html.escape(" + ".join(name for name, _ in report.sweeps))
    out = ['<!DOCTYPE html>', '<html lang="en">', '<head>', '<meta charset="utf-8">',
           f'<title>Comparison report: {title}</title>', f'<style>{CSS}</style>', '</head>', '<body>']
    for block in document(report, figures):
        kind = block[0]
        if kind in ("h1", "h2", "h3", "p"):
            out.append(f"<{kind}>{_inline(block[1])}</{kind}>")
        elif kind == "ul":
            out.append("<ul>" + "".join(f"<li>{_inline(item)}</li>" for item in block[1]) + "</ul>")
        elif kind == "img":
            data = base64.b64encode(by_name[block[1]].png).decode("ascii")
            out.append(f'<figure><img alt="{html.escape(block[2])}" src="data:image/png;base64,{data}"></figure>')
        elif kind == "table":
            out.append("<table><thead><tr>" + "".join(f"<th>{_inline(h)}</th>" for h in block[1]) + "</tr></thead>")
            out.append("<tbody>" + "".join("<tr>" + "".join(f"<td>{_inline(c)}</td>" for c in row) + "</tr>"
                                           for row in block[2]) + "</tbody></table>")
    out += ["</body>", "</html>"]
    return "\n".join(out) + "\n"


# --------------------------------------------------------------------------- CSV (long format)
def _num(value) -> str:
    return "" if value is None else f"{value:.10g}"


def render_csv(report: Report | Document) -> str:
    """Per domain section: one row per (task, column, metric) cell, then the aggregate rows, then cost and size.
    `domain` says the section; `task_metric` the literature metric a classification task's score is."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["domain", "section", "row", "column", "method", "kind", "metric", "task_metric", "mean", "ci_low",
                     "ci_high", "n", "status", "values"])
    for section in as_document(report).sections:
        _csv_section(writer, section)
    return out.getvalue()


def _csv_section(writer, report: Report) -> None:
    d = report.domain
    for metric in report.metrics:
        for task in report.tasks:
            for c in report.columns:
                cell = report.cell(metric.name, task, c.name)
                low, high = cell.interval or (None, None)
                writer.writerow([d, "cell", task, c.name, c.method, c.kind, metric.name,
                                 report.task_metrics.get(task) or "", _num(cell.mean), _num(low), _num(high),
                                 len(cell.values), cell.status, ";".join(repr(v) for v in cell.values)])
    for metric in report.metrics:
        agg = aggregates(report, metric)
        for c in report.columns:
            a = agg[c.name]
            rows = [("average", a.scores, statistics.fmean), ("average rank", [] if c.published else a.ranks,
                                                              statistics.fmean)]
            if metric.name == "test_mse":
                rows.insert(1, (AVG_RMSE, [math.sqrt(v) for v in a.scores], statistics.fmean))
            if report.references:
                rows.append(("average rank incl. published", a.ranks_all, statistics.fmean))
            if report.baseline:
                rows += [("mean % improvement", a.gains, statistics.fmean),
                         ("median % improvement", a.gains, statistics.median)]
            for name, values, how in rows:
                writer.writerow([d, "aggregate", name, c.name, c.method, c.kind, metric.name, "",
                                 _num(how(values) if values else None), "", "", len(values),
                                 "ok" if values else "missing", ""])
    for c in report.columns:
        cost = report.costs.get(c.name)
        if cost is None or c.published:
            continue
        params = report.n_parameters[c.name]
        for name, value in (("cpu_hours", cost.cpu_seconds / 3600), ("gpu_hours", cost.gpu_seconds / 3600),
                            ("job_seconds", cost.job_seconds), ("trial_runs", cost.runs),
                            ("failed_runs", cost.failed), ("n_parameters_min", min(params) if params else None),
                            ("n_parameters_max", max(params) if params else None)):
            writer.writerow([d, "cost", "", c.name, c.method, c.kind, name, "", _num(value), "", "", "",
                             "ok" if value is not None else "missing", ""])
