"""Long-horizon forecasting tasks: splits, normalization and the windowed MSE/MAE metric.

Protocol (Informer/Autoformer convention, as used by the paper's Auto-AR):

- Splits: ETT hourly 12/4/4 months = 8640/2880/2880 rows (rows after 14,400 unused), ETT 15-minute x4;
  every other dataset 70/10/20 with n_train = int(0.7 T), n_test = int(0.2 T), n_val = the rest.
- Each channel is z-scored with the mean and (population) std of its training rows; a channel that is
  constant on the training rows keeps std 1, as sklearn's StandardScaler does.
- The val and test slices are prefixed by the `context` rows before their first target, so the first
  forecast window predicts exactly the first val/test row.
- Windows have stride 1 and length context + horizon; every channel of every window is one sample; MSE
  and MAE average over samples x horizon steps, in normalized units.

Dataset files, the registry and the dirty-value policy live in `tasks.timeseries_data`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from tasks.timeseries_data import (
    DATASETS,
    EMBEDDED_DIR,
    DatasetFormatError,
    DatasetNotFoundError,
    ForecastDatasetInfo,
    LoadedSeries,
    dataset_info,
    find_dataset_file,
    load_series,
)

__all__ = [
    "DATASETS", "EMBEDDED_DIR", "DatasetFormatError", "DatasetNotFoundError", "ForecastDatasetInfo",
    "ForecastTask", "LoadedSeries", "evaluate_forecaster", "find_dataset_file", "load_forecast_task",
    "load_series", "split_sizes",
]

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


def _check_enough_rows(path, n_rows: int, sizes: tuple[int, int, int], context: int, horizon: int) -> None:
    n_train, n_val, n_test = sizes
    problems = []
    if n_rows < n_train + n_val + n_test:
        problems.append(f"the split needs {n_train + n_val + n_test} rows ({n_train}/{n_val}/{n_test})")
    if n_train < context:
        problems.append(f"the {n_train} training rows are fewer than the context of {context}")
    if min(n_val, n_test) < horizon:
        problems.append(f"val ({n_val}) and test ({n_test}) rows must each cover the horizon of {horizon}")
    if problems:
        raise DatasetFormatError(f"{path}: too few rows ({n_rows}) for this task: " + "; ".join(problems))


def load_forecast_task(dataset: str, horizon: int, *, data_root: str | Path | None = None,
                       context: int | None = None, path: str | Path | None = None) -> ForecastTask:
    """The (dataset, horizon) task, z-scored with train statistics. `path` overrides the file search."""
    info = dataset_info(dataset)
    context = info.context if context is None else int(context)
    if horizon < 1 or context < 1:
        raise ValueError(f"horizon and context must be positive, got horizon={horizon}, context={context}")
    file = Path(path) if path is not None else find_dataset_file(dataset, data_root)
    loaded = load_series(file)
    values = loaded.values
    sizes = split_sizes(info.split, len(values))
    _check_enough_rows(file, len(values), sizes, context, horizon)
    n_train, n_val, n_test = sizes

    mean = values[:n_train].mean(axis=0)
    std = values[:n_train].std(axis=0)
    std[std == 0] = 1.0
    scaled = (values[: n_train + n_val + n_test] - mean) / std
    val_end = n_train + n_val
    return ForecastTask(
        dataset=dataset, horizon=int(horizon), context=context, name=f"{dataset}-{horizon}",
        train=scaled[:n_train],
        val=scaled[n_train - context: val_end],
        test=scaled[val_end - context: val_end + n_test],
        mean=mean, std=std, channel_names=loaded.channel_names, path=file, cleaning=loaded.cleaning)


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
