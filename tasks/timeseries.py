"""Long-horizon forecasting tasks: splits, normalization and the windowed MSE/MAE metric.

Protocol (Informer/Autoformer convention, as used by the paper's Auto-AR):

- Splits: ETT hourly 12/4/4 months = 8640/2880/2880 rows (rows after 14,400 unused), ETT 15-minute x4;
  every other dataset 70/10/20 with n_train = int(0.7 T), n_test = int(0.2 T), n_val = the rest.
  A task may give its own split (`split=`): {"ratios": [train, val, test]} (summing to 1; n_train =
  int(train T), n_test = int(test T), n_val = the rest) or {"dates": [val_start, test_start]} (rows
  dated before val_start train, before test_start val, the rest test; the rows must be in time order).
- A user's own file (a dataset name not in DATASETS, with `path`) is split 70/10/20 unless it gives a
  split; its season (`freq`, steps) is what seasonal_naive and auto_arima repeat (None: not seasonal).
- Each channel is z-scored with the mean and (population) std of its training rows; a channel that is
  constant on the training rows keeps std 1, as sklearn's StandardScaler does.
- The val and test slices are prefixed by the `context` rows before their first target, so the first
  forecast window predicts exactly the first val/test row.
- Windows have stride 1 and length context + horizon; every channel of every window is one sample; MSE
  and MAE average over samples x horizon steps, in normalized units.

Dataset files, the registry and the dirty-value policy live in `tasks.timeseries_data`.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from tasks.timeseries_csv import AUTO_DATE, LoadedSeries, describe_cleaning, load_series, read_header, too_large_error
from tasks.timeseries_data import (
    DATASETS,
    EMBEDDED_DIR,
    MAX_ABS_VALUE,
    DatasetFormatError,
    DatasetNotFoundError,
    ForecastDatasetInfo,
    dataset_info,
    find_dataset_file,
)

__all__ = [
    "AUTO_DATE", "DATASETS", "DEFAULT_USER_CONTEXT", "EMBEDDED_DIR", "DatasetFormatError", "DatasetNotFoundError",
    "ForecastDatasetInfo", "ForecastTask", "LoadedSeries", "TaskSizeError", "check_task_fits", "describe_cleaning",
    "evaluate_forecaster", "find_dataset_file", "load_forecast_task", "load_series", "read_header", "split_sizes",
    "task_split_sizes", "user_series",
]

# Context of a user's own dataset when the task gives none: 336 (the common long-horizon context), or the
# training rows when there are fewer.
DEFAULT_USER_CONTEXT = 336

ETT_HOUR_SPLIT = (12 * 30 * 24, 4 * 30 * 24, 4 * 30 * 24)


def split_sizes(split: str, n_rows: int) -> tuple[int, int, int]:
    """(n_train, n_val, n_test) rows for a split protocol and a file of `n_rows` rows."""
    if split == "ett_hour":
        return ETT_HOUR_SPLIT
    if split == "ett_minute":
        return tuple(4 * n for n in ETT_HOUR_SPLIT)
    if split == "ratio":
        n_train, n_test = int(0.7 * n_rows), int(0.2 * n_rows)
        return n_train, n_rows - n_train - n_test, n_test
    raise ValueError(f"unknown split protocol {split!r}; expected 'ett_hour', 'ett_minute' or 'ratio'")


def user_series(path: str | Path, *, date_column: str | None = None, target_channels=None) -> LoadedSeries:
    """`load_series` for a user's own file: `date_column` None means AUTO_DATE (the first column if it
    parses as dates, else none)."""
    return load_series(path, date_column=AUTO_DATE if date_column is None else date_column,
                       target_channels=None if target_channels is None else list(target_channels))


def _split_text(split: dict) -> str:
    if "ratios" in split:
        return "ratios " + "/".join(f"{r:g}" for r in split["ratios"])
    return f"dates {split['dates'][0]} / {split['dates'][1]}"


def task_split_sizes(dataset: str, file: Path, series: LoadedSeries, split: dict | None = None
                     ) -> tuple[int, int, int]:
    """(n_train, n_val, n_test) of a task: its own `split` ({"ratios": [...]} or {"dates": [...]}), else the
    dataset's protocol (a user's dataset: 70/10/20). A split by dates needs dates in time order."""
    n_rows = len(series.values)
    if split is None:
        info = DATASETS.get(dataset)
        return split_sizes(info.split if info is not None else "ratio", n_rows)
    if "ratios" in split:
        train, _, test = (float(r) for r in split["ratios"])
        n_train, n_test = int(train * n_rows), int(test * n_rows)
        return n_train, n_rows - n_train - n_test, n_test
    if series.dates is None:
        raise DatasetFormatError("a split by dates needs a date column, and the file has none", path=file,
                                 line=1, hint="Set `date_column`, or split by `ratios`")
    dates = series.dates
    if np.isnat(dates).any():
        row = int(np.flatnonzero(np.isnat(dates))[0])
        raise DatasetFormatError("the date cannot be parsed, so the split by dates cannot place the row", path=file,
                                 line=None if series.lines is None else int(series.lines[row]),
                                 hint="Fix the date, or split by `ratios`")
    if (np.diff(dates.astype("int64")) < 0).any():
        row = int(np.flatnonzero(np.diff(dates.astype("int64")) < 0)[0]) + 1
        raise DatasetFormatError("the rows are not in time order (this date is earlier than the row before)",
                                 path=file, line=None if series.lines is None else int(series.lines[row]),
                                 hint="Sort the file by date, or split by `ratios`")
    val_start, test_start = (np.datetime64(str(d), "ns") for d in split["dates"])
    n_train = int((dates < val_start).sum())
    n_val = int(((dates >= val_start) & (dates < test_start)).sum())
    return n_train, n_val, n_rows - n_train - n_val


@dataclass
class ForecastTask:
    dataset: str
    horizon: int
    context: int
    name: str
    train: np.ndarray   # (n_train, C), z-scored
    val: np.ndarray     # (context + n_val, C): the `context` rows before the boundary, then the val rows
    test: np.ndarray    # (context + n_test, C): likewise
    mean: np.ndarray    # (C,) training mean of the raw data
    std: np.ndarray     # (C,) training std of the raw data
    channel_names: list[str]
    path: Path | None = None
    cleaning: dict[str, int] = field(default_factory=dict)
    season: int | None = None   # period in steps (the registry's, or the task's `freq`); None: not seasonal

    @property
    def n_channels(self) -> int:
        return self.train.shape[1]

    @property
    def n_train(self) -> int:
        return len(self.train)

    @property
    def n_val(self) -> int:
        return len(self.val) - self.context

    @property
    def n_test(self) -> int:
        return len(self.test) - self.context

    @property
    def n_val_windows(self) -> int:
        return self.n_val - self.horizon + 1

    @property
    def n_test_windows(self) -> int:
        return self.n_test - self.horizon + 1

    def train_val(self) -> np.ndarray:
        """Train and val rows, contiguous, each row once: (n_train + n_val, C)."""
        return np.concatenate([self.train, self.val[self.context:]], axis=0)


class TaskSizeError(DatasetFormatError):
    """The file is readable but too short for the task's split, context or horizons (the message names it)."""


def check_task_fits(dataset: str, file: Path, n_rows: int, context: int, horizons,
                    sizes: tuple[int, int, int] | None = None, split: dict | None = None) -> None:
    """Raise `TaskSizeError` (naming the task, the sizes and what to change) unless the split of a file of
    `n_rows` rows holds the context before every target and at least one val and one test window per horizon.
    `sizes` are the task's split sizes when it gives its own `split` (or is a user's dataset)."""
    info = DATASETS.get(dataset)
    protocol = info.split if info is not None and split is None else "ratio"
    n_train, n_val, n_test = sizes = split_sizes(protocol, n_rows) if sizes is None else tuple(sizes)
    horizons = sorted(int(h) for h in horizons)
    label = f"task {dataset} (context {context}, horizons {', '.join(map(str, horizons))})"
    if protocol != "ratio" and n_rows < sum(sizes):
        raise TaskSizeError(
            f"{label}: {dataset} uses the fixed ETT split of {n_train}/{n_val}/{n_test} train/val/test rows "
            f"({sum(sizes)} in all), but {file} has {n_rows} rows",
            hint=f"Point the task at the complete {info.filename} (at least {sum(sizes)} rows)")
    if split is not None:
        split = f"{file}: {n_rows} rows, split by {_split_text(split)} into {n_train}/{n_val}/{n_test} train/val/test rows"
    elif protocol == "ratio":
        split = f"{file}: {n_rows} rows, split 70/10/20 into {n_train}/{n_val}/{n_test} train/val/test rows"
    else:
        split = f"{file}: split {n_train}/{n_val}/{n_test} train/val/test rows"
    problems, hints = [], []
    if n_train < context:
        problems.append(f"the context of {context} is longer than the {n_train} training rows")
        hints.append(f"set `context:` to at most {n_train}")
    too_long = [h for h in horizons if h > min(n_val, n_test)]
    if too_long:
        problems.append(f"horizon{'s' * (len(too_long) > 1)} {', '.join(map(str, too_long))} "
                        f"{'are' if len(too_long) > 1 else 'is'} longer than the "
                        + ("val" if n_val <= n_test else "test") + f" split ({min(n_val, n_test)} rows)")
        hints.append(f"use horizons of at most {min(n_val, n_test)}")
    if problems:
        raise TaskSizeError(f"{label}: " + "; ".join(problems) + f" ({split})",
                            hint=" and ".join(hints)[0].upper() + " and ".join(hints)[1:] + ", or use a longer file")


def _check_scaled(values: np.ndarray, mean: np.ndarray, std: np.ndarray, scaled: np.ndarray, n_train: int,
                  loaded: LoadedSeries, file: Path) -> None:
    """Training statistics and z-scores must be finite and small enough to square (tasks.timeseries_data rule 5)."""
    def line(row: int) -> int | None:
        return None if loaded.lines is None else int(loaded.lines[row])

    for c in np.flatnonzero(~(np.isfinite(mean) & np.isfinite(std))):
        row = int(np.argmax(np.abs(values[:n_train, c])))
        raise too_large_error(file, line(row), loaded.channel_names[c],
                              f"the mean or standard deviation of the channel's {n_train} training rows overflows "
                              f"float64 (its largest value is {values[row, c]:g})")
    with np.errstate(invalid="ignore"):
        bad = ~(np.abs(scaled) <= MAX_ABS_VALUE)
    if bad.any():
        row, c = np.argwhere(bad)[0]
        raise too_large_error(file, line(row), loaded.channel_names[c],
                              f"{values[row, c]:g} is {scaled[row, c]:.3g} training standard deviations from the "
                              f"training mean: its square overflows float64")


def load_forecast_task(dataset: str, horizon: int, *, data_root: str | Path | None = None,
                       context: int | None = None, path: str | Path | None = None,
                       series: LoadedSeries | None = None, date_column: str | None = None,
                       target_channels=None, split: dict | None = None, freq: int | None = None) -> ForecastTask:
    """The (dataset, horizon) task, z-scored with train statistics. `path` overrides the file search;
    `series` is that file already read by `load_series` (the preflight reads each file once).

    A dataset not in DATASETS is a user's own file: `path` is required, `date_column` defaults to the first
    column if it parses as dates, `context` to DEFAULT_USER_CONTEXT (or the training rows when fewer).
    `target_channels` keeps only those channels, `split` replaces the split protocol (see the module),
    `freq` the season."""
    info = DATASETS.get(dataset)
    if info is None and path is None:
        dataset_info(dataset)   # raises: unknown forecasting dataset
    if horizon < 1 or (context is not None and int(context) < 1):
        raise ValueError(f"horizon and context must be positive, got horizon={horizon}, context={context}")
    file = Path(path) if path is not None else find_dataset_file(dataset, data_root)
    if series is not None:
        loaded = series
    elif info is None or date_column is not None:
        loaded = user_series(file, date_column=date_column, target_channels=target_channels)
    else:
        loaded = load_series(file, target_channels=None if target_channels is None else list(target_channels))
    values = loaded.values
    own_split = split is not None or info is None
    sizes = task_split_sizes(dataset, file, loaded, split) if own_split else None
    if context is None:
        context = info.context if info is not None else min(DEFAULT_USER_CONTEXT, sizes[0])
    context = int(context)
    check_task_fits(dataset, file, len(values), context, [horizon], sizes=sizes, split=split)
    n_train, n_val, n_test = sizes if sizes is not None else split_sizes(info.split, len(values))

    with np.errstate(over="ignore", invalid="ignore"):
        mean = values[:n_train].mean(axis=0)
        std = values[:n_train].std(axis=0)
        std[std == 0] = 1.0
        scaled = (values[: n_train + n_val + n_test] - mean) / std
    _check_scaled(values, mean, std, scaled, n_train, loaded, file)
    val_end = n_train + n_val
    from tasks.registry import task_name

    season = int(freq) if freq is not None else (info.season if info is not None else None)
    return ForecastTask(
        dataset=dataset, horizon=int(horizon), context=context, name=task_name(dataset, "forecasting", horizon),
        train=scaled[:n_train],
        val=scaled[n_train - context: val_end],
        test=scaled[val_end - context: val_end + n_test],
        mean=mean, std=std, channel_names=loaded.channel_names, path=file, cleaning=loaded.cleaning,
        season=season)


def evaluate_forecaster(forecast: Callable[[np.ndarray], np.ndarray], series: np.ndarray, context: int,
                        horizon: int, *, window_stride: int = 1, max_batch_values: int = 4_000_000) -> dict:
    """MSE and MAE of `forecast` over the (context + horizon) windows of `series` (T, C).

    Windows start every `window_stride` rows; each channel of a window is one sample. `forecast` gets
    float64 contexts (N, context) and returns (N, horizon). Windows are built in batches of about
    `max_batch_values` values so memory stays bounded for any series length.
    """
    series = np.asarray(series, dtype=np.float64)
    if series.ndim == 1:
        series = series[:, None]
    n_rows, n_channels = series.shape
    width = context + horizon
    n_starts = n_rows - width + 1
    if n_starts < 1:
        raise ValueError(f"series of {n_rows} rows is shorter than one window (context {context} + horizon {horizon})")
    if window_stride < 1:
        raise ValueError(f"window_stride must be >= 1, got {window_stride}")
    windows = sliding_window_view(series, width, axis=0)  # (n_starts, C, width), a view
    n_windows = len(range(0, n_starts, window_stride))
    windows_per_batch = max(1, max_batch_values // (n_channels * width))

    squared, absolute = 0.0, 0.0
    for first in range(0, n_windows, windows_per_batch):
        last = min(n_windows, first + windows_per_batch)
        block = windows[first * window_stride: (last - 1) * window_stride + 1: window_stride]
        block = block.reshape(-1, width)  # copies: samples are (window, channel) pairs
        # The forecaster gets its own copy of the contexts, so it can never alter the targets.
        contexts = np.ascontiguousarray(block[:, :context])
        predicted = np.asarray(forecast(contexts), dtype=np.float64)
        if predicted.shape != (len(block), horizon):
            raise ValueError(f"forecast returned shape {predicted.shape}, expected {(len(block), horizon)}")
        error = predicted - block[:, context:]
        squared += float(np.einsum("ij,ij->", error, error))
        absolute += float(np.abs(error).sum())
    n_values = n_windows * n_channels * horizon
    return {"mse": squared / n_values, "mae": absolute / n_values, "n_windows": n_windows,
            "n_channels": n_channels, "n_values": n_values}
