"""Forecasting datasets: the registry, where to find each file, and how a file is read and cleaned.

Every dataset is a CSV (optionally gzip-compressed) in the standard layout of the Autoformer
`all_six_datasets` bundle: a `date` column followed by one numeric column per channel.

Dirty-value policy of `load_series` (the standard files have none of these; user files may):

1. The `date` column is required and dropped. Every other column is a channel and must be numeric;
   a text value anywhere in a channel is a `DatasetFormatError` naming the file, column, line and value.
2. Rows whose timestamp repeats an earlier row are dropped (the first occurrence is kept), and counted.
3. Missing cells, non-finite values (inf, -inf) and the sentinel -9999 become NaN.
4. NaNs are filled by linear interpolation along time (row order); a gap at the start or end takes the
   nearest observed value. A channel with no observed value at all is a `DatasetFormatError`.

The counts of what was cleaned are returned with the values (`LoadedSeries.cleaning`).
(The authors' loader fills gaps with cubic interpolation; on the standard files, which have no gaps,
both give identical data. Linear is used because cubic overshoots around long gaps.)
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np
import pandas as pd

ENV_DATA_ROOT = "LAUNCHER_DATA_ROOT"
EMBEDDED_DIR = Path(__file__).parent / "data"

AUTOFORMER_BUNDLE = ("the 'all_six_datasets' bundle linked from the Autoformer README "
                     "(https://github.com/thuml/Autoformer)")
ETT_SOURCE = "https://github.com/zhouhaoyi/ETDataset (folder ETT-small/), also in " + AUTOFORMER_BUNDLE

# Values that some exports use to mean "missing".
SENTINEL_VALUES = (-9999.0,)

HOURLY_HORIZONS = (96, 192, 336, 720)


@dataclass(frozen=True)
class ForecastDatasetInfo:
    name: str
    filename: str
    channels: int
    freq: str
    horizons: tuple[int, ...]
    context: int
    split: str      # "ett_hour", "ett_minute" or "ratio" (see tasks.timeseries.split_sizes)
    season: int     # natural period in rows, used by the seasonal-naive baseline
    source: str
    subfolder: str  # folder of the file inside the Autoformer bundle


DATASETS: dict[str, ForecastDatasetInfo] = {
    info.name: info for info in (
        ForecastDatasetInfo("ETTh1", "ETTh1.csv", 7, "1h", HOURLY_HORIZONS, 512, "ett_hour", 24, ETT_SOURCE, "ETT-small"),
        ForecastDatasetInfo("ETTh2", "ETTh2.csv", 7, "1h", HOURLY_HORIZONS, 512, "ett_hour", 24, ETT_SOURCE, "ETT-small"),
        # 96 quarter-hours = one day.
        ForecastDatasetInfo("ETTm1", "ETTm1.csv", 7, "15min", HOURLY_HORIZONS, 512, "ett_minute", 96, ETT_SOURCE, "ETT-small"),
        ForecastDatasetInfo("ETTm2", "ETTm2.csv", 7, "15min", HOURLY_HORIZONS, 512, "ett_minute", 96, ETT_SOURCE, "ETT-small"),
        # Electricity and traffic also have a weekly (168) cycle; the daily one is the shorter, dominant period.
        ForecastDatasetInfo("electricity", "electricity.csv", 321, "1h", HOURLY_HORIZONS, 512, "ratio", 24,
                            AUTOFORMER_BUNDLE, "electricity"),
        ForecastDatasetInfo("traffic", "traffic.csv", 862, "1h", HOURLY_HORIZONS, 512, "ratio", 24,
                            AUTOFORMER_BUNDLE, "traffic"),
        # 144 ten-minute steps = one day.
        ForecastDatasetInfo("weather", "weather.csv", 21, "10min", HOURLY_HORIZONS, 512, "ratio", 144,
                            AUTOFORMER_BUNDLE, "weather"),
        # Weekly data with a yearly cycle; the paper-era Auto-AR uses a 96-week context for ILI.
        ForecastDatasetInfo("illness", "national_illness.csv", 7, "1w", (24, 36, 48, 60), 96, "ratio", 52,
                            AUTOFORMER_BUNDLE, "illness"),
        # Exchange rates have no natural period (close to a random walk); 5 = one trading week is used only
        # so that seasonal-naive is defined.
        ForecastDatasetInfo("exchange_rate", "exchange_rate.csv", 8, "1d", HOURLY_HORIZONS, 512, "ratio", 5,
                            AUTOFORMER_BUNDLE, "exchange_rate"),
    )
}


class DatasetNotFoundError(Exception):
    """No file for a dataset in any searched place; the message lists every path tried and the source."""


class DatasetFormatError(Exception):
    """A dataset file exists but cannot be used; the message names the file and what is wrong."""


def dataset_info(name: str) -> ForecastDatasetInfo:
    try:
        return DATASETS[name]
    except KeyError:
        raise ValueError(f"unknown forecasting dataset {name!r}; known: {', '.join(DATASETS)}") from None


def _search_roots(data_root: str | Path | None) -> list[Path]:
    roots = []
    if data_root is not None:
        roots.append(Path(data_root))
    if os.environ.get(ENV_DATA_ROOT):
        roots.append(Path(os.environ[ENV_DATA_ROOT]))
    roots.append(EMBEDDED_DIR)
    return roots


def candidate_paths(info: ForecastDatasetInfo, root: Path) -> list[Path]:
    """Where a file may sit under one root: flat, in its bundle sub-folder, or inside an unpacked bundle."""
    folders = [root, root / info.subfolder, root / "all_six_datasets" / info.subfolder]
    return [folder / name for folder in folders for name in (info.filename, info.filename + ".gz")]


def find_dataset_file(name: str, data_root: str | Path | None = None) -> Path:
    """The file of dataset `name`: searched in `data_root`, then $LAUNCHER_DATA_ROOT, then the embedded data.

    `data_root` may also point straight at the file.
    """
    info = dataset_info(name)
    if data_root is not None and Path(data_root).is_file():
        return Path(data_root)
    tried: list[Path] = []
    for root in _search_roots(data_root):
        for path in candidate_paths(info, root):
            if path.is_file():
                return path
            tried.append(path)
    listing = "\n  ".join(str(p) for p in tried)
    raise DatasetNotFoundError(
        f"dataset {name!r} ({info.filename}) not found. Looked for:\n  {listing}\n"
        f"Download it from {info.source}, then pass its folder as data_root or set ${ENV_DATA_ROOT}.")


@dataclass(frozen=True)
class LoadedSeries:
    values: np.ndarray           # (T, C) float64, finite
    channel_names: list[str]
    cleaning: dict[str, int] = field(default_factory=dict)

    def __iter__(self) -> Iterator:
        # Lets callers write `values, names = load_series(path)`.
        return iter((self.values, self.channel_names))


def _date_column(frame: pd.DataFrame, path: Path) -> str:
    for column in frame.columns:
        if str(column).strip().lower() == "date":
            return column
    raise DatasetFormatError(
        f"{path}: no 'date' column (columns: {list(frame.columns)[:10]}); "
        "expected a 'date' column followed by numeric channel columns")


def _numeric_channels(channels: pd.DataFrame, path: Path) -> np.ndarray:
    columns = []
    for name in channels.columns:
        column = channels[name]
        if not pd.api.types.is_numeric_dtype(column):
            parsed = pd.to_numeric(column, errors="coerce")
            bad = parsed.isna() & column.notna()
            if bad.any():
                row = int(np.flatnonzero(bad.to_numpy())[0])
                raise DatasetFormatError(
                    f"{path}: column {name!r} is not numeric (line {row + 2} holds {column.iloc[row]!r}); "
                    "every column except 'date' must hold numbers")
            column = parsed
        columns.append(column.to_numpy(dtype=np.float64))
    return np.column_stack(columns)


def _duplicate_timestamps(dates: pd.Series) -> np.ndarray:
    # Compare parsed timestamps so "2016-07-01 00:00" and "2016-07-01 00:00:00" count as the same;
    # an unparsable date is compared as written.
    parsed = pd.to_datetime(dates, errors="coerce")  # fast path: one format inferred from the first row
    unparsed = parsed.isna() & dates.notna()
    if unparsed.any():
        parsed[unparsed] = pd.to_datetime(dates[unparsed], errors="coerce", format="mixed")
    keys = parsed.astype(str).where(parsed.notna(), dates.astype(str))
    return keys.duplicated(keep="first").to_numpy()


def _fill_gaps(values: np.ndarray, names: list[str], path: Path) -> None:
    rows = np.arange(len(values))
    for c in range(values.shape[1]):
        missing = np.isnan(values[:, c])
        if not missing.any():
            continue
        if missing.all():
            raise DatasetFormatError(f"{path}: channel {names[c]!r} has no valid value (all missing, inf or -9999)")
        # np.interp holds the first/last observed value outside the observed range.
        values[missing, c] = np.interp(rows[missing], rows[~missing], values[~missing, c])


def load_series(path: str | Path) -> LoadedSeries:
    """Read a `date` + numeric-channels CSV (.csv or .csv.gz) into float64 (T, C), cleaned as the module says."""
    path = Path(path)
    try:
        frame = pd.read_csv(path)
    except (OSError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as error:
        raise DatasetFormatError(f"{path}: cannot be read as CSV ({error})") from error
    date_column = _date_column(frame, path)
    channels = frame.drop(columns=[date_column])
    if channels.shape[1] == 0:
        raise DatasetFormatError(f"{path}: no channel columns besides 'date'")
    names = [str(c) for c in channels.columns]
    values = _numeric_channels(channels, path)

    duplicated = _duplicate_timestamps(frame[date_column])
    values = values[~duplicated]
    missing = np.isnan(values)
    non_finite = np.isinf(values)
    sentinel = np.isin(values, SENTINEL_VALUES)
    values[non_finite | sentinel] = np.nan
    cleaning = {
        "duplicate_timestamps": int(duplicated.sum()),
        "missing_values": int(missing.sum()),
        "non_finite_values": int(non_finite.sum()),
        "sentinel_values": int(sentinel.sum()),
    }
    _fill_gaps(values, names, path)
    return LoadedSeries(values=values, channel_names=names, cleaning=cleaning)
