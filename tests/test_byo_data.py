"""Bring your own data, no code: a forecasting CSV of one's own and a genomics table of many tasks, named
in a sweep row (`path`, `date_column`, `target_channels`, `split`, `freq`), and one `data_root` for a mixed
sweep. Bad rows exit 2 with one line naming the sweep file:line, and nothing is written."""
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from launcher.__main__ import main
from launcher.errors import SpecError
from launcher.spec.load import load_recorded_sweep, load_sweep, record_as_sweep_file, spec_to_dict
from tasks.genomics import load_genomics_task
from tasks.registry import load_task

NT_TASKS_IN_TABLE = ("promoter_all", "H3", "splice_sites_all")


def write_sales(path, n=600, seed=0, extra_text_column=False):
    """Hourly rows with a daily cycle: `date,store_a,store_b,OT` (+ a text column that must be ignored)."""
    rng = np.random.default_rng(seed)
    hours = np.arange(n)
    frame = pd.DataFrame({"date": pd.date_range("2021-01-01", periods=n, freq="h").strftime("%Y-%m-%d %H:%M:%S")})
    for k, name in enumerate(("store_a", "store_b", "OT")):
        frame[name] = 10 + 3 * np.sin(2 * np.pi * hours / 24 + k) + rng.normal(0, 0.3, n)
    if extra_text_column:
        frame["note"] = "ok"
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False)
    return path


def random_sequences(n, length, rng):
    return ["".join(rng.choice(list("ACGT"), length)) for _ in range(n)]


def write_nt_table(path, with_split=True, seed=0):
    """The revised NT benchmark layout on Hugging Face: one table, columns sequence,name,label,task(,split)."""
    rng = np.random.default_rng(seed)
    rows = []
    for task, (length, n_classes, n) in zip(NT_TASKS_IN_TABLE, ((300, 2, 40), (500, 2, 30), (400, 3, 36))):
        for i in range(n):
            split = "test" if i % 4 == 0 else "train"
            rows.append({"sequence": random_sequences(1, length - int(rng.integers(0, 5)), rng)[0],
                         "name": f"{task}_{i}", "label": i % n_classes, "task": task, "split": split})
    frame = pd.DataFrame(rows)
    if not with_split:
        frame = frame.drop(columns=["split"])
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".parquet":
        frame.to_parquet(path, index=False)
    else:
        frame.to_csv(path, index=False, sep="\t" if path.suffix == ".tsv" else ",")
    return frame


SALES_SWEEP = """
name: byo
tasks:
  - {{dataset: my_sales, path: {path}, date_column: date, target_channels: [OT], split: {{ratios: [0.7, 0.1, 0.2]}}, context: 96, horizons: [24, 48], freq: 24}}
methods:
  autoar: {{lags: [8], max_diff: 1}}
  naive: {{}}
  seasonal_naive: {{}}
executor: {{backend: inline, workers: 1}}
"""


# ------------------------------------------------------------------------------------- forecasting
def test_own_csv_runs_autoar_and_naive_end_to_end_through_the_cli(tmp_path):
    write_sales(tmp_path / "data" / "sales.csv")
    sweep = tmp_path / "sweep.yaml"
    sweep.write_text(SALES_SWEEP.format(path="data/sales.csv"))
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, "-m", "launcher", "sweep", str(sweep), "--out", str(out)], cwd=tmp_path,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = pd.read_csv(out / "report.csv")
    cells = report[(report["section"] == "cell") & (report["metric"] == "test_mse")]
    assert set(cells["row"]) == {"my_sales-24", "my_sales-48"}
    assert set(cells["method"]) == {"autoar", "naive", "seasonal_naive"} and set(report["status"]) == {"ok"}
    assert len(cells) == 6 and np.isfinite(cells["mean"]).all() and (cells["mean"] > 0).all()
    by = cells.set_index(["row", "method"])["mean"]
    assert by["my_sales-24", "autoar"] < by["my_sales-24", "naive"]     # the daily cycle is learnable
    assert by["my_sales-24", "seasonal_naive"] < by["my_sales-24", "naive"]
    # resume reloads the recorded sweep with the new keys intact
    again = load_recorded_sweep(out)
    task = again.tasks[0]
    assert (task.date_column, task.target_channels, task.split(), task.freq) == \
        ("date", ("OT",), {"ratios": [0.7, 0.1, 0.2]}, 24)


def test_loader_matches_the_row(tmp_path):
    write_sales(tmp_path / "sales.csv", extra_text_column=True)
    task = load_task("forecasting", "my_sales", horizon=24, context=96, path=tmp_path / "sales.csv",
                     options={"target_channels": ["OT", "store_a"], "split": {"ratios": [0.6, 0.2, 0.2]}, "freq": 12})
    assert task.channel_names == ["OT", "store_a"] and task.season == 12
    assert (task.n_train, task.n_val, task.n_test) == (360, 120, 120)
    # default date column (the first, it parses as dates), every numeric column... but the text one is refused
    with pytest.raises(Exception, match="'ok' is not a number"):
        load_task("forecasting", "my_sales", horizon=24, path=tmp_path / "sales.csv")


def test_defaults_and_split_by_dates(tmp_path, write_sweep):
    write_sales(tmp_path / "sales.csv", n=500)
    spec = load_sweep(write_sweep("""
name: byo
tasks:
  - {dataset: my_sales, path: sales.csv, horizons: [24]}
  - {dataset: by_dates, path: sales.csv, horizons: [24], split: {dates: [2021-01-15, 2021-01-18]}}
methods: {naive: {}}
"""))
    plain, by_dates = spec.tasks
    assert plain.context == 336 and plain.date_column is None and plain.target_channels is None
    assert by_dates.split() == {"dates": ["2021-01-15", "2021-01-18"]}
    assert by_dates.context == min(336, 14 * 24)          # the 14 days before val_start are the train rows
    task = load_task("forecasting", "by_dates", horizon=24, context=by_dates.context, path=by_dates.path,
                     options=by_dates.forecast_options())
    assert (task.n_train, task.n_val, task.n_test) == (14 * 24, 3 * 24, 500 - 17 * 24)
    mapping = record_as_sweep_file(spec_to_dict(spec), tmp_path / "out")
    assert mapping["tasks"][1]["split"] == {"dates": ["2021-01-15", "2021-01-18"]}


def test_built_in_dataset_takes_target_channels(write_sweep):
    spec = load_sweep(write_sweep("""
name: byo
tasks:
  - {dataset: ETTh1, horizons: [96], target_channels: [OT]}
methods: {naive: {}}
"""))
    assert spec.tasks[0].target_channels == ("OT",) and spec.tasks[0].context == 512


# ------------------------------------------------------------------------------------------ genomics
@pytest.mark.parametrize("suffix", [".parquet", ".tsv", ".csv"])
def test_nt_benchmark_table_is_read_by_task_name(tmp_path, suffix):
    frame = write_nt_table(tmp_path / f"nt_benchmark{suffix}")
    task = load_genomics_task("promoter_all", path=tmp_path / f"nt_benchmark{suffix}", val_fraction=0.25)
    rows = frame[frame["task"] == "promoter_all"]
    assert task.sizes["test"] == (rows["split"] == "test").sum() == 10
    assert task.sizes["train"] + task.sizes["val"] == 30 and task.sizes["val"] == round(0.25 * 30)
    assert task.input_shape == (5, 300) and task.n_classes == 2
    assert sorted(np.concatenate([task.y_train, task.y_val, task.y_test]).tolist()) == sorted(rows["label"].tolist())
    three = load_genomics_task("splice_sites_all", path=tmp_path / f"nt_benchmark{suffix}")
    assert three.sizes["test"] == 9 and set(three.y_test.tolist()) <= {0, 1, 2}


def test_table_without_split_column_holds_out_a_fixed_test_set(tmp_path):
    write_nt_table(tmp_path / "nt.parquet", with_split=False)
    first = load_genomics_task("H3", path=tmp_path / "nt.parquet", seed=0)
    other_seed = load_genomics_task("H3", path=tmp_path / "nt.parquet", seed=1)
    assert first.sizes["test"] == round(0.2 * 30) and np.array_equal(first.x_test, other_seed.x_test)
    assert any("fixed seed" in note for note in first.notes)


def test_genomics_sweep_row_reads_its_rows_of_the_table(tmp_path, write_sweep):
    write_nt_table(tmp_path / "nt_benchmark.parquet")
    spec = load_sweep(write_sweep("""
name: byo-genomics
tasks:
  - {dataset: promoter_all, path: nt_benchmark.parquet}
  - {dataset: H3, path: nt_benchmark.parquet, max_train: 8}
methods: {backbone: {}}
"""))
    assert [t.domain for t in spec.tasks] == ["genomics", "genomics"]
    from launcher.engine.preflight import check_data

    check_data(spec)
    task = load_task("genomics", "H3", path=spec.tasks[1].path, options={"max_train": 8})
    assert task.sizes["train"] == 8 and task.sizes["test"] == 8 and task.input_shape == (5, 500)


# ------------------------------------------------------------------------------------------ data_root
def test_one_data_root_serves_a_mixed_sweep(tmp_path, write_sweep):
    root = tmp_path / "data"
    write_sales(root / "forecasting" / "sales.csv")
    write_nt_table(root / "genomics" / "nt_benchmark.parquet")
    spec = load_sweep(write_sweep("""
name: mixed
data_root: data
tasks:
  - {dataset: my_sales, path: sales.csv, horizons: [24], context: 96}
  - {dataset: promoter_all, path: nt_benchmark.parquet}
methods: {naive: {}, backbone: {}}
"""))
    assert spec.tasks[0].path == (root / "forecasting" / "sales.csv").resolve()
    assert spec.tasks[1].path == (root / "genomics" / "nt_benchmark.parquet").resolve()
    from launcher.engine.preflight import check_data

    check_data(spec)


def test_genomics_search_uses_the_data_root_and_its_domain_folder(tmp_path, monkeypatch):
    from tasks.genomics import search_roots
    from tasks.satellite import search_roots as satellite_roots

    for variable in ("LAUNCHER_DATA", "LAUNCHER_DATA_ROOT", "GEO_BENCH_DIR"):
        monkeypatch.delenv(variable, raising=False)
    assert search_roots(tmp_path) == [tmp_path, tmp_path / "genomics"]
    assert satellite_roots(tmp_path) == [tmp_path, tmp_path / "satellite"]
    assert search_roots(None) == [] and satellite_roots(None) == []       # nothing outside the sweep's data_root
    monkeypatch.setenv("LAUNCHER_DATA_ROOT", str(tmp_path / "env"))
    assert search_roots(None) == [tmp_path / "env", tmp_path / "env" / "genomics"]


def test_no_default_data_root_outside_the_repository(monkeypatch):
    """With no data_root and no environment variable, the loaders search nowhere (a clone has only its own
    files): no built-in default points outside the repository."""
    from tasks import genomics, satellite

    for var in ("LAUNCHER_DATA", "LAUNCHER_DATA_ROOT", "GEO_BENCH_DIR"):
        monkeypatch.delenv(var, raising=False)
    assert genomics.search_roots(None) == []
    assert satellite.search_roots(None) == []


# -------------------------------------------------------------------------------------- bad inputs
def _sales_row(tmp_path, row: str) -> str:
    write_sales(tmp_path / "sales.csv", n=400)
    return f"""name: byo
tasks:
  - {row}
methods: {{naive: {{}}}}
"""


BAD_ROWS = {
    "missing_file": ("{dataset: my_sales, path: nowhere.csv, horizons: [24]}", "file not found"),
    "unknown_channel": ("{dataset: my_sales, path: sales.csv, horizons: [24], target_channels: [OT, sales]}",
                        "no column 'sales' in the header"),
    "ratios_not_one": ("{dataset: my_sales, path: sales.csv, horizons: [24], split: {ratios: [0.7, 0.2, 0.2]}}",
                       "sum to 1.1, not 1"),
    "dates_out_of_order": ("{dataset: my_sales, path: sales.csv, horizons: [24], "
                           "split: {dates: [2021-01-10, 2021-01-05]}}", "is not before the test start"),
    "no_horizons": ("{dataset: my_sales, path: sales.csv}", "horizons: is required"),
    "too_short": ("{dataset: my_sales, path: sales.csv, horizons: [200]}", "longer than the"),
    "no_season": ("{dataset: my_sales, path: sales.csv, horizons: [24]}", "Set `freq:`"),
}


@pytest.mark.parametrize("case", sorted(BAD_ROWS))
def test_bad_row_exits_2_names_the_row_and_writes_nothing(case, tmp_path, capsys, monkeypatch):
    row, expected = BAD_ROWS[case]
    text = _sales_row(tmp_path, row)
    if case == "no_season":
        text = text.replace("naive: {}", "seasonal_naive: {}")
    sweep = tmp_path / "sweep.yaml"
    sweep.write_text(text)
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "out"
    assert main(["sweep", str(sweep), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0, err
    assert err.startswith(f"error: {sweep}:3:"), err
    assert expected in err, err
    assert not out.exists()


def test_task_not_in_the_table_exits_2(tmp_path, capsys, monkeypatch):
    write_nt_table(tmp_path / "nt_benchmark.parquet")
    sweep = tmp_path / "sweep.yaml"
    sweep.write_text("name: byo\ntasks:\n  - {dataset: promoter_tata, path: nt_benchmark.parquet}\n"
                     "methods: {backbone: {}}\n")
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "out"
    assert main(["sweep", str(sweep), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith(f"error: {sweep}:3:"), err
    assert "no row of" in err and "'promoter_tata'" in err and "promoter_all" in err
    assert not out.exists()


def test_dirty_own_file_is_refused_with_the_row_and_the_data_line(tmp_path, write_sweep):
    path = write_sales(tmp_path / "sales.csv", n=400)
    lines = path.read_text().splitlines()
    lines[5] = lines[5].rsplit(",", 1)[0] + ",oops"
    path.write_text("\n".join(lines) + "\n")
    sweep = write_sweep(_sales_row(tmp_path, "{dataset: my_sales, path: sales.csv, horizons: [24]}")
                        .replace("write", ""))
    path.write_text("\n".join(lines) + "\n")      # _sales_row rewrote the clean file
    with pytest.raises(SpecError) as error:
        load_sweep(sweep)
    text = str(error.value)
    assert text.startswith(f"{sweep}:3:") and f"{path}:6: column 'OT': 'oops' is not a number" in text
