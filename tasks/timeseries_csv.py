"""How a forecasting CSV is read and cleaned: `load_series` for the standard files and a user's own
("bring your own data"), with two options for a user file: which column holds the dates (`date_column`;
by default the first column if its cells parse as dates, else none) and which channels to keep
(`target_channels`; by default every other column).

Dirty-value policy of `load_series` (the standard files have none of these; user files may):

0. The file must be comma-separated UTF-8 text (gzip-compressed when its name ends in .gz) with a header
   line and at least one data row; a row with more fields than the header is an error. Blank lines are
   skipped (and counted); a row with fewer fields than the header has its last cells missing (rule 3).
1. The `date` column is required and dropped (a user file: the `date_column`, or none). Every other
   column (or each of the `target_channels`) is a channel and must be numeric; a text value anywhere in
   a channel is a `DatasetFormatError` naming the file, line, column and value.
2. Rows whose timestamp repeats an earlier row are dropped (the first occurrence is kept), and counted.
3. Missing cells, non-finite values (inf, -inf) and the sentinel -9999 become NaN.
4. NaNs are filled by linear interpolation along time (row order); a gap at the start or end takes the
   nearest observed value. A channel with no observed value at all is a `DatasetFormatError`.
5. A finite value beyond +-1e154 (`MAX_ABS_VALUE`: its square overflows float64, e.g. a 1e308 cell) is a
   `DatasetFormatError` naming its line and column, not a missing value: such a number is a corrupt cell or
   an unknown sentinel, and interpolating it silently would hide that. (`tasks.timeseries` applies the same
   rule after z-scoring: training statistics that overflow, or a z-score beyond 1e154, are errors.)

Every error is one line, `<file>:<line>: column '<name>': <problem>. <what to do>`.
The counts of what was cleaned are returned with the values (`LoadedSeries.cleaning`).
(The authors' loader fills gaps with cubic interpolation; on the standard files, which have no gaps,
both give identical data. Linear is used because cubic overshoots around long gaps.)
"""
from __future__ import annotations

import csv
import gzip
import re
import warnings
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from tasks.timeseries_data import MAX_ABS_VALUE, SENTINEL_VALUES, DatasetFormatError


@dataclass(frozen=True)
class LoadedSeries:
    values: np.ndarray           # (T, C) float64, finite
    channel_names: list[str]
    cleaning: dict[str, int] = field(default_factory=dict)
    lines: np.ndarray | None = None   # (T,) the file line each row came from (1 = the header), for messages
    dates: np.ndarray | None = None   # (T,) datetime64 of each row (NaT where unparsable); None: no date column

    def __iter__(self) -> Iterator:
        # Lets callers write `values, names = load_series(path)`.
        return iter((self.values, self.channel_names))


EXPECTED_LAYOUT = "Expected a 'date' column followed by numeric channel columns, comma-separated (e.g. `date,HUFL,OT`)"
_RAGGED = re.compile(r"Expected (\d+) fields in line (\d+), saw (\d+)")
_DECIMAL_COMMA = re.compile(r"^\s*[-+]?\d+,\d+\s*$")


def _open_text(path: Path):
    return gzip.open(path, "rt", encoding="utf-8", newline="") if path.name.endswith(".gz") \
        else open(path, encoding="utf-8", newline="")


def _separator_error(path: Path, header: list[str]) -> DatasetFormatError | None:
    """A header with no comma but a ';' or tab: the file uses another separator."""
    if len(header) != 1:
        return None
    for separator, name in ((";", "';'"), ("\t", "tabs")):
        if separator in header[0]:
            return DatasetFormatError(
                f"the header {header[0][:60]!r} is separated by {name}, not commas", path=path, line=1,
                hint="Save it as comma-separated CSV with '.' decimal points (e.g. `date,HUFL,OT`)")
    return None


def _ragged_error(path: Path, line: int, saw: int, expected: int) -> DatasetFormatError:
    return DatasetFormatError(
        f"the row has {saw} fields but the header has {expected}", path=path, line=line,
        hint="Remove the stray separator (a decimal comma such as 1,5 splits a number in two: write 1.5)")


def _first_long_row(path: Path) -> DatasetFormatError:
    """pandas only warns when the first data row is longer than the header: find that row with csv."""
    with _open_text(path) as handle:
        reader = csv.reader(handle)
        header = next(reader, [])
        separator = _separator_error(path, header)
        if separator is not None:
            return separator
        for row in reader:
            if len(row) > len(header):
                return _ragged_error(path, reader.line_num, len(row), len(header))
    return DatasetFormatError("a row has more fields than the header", path=path, hint=EXPECTED_LAYOUT)


def _read_frame(path: Path) -> pd.DataFrame:
    """The CSV as text cells; every way it can fail becomes one `DatasetFormatError` naming the file (and line)."""
    gz = path.name.endswith(".gz")
    try:
        with warnings.catch_warnings():
            # A first data row longer than the header makes pandas take the first column as the index
            # (shifting every column) or, with index_col=False, drop the extra field: neither is acceptable.
            warnings.simplefilter("error", pd.errors.ParserWarning)
            # Blank lines are kept (as all-empty rows, dropped later) so row i is line i + 2 of the file.
            return pd.read_csv(path, index_col=False, skip_blank_lines=False)
    except pd.errors.ParserWarning:
        raise _first_long_row(path) from None
    except pd.errors.EmptyDataError:
        raise DatasetFormatError("the file is empty", path=path, hint=EXPECTED_LAYOUT) from None
    except pd.errors.ParserError as error:
        match = _RAGGED.search(str(error))
        if match is None:
            raise DatasetFormatError(f"cannot be parsed as CSV ({str(error).strip()})", path=path,
                                     hint=EXPECTED_LAYOUT) from None
        expected, line, saw = (int(g) for g in match.groups())
        with _open_text(path) as handle:
            separator = _separator_error(path, next(csv.reader(handle), []))
        raise (separator or _ragged_error(path, line, saw, expected)) from None
    except gzip.BadGzipFile as error:
        raise DatasetFormatError(f"the name ends in .gz but the content is not valid gzip ({error})", path=path,
                                 hint="Rename a plain CSV to .csv, or compress it with `gzip FILE`") from None
    except (EOFError, zlib.error) as error:
        raise DatasetFormatError(f"the gzip stream is truncated or corrupt ({error})", path=path,
                                 hint="The file is incomplete: download or copy it again") from None
    except UnicodeDecodeError as error:
        hint = ("If it is gzip-compressed, give it a .gz name; otherwise save it as UTF-8 text" if not gz
                else "Save it as UTF-8 text")
        raise DatasetFormatError(f"is not UTF-8 text ({error.reason} at byte {error.start})", path=path,
                                 hint=hint) from None
    except OSError as error:
        raise DatasetFormatError(f"cannot be read ({error})", path=path) from None


def _date_column(frame: pd.DataFrame, path: Path) -> str:
    for column in frame.columns:
        if str(column).strip().lower() == "date":
            return column
    separator = _separator_error(path, [str(c) for c in frame.columns])
    if separator is not None:
        raise separator
    raise DatasetFormatError(f"no 'date' column in the header (columns: {list(frame.columns)[:10]})",
                             path=path, line=1, hint=EXPECTED_LAYOUT)


def _numeric_channels(channels: pd.DataFrame, path: Path, lines: np.ndarray) -> np.ndarray:
    """float64 (T, C); a text cell anywhere is an error naming the first such cell (by line)."""
    columns, first_bad = [], None
    for name in channels.columns:
        column = channels[name]
        if not pd.api.types.is_numeric_dtype(column):
            parsed = pd.to_numeric(column, errors="coerce")
            bad = np.flatnonzero((parsed.isna() & column.notna()).to_numpy())
            if len(bad) and (first_bad is None or bad[0] < first_bad[0]):
                first_bad = (int(bad[0]), name)
            column = parsed
        columns.append(column.to_numpy(dtype=np.float64))
    if first_bad is not None:
        row, name = first_bad
        value = channels[name].iloc[row]
        hint = ("It looks like a decimal comma: write numbers with a '.' decimal point (1.5, not 1,5)"
                if _DECIMAL_COMMA.match(str(value)) else
                "Every column except 'date' must hold numbers: fix the cell, or leave it empty to have it "
                "interpolated")
        raise DatasetFormatError(f"{value!r} is not a number", path=path, line=int(lines[row]), column=str(name),
                                 hint=hint)
    return np.column_stack(columns)


def _duplicate_timestamps(dates: pd.Series) -> np.ndarray:
    # Compare parsed timestamps so "2016-07-01 00:00" and "2016-07-01 00:00:00" count as the same;
    # an unparsable date is compared as written.
    parsed = _parse_dates(dates)
    keys = parsed.astype(str).where(parsed.notna(), dates.astype(str))
    return keys.duplicated(keep="first").to_numpy()


def too_large_error(path: Path, line: int | None, column: str, problem: str) -> DatasetFormatError:
    return DatasetFormatError(problem, path=path, line=line, column=column,
                              hint="If it means 'missing', leave the cell empty or write -9999 (both are "
                                   "interpolated); otherwise fix the value or rescale the column")


def _check_magnitudes(values: np.ndarray, names: list[str], path: Path, lines: np.ndarray) -> None:
    with np.errstate(invalid="ignore"):
        huge = np.abs(values) > MAX_ABS_VALUE       # NaN compares False: missing cells are not huge
    if huge.any():
        row, c = np.argwhere(huge)[0]                # the first one in file order
        raise too_large_error(path, int(lines[row]), names[c],
                              f"{values[row, c]:g} is too large: its square overflows float64 (the limit is "
                              f"{MAX_ABS_VALUE:g}), so statistics and errors would be inf or nan")


def _fill_gaps(values: np.ndarray, names: list[str], path: Path) -> None:
    rows = np.arange(len(values))
    for c in range(values.shape[1]):
        missing = np.isnan(values[:, c])
        if not missing.any():
            continue
        if missing.all():
            raise DatasetFormatError("no valid value: every cell is empty, NaN, inf or -9999", path=path,
                                     column=names[c], hint="Remove the column or fill in its values")
        # np.interp holds the first/last observed value outside the observed range.
        values[missing, c] = np.interp(rows[missing], rows[~missing], values[~missing, c])


AUTO_DATE = "auto"   # `date_column` of a user file: the first column if its cells parse as dates, else none


def read_header(path: str | Path) -> list[str]:
    """The column names of a CSV (.csv or .csv.gz) file, read from its first line only."""
    path = Path(path)
    try:
        with _open_text(path) as handle:
            header = next(csv.reader(handle), [])
    except (OSError, UnicodeDecodeError, EOFError, zlib.error) as error:
        raise DatasetFormatError(f"cannot be read ({error})", path=path, hint=EXPECTED_LAYOUT) from None
    if not header:
        raise DatasetFormatError("the file is empty", path=path, hint=EXPECTED_LAYOUT)
    separator = _separator_error(path, header)
    if separator is not None:
        raise separator
    return [name.strip() for name in header]


def _looks_like_dates(column: pd.Series) -> bool:
    if pd.api.types.is_numeric_dtype(column):
        return False                      # numbers would parse as epoch offsets: a channel, not dates
    cells = column.dropna().astype(str)
    if cells.empty:
        return False
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        parsed = pd.to_datetime(cells, errors="coerce", format="mixed")
    return bool(parsed.notna().all())


def _pick_date_column(frame: pd.DataFrame, path: Path, date_column: str | None) -> str | None:
    """The date column: 'date' (built-in files), a named one, or AUTO_DATE's guess (None: no dates)."""
    if date_column == "date":
        return _date_column(frame, path)
    if date_column == AUTO_DATE:
        first = frame.columns[0]
        return first if str(first).strip().lower() == "date" or _looks_like_dates(frame[first]) else None
    for column in frame.columns:
        if str(column).strip() == date_column:
            return column
    raise DatasetFormatError(f"no column {date_column!r} in the header (columns: {list(frame.columns)[:10]})",
                             path=path, line=1, hint="Set `date_column` to one of the header's names")


def _pick_channels(frame: pd.DataFrame, path: Path, date_column: str | None,
                   target_channels: list[str] | tuple[str, ...] | None) -> pd.DataFrame:
    if target_channels is None:
        return frame.drop(columns=[date_column]) if date_column is not None else frame
    by_name = {str(c).strip(): c for c in frame.columns}
    missing = [name for name in target_channels if name not in by_name]
    if missing:
        raise DatasetFormatError(f"target channel{'s' * (len(missing) > 1)} {', '.join(map(repr, missing))} not "
                                 f"in the header (columns: {list(by_name)[:20]})", path=path, line=1,
                                 hint="Use names from the header in `target_channels`")
    return frame[[by_name[name] for name in target_channels]]


def _parse_dates(dates: pd.Series) -> pd.Series:
    parsed = pd.to_datetime(dates, errors="coerce")  # fast path: one format inferred from the first row
    unparsed = parsed.isna() & dates.notna()
    if unparsed.any():
        parsed[unparsed] = pd.to_datetime(dates[unparsed], errors="coerce", format="mixed")
    return parsed


def load_series(path: str | Path, *, date_column: str | None = "date",
                target_channels: list[str] | tuple[str, ...] | None = None) -> LoadedSeries:
    """Read a `date` + numeric-channels CSV (.csv or .csv.gz) into float64 (T, C), cleaned as the module says.

    `date_column`: "date" (the built-in files: a column named date is required), a column name, or
    `AUTO_DATE` (the first column if it parses as dates, else the file has no dates). `target_channels`:
    the channel columns to keep, in that order (default: every column but the dates).
    Every problem is a `DatasetFormatError` naming the file and, where it has one, the line and column.
    """
    path = Path(path)
    frame = _read_frame(path)
    lines = np.arange(len(frame)) + 2                       # line 1 is the header
    blank = frame.isna().all(axis=1).to_numpy()
    if blank.any():
        frame, lines = frame[~blank], lines[~blank]
    date_column = _pick_date_column(frame, path, date_column)
    channels = _pick_channels(frame, path, date_column, target_channels)
    if channels.shape[1] == 0:
        raise DatasetFormatError("no channel columns besides 'date'", path=path, line=1, hint=EXPECTED_LAYOUT)
    if len(frame) == 0:
        raise DatasetFormatError("no data rows (the file holds only its header)", path=path,
                                 hint="Fill it with one row per timestamp")
    names = [str(c) for c in channels.columns]
    values = _numeric_channels(channels, path, lines)

    dates = None
    if date_column is not None:
        duplicated = _duplicate_timestamps(frame[date_column])
        dates = _parse_dates(frame[date_column]).to_numpy(dtype="datetime64[ns]")[~duplicated]
    else:
        duplicated = np.zeros(len(values), dtype=bool)
    values, lines = values[~duplicated], lines[~duplicated]
    missing = np.isnan(values)
    non_finite = np.isinf(values)
    sentinel = np.isin(values, SENTINEL_VALUES)
    values[non_finite | sentinel] = np.nan
    _check_magnitudes(values, names, path, lines)
    cleaning = {
        "duplicate_timestamps": int(duplicated.sum()),
        "missing_values": int(missing.sum()),
        "non_finite_values": int(non_finite.sum()),
        "sentinel_values": int(sentinel.sum()),
        "blank_lines": int(blank.sum()),
    }
    _fill_gaps(values, names, path)
    return LoadedSeries(values=values, channel_names=names, cleaning=cleaning, lines=lines, dates=dates)


def describe_cleaning(path: str | Path | None, cleaning: dict[str, int]) -> str | None:
    """One human line for the report and MLflow, e.g. "ETTh1.csv: 12 cells interpolated (-9999: 10, NaN: 2),
    3 duplicate timestamps dropped"; None when nothing was cleaned."""
    reasons = [(label, cleaning.get(key, 0)) for key, label in
               (("sentinel_values", "-9999"), ("missing_values", "empty/NaN"), ("non_finite_values", "inf"))]
    reasons = [(label, n) for label, n in reasons if n]
    parts = []
    if reasons:
        total = sum(n for _, n in reasons)
        parts.append(f"{total} cell{'s' * (total != 1)} interpolated ("
                     + ", ".join(f"{label}: {n}" for label, n in reasons) + ")")
    if (n := cleaning.get("duplicate_timestamps", 0)):
        parts.append(f"{n} duplicate timestamp{'s' * (n != 1)} dropped (first kept)")
    if (n := cleaning.get("blank_lines", 0)):
        parts.append(f"{n} blank line{'s' * (n != 1)} skipped")
    if not parts:
        return None
    return (f"{Path(path).name}: " if path is not None else "") + ", ".join(parts)
