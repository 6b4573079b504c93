"""The comparison table from a hand-built MLflow store (real SQLite), including missing and failed cells."""
import json

import pytest

from launcher.report import _ranks, aggregates, load_table, render_csv, render_markdown
from launcher.tracking import Tracker


def make_store(folder, cells, failed=()):
    """cells: {(task, method): [values over seeds]}; failed: [(task, method)]."""
    spec = {"name": "rep", "tasks": [{"dataset": "ETTh1", "horizons": [96, 192]}],
            "methods": [{"name": "autoar"}, {"name": "naive"}, {"name": "fracast"}],
            "tracking": {"uri": None}, "report": {"baseline": "naive"}}
    (folder / "sweep.json").write_text(json.dumps(spec))
    tracker = Tracker(f"sqlite:///{folder / 'mlflow.db'}", "rep", artifact_root=folder / "art")
    for (task, method), values in cells.items():
        for seed, value in enumerate(values):
            run = tracker.create_run(f"{task}-{method}-{seed}", "trial",
                                     tags={"launcher.task": task, "launcher.method": method})
            tracker.log_metrics(run, {"test_mse": value, "test_mae": value / 2, "n_parameters": 7})
            tracker.finish(run)
    for task, method in failed:
        run = tracker.create_run(f"{task}-{method}-x", "trial", tags={"launcher.task": task, "launcher.method": method})
        tracker.finish(run, "FAILED")


def test_ranks_share_ties():
    assert _ranks({"a": 0.5, "b": 0.3, "c": 0.5}) == {"b": 1.0, "a": 2.5, "c": 2.5}


def test_table_marks_missing_and_failed_and_averages_what_exists(tmp_path):
    make_store(tmp_path, {("ETTh1-96", "autoar"): [0.30], ("ETTh1-96", "naive"): [0.60],
                          ("ETTh1-96", "fracast"): [0.40, 0.50], ("ETTh1-192", "naive"): [0.70]},
               failed=[("ETTh1-192", "fracast")])
    table = load_table(tmp_path)
    agg = aggregates(table, "test_mse")
    assert agg["naive"]["average"] == pytest.approx(0.65)
    assert agg["fracast"]["average"] == pytest.approx(0.45)          # mean over its two seeds
    assert agg["autoar"]["n_tasks"] == 1
    # ranks: task 96 -> autoar 1, fracast 2, naive 3; task 192 -> naive alone, rank 1
    assert agg["naive"]["average_rank"] == pytest.approx(2.0)
    assert agg["autoar"]["average_rank"] == pytest.approx(1.0)

    markdown = render_markdown(table)
    lines = markdown.splitlines()
    row96 = next(line for line in lines if line.startswith("| ETTh1-96 |"))
    assert row96 == "| ETTh1-96 | **0.3000** | 0.6000 | 0.4500 (n=2) |"
    row192 = next(line for line in lines if line.startswith("| ETTh1-192 |"))
    assert row192 == "| ETTh1-192 | missing | **0.7000** | failed |"
    assert "(1/2 tasks)" in markdown

    csv_rows = render_csv(table).splitlines()
    assert "ETTh1-192,fracast,zero-shot FM,test_mse,,0,failed," in csv_rows
    assert "ETTh1-192,autoar,supervised,test_mse,,0,missing," in csv_rows


def test_report_is_deterministic(tmp_path):
    make_store(tmp_path, {("ETTh1-96", "autoar"): [0.3], ("ETTh1-96", "naive"): [0.6]})
    first = render_markdown(load_table(tmp_path)) + render_csv(load_table(tmp_path))
    second = render_markdown(load_table(tmp_path)) + render_csv(load_table(tmp_path))
    assert first == second


def test_improvement_over_baseline_rows(tmp_path):
    make_store(tmp_path, {("ETTh1-96", "autoar"): [0.3], ("ETTh1-96", "naive"): [0.6],
                          ("ETTh1-192", "autoar"): [0.6], ("ETTh1-192", "naive"): [0.8]})
    markdown = render_markdown(load_table(tmp_path))
    # autoar: 50% and 25% better than naive -> mean 37.5, median 37.5; fracast has no result
    mean_row = next(line for line in markdown.splitlines() if line.startswith("| mean % better than naive"))
    assert mean_row == "| mean % better than naive | 37.50 | 0.00 | — |"
