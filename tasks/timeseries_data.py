"""Forecasting datasets: the registry and where to find each file.

Every dataset is a CSV (optionally gzip-compressed) in the standard layout of the Autoformer
`all_six_datasets` bundle: a `date` column followed by one numeric column per channel. How a file is
read and cleaned (the dirty-value policy) is `tasks.timeseries_csv`.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

ENV_DATA_ROOT = "LAUNCHER_DATA_ROOT"
EMBEDDED_DIR = Path(__file__).parent / "data"

AUTOFORMER_BUNDLE = ("the 'all_six_datasets' bundle linked from the Autoformer README "
                     "(https://github.com/thuml/Autoformer)")
ETT_SOURCE = "https://github.com/zhouhaoyi/ETDataset (folder ETT-small/), also in " + AUTOFORMER_BUNDLE

# Values that some exports use to mean "missing".
SENTINEL_VALUES = (-9999.0,)

# A finite value larger than this squares to more than float64 holds (about 1.8e308), so the statistics
# and the squared errors of its channel would be inf or nan. Such a cell is an error, not a missing value.
MAX_ABS_VALUE = 1e154

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
    """A dataset file exists but cannot be used.

    `str()` is one line, ``<file>:<line>: column '<name>': <problem>. <hint>`` (line and column where they
    mean something). The parts are kept as attributes so the preflight can re-raise it as a `SpecError`.
    """

    def __init__(self, problem: str, *, path: str | Path | None = None, line: int | None = None,
                 column: str | None = None, hint: str | None = None):
        self.path = None if path is None else Path(path)
        self.line = line
        self.column = column
        self.problem = problem
        self.hint = hint
        super().__init__(self._text())

    @property
    def detail(self) -> str:
        """What is wrong, without the file and line."""
        return (f"column {self.column!r}: " if self.column is not None else "") + self.problem

    def _text(self) -> str:
        where = "" if self.path is None else (f"{self.path}:{self.line}: " if self.line else f"{self.path}: ")
        text = where + self.detail
        if self.hint:
            text = text.rstrip(".") + ". " + self.hint
        return text


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
    """Where a file may sit under one root (or its `forecasting/` folder): flat, in its bundle sub-folder,
    or inside an unpacked bundle."""
    folders = [folder for base in (root, root / "forecasting")
               for folder in (base, base / info.subfolder, base / "all_six_datasets" / info.subfolder)]
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
