"""The comparison report of sweeps (the paper's Table 3): `model.py` (cells, columns, aggregates),
`load.py` (sweep folders and reference files -> Document), `render.py` (md/csv/html), `plots.py` (figures).

May import: launcher.engine (journal reads), launcher.spec (records), launcher.methods (declarations),
launcher.tracking, launcher.errors. Never: launcher.backends, launcher.job, launcher.__main__/api.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

from launcher.report.load import load_document, load_reference, load_report
from launcher.report.model import (
    CONFIDENCE,
    DOMAINS,
    METRICS,
    Aggregate,
    Cell,
    Column,
    Cost,
    Document,
    DomainInfo,
    Metric,
    Reference,
    Report,
    aggregates,
    as_document,
    ranks,
    registry_task_metric,
    t_interval,
)
from launcher.report.plots import make_figures
from launcher.report.render import render_csv, render_html, render_markdown

__all__ = ["CONFIDENCE", "DOMAINS", "METRICS", "Aggregate", "Cell", "Column", "Cost", "Document", "DomainInfo",
           "Metric", "Reference", "Report", "aggregates", "as_document", "load_document", "load_reference",
           "load_report", "ranks", "registry_task_metric", "t_interval", "write_report"]


def write_report(folders: Sequence[Path] | Path, *, references: Sequence[Path] = (), baseline: str | None = None,
                 plots: bool = True, metric: str | None = None) -> str:
    """Write report.md, report.csv, report.html (and the figures as PNG) into the first folder;
    return the Markdown. `metric`: mcc, f1 or accuracy for every genomics/satellite task (load_document)."""
    doc = load_document(folders, references, baseline, metric)
    figures = make_figures(doc) if plots else []
    out = Path(folders if isinstance(folders, (str, Path)) else folders[0])
    markdown = render_markdown(doc, figures)
    (out / "report.md").write_text(markdown)
    (out / "report.csv").write_text(render_csv(doc))
    (out / "report.html").write_text(render_html(doc, figures))
    for figure in figures:
        (out / figure.filename).write_bytes(figure.png)
    return markdown
