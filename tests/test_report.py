"""The comparison report, from hand-built MLflow stores (real SQLite) with hand-chosen values.

Golden files in tests/golden/ pin the exact bytes of report.md / report.csv / report.html; rewrite
them with `REGEN=1 pytest tests/test_report.py` and read the diff before committing. The arithmetic
(t-intervals, % improvement, ranks, cost) is checked against scipy or by hand, separately.
"""
import csv
import io
import json
import os
from pathlib import Path

import pytest
import scipy.stats

from launcher.__main__ import main
from launcher.errors import SpecError
from launcher.report import METRICS, Column, aggregates, load_document, load_reference, load_report, ranks, t_interval
from launcher.report.plots import Figure, data_used, make_figures, training_observations
from launcher.report.render import render_csv, render_html, render_markdown
from launcher.tracking import Tracker, default_uri

GOLDEN = Path(__file__).parent / "golden"
REFERENCES = Path(__file__).resolve().parents[1] / "sweeps" / "reference"
MSE, MAE = METRICS
FAKE_FIGURES = [Figure("report_figure1.png", "Figure 1: data used vs. improvement", "Caption one.", b"png-1",
                       ["Figure 1 leaves out `x`: a note."]),
                Figure("report_tasks.png", "test MSE per task", "Caption two.", b"png-2")]


def make_sweep(folder: Path, name: str, datasets: dict, plan: list, runs: list, *, finished=True, baseline=None):
    """plan: (task, column, method, arm, trials); runs: dicts with task, column, status, metrics and tags."""
    folder.mkdir(parents=True)
    spec = {"name": name, "tasks": [{"dataset": d, "horizons": h} for d, h in datasets.items()],
            "methods": [{"name": m} for m in dict.fromkeys(p[2] for p in plan)], "tracking": {"uri": None},
            "report": {"baseline": baseline} if baseline else {}}
    (folder / "sweep.json").write_text(json.dumps(spec))
    (folder / "plan.json").write_text(json.dumps(
        [{"study": f"{t}/{c}", "task": t, "column": c, "method": m, "arm": a, "trials": n} for t, c, m, a, n in plan]))
    events = [{"event": "sweep_started"}] + ([{"event": "sweep_finished"}] if finished else [])
    (folder / "journal.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events))
    tracker = Tracker(default_uri(folder), name, artifact_root=folder / "art")
    method_of = {p[1]: (p[2], p[3]) for p in plan}
    for i, run in enumerate(runs):
        method, arm = method_of[run["column"]]
        tags = {"launcher.task": run["task"], "launcher.column": run["column"], "launcher.method": method,
                "launcher.arm": arm, "launcher.seed": run.get("seed", 0), "launcher.cpus": run.get("cpus", 2),
                "launcher.gpus": run.get("gpus", 0), **run.get("tags", {})}
        run_id = tracker.create_run(f"r{i}", "trial", tags={k: str(v) for k, v in tags.items()})
        if run.get("metrics"):
            tracker.log_metrics(run_id, run["metrics"])
        if run.get("status", "FINISHED") != "RUNNING":
            tracker.finish(run_id, run.get("status", "FINISHED"))
    return folder


def ok(task, column, mse, *, seed=0, seconds=10.0, params=None, **extra):
    metrics = {"test_mse": mse, "test_mae": mse / 2, "job_seconds": seconds}
    if params is not None:
        metrics["n_parameters"] = params
    return {"task": task, "column": column, "seed": seed, "metrics": metrics, **extra}


FIXED = [(t, c, m, "fixed", n) for t in ("ETTh1-96", "ETTh1-192", "ETTh2-96")
         for c, m, n in (("autoar", "autoar", 1), ("naive", "naive", 1), ("dlinear", "dlinear", 2),
                         ("fracast", "fracast", 1))]
GOLD_RUNS = [
    ok("ETTh1-96", "autoar", 0.40, params=513), ok("ETTh1-192", "autoar", 0.44, params=509),
    ok("ETTh2-96", "autoar", 0.30, params=513),
    ok("ETTh1-96", "naive", 1.30, params=0, seconds=2), ok("ETTh1-192", "naive", 1.32, params=0, seconds=2),
    ok("ETTh2-96", "naive", 0.43, params=0, seconds=2),
    ok("ETTh1-96", "dlinear", 0.38, seed=0, params=1000, seconds=100),     # two seeds: an interval
    ok("ETTh1-96", "dlinear", 0.40, seed=1, params=1000, seconds=120),
    ok("ETTh1-192", "dlinear", 0.42, seed=0, params=1000, seconds=100),    # one seed finished ...
    {"task": "ETTh1-192", "column": "dlinear", "seed": 1, "status": "FAILED", "metrics": {"job_seconds": 30.0}},
    # ETTh2-96 / dlinear: no run at all -> "missing"
    ok("ETTh1-96", "fracast", 0.41, params=85001, seconds=360, gpus=1, cpus=4,
       tags={"launcher.notes": "leakage possible | every 96th window"}),
    {"task": "ETTh1-192", "column": "fracast", "status": "FAILED", "gpus": 1, "cpus": 4},   # -> "failed"
    ok("ETTh2-96", "fracast", 0.27, params=85001, seconds=360, gpus=1, cpus=4),
    {"task": "ETTh2-96", "column": "naive", "status": "KILLED", "metrics": {"job_seconds": 5.0}},  # cost only
]


@pytest.fixture(scope="module")
def gold(tmp_path_factory):
    return make_sweep(tmp_path_factory.mktemp("gold") / "gold", "gold", {"ETTh1": [96, 192], "ETTh2": [96]},
                      FIXED, GOLD_RUNS)


@pytest.fixture(scope="module")
def tuned(tmp_path_factory):
    """Unfinished, with a tuned study and its random-search control; shares `naive` (overlapping tasks,
    kept as two columns) and `autoar` (disjoint tasks, merged) with `gold`."""
    plan = [(t, "naive", "naive", "fixed", 1) for t in ("ETTh1-96", "ETTh2-96")]
    plan += [(t, c, "dlinear", arm, 3) for t in ("ETTh1-96", "ETTh2-96")
             for c, arm in (("dlinear", "tuned"), ("dlinear (random search)", "random"))]
    plan += [("ETTh1-336", "autoar", "autoar", "fixed", 1), ("ETTh1-336", "naive", "naive", "fixed", 1)]
    sel = {"launcher.selected": "true"}
    runs = [ok("ETTh1-96", "naive", 1.30, params=0), ok("ETTh2-96", "naive", 0.43, params=0),
            ok("ETTh1-336", "naive", 1.33, params=0), ok("ETTh1-336", "autoar", 0.45, params=513),
            ok("ETTh1-96", "dlinear", 0.50, seconds=50), ok("ETTh1-96", "dlinear", 0.37, seconds=60, tags=sel,
                                                            params=1000),
            {"task": "ETTh1-96", "column": "dlinear", "status": "FAILED", "metrics": {"job_seconds": 7.0}},
            ok("ETTh1-96", "dlinear (random search)", 0.39, seconds=40, tags=sel, params=1000),
            ok("ETTh2-96", "dlinear", 0.31, seconds=30),                          # not selected yet
            {"task": "ETTh2-96", "column": "dlinear", "status": "RUNNING", "metrics": {"job_seconds": 12.0}}]
    return make_sweep(tmp_path_factory.mktemp("tuned") / "tuned", "tuned", {"ETTh1": [96, 336], "ETTh2": [96]},
                      plan, runs, finished=False)


@pytest.fixture(scope="module")
def reference_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("ref") / "paper.yaml"
    path.write_text("source:\n  citation: \"Doe et al. A Paper. Venue 2023, Table 9.\"\nprotocol: \"lookback 336\"\n"
                    "entries:\n  - name: PaperNet\n    kind: supervised\n    results:\n"
                    "      ETTh1-96: {test_mse: 0.350, test_mae: 0.390}\n      ETTm1-96: {test_mse: 0.3}\n")
    return path


def check_golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if os.environ.get("REGEN"):
        path.parent.mkdir(exist_ok=True)
        path.write_text(text)
    assert path.exists(), f"{path} missing: run REGEN=1 pytest {__file__}"
    assert text == path.read_text(), f"{name} differs from the golden file (REGEN=1 rewrites it; read the diff)"


# --------------------------------------------------------------------------- arithmetic
def test_t_interval_matches_scipy_and_a_hand_computation():
    low, high = t_interval([0.38, 0.40])
    # n = 2: t(0.975, 1) = 12.7062; s = 0.01 * sqrt(2); half = t * s / sqrt(2) = 0.127062
    assert (high - low) / 2 == pytest.approx(12.706204736174698 * 0.01, rel=1e-12)
    values = [0.5, 0.55, 0.61, 0.58]
    expected = scipy.stats.t.interval(0.95, len(values) - 1, loc=sum(values) / 4, scale=scipy.stats.sem(values))
    assert t_interval(values) == pytest.approx(expected, rel=1e-12)
    assert t_interval([0.4]) is None and t_interval([]) is None


def test_ranks_share_ties_in_both_directions():
    assert ranks({"a": 0.5, "b": 0.3, "c": 0.5}) == {"b": 1.0, "a": 2.5, "c": 2.5}
    assert ranks({"a": 0.5, "b": 0.3, "c": 0.5}, "max") == {"a": 1.5, "c": 1.5, "b": 3.0}


def test_cells_mark_seeds_failures_and_missing_results(gold):
    report = load_report(gold)
    cell = report.cell("test_mse", "ETTh1-96", "dlinear")
    assert cell.values == [0.38, 0.40] and cell.mean == pytest.approx(0.39)
    assert report.cell("test_mse", "ETTh1-192", "dlinear").status == "ok"
    assert report.cell("test_mse", "ETTh1-192", "dlinear").failed == 1
    assert report.cell("test_mse", "ETTh2-96", "dlinear").status == "missing"
    assert report.cell("test_mse", "ETTh1-192", "fracast").status == "failed"
    assert report.cell("test_mse", "ETTh2-96", "naive").values == [0.43]        # the KILLED run is not a result
    row = {}                       # the first table (test MSE)
    for line in render_markdown(report).splitlines():
        if line.startswith("| ETTh"):
            row.setdefault(line.split(" | ")[0], line)
    assert row["| ETTh1-96"] == "| ETTh1-96 | 0.4000 | 1.3000 | **0.3900 ± 0.1271 (n=2)** | 0.4100 |"
    assert row["| ETTh1-192"] == "| ETTh1-192 | 0.4400 | 1.3200 | **0.4200 (1 seed; 1 failed)** | failed |"
    assert row["| ETTh2-96"] == "| ETTh2-96 | 0.3000 | 0.4300 | missing | **0.2700** |"
    assert report.baseline == "naive"          # no auto_arima column: the forecasting default falls back


def test_improvement_and_ranks_by_hand(gold):
    report = load_report(gold)
    agg = aggregates(report, MSE)
    # autoar vs naive: (1.30-0.40)/1.30, (1.32-0.44)/1.32, (0.43-0.30)/0.43
    gains = [100 * 0.90 / 1.30, 100 * 0.88 / 1.32, 100 * 0.13 / 0.43]
    assert agg["autoar"].gains == pytest.approx(gains)
    assert sum(agg["autoar"].gains) / 3 == pytest.approx((69.230769 + 66.666667 + 30.232558) / 3, rel=1e-6)
    # ranks: 96 -> dlinear .39 (1), autoar .40 (2), fracast .41 (3), naive (4);
    # 192 -> dlinear (1), autoar (2), naive (3); ETTh2-96 -> fracast (1), autoar (2), naive (3)
    assert agg["autoar"].ranks == [2.0, 2.0, 2.0]
    assert agg["dlinear"].ranks == [1.0, 1.0] and agg["fracast"].ranks == [3.0, 1.0]
    assert agg["naive"].ranks == [4.0, 3.0, 3.0] and agg["naive"].gains == [0.0, 0.0, 0.0]
    assert agg["dlinear"].average == pytest.approx((0.39 + 0.42) / 2)
    md = render_markdown(report)
    # medians: autoar 66.67 (of 69.23, 66.67, 30.23); dlinear (70.00 + 68.18) / 2; fracast (68.46 + 37.21) / 2
    dlinear = (100 * 0.91 / 1.30 + 100 * 0.90 / 1.32) / 2
    fracast = (100 * 0.89 / 1.30 + 100 * 0.16 / 0.43) / 2
    assert f"| median % better than naive | 66.67 | 0.00 | {dlinear:.2f} (2/3 tasks) | {fracast:.2f} (2/3 tasks) |" in md
    assert (f"{dlinear:.2f}", f"{fracast:.2f}") == ("69.09", "52.84")
    assert "| average | 0.3800 | 1.0167 | 0.4050 (2/3 tasks) | 0.3400 (2/3 tasks) |" in md


def test_cost_is_the_sum_over_every_trial_run(gold):
    report = load_report(gold)
    dlinear, fracast, naive = (report.costs[c] for c in ("dlinear", "fracast", "naive"))
    # dlinear: 100 + 120 + 100 + 30 (the failed run's completed segments) seconds x 2 CPUs
    assert dlinear.cpu_seconds == pytest.approx(350 * 2) and dlinear.job_seconds == pytest.approx(350)
    assert (dlinear.runs, dlinear.failed) == (4, 1)
    # fracast held a GPU: GPU-hours, not CPU-hours; its failed run logged no job time
    assert fracast.gpu_seconds == pytest.approx(720) and fracast.cpu_seconds == 0 and fracast.runs == 3
    assert naive.cpu_seconds == pytest.approx((2 + 2 + 2 + 5) * 2) and naive.runs == 4     # the KILLED run too
    md = render_markdown(report)
    assert "| cost | 0.0167 CPU-h | 0.0061 CPU-h | 0.1944 CPU-h | 0.2000 GPU-h |" in md
    assert "| job time (h:mm:ss) | 0:00:30 | 0:00:11 | 0:05:50 | 0:12:00 |" in md


def test_tuned_study_reports_its_selected_trial_and_costs_all_trials(tuned):
    report = load_report(tuned)
    assert report.sweeps == [("tuned", "unfinished")]
    assert report.cell("test_mse", "ETTh1-96", "dlinear").values == [0.37]     # selected, not the best test
    assert report.cell("test_mse", "ETTh1-96", "dlinear (random search)").values == [0.39]
    assert report.cell("test_mse", "ETTh2-96", "dlinear").status == "pending"  # no selection yet
    assert report.costs["dlinear"].job_seconds == pytest.approx(50 + 60 + 7 + 30 + 12)
    assert report.costs["dlinear"].runs == 5


def test_half_finished_sweep_is_marked(tuned):
    md = render_markdown(load_report(tuned))
    assert "**Sweep `tuned` is not finished**" in md
    assert "| ETTh2-96 | **0.4300** | pending | pending | missing |" in md


def test_several_dirs_merge_disjoint_columns_and_split_overlapping_ones(gold, tuned, reference_file):
    report = load_report([gold, tuned], [reference_file], baseline="naive")
    names = [c.name for c in report.columns]
    assert names == ["autoar", "naive [gold]", "naive [tuned]", "dlinear [gold]", "dlinear [tuned]", "fracast",
                     "dlinear (random search)", "published: PaperNet"]
    assert report.tasks == ["ETTh1-96", "ETTh1-192", "ETTh1-336", "ETTh2-96"]
    assert report.cell("test_mse", "ETTh1-336", "autoar").values == [0.45]     # merged: disjoint tasks
    assert report.cell("test_mse", "ETTh1-336", "naive [gold]").status == "missing"
    assert report.cell("test_mse", "ETTh1-96", "naive [tuned]").values == [1.30]
    assert report.cell("test_mse", "ETTh1-96", "published: PaperNet").values == [0.35]
    assert report.cell("test_mae", "ETTh1-192", "published: PaperNet").status == "not published"
    assert report.baseline == "naive [gold]"
    assert any("naive [gold]" in r for r in report.remarks)
    assert any("ETTm1-96" in r for r in report.remarks)                     # a published task outside the rows


# --------------------------------------------------------------------------- golden files
def test_golden_single_sweep(gold):
    report = load_report(gold)
    check_golden("report.md", render_markdown(report, FAKE_FIGURES))
    check_golden("report.csv", render_csv(report))
    check_golden("report.html", render_html(report, FAKE_FIGURES))


def test_golden_several_sweeps_with_references(gold, tuned, reference_file):
    report = load_report([gold, tuned], [reference_file], baseline="naive")
    check_golden("report_multi.md", render_markdown(report))
    check_golden("report_multi.csv", render_csv(report))


def test_report_is_deterministic(gold):
    first = load_report(gold)
    second = load_report(gold)
    assert render_markdown(first) + render_csv(first) == render_markdown(second) + render_csv(second)
    assert [f.png for f in make_figures(first)] == [f.png for f in make_figures(second)]


# --------------------------------------------------------------------------- figures
def test_data_used_for_figure_1(gold):
    assert training_observations("ETTh1-96") == (8640 + 2880) * 7
    assert training_observations("weather-336") == (36887 + 5270) * 21     # 70/10/20 of 52,696 rows
    assert training_observations("nosuch-96") is None
    report = load_report(gold)
    autoar = next(c for c in report.columns if c.name == "autoar")
    assert data_used(report, autoar) == (pytest.approx(((8640 + 2880) * 7 * 2 + (8640 + 2880) * 7) / 3), None)
    fracast = next(c for c in report.columns if c.name == "fracast")
    x, why = data_used(report, fracast)
    assert x is None and "GiB" in why
    timesfm = Column("timesfm", "timesfm", "zero-shot FM")
    report.cells.update({(m.name, t, "timesfm"): report.cell(m.name, t, "autoar") for m in METRICS
                         for t in report.tasks})
    assert data_used(report, timesfm) == (100e9, None)


def test_figures_are_png_and_say_what_they_leave_out(gold):
    figures = make_figures(load_report(gold))
    assert [f.filename for f in figures] == ["report_figure1.png", "report_tasks.png"]
    assert all(f.png.startswith(b"\x89PNG\r\n\x1a\n") for f in figures)
    assert any("leaves out `fracast`" in note for note in figures[0].notes)


# --------------------------------------------------------------------------- references and CLI
def test_shipped_reference_files_load_and_cover_etth():
    for name in ("dlinear_zeng2023.yaml", "patchtst_nie2023.yaml"):
        for ref in load_reference(REFERENCES / name):
            assert set(ref.results) == {f"ETTh{d}-{h}" for d in (1, 2) for h in (96, 192, 336, 720)}
            assert "Table" in ref.citation and ref.protocol
            assert all(0 < v < 1 for values in ref.results.values() for v in values.values())
    patchtst = {r.name: r for r in load_reference(REFERENCES / "patchtst_nie2023.yaml")}
    assert patchtst["PatchTST/64"].results["ETTh1-96"] == {"test_mse": 0.370, "test_mae": 0.400}


def test_malformed_reference_is_bad_input(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("source: {citation: x}\nentries:\n  - name: A\n    results: {ETTh1-96: {test_mse: fast}}\n")
    with pytest.raises(SpecError, match=r"entries\[0\]\.results\.ETTh1-96"):
        load_reference(path)


def test_cli_writes_md_csv_self_contained_html_and_pngs(gold, tuned, capsys):
    ref = REFERENCES / "patchtst_nie2023.yaml"
    assert main(["report", str(gold), str(tuned), "--reference", str(ref), "--baseline", "naive"]) == 0
    printed = capsys.readouterr().out
    assert (gold / "report.md").read_text() == printed.rstrip("\n") + "\n"
    assert "| published: PatchTST/64 | published: PatchTST/42 |" in printed
    html = (gold / "report.html").read_text()
    assert html.count("data:image/png;base64,") == 2 and "<link" not in html and "src=\"http" not in html
    assert (gold / "report_figure1.png").read_bytes().startswith(b"\x89PNG")
    first = {p: (gold / p).read_bytes() for p in ("report.md", "report.csv", "report.html", "report_tasks.png")}
    assert main(["report", str(gold), str(tuned), "--reference", str(ref), "--baseline", "naive"]) == 0
    assert first == {p: (gold / p).read_bytes() for p in first}               # same inputs, same bytes


def test_cli_unknown_baseline_exits_2(gold, capsys):
    assert main(["report", str(gold), "--baseline", "nosuch"]) == 2
    assert "--baseline" in capsys.readouterr().err


def test_avg_rmse_row_is_the_mean_of_the_square_roots(gold):
    """The paper's "Avg RMSE": per setting sqrt(test MSE), then the mean; autoar's MSEs are 0.40, 0.44, 0.30."""
    rows = list(csv.reader(io.StringIO(render_csv(load_report(gold)))))
    value = next(float(r[8]) for r in rows if r[1] == "aggregate" and r[2] == "Avg RMSE" and r[3] == "autoar")
    assert value == pytest.approx((0.40 ** 0.5 + 0.44 ** 0.5 + 0.30 ** 0.5) / 3, abs=1e-9)
    assert "| Avg RMSE | 0.6145 |" in render_markdown(load_report(gold))


def test_reference_all_picks_every_file_with_a_task_of_the_report(gold):
    """`--reference all`: the forecasting files of sweeps/reference/ (they publish ETTh1/ETTh2 settings) give
    their columns; a file naming none of the report's tasks would be left out."""
    from launcher.report.load import REFERENCE_DIR

    doc = load_document(gold, ["all"])
    published = {c.name for s in doc.sections for c in s.columns if c.published}
    assert {"published: DLinear", "published: PatchTST/64", "published: TTM-R2 zero-shot (CL 512)"} <= published
    files = sorted(p.name for p in REFERENCE_DIR.glob("*.yaml"))
    assert {r.file for r in doc.references} <= set(files) and len({r.file for r in doc.references}) >= 3
    # the same numbers as naming the file itself
    one = load_document(gold, [REFERENCE_DIR / "dlinear_zeng2023.yaml"]).sections[0]
    every = doc.sections[0]
    assert every.cell("test_mse", "ETTh1-96", "published: DLinear").values == \
        one.cell("test_mse", "ETTh1-96", "published: DLinear").values
