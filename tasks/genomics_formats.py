"""Reading labelled DNA sequences from the public file layouts, and their one-hot encoding.

Every reader returns `LabelledSequences` that remember, per record, the file and record it came from,
so that any later problem (an unknown base, a sequence longer than the task, a label out of range) is
reported as one `DatasetError` naming the file and the record.
"""
from __future__ import annotations

import gzip
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
import pandas as pd

from tasks.classification import DatasetError

ALPHABET = "ACGTN"
SPLIT_STEMS = {"train": ("train",), "val": ("dev", "val", "valid"), "test": ("test",)}
FASTA_SUFFIXES = (".fna", ".fasta", ".fa")
SEQUENCE_SUFFIXES = FASTA_SUFFIXES + (".csv",)
TABLE_SUFFIXES = (".csv", ".tsv", ".parquet")   # a single table of several tasks/splits (`read_task_table`)
# Values of a table's `split` column -> the split they name (the Hugging Face exports use train/test).
SPLIT_VALUES = {"train": "train", "test": "test", "dev": "val", "val": "val", "valid": "val",
                "validation": "val"}
IENHANCER_FILES = {f"{split}_{kind}": f"{split}_{kind}_enhancers.txt"
                   for split in ("train", "test") for kind in ("strong", "weak", "non")}

# Byte -> channel (0..4); 255 marks a byte that is not a base. Lower case is soft-masked sequence.
_BASE_INDEX = np.full(256, 255, dtype=np.uint8)
for _channel, _base in enumerate(ALPHABET):
    _BASE_INDEX[ord(_base)] = _BASE_INDEX[ord(_base.lower())] = _channel
_PAD = 5


@dataclass
class LabelledSequences:
    sequences: list[str]
    labels: np.ndarray        # int64 (N,)
    origins: list[str]        # per record: "<file>: <record>", for error messages

    def subset(self, index: np.ndarray) -> "LabelledSequences":
        return LabelledSequences([self.sequences[i] for i in index], self.labels[index],
                                 [self.origins[i] for i in index])

    def check_labels(self, n_classes: int) -> None:
        bad = np.flatnonzero((self.labels < 0) | (self.labels >= n_classes))
        if len(bad):
            raise DatasetError(f"{self.origins[bad[0]]}: label {self.labels[bad[0]]} is outside 0..{n_classes - 1} "
                               f"({len(bad)} such records); this task has {n_classes} classes")


def sequence_keys(sequences: list[str]) -> list[str]:
    """Identity of a sequence for duplicate checks: case-insensitive (soft-masking is not a difference)."""
    return [s.upper() for s in sequences]


# ------------------------------------------------------------------------------------------- finding
def _split_file(folder: Path, stems: tuple[str, ...]) -> Path | None:
    for stem in stems:
        for suffix in SEQUENCE_SUFFIXES:
            for name in (stem + suffix, stem + suffix + ".gz"):
                if (folder / name).is_file():
                    return folder / name
        if (folder / f"{stem}.parquet").is_file():
            return folder / f"{stem}.parquet"
        if (folder / stem).is_dir() and any((folder / stem).glob("*.parquet")):
            return folder / stem  # a folder of parquet shards (the Hugging Face export)
    return None


def find_split_files(folder: Path) -> dict[str, Path] | None:
    """{"train", "val" (dev), "test": file} present in `folder`; None unless a test file and a train
    (or, failing that, a dev) file exist."""
    if not folder.is_dir():
        return None
    files = {split: f for split, stems in SPLIT_STEMS.items() if (f := _split_file(folder, stems)) is not None}
    if "test" not in files or not ({"train", "val"} & set(files)):
        return None
    return files


# ------------------------------------------------------------------------------------------- readers
def _open_text(path: Path):
    return gzip.open(path, "rt", encoding="utf-8", newline=None) if path.name.endswith(".gz") \
        else open(path, encoding="utf-8", newline=None)


def read_fasta(path: Path) -> Iterator[tuple[str, str, int]]:
    """(header without '>', sequence, header line number) per record; sequences may wrap over lines."""
    header, line_number, chunks = None, 0, []
    try:
        with _open_text(path) as handle:
            for number, line in enumerate(handle, start=1):
                line = line.strip()
                if not line:
                    continue
                if line.startswith(">"):
                    if header is not None:
                        yield header, "".join(chunks), line_number
                    header, line_number, chunks = line[1:].strip(), number, []
                elif header is None:
                    raise DatasetError(f"{path}: line {number} holds sequence before any '>' header; "
                                       "expected FASTA")
                else:
                    chunks.append(line)
            if header is not None:
                yield header, "".join(chunks), line_number
    except (OSError, UnicodeDecodeError, EOFError) as error:
        raise DatasetError(f"{path}: cannot be read as FASTA text ({error})") from error


def _fasta_records(path: Path) -> list[tuple[str, str, str]]:
    records = []
    for header, sequence, line in read_fasta(path):
        where = f"{path}: record '>{header}' (line {line})"
        if not sequence:
            raise DatasetError(f"{where} has an empty sequence")
        records.append((header, sequence, where))
    if not records:
        raise DatasetError(f"{path}: no FASTA records")
    return records


def read_labelled_fasta(path: Path) -> LabelledSequences:
    """NT layout: the label is the integer after the last '|' of each header (e.g. `>seq42|1`)."""
    sequences, labels, origins = [], [], []
    for header, sequence, where in _fasta_records(path):
        _, bar, label = header.rpartition("|")
        if not bar or not label.strip().lstrip("-").isdigit():
            raise DatasetError(f"{where}: header has no integer label after '|' (expected '>id|label')")
        sequences.append(sequence)
        labels.append(int(label))
        origins.append(where)
    return LabelledSequences(sequences, np.array(labels, dtype=np.int64), origins)


def read_ienhancer(files: dict[str, Path], labels: dict[str, int]) -> LabelledSequences:
    """One FASTA file per class: every record of `files[stem]` gets `labels[stem]`."""
    sequences, label_list, origins = [], [], []
    for stem, path in files.items():
        for _, sequence, where in _fasta_records(path):
            sequences.append(sequence)
            label_list.append(labels[stem])
            origins.append(where)
    return LabelledSequences(sequences, np.array(label_list, dtype=np.int64), origins)


def is_table_file(path: Path) -> bool:
    """A single table file (CSV, TSV, parquet; CSV/TSV may be gzipped) rather than a task folder."""
    name = path.name.lower().removesuffix(".gz")
    return path.is_file() and name.endswith(TABLE_SUFFIXES)


def _read_table(path: Path) -> tuple[pd.DataFrame, str]:
    """The table and how its rows are named in messages (CSV line numbers count the header)."""
    try:
        if path.is_dir():
            shards = sorted(path.glob("*.parquet"))
            return pd.concat([pd.read_parquet(shard) for shard in shards], ignore_index=True), "row"
        if path.suffix == ".parquet":
            return pd.read_parquet(path), "row"
        separator = "\t" if path.name.lower().removesuffix(".gz").endswith(".tsv") else ","
        return pd.read_csv(path, dtype=str, keep_default_na=False, sep=separator), "line"
    except ImportError as error:
        raise DatasetError(f"{path}: reading parquet needs pyarrow ({error}); pip install pyarrow") from error
    except Exception as error:  # parsers raise many types (ParserError, ArrowInvalid, OSError, ...)
        raise DatasetError(f"{path}: cannot be read as a table ({type(error).__name__}: {error})") from error


def _table_columns(frame: pd.DataFrame, path: Path) -> dict[str, str]:
    columns = {str(c).strip().lower(): c for c in frame.columns}
    if "sequence" not in columns or "label" not in columns:
        raise DatasetError(f"{path}: expected a header with columns 'sequence' and 'label', "
                           f"found {[str(c) for c in frame.columns][:10]}")
    return columns


def _sequences(frame: pd.DataFrame, columns: dict[str, str], path: Path, row_word: str,
               rows: np.ndarray | None = None) -> LabelledSequences:
    """The `sequence`/`label` records of `frame` (its rows `rows`, all by default), checked."""
    first_row = 2 if row_word == "line" else 0
    rows = np.arange(len(frame)) if rows is None else rows
    sequences = frame[columns["sequence"]].iloc[rows]
    raw_labels = frame[columns["label"]].iloc[rows]
    numeric = pd.to_numeric(raw_labels, errors="coerce")
    bad = numeric.isna() | (numeric != np.round(numeric))
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        raise DatasetError(f"{path}: {row_word} {rows[i] + first_row}: label {raw_labels.iloc[i]!r} is not an integer")
    missing = sequences.isna() | (sequences.astype(str).str.strip() == "")
    if missing.any():
        i = int(np.flatnonzero(missing.to_numpy())[0])
        raise DatasetError(f"{path}: {row_word} {rows[i] + first_row}: empty sequence")
    return LabelledSequences([str(s).strip() for s in sequences], numeric.to_numpy().astype(np.int64),
                             [f"{path}: {row_word} {i + first_row}" for i in rows])


def read_table(path: Path) -> LabelledSequences:
    """CSV (GUE layout), TSV or parquet with a `sequence` and a `label` column; other columns are ignored."""
    frame, row_word = _read_table(path)
    return _sequences(frame, _table_columns(frame, path), path, row_word)


def table_task_names(path: Path) -> list[str] | None:
    """The distinct values of a table's `task` column, in order of appearance; None if it has none."""
    frame, _ = _read_table(path)
    columns = {str(c).strip().lower(): c for c in frame.columns}
    if "task" not in columns:
        return None
    return list(dict.fromkeys(str(v).strip() for v in frame[columns["task"]]))


def read_task_table(path: Path, task: str) -> dict[str, LabelledSequences]:
    """One task's records from a table of many (the layout of the revised Nucleotide Transformer benchmark
    on Hugging Face: columns `sequence,name,label,task`): the rows whose `task` equals `task` (every row if
    the table has no `task` column), by the `split` column when there is one ({"train", "val", "test"}
    present), else all under "all" (the caller splits them). Row numbers in messages are the file's."""
    frame, row_word = _read_table(path)
    columns = _table_columns(frame, path)
    rows = np.arange(len(frame))
    if "task" in columns:
        names = frame[columns["task"]].astype(str).str.strip()
        rows = np.flatnonzero((names == task).to_numpy())
        if not len(rows):
            present = list(dict.fromkeys(names))
            raise DatasetError(f"{path}: no row has task {task!r} (its `task` column holds: "
                               f"{', '.join(present[:20])}{' ...' if len(present) > 20 else ''})")
    if not len(rows):
        raise DatasetError(f"{path}: no records")
    if "split" not in columns:
        return {"all": _sequences(frame, columns, path, row_word, rows)}
    raw = frame[columns["split"]].iloc[rows].astype(str).str.strip().str.lower()
    unknown = sorted(set(raw) - set(SPLIT_VALUES))
    if unknown:
        raise DatasetError(f"{path}: `split` value {unknown[0]!r} is not one of {', '.join(SPLIT_VALUES)}")
    splits = raw.map(SPLIT_VALUES).to_numpy()
    out = {split: _sequences(frame, columns, path, row_word, rows[splits == split])
           for split in ("train", "val", "test") if (splits == split).any()}
    if "test" not in out or "train" not in out:
        raise DatasetError(f"{path}: the `split` column of task {task!r} needs both 'train' and 'test' rows "
                           f"(found: {', '.join(out)})")
    return out


def read_split(path: Path) -> LabelledSequences:
    name = path.name.removesuffix(".gz")
    data = read_labelled_fasta(path) if name.endswith(FASTA_SUFFIXES) else read_table(path)
    if not data.sequences:
        raise DatasetError(f"{path}: no records")
    return data


# ------------------------------------------------------------------------------------------ encoding
def _base_indices(data: LabelledSequences, rows: range, length: int) -> np.ndarray:
    index = np.full((len(rows), length), _PAD, dtype=np.uint8)
    for out_row, i in enumerate(rows):
        sequence = data.sequences[i]
        if len(sequence) > length:
            raise DatasetError(f"{data.origins[i]}: sequence of {len(sequence)} bp is longer than the "
                               f"task length {length} bp")
        codes = _BASE_INDEX[np.frombuffer(sequence.encode("ascii", "replace"), dtype=np.uint8)]
        if (codes == 255).any():
            position = int(np.flatnonzero(codes == 255)[0])
            raise DatasetError(f"{data.origins[i]}: unknown character {sequence[position]!r} at position "
                               f"{position + 1}; expected only {', '.join(ALPHABET)} (either case)")
        index[out_row, :len(sequence)] = codes
    return index


def one_hot(data: LabelledSequences, length: int, chunk: int = 4096) -> np.ndarray:
    """float32 (N, 5, length) over A, C, G, T, N; right padding is all-zero columns."""
    out = np.zeros((len(data.sequences), len(ALPHABET), length), dtype=np.float32)
    for start in range(0, len(data.sequences), chunk):  # chunks keep the index arrays small
        rows = range(start, min(start + chunk, len(data.sequences)))
        index = _base_indices(data, rows, length)
        sample, position = np.nonzero(index < _PAD)
        out[sample + start, index[sample, position], position] = 1.0
    return out
