"""The report's figures: Figure 1 across domains (what it plots, what it leaves out and says so) and the per-task
bars (intervals clipped to the metric's range, titles that fit).

Reports are built from real MLflow stores with the helpers of tests/test_report.py (forecasting) and
tests/test_report_domains.py (genomics and satellite). Those classification sweeps run the `synthetic` method
(kind "benchmark"), so the tests name the kinds the columns stand for (Column.kind, which Figure 1 reads).
Expected numbers are worked out by hand from the values written, never with the report's own arithmetic.
"""
import math

import pytest

from launcher.report import load_document
from launcher.report.figure1 import SATELLITE_TRAIN_IMAGES, draw_figure1, figure1_points
from launcher.report.plots import draw_per_task, figure_per_task, make_figures, task_bars, training_observations
from launcher.report.render import render_html, render_markdown
from tests.test_report import FIXED, GOLD_RUNS, REFERENCES, make_sweep
from tests.test_report_domains import RUNS, make_classification_sweep, seeds

ETT = (8640 + 2880) * 7            # ETTh1 / ETTh2: (train + val rows) x 7 channels
H3 = 13468 * 500                   # NT's H3: 13,468 training sequences of 500 bp (nucleotides)
REFERENCE = """source: {citation: "Doe et al. A Benchmark. Venue 2024, Table 2."}
entries:
  - name: TS-FM
    kind: zero-shot FM
    pretraining_observations: 2.7e10
    results: {ETTh1-96: {test_mse: 0.65}, ETTh2-96: {test_mse: 0.43}}
  - name: DNA-FM
    kind: fine-tuned FM
    pretraining_observations: 1.0e11
    results: {H3: {test_score: 0.63}}
  - name: Sized-nowhere
    kind: fine-tuned FM
    results: {H3: {test_score: 0.50}}
  - name: CNN paper
    kind: supervised
    results: {H3: {test_score: 0.21}}
"""


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("figures")
    forecasting = make_sweep(root / "fc", "fc", {"ETTh1": [96, 192], "ETTh2": [96]}, FIXED, GOLD_RUNS)
    classification = make_classification_sweep(root / "cls", "cls", ["prom_300_tata", "H3", "brazilian_coffee_scenes"],
                                               RUNS)
    reference = root / "fm.yaml"
    reference.write_text(REFERENCE)
    return forecasting, classification, reference


def document(folders):
    forecasting, classification, reference = folders
    doc = load_document([forecasting, classification], [reference], baseline="naive")
    kinds = {"backbone": "supervised", "dasha": "supervised", "finetune": "fine-tuned FM"}
    for section in doc.sections:
        for column in section.columns:
            column.kind = kinds.get(column.name, column.kind)
    return doc


def by_key(points):
    return {(p.domain, p.label): p for p in points}


def test_training_sizes_per_domain(monkeypatch):
    assert training_observations("ETTh1-96") == training_observations("ETTh1-96", "forecasting") == ETT
    assert training_observations("H3", "genomics") == H3
    assert training_observations("prom_300_tata", "genomics") is None     # GUE: no train size in the registry
    assert training_observations("nosuch", "genomics") is None
    assert training_observations("brazilian_coffee_scenes", "satellite") is None
    monkeypatch.setitem(SATELLITE_TRAIN_IMAGES, "brazilian_coffee_scenes", (1800, "a test"))
    assert training_observations("coffee", "satellite") == 1800            # the registry's alias


def test_points_across_domains_by_hand(folders):
    points, notes = figure1_points(document(folders))
    p = by_key(points)
    assert [d for d in dict.fromkeys(pt.domain for pt in points)] == ["forecasting", "genomics"]
    # forecasting, over naive (lower MSE is better): autoar 0.40, 0.44, 0.30 vs naive 1.30, 1.32, 0.43
    autoar = p[("forecasting", "autoar")]
    gains = [100 * 0.90 / 1.30, 100 * 0.88 / 1.32, 100 * 0.13 / 0.43]
    assert autoar.x == ETT and autoar.y == pytest.approx(sum(gains) / 3) and autoar.n_tasks == 3
    assert (autoar.marker, autoar.kind, autoar.published) == ("o", "supervised", False)
    assert autoar.low < autoar.y < autoar.high
    naive = p[("forecasting", "naive")]
    assert (naive.x, naive.y, naive.marker) == (ETT, 0.0, "s")
    # a published zero-shot FM: x = its reference file's pretraining_observations, nothing added
    fm = p[("forecasting", "published: TS-FM")]
    assert fm.x == 2.7e10 and fm.published and fm.marker == "^" and fm.kind == "zero-shot FM"
    assert fm.y == pytest.approx((100 * (1.30 - 0.65) / 1.30 + 100 * (0.43 - 0.43) / 0.43) / 2)
    # genomics, over backbone (higher score is better); H3 is the one task of known training size
    dasha = p[("genomics", "dasha")]
    assert dasha.x == H3 and dasha.y == pytest.approx((100 * (0.73 - 0.62) / 0.62 + 100 * (0.46 - 0.42) / 0.42) / 2)
    assert p[("genomics", "backbone")].y == 0.0 and p[("genomics", "backbone")].x == H3
    # a published fine-tuned FM: pretraining plus the task's training data; one task, so no interval
    dna = p[("genomics", "published: DNA-FM")]
    assert dna.x == 1.0e11 + H3 and dna.marker == "v" and (dna.low, dna.high) == (None, None)
    assert dna.y == pytest.approx(100 * (0.63 - 0.42) / 0.42)
    cnn = p[("genomics", "published: CNN paper")]
    assert cnn.x == H3 and cnn.marker == "o" and cnn.published and cnn.y == pytest.approx(100 * (0.21 - 0.42) / 0.42)
    assert not [pt for pt in points if pt.domain == "satellite"]      # no training size of a satellite task
    assert ("genomics", "published: Sized-nowhere") not in p and ("forecasting", "fracast") not in p


def markers(ax):
    """(x, y) of every point marker drawn in the panel (not the error bars' caps or lines)."""
    return sorted((float(line.get_xdata()[0]), float(line.get_ydata()[0])) for line in ax.lines
                  if line.get_marker() not in (None, "None", "", "_") and line.get_linestyle() in ("None", ""))


def test_equal_data_keeps_equal_x_in_the_drawing(folders):
    """Methods with the same data are not spread apart: the drawn marker sits at the point's own x."""
    doc = document(folders)
    fig, points, _ = draw_figure1(doc)
    forecasting = [pt for pt in points if pt.domain == "forecasting" and not pt.published]
    assert [pt.label for pt in forecasting] == ["autoar", "naive", "dlinear"] and {pt.x for pt in forecasting} == {ETT}
    axes = fig.axes
    assert [a.get_title().replace("\n", " ") for a in axes] == [
        "Forecasting: improvement over `naive`", "Genomics: improvement over `backbone`",
        "Satellite imagery: improvement over `backbone`", "All domains (colour: domain)"]
    for ax, domain in zip(axes[:3], ("forecasting", "genomics", "satellite")):
        assert markers(ax) == sorted((pt.x, pt.y) for pt in points if pt.domain == domain)
        labels = {t.get_text() for t in ax.texts}
        assert {pt.label for pt in points if pt.domain == domain} <= labels
    assert markers(axes[3]) == sorted((pt.x, pt.y) for pt in points)       # the same points, all domains


def test_notes_name_every_column_left_out_and_why(folders):
    _, notes = figure1_points(document(folders))
    text = "\n".join(notes)
    assert "`published: Sized-nowhere` (genomics)" in text and "`fm.yaml` gives no `pretraining_observations`" in text
    assert "Figure 1 leaves out `fracast` (forecasting)" in text and "GiB" in text
    assert "Figure 1 leaves out `finetune` (genomics): it is a foundation model whose pretraining data size" in text
    assert "Figure 1 leaves out `backbone` (satellite imagery): the training size of its tasks " \
           "(brazilian_coffee_scenes) is not known" in text
    # x of a genomics column averages over its tasks of known training size, and says which it left out
    assert "x of `dasha` (genomics) averages the training size of 1 of its 2 tasks (H3); not known for " \
           "prom_300_tata" in text


def test_shipped_reference_without_pretraining_size_is_named(folders):
    forecasting, _, _ = folders
    doc = load_document(forecasting, [REFERENCES / "ttm_granite_tsfm_r2.yaml"])
    points, notes = figure1_points(doc)
    assert not [pt for pt in points if pt.label.startswith("published: TTM")]
    assert any(n.startswith("Figure 1 leaves out `published: TTM-R2 zero-shot (CL 512)`: it is a foundation model")
               and "ttm_granite_tsfm_r2.yaml" in n for n in notes)


def test_a_satellite_training_size_gives_satellite_points(folders, monkeypatch):
    monkeypatch.setitem(SATELLITE_TRAIN_IMAGES, "brazilian_coffee_scenes", (1800, "a test"))
    p = by_key(figure1_points(document(folders))[0])
    dasha = p[("satellite", "dasha")]
    assert dasha.x == 1800 and dasha.y == pytest.approx(100 * (0.86 - 0.82) / 0.82)
    assert p[("satellite", "backbone")].x == 1800 == dasha.x       # equal data, equal x


def test_figure1_belongs_to_the_whole_report_and_its_caption_names_each_baseline(folders):
    doc = document(folders)
    figures = make_figures(doc)
    assert [f.filename for f in figures] == ["report_figure1.png", "report_tasks.png", "report_genomics_tasks.png",
                                             "report_satellite_tasks.png"]
    figure1 = figures[0]
    assert figure1.domain == "all" and figure1.png.startswith(b"\x89PNG")
    assert "forecasting: `naive`, test MSE (lower is better" in figure1.caption
    assert "genomics: `backbone`, test score at the validation-selected epoch (higher is better" in figure1.caption
    assert "points are never moved" in figure1.caption and "all domains together" in figure1.caption
    md = render_markdown(doc, figures)
    across = md.split("## Across domains\n\n", 1)[1]
    assert across.startswith("![Figure 1: data used vs. improvement](report_figure1.png)")
    assert md.count("report_figure1.png") == 1 and md.index("## Satellite imagery") < md.index("## Across domains")
    assert "Figure 1 leaves out `published: Sized-nowhere` (genomics)" in md.split("## Notes")[1]
    assert render_html(doc, figures).count("data:image/png;base64,") == 4


def test_forecasting_only_report_keeps_one_panel_in_its_section(folders):
    forecasting, _, _ = folders
    doc = load_document(forecasting)
    fig, points, notes = draw_figure1(doc)
    assert len(fig.axes) == 1 and {pt.domain for pt in points} == {"forecasting"}
    figure1 = make_figures(doc)[0]
    assert figure1.domain == "forecasting" and "all domains" not in figure1.caption
    assert "Figure 1 leaves out `fracast`: it is a foundation model" in "\n".join(notes)      # no domain tag
    md = render_markdown(doc, make_figures(doc))
    assert "## Across domains" not in md and md.index("## Figures") < md.index("(report_figure1.png)")


# --------------------------------------------------------------------------- per-task bars
CLIPPED = [
    *seeds("brazilian_coffee_scenes", "backbone", [0.90, 0.99, 1.00], [0.9, 0.9, 0.9]),    # accuracy: past 1
    *seeds("H3", "backbone", [-0.90, -0.99, -0.50], [0.0, 0.0, 0.0]),                     # MCC: past -1
    *seeds("H3", "finetune", [0.40, 0.42, 0.44], [0.0, 0.0, 0.0]),                        # inside: untouched
    *seeds("prom_300_tata", "backbone", [0.02, 0.30, 0.10], [0.0, 0.0, 0.0]),             # F1: below 0
]


def interval(values):             # 95% t-interval, n = 3, by hand
    mean = sum(values) / 3
    half = 4.302652729911275 * math.sqrt(sum((v - mean) ** 2 for v in values) / 2) / math.sqrt(3)
    return mean - half, mean + half


def test_intervals_are_clipped_to_the_metric_range(tmp_path):
    folder = make_classification_sweep(tmp_path / "clip", "clip", ["prom_300_tata", "H3", "brazilian_coffee_scenes"],
                                       CLIPPED)
    genomics, satellite = load_document(folder).sections
    coffee = {b.column: b for b in task_bars(satellite)}["backbone"]
    assert interval([0.90, 0.99, 1.00])[1] > 1                   # the raw interval reaches past accuracy's range
    assert coffee.high == 1.0 and coffee.low == pytest.approx(interval([0.90, 0.99, 1.00])[0]) and coffee.clipped
    assert coffee.mean == pytest.approx((0.90 + 0.99 + 1.00) / 3)
    bars = {(b.task, b.column): b for b in task_bars(genomics)}
    mcc = bars[("H3", "backbone")]
    assert interval([-0.90, -0.99, -0.50])[0] < -1 and mcc.low == -1.0 and mcc.clipped
    assert mcc.high == pytest.approx(interval([-0.90, -0.99, -0.50])[1])
    f1 = bars[("prom_300_tata", "backbone")]
    assert interval([0.02, 0.30, 0.10])[0] < 0 and f1.low == 0.0 and f1.clipped
    inside = bars[("H3", "finetune")]
    assert (inside.low, inside.high) == pytest.approx(interval([0.40, 0.42, 0.44])) and not inside.clipped
    # the drawn error bars end where the clipped intervals do
    fig, _ = draw_per_task(genomics)
    ends = sorted(round(float(y), 9) for coll in fig.axes[0].collections for seg in coll.get_segments()
                  for y in (seg[0][1], seg[-1][1]))
    assert -1.0 in ends and 0.0 in ends and min(ends) == -1.0
    caption = figure_per_task(genomics).caption
    assert "MCC in [-1, 1]" in caption and "Clipped at the metric's bound: 2 interval(s)" in caption


def test_forecasting_intervals_stop_at_zero(folders):
    forecasting, _, _ = folders
    report = load_document(forecasting).sections[0]
    dlinear = {(b.task, b.column): b for b in task_bars(report)}[("ETTh1-96", "dlinear")]
    # 0.38 and 0.40: 0.39 +/- 12.706 x 0.01 = [0.263, 0.517], inside [0, inf): untouched
    assert (dlinear.low, dlinear.high) == pytest.approx((0.39 - 0.12706204736174698, 0.39 + 0.12706204736174698))
    assert not dlinear.clipped


def test_titles_and_labels_fit_inside_the_figure(folders):
    """Long metric names are wrapped, not cut off at the figure's edge."""
    doc = document(folders)
    for section in doc.sections:
        fig, _ = draw_per_task(section)
        fig.draw_without_rendering()
        box = fig.bbox
        ax = fig.axes[0]
        for text in [ax.title, ax.yaxis.label, *ax.get_xticklabels()]:
            extent = text.get_window_extent()
            assert box.x0 - 1 <= extent.x0 and extent.x1 <= box.x1 + 1, text.get_text()
            assert box.y0 - 1 <= extent.y0 and extent.y1 <= box.y1 + 1, text.get_text()
        assert section.info.title in ax.get_title() or section.domain == "forecasting"
        assert section.metrics[0].label in ax.get_title().replace("\n", " ")
