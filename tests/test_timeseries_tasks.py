"""Forecasting tasks: file search, dirty-value policy, splits, z-scoring and the windowed metric."""
import gzip

import numpy as np
import pandas as pd
import pytest

from tasks.timeseries import (
    DATASETS,
    EMBEDDED_DIR,
    DatasetFormatError,
    DatasetNotFoundError,
    TaskSizeError,
    check_task_fits,
    describe_cleaning,
    evaluate_forecaster,
    find_dataset_file,
    load_forecast_task,
    load_series,
)


def write_series(path, values, start="2016-07-01", freq="h", names=None):
    values = np.asarray(values, dtype=float)
    if values.ndim == 1:
        values = values[:, None]
    names = names or [f"c{i}" for i in range(values.shape[1])]
    frame = pd.DataFrame(values, columns=names)
    frame.insert(0, "date", pd.date_range(start, periods=len(values), freq=freq).strftime("%Y-%m-%d %H:%M:%S"))
    frame.to_csv(path, index=False)
    return path


def distinct_raw_values(n_rows, n_channels):
    """Row t of channel c is 1000 c + t + sin(t): every row is distinct and identifiable."""
    t = np.arange(n_rows)[:, None]
    return 1000.0 * np.arange(n_channels) + t + np.sin(t)


# ------------------------------------------------------------------------------ evaluate_forecaster
def mean_plus_step_forecaster(horizon):
    return lambda contexts: contexts.mean(axis=1, keepdims=True) + 0.1 * np.arange(1, horizon + 1)


@pytest.mark.parametrize("stride", [1, 2, 4])
@pytest.mark.parametrize("max_batch_values", [1, 50, 4_000_000])
def test_evaluate_forecaster_equals_brute_force_loop(stride, max_batch_values):
    series = np.random.default_rng(0).standard_normal((30, 2))
    context, horizon = 5, 3
    forecaster = mean_plus_step_forecaster(horizon)
    errors = []
    for start in range(0, 30 - context - horizon + 1, stride):
        for channel in range(2):
            history = series[start:start + context, channel]
            truth = series[start + context:start + context + horizon, channel]
            errors.append(forecaster(history[None])[0] - truth)
    errors = np.array(errors)
    result = evaluate_forecaster(forecaster, series, context, horizon, window_stride=stride,
                                 max_batch_values=max_batch_values)
    assert result["mse"] == pytest.approx(np.mean(errors ** 2), rel=1e-12)
    assert result["mae"] == pytest.approx(np.mean(np.abs(errors)), rel=1e-12)
    assert result["n_windows"] == len(errors) // 2
    assert result["n_channels"] == 2
    assert result["n_values"] == errors.size


def test_oracle_forecaster_has_zero_error():
    # Exact integer ramps: extrapolating the last step is a perfect forecast.
    series = np.column_stack([np.arange(50.0), 3.0 * np.arange(50.0) - 7.0])
    def oracle(contexts):
        step = contexts[:, -1:] - contexts[:, -2:-1]
        return contexts[:, -1:] + step * np.arange(1, 5)
    result = evaluate_forecaster(oracle, series, 6, 4)
    assert result["mse"] == 0.0 and result["mae"] == 0.0
    assert result["n_windows"] == 50 - 6 - 4 + 1


def test_evaluate_forecaster_accepts_float32_and_rejects_wrong_shapes():
    series = np.random.default_rng(1).standard_normal((20, 3))
    as_float32 = evaluate_forecaster(lambda x: np.zeros((len(x), 2), dtype=np.float32), series, 4, 2)
    windows = np.lib.stride_tricks.sliding_window_view(series, 6, axis=0)[:, :, 4:]
    assert as_float32["mse"] == pytest.approx(np.mean(windows ** 2), rel=1e-12)
    with pytest.raises(ValueError, match="shape"):
        evaluate_forecaster(lambda x: np.zeros((len(x), 3)), series, 4, 2)
    with pytest.raises(ValueError, match="shorter than one window"):
        evaluate_forecaster(lambda x: x[:, :2], series, 15, 6)


# ------------------------------------------------------------------------------------------ splits
def test_ett_hour_split_lengths_context_prefixes_and_train_zscore(tmp_path):
    raw = distinct_raw_values(14_400 + 37, 2)
    path = write_series(tmp_path / "ETTh1.csv", raw)
    task = load_forecast_task("ETTh1", 96, path=path)
    context = 512
    assert task.name == "ETTh1-96" and task.context == context
    assert task.train.shape == (8640, 2)
    assert task.val.shape == (context + 2880, 2)
    assert task.test.shape == (context + 2880, 2)
    # Undo the z-scoring and compare with the raw rows each slice must cover.
    np.testing.assert_allclose(task.train * task.std + task.mean, raw[:8640], rtol=1e-12)
    np.testing.assert_allclose(task.val * task.std + task.mean, raw[8640 - context:11520], rtol=1e-12)
    np.testing.assert_allclose(task.test * task.std + task.mean, raw[11520 - context:14400], rtol=1e-12)
    np.testing.assert_allclose(task.mean, raw[:8640].mean(axis=0))
    np.testing.assert_allclose(task.std, raw[:8640].std(axis=0))
    np.testing.assert_allclose(task.train_val() * task.std + task.mean, raw[:11520], rtol=1e-12)
    assert task.n_test_windows == 2880 - 96 + 1


def test_ett_minute_split_is_four_times_the_hourly_one(tmp_path):
    raw = distinct_raw_values(57_600, 1)
    path = write_series(tmp_path / "ETTm2.csv", raw, freq="15min")
    task = load_forecast_task("ETTm2", 720, path=path, context=64)
    assert task.train.shape == (34_560, 1)
    assert task.val.shape == (64 + 11_520, 1)
    assert task.test.shape == (64 + 11_520, 1)
    np.testing.assert_allclose(task.test * task.std + task.mean, raw[46_080 - 64:], rtol=1e-12)


@pytest.mark.parametrize("n_rows, expected", [(1000, (700, 100, 200)), (1003, (702, 101, 200))])
def test_ratio_split_lengths_and_prefixes(tmp_path, n_rows, expected):
    raw = distinct_raw_values(n_rows, 3)
    path = write_series(tmp_path / "weather.csv", raw, freq="10min")
    task = load_forecast_task("weather", 24, path=path, context=96)
    n_train, n_val, n_test = expected
    assert (task.n_train, task.n_val, task.n_test) == expected
    assert task.val.shape == (96 + n_val, 3) and task.test.shape == (96 + n_test, 3)
    np.testing.assert_allclose(task.val[:96], task.train[-96:])
    np.testing.assert_allclose(task.test * task.std + task.mean, raw[n_train + n_val - 96:], rtol=1e-12)


def test_zscore_uses_training_rows_only(tmp_path):
    raw = np.concatenate([np.random.default_rng(2).normal(5.0, 2.0, 700), np.full(300, 1000.0)])
    path = write_series(tmp_path / "weather.csv", raw, freq="10min")
    task = load_forecast_task("weather", 24, path=path, context=96)
    assert task.mean[0] == pytest.approx(raw[:700].mean())
    assert task.std[0] == pytest.approx(raw[:700].std())
    assert task.train.mean() == pytest.approx(0.0, abs=1e-12)
    assert task.train.std() == pytest.approx(1.0)
    assert task.test[-1, 0] == pytest.approx((1000.0 - raw[:700].mean()) / raw[:700].std())


def test_too_few_rows_is_a_format_error(tmp_path):
    path = write_series(tmp_path / "ETTh1.csv", distinct_raw_values(10_000, 2))
    with pytest.raises(TaskSizeError, match="fixed ETT split") as error:
        load_forecast_task("ETTh1", 96, path=path)
    assert f"{path} has 10000 rows" in str(error.value) and "at least 14400 rows" in str(error.value)


@pytest.mark.parametrize("context, horizons, expected", [
    (800, [24], "the context of 800 is longer than the 700 training rows"),
    (96, [24, 150, 192], "horizons 150, 192 are longer than the val split (100 rows)"),
])
def test_context_and_horizons_must_fit_the_ratio_split(tmp_path, context, horizons, expected):
    path = write_series(tmp_path / "weather.csv", distinct_raw_values(1000, 2), freq="10min")
    with pytest.raises(TaskSizeError) as error:
        check_task_fits("weather", path, 1000, context, horizons)
    assert expected in str(error.value) and "700/100/200" in str(error.value) and str(path) in str(error.value)
    with pytest.raises(TaskSizeError):
        load_forecast_task("weather", max(horizons), path=path, context=context)
    check_task_fits("weather", path, 1000, 96, [24, 100])    # at the limits: fits


# -------------------------------------------------------------------------------- dirty values
def test_dirty_values_are_interpolated_and_counted(tmp_path):
    path = tmp_path / "dirty.csv"
    path.write_text(
        "date,a,b\n"
        "2020-01-01 00:00:00,,10\n"          # leading gap in a -> nearest value (2)
        "2020-01-01 01:00:00,2,-9999\n"      # sentinel in b -> linear between 10 and 40 -> 20
        "2020-01-01 01:00:00,99,99\n"        # duplicated timestamp -> dropped
        "2020-01-01 02:00,inf,30\n"          # same instant written differently is not a duplicate of 01:00
        "2020-01-01 03:00:00,6,-9999.0\n"
        "2020-01-01 04:00:00,8,50\n"
        "2020-01-01 05:00:00,-inf,60\n")     # trailing non-finite -> nearest value (8)
    loaded = load_series(path)
    np.testing.assert_allclose(loaded.values[:, 0], [2, 2, 4, 6, 8, 8])
    np.testing.assert_allclose(loaded.values[:, 1], [10, 20, 30, 40, 50, 60])
    assert loaded.channel_names == ["a", "b"]
    assert loaded.cleaning == {"duplicate_timestamps": 1, "missing_values": 1,
                               "non_finite_values": 2, "sentinel_values": 2, "blank_lines": 0}
    assert describe_cleaning(path, loaded.cleaning) == (
        "dirty.csv: 5 cells interpolated (-9999: 2, empty/NaN: 1, inf: 2), 1 duplicate timestamp dropped (first kept)")
    values, names = load_series(path)  # tuple-style unpacking
    assert names == ["a", "b"] and values.shape == (6, 2)


def test_duplicated_timestamp_written_in_another_format_is_dropped(tmp_path):
    path = tmp_path / "dup.csv"
    path.write_text("date,a\n2020-01-01 00:00:00,1\n2020-01-01 00:00,5\n2020-01-01 01:00:00,3\n")
    loaded = load_series(path)
    np.testing.assert_array_equal(loaded.values[:, 0], [1, 3])
    assert loaded.cleaning["duplicate_timestamps"] == 1


def test_all_missing_channel_is_a_format_error(tmp_path):
    path = tmp_path / "empty_channel.csv"
    path.write_text("date,a,b\n2020-01-01,1,-9999\n2020-01-02,2,\n")
    with pytest.raises(DatasetFormatError, match="'b'") as error:
        load_series(path)
    assert str(path) in str(error.value)


def test_gzip_file_is_read(tmp_path):
    path = tmp_path / "series.csv.gz"
    frame = pd.DataFrame({"date": ["2020-01-01", "2020-01-02"], "x": [1.5, 2.5]})
    frame.to_csv(path, index=False, compression="gzip")
    np.testing.assert_array_equal(load_series(path).values[:, 0], [1.5, 2.5])


def test_missing_date_column_is_a_format_error(tmp_path):
    path = tmp_path / "nodate.csv"
    path.write_text("time,a\n1,2\n2,3\n")
    with pytest.raises(DatasetFormatError, match="no 'date' column") as error:
        load_series(path)
    assert str(path) in str(error.value)


def test_text_channel_is_a_format_error(tmp_path):
    path = tmp_path / "text.csv"
    path.write_text("date,a,label\n2020-01-01,1,x\n2020-01-02,2,y\n")
    with pytest.raises(DatasetFormatError, match="'label': 'x' is not a number") as error:
        load_series(path)
    assert str(error.value).startswith(f"{path}:2: column 'label': 'x' is not a number")


def test_blank_lines_are_skipped_counted_and_keep_line_numbers(tmp_path):
    path = tmp_path / "blank.csv"
    path.write_text("date,a\n\n2020-01-01,1\n\n2020-01-02,3\n2020-01-03,oops\n")
    with pytest.raises(DatasetFormatError) as error:
        load_series(path)
    assert str(error.value).startswith(f"{path}:6: column 'a': 'oops'")
    path.write_text("date,a\n\n2020-01-01,1\n\n2020-01-02,3\n")
    loaded = load_series(path)
    assert loaded.values[:, 0].tolist() == [1.0, 3.0] and loaded.lines.tolist() == [3, 5]
    assert loaded.cleaning["blank_lines"] == 2


@pytest.mark.parametrize("text, line, message", [
    ("date,a,b\n2020-01-01,1,2,3\n2020-01-02,1,2\n", 2, "the row has 4 fields but the header has 3"),
    ("date,a,b\n2020-01-01,1,2\n2020-01-02,1,2,3\n", 3, "the row has 4 fields but the header has 3"),
    ("date;a\n2020-01-01;1,5\n", 1, "separated by ';'"),
    ("date,a\n2020-01-01,\"1,5\"\n", 2, "column 'a': '1,5' is not a number"),
    ("", None, "the file is empty"),
    ("date,a\n", None, "no data rows"),
])
def test_malformed_csv_names_file_and_line(tmp_path, text, line, message):
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(DatasetFormatError) as error:
        load_series(path)
    assert str(error.value).startswith(f"{path}:{line}: " if line else f"{path}: ")
    assert message in str(error.value) and "\n" not in str(error.value)


def test_bad_gzip_names_the_file(tmp_path):
    plain = tmp_path / "plain.csv.gz"
    plain.write_text("date,a\n2020-01-01,1\n")
    with pytest.raises(DatasetFormatError, match="not valid gzip") as error:
        load_series(plain)
    assert str(error.value).startswith(f"{plain}: ")
    cut = tmp_path / "cut.csv.gz"
    cut.write_bytes(gzip.compress(("date,a\n" + "2020-01-01,1.2345\n" * 5000).encode())[:200])
    with pytest.raises(DatasetFormatError, match="truncated") as error:
        load_series(cut)
    assert str(error.value).startswith(f"{cut}: ")


def test_value_whose_square_overflows_is_an_error(tmp_path):
    raw = distinct_raw_values(1000, 2)
    raw[[300, 301], 1] = 1e308
    path = write_series(tmp_path / "weather.csv", raw, freq="10min")
    with pytest.raises(DatasetFormatError) as error:
        load_series(path)
    assert str(error.value).startswith(f"{path}:302: column 'c1': 1e+308 is too large")


def test_zscore_overflow_is_an_error(tmp_path):
    # Training rows vary by 1e-150, a test row is 1e10: its z-score (1e160) squares to inf.
    raw = np.zeros((1000, 1))
    raw[:700:2, 0] = 1e-150
    raw[950, 0] = 1e10
    path = write_series(tmp_path / "weather.csv", raw, freq="10min")
    load_series(path)     # every raw value is fine
    with pytest.raises(DatasetFormatError) as error:
        load_forecast_task("weather", 24, path=path, context=96)
    assert str(error.value).startswith(f"{path}:952: column 'c0': 1e+10 is ")
    assert "training standard deviations" in str(error.value)


# ---------------------------------------------------------------------------------- file search
def test_missing_file_lists_every_path_looked_for(tmp_path, monkeypatch):
    env_root = tmp_path / "env"
    env_root.mkdir()
    monkeypatch.setenv("LAUNCHER_DATA_ROOT", str(env_root))
    with pytest.raises(DatasetNotFoundError) as error:
        find_dataset_file("weather", tmp_path / "given")
    message = str(error.value)
    for expected in (tmp_path / "given" / "weather.csv", tmp_path / "given" / "weather" / "weather.csv.gz",
                     env_root / "weather.csv", EMBEDDED_DIR / "weather.csv"):
        assert str(expected) in message
    assert DATASETS["weather"].source in message


def test_missing_file_error_from_load_forecast_task(tmp_path, monkeypatch):
    monkeypatch.delenv("LAUNCHER_DATA_ROOT", raising=False)
    with pytest.raises(DatasetNotFoundError, match="traffic.csv"):
        load_forecast_task("traffic", 96, data_root=tmp_path)


def test_search_order_and_layouts(tmp_path, monkeypatch):
    monkeypatch.delenv("LAUNCHER_DATA_ROOT", raising=False)
    assert find_dataset_file("ETTh1") == EMBEDDED_DIR / "ETTh1.csv.gz"

    bundle = tmp_path / "bundle" / "ETT-small"
    bundle.mkdir(parents=True)
    write_series(bundle / "ETTh1.csv", [1.0, 2.0])
    monkeypatch.setenv("LAUNCHER_DATA_ROOT", str(tmp_path / "bundle"))
    assert find_dataset_file("ETTh1") == bundle / "ETTh1.csv"

    flat = write_series(tmp_path / "ETTh1.csv", [1.0, 2.0])
    assert find_dataset_file("ETTh1", tmp_path) == flat          # data_root before the environment
    assert find_dataset_file("ETTh1", flat) == flat              # data_root may be the file itself
    unpacked = tmp_path / "other" / "all_six_datasets" / "illness"
    unpacked.mkdir(parents=True)
    write_series(unpacked / "national_illness.csv", [1.0, 2.0], freq="W")
    assert find_dataset_file("illness", tmp_path / "other") == unpacked / "national_illness.csv"


def test_unknown_dataset_name():
    with pytest.raises(ValueError, match="unknown forecasting dataset"):
        find_dataset_file("ETTh3")


# ------------------------------------------------------------------------------------ real data
def test_embedded_etth1_task_shapes():
    task = load_forecast_task("ETTh1", 96, data_root=EMBEDDED_DIR)
    assert task.channel_names == ["HUFL", "HULL", "MUFL", "MULL", "LUFL", "LULL", "OT"]
    assert task.train.shape == (8640, 7)
    assert task.val.shape == (2880 + 512, 7)
    assert task.test.shape == (2880 + 512, 7)
    assert task.train_val().shape == (11_520, 7)
    assert task.cleaning == {"duplicate_timestamps": 0, "missing_values": 0,
                             "non_finite_values": 0, "sentinel_values": 0, "blank_lines": 0}
    assert describe_cleaning(task.path, task.cleaning) is None
    np.testing.assert_allclose(task.train.mean(axis=0), 0.0, atol=1e-10)
    assert np.isfinite(task.test).all()
