"""The report's genomics and satellite sections, from real MLflow stores (SQLite) with hand-chosen values.

The sweep record is the real `spec_to_dict(load_sweep(...))` of a YAML naming a genomics and a satellite
task; plan.json and the trial runs are written by hand as in tests/test_report.py. The columns are named
like the classification methods (backbone, dasha, finetune) but run the `synthetic` method, the one
registered method whose domains include genomics and satellite when this was written: the report reads
columns from plan.json and metrics from the runs, not from the method. Every expected number below is
worked out by hand from the values written, never by calling the report's own arithmetic.
"""
import csv
import io
import json
import math
from pathlib import Path

import pytest

from launcher.__main__ import main
from launcher.errors import SpecError
from launcher.report import load_document, load_report
from launcher.report.render import render_csv, render_markdown
from launcher.spec.load import load_sweep, spec_to_dict
from launcher.tracking import Tracker, default_uri
from tests.test_report import FIXED, GOLD_RUNS, check_golden, make_sweep

T_975_2 = 4.302652729911275        # t(0.975, 2 degrees of freedom), from a table: 3 seeds
SWEEP_YAML = """name: {name}
out: {out}
seeds: [0, 1, 2]
tasks:
{tasks}
methods:
  synthetic: {{}}
"""
COLUMNS = (("backbone", "fixed"), ("dasha", "tuned"), ("finetune", "fixed"))
SELECTED = {"launcher.selected": "true"}


def make_classification_sweep(folder: Path, name: str, datasets: list[str], runs: list) -> Path:
    folder.mkdir(parents=True)
    source = folder / "sweep.yaml"
    source.write_text(SWEEP_YAML.format(name=name, out=folder, tasks="".join(f"  - dataset: {d}\n" for d in datasets)))
    record = spec_to_dict(load_sweep(source))
    assert [t["domain"] for t in record["tasks"]] == ["genomics" if d != "brazilian_coffee_scenes" else "satellite"
                                                      for d in datasets]
    (folder / "sweep.json").write_text(json.dumps(record))
    plan = [{"study": f"{t}/{c}", "task": t, "column": c, "method": "synthetic", "arm": arm, "trials": 3}
            for t in datasets for c, arm in COLUMNS]
    (folder / "plan.json").write_text(json.dumps(plan))
    (folder / "journal.jsonl").write_text('{"event": "sweep_started"}\n{"event": "sweep_finished"}\n')
    tracker = Tracker(default_uri(folder), name, artifact_root=folder / "art")
    for i, (task, column, seed, best, last, extra) in enumerate(runs):
        tags = {"launcher.task": task, "launcher.column": column, "launcher.method": "synthetic",
                "launcher.arm": dict(COLUMNS)[column], "launcher.seed": str(seed),
                "launcher.cpus": str(extra.get("cpus", 2)), "launcher.gpus": str(extra.get("gpus", 0)),
                **extra.get("tags", {})}
        run_id = tracker.create_run(f"r{i}", "trial", tags=tags)
        tracker.log_metrics(run_id, {"test_score": best, "test_score_last": last, "test_accuracy": 0.5,
                                     "n_parameters": extra.get("params", 1000),
                                     "job_seconds": extra.get("seconds", 100.0)})
        tracker.finish(run_id, "FINISHED")
    return folder


def seeds(task, column, best, last, **extra):
    return [(task, column, s, b, la, extra) for s, (b, la) in enumerate(zip(best, last))]


# prom_300_tata (F1, GUE) and H3 (MCC, NT) are genomics; brazilian_coffee_scenes (accuracy) is satellite.
RUNS = [
    *seeds("prom_300_tata", "backbone", [0.60, 0.62, 0.64], [0.58, 0.60, 0.62]),
    ("prom_300_tata", "dasha", 0, 0.95, 0.95, {}),               # a search trial, not selected: never a result
    *seeds("prom_300_tata", "dasha", [0.70, 0.72, 0.77], [0.55, 0.56, 0.57], tags=SELECTED, params=5000),
    *seeds("prom_300_tata", "finetune", [0.50, 0.55, 0.51], [0.66, 0.67, 0.68], params=90000),
    *seeds("H3", "backbone", [0.40, 0.42, 0.44], [0.40, 0.41, 0.42]),
    *seeds("H3", "dasha", [0.45, 0.46, 0.47], [0.30, 0.31, 0.32], tags=SELECTED, params=7000),
    *seeds("H3", "finetune", [0.30, 0.31, 0.32], [0.50, 0.51, 0.52], params=90000),
    *seeds("brazilian_coffee_scenes", "backbone", [0.80, 0.82, 0.84], [0.79, 0.80, 0.84], params=2000),
    *seeds("brazilian_coffee_scenes", "dasha", [0.86, 0.85, 0.87], [0.81, 0.83, 0.82], tags=SELECTED, params=2500),
    *seeds("brazilian_coffee_scenes", "finetune", [0.90, 0.91, 0.89], [0.70, 0.74, 0.69], params=86000,
           gpus=1, cpus=8, seconds=200.0),
]


@pytest.fixture(scope="module")
def cls(tmp_path_factory):
    return make_classification_sweep(tmp_path_factory.mktemp("cls") / "cls", "cls",
                                     ["prom_300_tata", "H3", "brazilian_coffee_scenes"], RUNS)


@pytest.fixture(scope="module")
def genomics_only(tmp_path_factory):
    return make_classification_sweep(tmp_path_factory.mktemp("gen") / "gen", "gen", ["prom_300_tata"],
                                     [r for r in RUNS if r[0] == "prom_300_tata"])


@pytest.fixture(scope="module")
def forecasting(tmp_path_factory):
    return make_sweep(tmp_path_factory.mktemp("fc") / "fc", "fc", {"ETTh1": [96, 192], "ETTh2": [96]}, FIXED,
                      GOLD_RUNS)


def table(markdown: str, heading: str) -> dict[str, list[str]]:
    """Rows (first cell -> the other cells) of the table that follows `heading` in the Markdown."""
    rows, lines = {}, markdown.split(heading + "\n\n", 1)[1].splitlines()
    for line in lines[2:]:
        if not line.startswith("| "):
            break
        first, *rest = line[2:-2].split(" | ")
        rows[first] = rest
    return rows


def half(values):                  # 95% t half-width for 3 values, by hand
    mean = sum(values) / 3
    s = math.sqrt(sum((v - mean) ** 2 for v in values) / 2)
    return T_975_2 * s / math.sqrt(3)


def test_sections_rows_name_the_task_metric_and_cells_hold_three_seeds(cls):
    doc = load_document(cls)
    assert [s.domain for s in doc.sections] == ["genomics", "satellite"]
    genomics, satellite = doc.sections
    assert genomics.tasks == ["prom_300_tata", "H3"] and satellite.tasks == ["brazilian_coffee_scenes"]
    assert [c.name for c in genomics.columns] == ["backbone", "dasha", "finetune"]
    assert genomics.cell("test_score", "prom_300_tata", "dasha").values == [0.70, 0.72, 0.77]   # not the 0.95
    assert genomics.cell("test_score_last", "H3", "finetune").values == [0.50, 0.51, 0.52]
    md = render_markdown(doc)
    assert "## Genomics (2 tasks)" in md and "## Satellite imagery (1 task)" in md
    best = table(md.split("## Genomics")[1], "### test score at the validation-selected epoch (higher is better)")
    assert list(best)[:2] == ["prom_300_tata (F1)", "H3 (MCC)"]
    assert best["prom_300_tata (F1)"][0] == f"0.6200 ± {half([0.60, 0.62, 0.64]):.4f} (n=3)" == "0.6200 ± 0.0497 (n=3)"
    mean = (0.70 + 0.72 + 0.77) / 3
    assert best["prom_300_tata (F1)"][1] == f"**{mean:.4f} ± {half([0.70, 0.72, 0.77]):.4f} (n=3)**"
    sat = table(md.split("## Satellite imagery")[1], "### test score at the validation-selected epoch (higher is better)")
    assert "brazilian_coffee_scenes (accuracy)" in sat


def test_higher_score_wins_ranks_bold_and_improvement(cls):
    md = render_markdown(load_document(cls)).split("## Satellite imagery")[0]
    best = table(md, "### test score at the validation-selected epoch (higher is better)")
    # prom: dasha .73 > backbone .62 > finetune .52; H3: dasha .46 > backbone .42 > finetune .31
    assert best["average rank"] == ["2.00", "1.00", "3.00"]                  # backbone, dasha, finetune
    assert best["H3 (MCC)"][1].startswith("**0.4600") and not best["H3 (MCC)"][0].startswith("**")
    dasha = [100 * (0.73 - 0.62) / 0.62, 100 * (0.46 - 0.42) / 0.42]          # 17.74, 9.52: better = positive
    finetune = [100 * (0.52 - 0.62) / 0.62, 100 * (0.31 - 0.42) / 0.42]       # -16.13, -26.19
    assert best["mean % better than backbone"] == ["0.00", f"{sum(dasha) / 2:.2f}", f"{sum(finetune) / 2:.2f}"]
    assert best["mean % better than backbone"][1:] == ["13.63", "-21.16"]
    assert best["average"] == [f"{(0.62 + 0.42) / 2:.4f}", f"{(0.73 + 0.46) / 2:.4f}", f"{(0.52 + 0.31) / 2:.4f}"]


def test_last_epoch_table_is_there_labelled_and_ranked_on_its_own(cls):
    md = render_markdown(load_document(cls))
    genomics = md.split("## Genomics")[1].split("## Satellite imagery")[0]
    assert genomics.index("### test score at the validation-selected epoch") < genomics.index(
        "### test at last epoch (higher is better)")
    last = table(genomics, "### test at last epoch (higher is better)")
    # prom: finetune .67 > backbone .60 > dasha .56; H3: finetune .51 > backbone .41 > dasha .31
    assert last["average rank"] == ["2.00", "3.00", "1.00"]
    assert last["prom_300_tata (F1)"][2] == f"**0.6700 ± {half([0.66, 0.67, 0.68]):.4f} (n=3)**"
    assert last["mean % better than backbone"][2] == f"{(100 * 0.07 / 0.60 + 100 * 0.10 / 0.41) / 2:.2f}"
    assert '"test at last epoch": the same test metric after the last training epoch' in md


def test_cost_and_parameters_are_per_domain(cls):
    genomics, satellite = load_document(cls).sections
    # backbone on genomics: 6 runs x 100 s x 2 CPUs; on satellite: 3 runs
    assert genomics.costs["backbone"].cpu_seconds == pytest.approx(1200) and genomics.costs["backbone"].runs == 6
    assert satellite.costs["backbone"].runs == 3
    assert genomics.costs["dasha"].runs == 7                   # the unselected search trial is paid for too
    assert satellite.costs["finetune"].gpu_seconds == pytest.approx(600) and satellite.costs["finetune"].cpu_seconds == 0
    assert genomics.n_parameters["dasha"] == {5000, 7000} and satellite.n_parameters["dasha"] == {2500}
    md = render_markdown(load_document(cls))
    sat_cost = table(md.split("## Satellite imagery")[1], "### Cost and size")
    assert sat_cost["parameters"] == ["2,000", "2,500", "86,000"]
    assert sat_cost["cost"] == [f"{3 * 100 * 2 / 3600:.4f} CPU-h", f"{3 * 100 * 2 / 3600:.4f} CPU-h",
                                f"{3 * 200 / 3600:.4f} GPU-h"]


def test_baseline_override_and_csv_domain_column(cls):
    doc = load_document(cls, baseline="finetune")
    assert [s.baseline for s in doc.sections] == ["finetune", "finetune"]
    rows = list(csv.DictReader(io.StringIO(render_csv(doc))))
    assert {r["domain"] for r in rows} == {"genomics", "satellite"}
    cell = next(r for r in rows if r["row"] == "H3" and r["column"] == "dasha" and r["metric"] == "test_score")
    assert (cell["section"], cell["task_metric"], cell["n"], cell["values"]) == ("cell", "mcc", "3", "0.45;0.46;0.47")
    gain = next(r for r in rows if r["domain"] == "satellite" and r["row"] == "mean % improvement"
                and r["column"] == "backbone" and r["metric"] == "test_score")
    assert float(gain["mean"]) == pytest.approx(100 * (0.82 - 0.90) / 0.90)


def test_forecasting_and_genomics_folders_give_two_sections(forecasting, genomics_only, tmp_path):
    ref = tmp_path / "nt.yaml"
    ref.write_text("source: {citation: \"Doe et al. 2024, Table 2.\"}\nentries:\n  - name: NT\n    kind: FM\n"
                   "    results: {prom_300_tata: {test_score: 0.7}}\n")
    doc = load_document([forecasting, genomics_only], [ref], baseline="naive")
    assert [s.domain for s in doc.sections] == ["forecasting", "genomics"]
    fc, gen = doc.sections
    assert [c.name for c in fc.columns] == ["autoar", "naive", "dlinear", "fracast"]
    assert [c.name for c in gen.columns] == ["backbone", "dasha", "finetune", "published: NT"]
    assert (fc.baseline, gen.baseline) == ("naive", "backbone")      # naive is no genomics column: the default
    assert any("`naive` is not a column in the genomics section" in r for r in gen.remarks)
    md = render_markdown(doc)
    assert "## Forecasting (3 tasks)" in md and "## Genomics (1 task)" in md and "Satellite" not in md
    forecast = md.split("## Genomics")[0]
    assert "### test MSE (lower is better)" in forecast and "### test MAE (lower is better)" in forecast
    assert "| ETTh1-96 | 0.4000 | 1.3000 | **0.3900 ± 0.1271 (n=2)** | 0.4100 |" in forecast   # unchanged cells
    assert "| task | backbone | dasha | finetune | published: NT |" in md.split("## Genomics")[1]
    assert load_report([forecasting, genomics_only], domain="genomics").tasks == ["prom_300_tata"]


def test_cli_writes_one_document_with_a_figure_per_section(forecasting, cls, capsys):
    assert main(["report", str(cls), str(forecasting)]) == 0
    printed = capsys.readouterr().out
    assert printed.index("## Forecasting") < printed.index("## Genomics") < printed.index("## Satellite imagery")
    html = (cls / "report.html").read_text()
    assert html.count("data:image/png;base64,") == 4 and "<h3>test at last epoch (higher is better)</h3>" in html
    for name in ("report_figure1.png", "report_tasks.png", "report_genomics_tasks.png", "report_satellite_tasks.png"):
        assert (cls / name).read_bytes().startswith(b"\x89PNG")


def test_golden_classification_sweep(cls):
    doc = load_document(cls)
    check_golden("report_domains.md", render_markdown(doc))
    check_golden("report_domains.csv", render_csv(doc))


def test_a_metric_named_by_the_runs_wins_over_the_registry(tmp_path):
    runs = seeds("brazilian_coffee_scenes", "backbone", [0.1, 0.2, 0.3], [0.1, 0.2, 0.3],
                 tags={"launcher.metric": "mcc"})          # the registry says accuracy
    folder = make_classification_sweep(tmp_path / "tagged", "tagged", ["brazilian_coffee_scenes"], runs)
    report = load_report(folder)
    assert report.domain == "satellite" and report.row_label("brazilian_coffee_scenes") == "brazilian_coffee_scenes (MCC)"
    assert report.baseline == "backbone" and report.cell("test_score", "brazilian_coffee_scenes", "dasha").status == "missing"


def test_metric_option_shows_one_metric_for_every_classification_task(cls):
    """`report --metric accuracy`: every genomics/satellite cell holds the runs' test_accuracy (0.5 in every run
    written above) instead of each task's literature metric; rows say so; forecasting is untouched."""
    doc = load_document(cls, metric="accuracy")
    genomics = next(s for s in doc.sections if s.domain == "genomics")
    assert [m.name for m in genomics.metrics] == ["test_accuracy", "test_accuracy_last"]
    assert genomics.cell("test_accuracy", "H3", "backbone").values == [0.5, 0.5, 0.5]
    assert genomics.cell("test_accuracy", "H3", "dasha").values == [0.5, 0.5, 0.5]      # the selected runs only
    assert genomics.row_label("H3") == "H3 (accuracy)"
    assert any("--metric accuracy" in r for r in doc.remarks)
    literature = next(s for s in load_document(cls).sections if s.domain == "genomics")
    assert literature.row_label("H3") == "H3 (MCC)" and literature.metrics[0].name == "test_score"
    with pytest.raises(SpecError, match="unknown report metric"):
        load_document(cls, metric="auc")


def test_a_reference_protocol_column_gets_its_leaky_twin_and_says_its_metric(tmp_path):
    """DASHA `protocol: reference` runs also record the test score at the best-TEST epoch: the report puts
    those numbers in a LEAKY column beside the validation-selected ones (the selection effect read off the
    table), at no extra cost, and says the runs' test_score is MCC where the row's metric is F1."""
    from mlflow.tracking import MlflowClient

    folder = make_classification_sweep(tmp_path / "ref", "ref", ["prom_300_tata", "H3"],
                                       [r for r in RUNS if r[0] in ("prom_300_tata", "H3")])
    client = MlflowClient(default_uri(folder))
    experiment = client.get_experiment_by_name("ref").experiment_id
    leaky = {}
    for run in client.search_runs([experiment], "tags.`launcher.column` = 'dasha' and tags.`launcher.selected` = 'true'"):
        task, seed = run.data.tags["launcher.task"], int(run.data.tags["launcher.seed"])
        value = run.data.metrics["test_score"] + 0.01 * (seed + 1)
        leaky.setdefault(task, {})[seed] = value
        client.log_metric(run.info.run_id, "test_score_testselected_leaky", value)
        client.log_param(run.info.run_id, "chosen.score_metric", "mcc")
    doc = load_document(folder)
    genomics = doc.sections[0]
    twin = "dasha · test-selected (LEAKY)"
    assert [c.name for c in genomics.columns] == ["backbone", "dasha", twin, "finetune"]
    for task in ("prom_300_tata", "H3"):
        assert sorted(genomics.cell("test_score", task, twin).values) == sorted(leaky[task].values())
        assert genomics.cell("test_score_last", task, twin).values == genomics.cell("test_score_last", task, "dasha").values
        assert genomics.cell("test_score", task, "dasha").values == [r[3] for r in RUNS if r[0] == task
                                                                     and r[1] == "dasha" and r[5].get("tags")]
    assert genomics.costs[twin].job_seconds == 0 < genomics.costs["dasha"].job_seconds
    assert any("LEAKY" in note for note in genomics.notes[twin])
    said = " ".join(genomics.notes["dasha"])
    assert "prom_300_tata is mcc (protocol reference), not the row's f1" in said and "on H3" not in said
    assert twin in render_markdown(doc)


def test_a_published_nt_number_sits_on_the_row_of_its_gue_stand_in_labelled_as_such(genomics_only, tmp_path):
    ref = tmp_path / "nt.yaml"
    ref.write_text("source:\n  citation: \"Doe et al. NT table. 2024, Table 2.\"\nprotocol: \"NT benchmark\"\n"
                   "entries:\n  - name: SomeFM\n    kind: fine-tuned FM\n    results:\n"
                   "      promoter_tata: {test_score: 0.9}\n      H3: {test_score: 0.8}\n")
    doc = load_document(genomics_only, [ref])
    (genomics,) = doc.sections
    assert genomics.tasks == ["prom_300_tata"]
    assert genomics.cell("test_score", "prom_300_tata", "published: SomeFM").values == [0.9]
    (note,) = genomics.notes["published: SomeFM"]
    assert "prom_300_tata" in note and "promoter_tata" in note and "stand-in" in note
    assert any("H3" in remark for remark in doc.remarks)            # not a row of this report: said, not shown
    assert not any("promoter_tata)" in remark or "promoter_tata," in remark for remark in doc.remarks)


def test_figure_1_places_a_task_without_a_registry_size_at_the_training_data_its_runs_recorded(tmp_path):
    """Satellite tasks (and GUE ones) have no training size in the registry: Figure 1 takes what the runs
    recorded they trained on (chosen.train_observations), the largest over the counted runs."""
    from mlflow.tracking import MlflowClient

    from launcher.report.figure1 import figure1_points

    folder = make_classification_sweep(tmp_path / "sat", "sat", ["brazilian_coffee_scenes"],
                                       [r for r in RUNS if r[0] == "brazilian_coffee_scenes"])
    plan = json.loads((folder / "plan.json").read_text())
    (folder / "plan.json").write_text(json.dumps([{**p, "kind": "supervised"} for p in plan]))
    client = MlflowClient(default_uri(folder))
    for number, run in enumerate(client.search_runs([client.get_experiment_by_name("sat").experiment_id])):
        client.log_param(run.info.run_id, "chosen.train_observations", str(1000 + number % 3))
    points, notes = figure1_points(load_document(folder))
    placed = {p.label: p.x for p in points}
    assert placed and set(placed.values()) == {1002.0}, (placed, notes)
    assert {"backbone", "dasha"} <= set(placed)
