"""The Python API (launcher.api, re-exported by `launcher`): real sweeps, run through the functions.

The smoke sweep (sweeps/smoke.yaml, its local executor) runs once, in a subprocess from the repository
root, exactly as a user would call it; a small sweep given as a dict runs inline.
"""
import csv
import json
import statistics
import subprocess
import sys

import pytest

import launcher
from launcher.api import RESULT_COLUMNS
from launcher.errors import SpecError
from tests.conftest import ROOT

HEAVY = ("torch", "mlflow", "nevergrad")


def run_python(code: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    """sweeps/smoke.yaml run by `launcher.sweep` in a fresh interpreter; its output folder."""
    out = tmp_path_factory.mktemp("api") / "smoke"
    done = run_python(f"import launcher; print(launcher.sweep('sweeps/smoke.yaml', out={str(out)!r}))")
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().splitlines()[-1] == str(out)     # the returned folder; the table is not printed
    assert "4 of 4 trials finished, 0 failed" in done.stderr
    return out


SMALL = {
    "name": "api_small",
    "seeds": [0, 1],
    "tasks": [{"dataset": "ETTh1", "horizons": [24], "context": 96}],
    "methods": {"naive": {}, "seasonal_naive": {"period": 24}, "synthetic": {}},
    "search": {"trials": 3, "scheduler": {"type": "asha", "eta": 2, "grace": 1, "max_epochs": 2}},
    "executor": {"backend": "inline", "workers": 2},
}


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """SMALL, given as a dict: two fixed baselines and a tuned study trained by epochs (ASHA)."""
    out = tmp_path_factory.mktemp("api") / "small"
    assert launcher.sweep(SMALL, out=out) == out
    return out


def report_cells(folder) -> list[dict]:
    with open(folder / "report.csv", newline="") as fh:
        return list(csv.DictReader(fh))


def assert_results_equal_report_csv(folder) -> None:
    table = launcher.results(folder)
    assert list(table.columns) == list(RESULT_COLUMNS)
    rows = report_cells(folder)
    cells = [r for r in rows if r["section"] == "cell"]
    assert cells
    keys = set()
    for row in cells:
        key = (row["domain"], row["row"], row["column"], row["metric"])
        keys.add(key)
        mine = table[(table.domain == key[0]) & (table.task == key[1]) & (table.method == key[2])
                     & (table.metric == key[3])]
        expected = [float(v) for v in row["values"].split(";") if v]
        assert mine.value.dropna().tolist() == expected, key                 # the very same floats
        assert len(mine) == max(1, len(expected)), key
        assert set(mine.status) == {row["status"]}, key
        assert set(mine.kind) == {row["kind"]}, key
        if expected:
            assert f"{statistics.fmean(expected):.10g}" == row["mean"], key
            assert mine.seed.notna().all(), key
    assert keys == set(zip(table.domain, table.task, table.method, table.metric))   # nothing beyond the csv
    for row in (r for r in rows if r["section"] == "cost" and r["metric"] in ("cpu_hours", "gpu_hours")):
        column = table[table.method == row["column"]][f"column_{row['metric']}"]
        assert {f"{v:.10g}" for v in column} == {row["mean"]}, row


# --------------------------------------------------------------------------- the smoke sweep, as a user runs it
def test_sweep_from_a_python_call_writes_the_report(smoke):
    for name in ("report.md", "report.csv", "report.html", "journal.jsonl", "mlflow.db"):
        assert (smoke / name).is_file(), name


def test_results_equal_report_csv_cell_by_cell(smoke):
    assert_results_equal_report_csv(smoke)
    table = launcher.results(smoke)
    assert set(table.method) == {"autoar", "naive", "seasonal_naive", "fracast"}
    assert set(table.metric) == {"test_mse", "test_mae"}
    assert (table.status == "ok").all() and (table.job_seconds > 0).all()
    assert table.selected_epoch.isna().all()     # none of these methods trains by epochs


def test_status_of_a_finished_sweep_says_all_done(smoke):
    status = launcher.status(smoke)
    assert status["state"] == "finished" and status["finished"] and not status["paused"]
    assert (status["budget"], status["done"], status["failed"], status["running"], status["pending"]) == (4, 4, 0, 0, 0)
    assert status["eta_seconds"] is None
    assert len(status["studies"]) == 4 and all(s["done"] == s["trials"] == 1 for s in status["studies"].values())
    json.dumps(status)     # plain data


def test_report_returns_the_markdown_and_writes_the_files(smoke):
    for name in ("report.md", "report.csv"):
        (smoke / name).unlink()
    markdown = launcher.report(smoke, plots=False)
    assert markdown == (smoke / "report.md").read_text()
    assert "| ETTh1-96 |" in markdown and (smoke / "report.csv").is_file()
    assert launcher.report([smoke], baseline="seasonal_naive", plots=False).count("seasonal_naive") > 1
    with pytest.raises(SpecError, match="not a column"):
        launcher.report(smoke, baseline="no_such_column", plots=False)
    # every option of the API function reaches it through the callable package, `metric` included
    with pytest.raises(SpecError, match="unknown report metric"):
        launcher.report(smoke, metric="auc", plots=False)
    assert launcher.report(smoke, metric="mcc", plots=False) == markdown      # forecasting only: unchanged


# --------------------------------------------------------------------------- a spec given as a dict
def test_sweep_from_a_dict(small):
    assert json.loads((small / "sweep.json").read_text())["source"] == "<sweep dict>"
    assert (small / "report.md").is_file()
    status = launcher.status(small)
    assert status["state"] == "finished" and status["done"] == status["budget"] and status["failed"] == 0
    assert_results_equal_report_csv(small)
    table = launcher.results(small)
    tuned = table[table.method == "synthetic"]
    assert len(tuned) == 2 and (tuned.selected_epoch >= 1).all() and (tuned.selected_epoch <= 2).all()
    assert table[table.method != "synthetic"].selected_epoch.isna().all()


def test_resume_of_a_finished_sweep_runs_nothing(small):
    before = (small / "journal.jsonl").read_text().count('"segment_done"')
    assert launcher.resume(small) == small
    assert (small / "journal.jsonl").read_text().count('"segment_done"') == before


@pytest.mark.parametrize("spec, where", [
    ({**SMALL, "methods": {"autoar": {"max_dif": 1}}}, "<sweep dict>: methods.autoar.max_dif: unknown key. "
                                                       "Did you mean 'max_diff'?"),
    ({**SMALL, "tasks": [{"dataset": "ETTh1", "horizons": 96}]}, "<sweep dict>: tasks[0].horizons: expected a list"),
    ({**SMALL, "tasks": [{"dataset": "ETTh9", "horizons": [96]}]}, "<sweep dict>: tasks[0].dataset: unknown dataset"),
    ({key: v for key, v in SMALL.items() if key != "methods"}, "<sweep dict>: methods: required key is missing"),
    ({**SMALL, "seeds": [0, {1}]}, "<sweep dict>: seeds[1]: a set is not a value"),
    ({**SMALL, 3: "x"}, "<sweep dict>: keys must be strings"),
    (["name", "tasks"], "<sweep dict>: expected the path of a sweep YAML file or a dict"),
])
def test_a_bad_dict_raises_spec_error_and_writes_nothing(spec, where, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)              # the default out (runs/<name>) would be here
    with pytest.raises(SpecError) as caught:
        launcher.sweep(spec)
    assert str(caught.value).startswith(where)
    with pytest.raises(SpecError):
        launcher.sweep(spec, out=tmp_path / "out")
    assert list(tmp_path.iterdir()) == []


def test_overrides_are_validated_like_flags(tmp_path):
    with pytest.raises(SpecError, match="executor.workers: expected an integer"):
        launcher.sweep(SMALL, out=tmp_path / "out", overrides={"executor.workers": "many"})
    assert not (tmp_path / "out").exists()


def test_dry_run_writes_nothing(tmp_path, capsys):
    assert launcher.sweep(SMALL, out=tmp_path / "out", dry_run=True) == tmp_path / "out"
    assert "(dry run: nothing written, nothing submitted)" in capsys.readouterr().out
    assert not (tmp_path / "out").exists()


def test_folders_that_are_not_sweeps_raise_spec_error(tmp_path):
    for call in (launcher.status, launcher.resume, launcher.results, launcher.report):
        with pytest.raises(SpecError, match="not a sweep folder"):
            call(tmp_path)


# --------------------------------------------------------------------------- importing
def test_import_launcher_is_cheap():
    done = run_python(
        "import sys, launcher\n"
        f"heavy = {HEAVY!r}\n"
        "assert not [m for m in heavy if m in sys.modules], [m for m in heavy if m in sys.modules]\n"
        "assert launcher.SpecError is __import__('launcher.errors').errors.SpecError\n"
        "launcher.sweep, launcher.results, launcher.status, launcher.resume, launcher.report\n"
        "assert not [m for m in heavy if m in sys.modules], [m for m in heavy if m in sys.modules]\n"
        "print('ok')", timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr


def test_launcher_report_is_the_package_and_the_function():
    done = run_python(
        "import sys, launcher\n"
        "import launcher.report.render\n"               # the package imported first, by someone else
        "from launcher.report import write_report\n"
        "assert launcher.report is sys.modules['launcher.report'] and callable(launcher.report)\n"
        "from launcher import report\n"
        "assert report is launcher.report and report.write_report is write_report\n"
        "print('ok')", timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr
    assert callable(launcher.report)
