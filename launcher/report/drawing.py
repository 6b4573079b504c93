"""What every report figure shares: the palette, the figure record, an Agg figure and its PNG bytes
(no pyplot, no global state: deterministic bytes)."""
from __future__ import annotations

import io
from dataclasses import dataclass, field

PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
           "#bcbd22", "#17becf")


@dataclass
class Figure:
    filename: str
    title: str
    caption: str
    png: bytes
    notes: list[str] = field(default_factory=list)
    domain: str = "forecasting"    # the report section it belongs to; "all": the whole report (several sections)


def png_bytes(fig) -> bytes:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100, metadata={"Software": None})
    return buffer.getvalue()


def new_figure(width: float, height: float):
    """A figure outside pyplot (no global state, no backend switch); the Agg canvas draws it."""
    from matplotlib.figure import Figure as MplFigure

    return MplFigure(figsize=(width, height), layout="constrained")
