"""Dirty forecasting data, through the real CLI (`sweep` with the inline backend).

A file the loader cannot use is caught by the preflight: exit code 2, one stderr line naming the file
(and the line where there is one), and nothing written, not even the output folder. A trial whose scores
are nan or inf fails (it is not reported as a result), and what the loader cleaned is shown in the trial's
result, its MLflow tag `launcher.notes` and the report's notes.
"""
import gzip
import json

import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from launcher.__main__ import main

N_ROWS = 1000          # weather (70/10/20 split): 700 train, 100 val, 200 test rows


def csv_text(n_rows=N_ROWS, n_channels=2, values=None):
    """A clean `date` + channels CSV, 10-minute steps; row i of the data is line i + 2."""
    if values is None:
        t = np.arange(n_rows)[:, None]
        values = 10.0 + np.sin(t / 7.0 + np.arange(n_channels)) + 0.001 * t
    frame = pd.DataFrame(values, columns=[f"c{i}" for i in range(values.shape[1])])
    frame.insert(0, "date", pd.date_range("2020-01-01", periods=len(values), freq="10min")
                 .strftime("%Y-%m-%d %H:%M:%S"))
    return frame.to_csv(index=False)


def replace_line(text, line, new):
    lines = text.splitlines()
    lines[line - 1] = new
    return "\n".join(lines) + "\n"


def date_of(line):
    return str(pd.Timestamp("2020-01-01") + pd.Timedelta(minutes=10 * (line - 2)))


# name -> (file name, content (str or bytes), line named in the message or None, words the message holds)
DIRTY = {
    "non_numeric_cell": ("data.csv", lambda: replace_line(csv_text(), 5, f"{date_of(5)},abc,1.0"),
                         5, "column 'c0': 'abc' is not a number"),
    "comma_decimal": ("data.csv", lambda: replace_line(csv_text(), 7, f'{date_of(7)},"10,5",1.0'),
                      7, "decimal comma"),
    "comma_decimal_unquoted": ("data.csv", lambda: replace_line(csv_text(), 9, f"{date_of(9)},10,5,1.0"),
                               9, "the row has 4 fields but the header has 3"),
    "semicolon_separated": ("data.csv", lambda: csv_text().replace(",", ";"), 1, "separated by ';'"),
    "no_date_column": ("data.csv", lambda: csv_text().replace("date,", "time,", 1), 1, "no 'date' column"),
    "empty_file": ("data.csv", lambda: "", None, "the file is empty"),
    "header_only": ("data.csv", lambda: "date,c0,c1\n", None, "no data rows"),
    "not_gzip": ("data.csv.gz", lambda: csv_text(), None, "not valid gzip"),
    "truncated_gzip": ("data.csv.gz", lambda: gzip.compress(csv_text().encode())[:3000], None,
                       "gzip stream is truncated"),
    "all_missing_channel": ("data.csv", lambda: "".join(
        line.rsplit(",", 1)[0] + ",-9999\n" if i else line + "\n"
        for i, line in enumerate(csv_text().splitlines())), None, "column 'c1': no valid value"),
    "ragged_row": ("data.csv", lambda: replace_line(csv_text(), 12, f"{date_of(12)},1.0,2.0,3.0,4.0"),
                   12, "the row has 5 fields but the header has 3"),
    "two_cells_of_1e308": ("data.csv", lambda: replace_line(replace_line(
        csv_text(), 40, f"{date_of(40)},1.0,1e308"), 41, f"{date_of(41)},1e308,1.0"), 40,
        "column 'c1': 1e+308 is too large"),
}


def write_sweep(tmp_path, data_path, *, dataset="weather", horizons=(24,), context=96, extra=""):
    sweep = tmp_path / "sweep.yaml"
    sweep.write_text(
        f"name: dirty\ntasks:\n  - dataset: {dataset}\n    path: {data_path}\n"
        f"    horizons: [{', '.join(map(str, horizons))}]\n    context: {context}\n"
        f"methods:\n  naive: {{}}\nexecutor: {{backend: inline, workers: 1}}\n{extra}")
    return sweep


def run_bad(tmp_path, capsys, sweep):
    before = sorted(tmp_path.rglob("*"))
    out = tmp_path / "out"
    assert main(["sweep", str(sweep), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0, err                      # one message
    assert not out.exists()
    assert sorted(tmp_path.rglob("*")) == before           # nothing written anywhere
    return err


@pytest.mark.parametrize("case", sorted(DIRTY))
def test_dirty_file_is_refused_before_anything_is_written(case, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    name, content, line, words = DIRTY[case]
    data = tmp_path / name
    content = content()
    if isinstance(content, bytes):
        data.write_bytes(content)
    else:
        data.write_text(content)
    err = run_bad(tmp_path, capsys, write_sweep(tmp_path, data))
    assert err.startswith(f"error: {data}:{line}: " if line else f"error: {data}: "), err
    assert words in err, err
    assert "task weather" in err, err


@pytest.mark.parametrize("dataset, n_rows, horizons, context, words", [
    ("ETTh1", 600, (96,), 512, ["fixed ETT split of 8640/2880/2880", "has 600 rows", "at least 14400 rows"]),
    ("weather", N_ROWS, (24, 192), 96, ["horizon 192 is longer than the val split (100 rows)",
                                        "700/100/200", "Use horizons of at most 100"]),
    ("weather", N_ROWS, (24,), 900, ["the context of 900 is longer than the 700 training rows",
                                     "Set `context:` to at most 700"]),
])
def test_task_too_big_for_the_file_is_refused(dataset, n_rows, horizons, context, words, tmp_path, capsys,
                                              monkeypatch):
    monkeypatch.chdir(tmp_path)
    data = tmp_path / "data.csv"
    data.write_text(csv_text(n_rows))
    sweep = write_sweep(tmp_path, data, dataset=dataset, horizons=horizons, context=context)
    err = run_bad(tmp_path, capsys, sweep)
    assert err.startswith(f"error: {sweep}: tasks[{dataset}]: task {dataset} "), err
    assert str(data) in err
    for word in words:
        assert word in err, (word, err)


def test_two_tasks_on_one_dirty_file_give_one_message(tmp_path, capsys, monkeypatch):
    """Two tasks on one dirty file: one message (the preflight reads each file once)."""
    monkeypatch.chdir(tmp_path)
    data = tmp_path / "data.csv"
    data.write_text(replace_line(csv_text(), 5, f"{date_of(5)},abc,1.0"))
    sweep = tmp_path / "sweep.yaml"
    sweep.write_text(f"name: dirty\ntasks:\n  - {{dataset: weather, path: {data}, horizons: [24], context: 96}}\n"
                     f"  - {{dataset: weather, path: {data}, horizons: [48], context: 128}}\n"
                     "methods:\n  naive: {}\nexecutor: {backend: inline, workers: 1}\n")
    err = run_bad(tmp_path, capsys, sweep)
    assert err.startswith(f"error: {data}:5: "), err


def trial_runs(out):
    client = MlflowClient(f"sqlite:///{out / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("dirty")
    runs = client.search_runs([experiment.experiment_id], max_results=100)
    return [r for r in runs if r.data.tags.get("launcher.kind") == "trial"]


def test_non_finite_score_fails_the_trial(tmp_path, capsys, monkeypatch):
    """Test rows of +-5e152 pass the loader (their squares fit in float64), but the naive forecast's summed
    squared error overflows: test MSE inf is a failed trial, never an 'ok' result."""
    monkeypatch.chdir(tmp_path)
    values = np.random.default_rng(0).normal(size=(N_ROWS, 2))
    values[800:, 1] = 5e152 * (-1.0) ** np.arange(N_ROWS - 800)
    data = tmp_path / "data.csv"
    data.write_text(csv_text(values=values))
    sweep = write_sweep(tmp_path, data, extra="search: {max_failure_rate: 1.0}\n")
    out = tmp_path / "out"
    assert main(["sweep", str(sweep), "--out", str(out)]) == 1
    assert "0 of 1 trials finished, 1 failed" in capsys.readouterr().err
    errors = list((out / "trials").rglob("error.txt"))
    assert len(errors) == 1
    assert "naive on weather-24 returned non-finite scores (test_mse=inf)" in errors[0].read_text()
    assert not list((out / "trials").rglob("result.json"))
    [run] = trial_runs(out)
    assert run.info.status == "FAILED"


def test_cleaning_counts_reach_the_result_mlflow_and_the_report(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    text = csv_text()
    lines = text.splitlines()
    for line in (10, 11, 12):                                # three -9999 cells
        date, c0, _ = lines[line - 1].split(",")
        lines[line - 1] = f"{date},{c0},-9999"
    date, _, c1 = lines[20 - 1].split(",")
    lines[20 - 1] = f"{date},,{c1}"                          # one empty cell
    lines[30 - 1] = lines[30 - 1].split(",")[0] + ",nan,inf"                           # NaN and inf
    for line in (50, 60):                                    # two rows repeat the timestamp before them
        lines.insert(line, lines[line - 1].split(",")[0] + ",99,99")
    data = tmp_path / "data.csv"
    data.write_text("\n".join(lines) + "\n")
    out = tmp_path / "out"
    assert main(["sweep", str(write_sweep(tmp_path, data)), "--out", str(out)]) == 0
    note = ("data.csv: 6 cells interpolated (-9999: 3, empty/NaN: 2, inf: 1), "
            "2 duplicate timestamps dropped (first kept)")
    [result_file] = (out / "trials").rglob("result.json")
    result = json.loads(result_file.read_text())
    assert note in result["notes"]
    assert result["data_cleaning"] == {"file": str(data), "duplicate_timestamps": 2, "missing_values": 2,
                                       "non_finite_values": 1, "sentinel_values": 3, "blank_lines": 0}
    [run] = trial_runs(out)
    assert note in run.data.tags["launcher.notes"]
    assert note in (out / "report.md").read_text()


def test_unreadable_genomics_file_is_refused_by_the_preflight(tmp_path, capsys, monkeypatch):
    """Genomics split files are parsed (and their labels checked) before anything is written."""
    monkeypatch.chdir(tmp_path)
    folder = tmp_path / "prom_core_tata"
    folder.mkdir()
    (folder / "train.csv").write_text("sequence,label\n" + f"{'A' * 70},0\n{'C' * 70},x\n")
    (folder / "test.csv").write_text("sequence,label\n" + f"{'A' * 70},0\n{'C' * 70},1\n")
    sweep = tmp_path / "sweep.yaml"
    sweep.write_text(f"name: dirty\ntasks:\n  - {{dataset: prom_core_tata, path: {folder}}}\n"
                     "methods:\n  synthetic: {}\nexecutor: {backend: inline, workers: 1}\n")
    err = run_bad(tmp_path, capsys, sweep)
    assert str(folder / "train.csv") in err and "label 'x' is not an integer" in err, err
