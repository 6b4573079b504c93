"""Genomics tasks: the 18 Nucleotide Transformer (NT) benchmark tasks and the GUE promoter tasks.

Protocol:
- Encoding: one-hot over (A, C, G, T, N) -> float32 (5, L); lower case (soft-masked bases) is accepted.
  A sequence shorter than the task length L is right-padded with all-zero columns (as the authors'
  loader does), so padding stays distinguishable from an N base; a longer one is a DatasetError.
  `splice_sites_all` is encoded at its declared 400 bp (the authors' loader pads it to 600).
- Splits: the dataset's own train/test; validation is `val_fraction` of train held out, stratified by
  class, with `seed` -- unless the files carry their own dev split (GUE), which is then used as is.
- Metric as in the FM literature: MCC for histone and enhancer tasks, F1 for promoter and splice
  donor/acceptor tasks, accuracy for the 3-class `splice_sites_all` (as in the Nucleotide Transformer benchmark).

File layouts (read in `tasks.genomics_formats`): NT FASTA `{train,test}.fna` with `>id|label` headers;
`sequence,label` CSV or parquet; GUE `{train,dev,test}.csv[.gz]`; iEnhancer class files (one FASTA file
per class and split), the offline stand-in for `enhancers` / `enhancers_types`; and one table file
(CSV, TSV or parquet, `path` pointing at it) holding many tasks, as the revised NT benchmark on Hugging
Face does (`sequence,name,label,task`): the rows whose `task` is the task's name, split by the table's
`split` column if it has one, else `test_fraction` of them held out as test (stratified, fixed seed
TEST_SPLIT_SEED, so every run scores the same sequences) and validation as above.

Data roots: the `data_root` given (a sweep's `data_root`), then $LAUNCHER_DATA and $LAUNCHER_DATA_ROOT;
each also in its `genomics/` folder. Nothing outside those is searched.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tasks.classification import ClassificationTask, DatasetError, DatasetMissingError, holdout_split, stratified_pick
from tasks.genomics_formats import (
    IENHANCER_FILES,
    LabelledSequences,
    find_split_files,
    is_table_file,
    one_hot,
    read_ienhancer,
    read_split,
    read_task_table,
    sequence_keys,
)

ENV_DATA_ROOTS = ("LAUNCHER_DATA", "LAUNCHER_DATA_ROOT")
TEST_SPLIT_SEED = 0   # the test hold-out of a table without a `split` column: the same for every run

NT_SOURCE = ("https://huggingface.co/datasets/InstaDeepAI/nucleotide_transformer_downstream_tasks "
             "(one folder per task with train.fna and test.fna)")
GUE_SOURCE = "GUE from https://github.com/MAGICS-LAB/DNABERT_2 (folder GUE/<group>/<task>/{train,dev,test}.csv)"
IENHANCER_SOURCE = ("iEnhancer benchmark (Liu et al. 2016/2018), e.g. https://github.com/WamesM/iEnhancer-DCLA "
                    "folder data/ (train_/test_{strong,weak,non}_enhancers.txt)")


@dataclass(frozen=True)
class GenomicsTaskInfo:
    name: str
    length: int                      # bp; inputs are (5, length)
    n_classes: int
    metric: str                      # literature metric: mcc, f1 or accuracy
    group: str                       # histone, enhancer, promoter, splice
    folders: tuple[str, ...]         # where the task folder may sit under a data root
    source: str
    nt_train_size: int | None = None # NT train size (HyenaDNA/Caduceus configs), for reports
    substitute_for: str | None = None  # the NT task this dataset stands in for
    class_names: tuple[str, ...] = ()


def _nt(name: str, length: int, n_classes: int, metric: str, group: str, train_size: int,
        class_names: tuple[str, ...] = ()) -> GenomicsTaskInfo:
    return GenomicsTaskInfo(name, length, n_classes, metric, group,
                            (name, f"nucleotide_transformer_downstream_tasks/{name}"), NT_SOURCE,
                            train_size, class_names=class_names)


def _gue(name: str, group: str, length: int, stands_for: str) -> GenomicsTaskInfo:
    return GenomicsTaskInfo(name, length, 2, "f1", "promoter", (f"GUE/{group}/{name}", f"{group}/{name}", name),
                            GUE_SOURCE, substitute_for=stands_for, class_names=("non-promoter", "promoter"))


HISTONE_MARKS = ("H3", "H3K4me1", "H3K4me2", "H3K4me3", "H3K9ac", "H3K14ac", "H3K36me3", "H3K79me3", "H4", "H4ac")
HISTONE_TRAIN_SIZES = (13468, 28509, 27614, 33119, 25003, 29743, 31392, 25953, 13140, 30685)

NT_TASKS: dict[str, GenomicsTaskInfo] = {info.name: info for info in (
    _nt("enhancers", 200, 2, "mcc", "enhancer", 14968, ("non", "enhancer")),
    _nt("enhancers_types", 200, 3, "mcc", "enhancer", 14968),
    *(_nt(mark, 500, 2, "mcc", "histone", size) for mark, size in zip(HISTONE_MARKS, HISTONE_TRAIN_SIZES)),
    _nt("promoter_all", 300, 2, "f1", "promoter", 53276),
    _nt("promoter_no_tata", 300, 2, "f1", "promoter", 47767),
    _nt("promoter_tata", 300, 2, "f1", "promoter", 5517),
    _nt("splice_sites_acceptors", 600, 2, "f1", "splice", 19961),
    _nt("splice_sites_donors", 600, 2, "f1", "splice", 19775),
    _nt("splice_sites_all", 400, 3, "accuracy", "splice", 27000),
)}

# GUE promoter tasks: same source as NT's promoter tasks (EPDnew), different windows and negatives.
GUE_TASKS: dict[str, GenomicsTaskInfo] = {info.name: info for info in (
    _gue("prom_300_tata", "prom", 300, "promoter_tata"),
    _gue("prom_300_notata", "prom", 300, "promoter_no_tata"),
    _gue("prom_300_all", "prom", 300, "promoter_all"),
    _gue("prom_core_tata", "prom", 70, "promoter_tata"),
)}

GENOMICS_TASKS: dict[str, GenomicsTaskInfo] = {**NT_TASKS, **GUE_TASKS}

# Folder of the iEnhancer class files under a data root, tried after the NT layouts for the enhancer tasks.
IENHANCER_FOLDER = "iEnhancer_Liu2016"
IENHANCER_LABELS = {  # class file stem -> label, per task (PROVENANCE of iEnhancer_Liu2016)
    "enhancers": {"strong": 1, "weak": 1, "non": 0},
    "enhancers_types": {"non": 0, "weak": 1, "strong": 2},
}
ENHANCERS_TYPES_NAMES = ("non", "weak", "strong")


def list_genomics_tasks() -> list[str]:
    return list(GENOMICS_TASKS)


def genomics_task_info(name: str) -> GenomicsTaskInfo:
    try:
        return GENOMICS_TASKS[name]
    except KeyError:
        raise ValueError(f"unknown genomics task {name!r}; known: {', '.join(GENOMICS_TASKS)}") from None


def search_roots(data_root: str | Path | None = None) -> list[Path]:
    """Data roots in search order: `data_root`, $LAUNCHER_DATA, $LAUNCHER_DATA_ROOT. Each root is also
    searched in its `genomics/` subfolder."""
    roots = [Path(data_root)] if data_root is not None else []
    roots += [Path(os.environ[var]) for var in ENV_DATA_ROOTS if os.environ.get(var)]
    expanded: list[Path] = []
    for root in roots:
        for candidate in (root, root / "genomics") if root.name != "genomics" else (root,):
            if candidate not in expanded:
                expanded.append(candidate)
    return expanded


def find_task_files(name: str, data_root: str | Path | None = None, path: str | Path | None = None
                    ) -> tuple[str, dict[str, Path]]:
    """(layout, {split: file}) of a task; `path` (a task folder, or one table file) skips the search.

    Layout is "splits" (train/test[/dev] files), "ienhancer" (class files, enhancer tasks only) or "table"
    ({"table": file}: one table of many tasks, read by `read_task_table`).
    """
    info = genomics_task_info(name)
    if path is not None and is_table_file(Path(path)):
        return "table", {"table": Path(path)}
    folders = [Path(path)] if path is not None else [root / sub for root in search_roots(data_root)
                                                     for sub in info.folders]
    ienhancer = name in IENHANCER_LABELS
    if ienhancer and path is None:
        folders += [root / IENHANCER_FOLDER for root in search_roots(data_root)]
    tried: list[str] = []
    for folder in folders:
        files = find_split_files(folder)
        if files is not None:
            return "splits", files
        tried.append(f"{folder}/{{train,test}}.{{fna,fasta,fa,csv,parquet}}[.gz]")
        if ienhancer:
            if all((folder / f).is_file() for f in IENHANCER_FILES.values()):
                return "ienhancer", {stem: folder / f for stem, f in IENHANCER_FILES.items()}
            tried.append(f"{folder}/{{train,test}}_{{strong,weak,non}}_enhancers.txt")
    sources = info.source + (f"; or the {IENHANCER_SOURCE}" if ienhancer else "")
    listing = "\n  ".join(tried) or (f"nowhere: no data root is set (a sweep's data_root, a task's path, "
                                      f"${ENV_DATA_ROOTS[0]} or ${ENV_DATA_ROOTS[1]})")
    stand_ins = [gue.name for gue in GUE_TASKS.values() if gue.substitute_for == name]
    hint = f" An offline stand-in may exist: task {' or '.join(stand_ins)} (GUE)." if stand_ins else ""
    raise DatasetMissingError(
        f"genomics task {name!r} not found. Looked for:\n  {listing}\n"
        f"Download it from {sources}, then pass its folder as data_root/path or set ${ENV_DATA_ROOTS[0]}.{hint}")


def _training_pool(files: dict[str, Path], notes: list[str]
                   ) -> tuple[LabelledSequences, LabelledSequences | None, LabelledSequences]:
    if "train" not in files:  # GUE tasks whose train file is too large for the offline snapshot
        notes.append(f"no train file in {files['test'].parent}: trained on the dataset's own "
                     f"{files['val'].name} (validation held out from it), evaluated on its test split")
        return read_split(files["val"]), None, read_split(files["test"])
    val = read_split(files["val"]) if "val" in files else None
    return read_split(files["train"]), val, read_split(files["test"])


def _ienhancer_splits(name: str, files: dict[str, Path], notes: list[str]
                      ) -> tuple[LabelledSequences, LabelledSequences]:
    """Train and test from the class files, with train copies of test sequences (and repeats) removed.

    The published test set has all 100 `strong` sequences also in train (case-insensitively). They are
    dropped from TRAIN, not test, so the test set stays the 400-sequence independent set NT also uses.
    """
    labels = IENHANCER_LABELS[name]
    train = read_ienhancer({stem: files[f"train_{stem}"] for stem in labels}, labels)
    test = read_ienhancer({stem: files[f"test_{stem}"] for stem in labels}, labels)
    test_keys = set(sequence_keys(test.sequences))
    seen: set[str] = set()
    keep, in_test, repeated = [], 0, 0
    for i, key in enumerate(sequence_keys(train.sequences)):
        if key in test_keys:
            in_test += 1
        elif key in seen:
            repeated += 1
        else:
            seen.add(key)
            keep.append(i)
    notes.append(f"iEnhancer (Liu et al. 2016/2018) stands in for NT {name}: its independent test set "
                 f"({len(test.labels)} sequences; NT's has 400) and a smaller train set ({len(keep)} after "
                 f"de-duplication; NT's has {NT_TASKS[name].nt_train_size})")
    if name == "enhancers_types":
        notes.append("classes: non = 0, weak = 1, strong = 2 (NT's own class order is not known)")
    notes.append(f"removed {in_test} train sequences that also occur in test (case-insensitive) "
                 f"and {repeated} repeated train sequences")
    return train.subset(np.array(keep, dtype=np.int64)), test


def _overlap_note(train: LabelledSequences, other: LabelledSequences, what: str) -> str | None:
    keys = set(sequence_keys(train.sequences))
    shared = sum(key in keys for key in sequence_keys(other.sequences))
    return f"{shared} {what} sequences also occur in train (kept, as published)" if shared else None


def _table_splits(name: str, file: Path, test_fraction: float, notes: list[str]
                  ) -> tuple[LabelledSequences, LabelledSequences | None, LabelledSequences]:
    """Train pool, val (None: hold it out of train) and test of one task of a table file."""
    splits = read_task_table(file, name)
    notes.append(f"rows of task {name} in the table {file.name}")
    if "all" not in splits:
        return splits["train"], splits.get("val"), splits["test"]
    data = splits["all"]
    pool_idx, test_idx = holdout_split(data.labels, test_fraction, TEST_SPLIT_SEED)
    notes.append(f"test: {len(test_idx)} of {len(data.labels)} sequences ({test_fraction:.0%}, stratified, "
                 f"fixed seed {TEST_SPLIT_SEED}; the table has no `split` column)")
    return data.subset(pool_idx), None, data.subset(test_idx)


def load_genomics_task(name: str, data_root: str | Path | None = None, path: str | Path | None = None,
                       val_fraction: float = 0.1, seed: int = 0, max_train: int | None = None,
                       test_fraction: float = 0.2) -> ClassificationTask:
    """The task `name` as one-hot arrays: train (minus validation), val and test.

    `path` is the task's folder (any supported layout); otherwise it is searched under the data roots
    (see `search_roots`). Validation is `val_fraction` of train (stratified, `seed`) unless the files
    carry a dev split (GUE), which is used instead. `max_train` keeps a stratified seeded subset of the
    training split (smoke runs). Raises DatasetMissingError / DatasetError with the file and record.
    """
    info = genomics_task_info(name)
    layout, files = find_task_files(name, data_root, path)
    notes: list[str] = []
    if info.substitute_for:
        notes.append(f"GUE {name} stands in for NT {info.substitute_for}: same source (EPDnew), "
                     "different windows and negatives")
    if layout == "ienhancer":
        (pool, test), val = _ienhancer_splits(name, files, notes), None
    elif layout == "table":
        pool, val, test = _table_splits(name, files["table"], test_fraction, notes)
    else:
        pool, val, test = _training_pool(files, notes)

    for split in (pool, val, test):
        if split is not None:
            split.check_labels(info.n_classes)
    for other, what in ((test, "test"), (val, "validation")):
        note = _overlap_note(pool, other, what) if other is not None and layout != "ienhancer" else None
        if note:
            notes.append(note)

    if val is None:
        train_idx, val_idx = holdout_split(pool.labels, val_fraction, seed)
        train, val = pool.subset(train_idx), pool.subset(val_idx)
        notes.append(f"validation: {len(val_idx)} of {len(pool.labels)} training sequences "
                     f"({val_fraction:.0%}, stratified, seed {seed})")
    else:
        train = pool
        notes.append(f"validation: the dataset's own dev split ({files['val'].name})" if "val" in files
                     else "validation: the table's `split` rows marked dev/val")
    if max_train is not None and max_train < len(train.labels):
        _, picked = stratified_pick(train.labels, max_train, seed)
        notes.append(f"training set capped at {max_train} of {len(train.labels)} sequences (stratified, seed {seed})")
        train = train.subset(picked)

    class_names = ENHANCERS_TYPES_NAMES if name == "enhancers_types" else info.class_names
    return ClassificationTask(
        name=name, domain="genomics",
        x_train=one_hot(train, info.length), y_train=train.labels,
        x_val=one_hot(val, info.length), y_val=val.labels,
        x_test=one_hot(test, info.length), y_test=test.labels,
        n_classes=info.n_classes, metric=info.metric, class_names=class_names, notes=notes,
        source=files["table"] if layout == "table" else files.get("test", next(iter(files.values()))).parent)


__all__ = [
    "DatasetError", "DatasetMissingError", "GENOMICS_TASKS", "GUE_TASKS", "GenomicsTaskInfo", "NT_TASKS",
    "find_task_files", "genomics_task_info", "list_genomics_tasks", "load_genomics_task", "search_roots",
]
