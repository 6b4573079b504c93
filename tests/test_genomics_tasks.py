"""Genomics tasks: real offline data (`tests.conftest.SHARED_DATA`/genomics, skipped when absent), every supported layout on generated
fixtures, and one clear DatasetError per kind of bad input."""
import gzip

import numpy as np
import pandas as pd
import pytest

import tasks.genomics as genomics
from tasks.classification import DatasetError, DatasetMissingError
from tasks.genomics import GENOMICS_TASKS, NT_TASKS, load_genomics_task
from tests.conftest import SHARED_DATA

SHARED_GENOMICS = SHARED_DATA / "genomics"
needs_shared = pytest.mark.skipif(not SHARED_GENOMICS.is_dir(), reason=f"{SHARED_GENOMICS} not present")


@pytest.fixture(autouse=True)
def isolated_search(monkeypatch, tmp_path_factory):
    """No user environment leaks into the search."""
    for variable in genomics.ENV_DATA_ROOTS:
        monkeypatch.delenv(variable, raising=False)


def row_keys(x):
    return {row.tobytes() for row in x.reshape(len(x), -1)}


def random_sequences(n, length, seed):
    rng = np.random.default_rng(seed)
    return ["".join(rng.choice(list("ACGT"), length)) for _ in range(n)]


# ------------------------------------------------------------------------------------------- registry
def test_registry_holds_the_18_nt_tasks_with_literature_metrics():
    assert len(NT_TASKS) == 18
    metrics = {name: info.metric for name, info in NT_TASKS.items()}
    assert {metrics[m] for m in genomics.HISTONE_MARKS} == {"mcc"}
    assert metrics["enhancers"] == metrics["enhancers_types"] == "mcc"
    assert {metrics[n] for n in ("promoter_all", "promoter_no_tata", "promoter_tata",
                                 "splice_sites_acceptors", "splice_sites_donors")} == {"f1"}
    assert metrics["splice_sites_all"] == "accuracy"
    assert NT_TASKS["splice_sites_all"].n_classes == NT_TASKS["enhancers_types"].n_classes == 3
    assert NT_TASKS["splice_sites_donors"].length == 600 and NT_TASKS["H3"].length == 500
    assert "prom_300_tata" in genomics.list_genomics_tasks()
    with pytest.raises(ValueError, match="unknown genomics task"):
        genomics.genomics_task_info("H5")


# ------------------------------------------------------------------------------------------ real data
@needs_shared
def test_real_gue_prom_300_tata():
    task = load_genomics_task("prom_300_tata", data_root=SHARED_GENOMICS)
    assert task.sizes == {"train": 4904, "val": 613, "test": 613}  # GUE's own train/dev/test
    assert task.input_shape == (5, 300) and task.x_train.dtype == np.float32 and task.y_train.dtype == np.int64
    assert task.n_classes == 2 and task.metric == "f1"
    for x in (task.x_train, task.x_val, task.x_test):
        assert np.array_equal(x.sum(axis=1), np.ones((len(x), 300)))  # one base per position, no padding
    assert np.bincount(task.y_train).tolist() == [2460, 2444] and np.bincount(task.y_test).tolist() == [315, 298]
    assert any("stands in for NT promoter_tata" in note for note in task.notes)


@needs_shared
def test_real_validation_split_is_disjoint_stratified_and_deterministic():
    task = load_genomics_task("enhancers", data_root=SHARED_GENOMICS, val_fraction=0.1, seed=0)
    again = load_genomics_task("enhancers", data_root=SHARED_GENOMICS, val_fraction=0.1, seed=0)
    other = load_genomics_task("enhancers", data_root=SHARED_GENOMICS, val_fraction=0.1, seed=1)
    assert np.array_equal(task.x_val, again.x_val) and np.array_equal(task.y_train, again.y_train)
    assert not np.array_equal(task.x_val, other.x_val)
    assert not row_keys(task.x_train) & row_keys(task.x_val)
    assert len(task.y_val) == round(0.1 * (len(task.y_train) + len(task.y_val)))
    assert abs(task.y_val.mean() - task.y_train.mean()) < 0.02


@needs_shared
def test_real_ienhancer_removes_train_copies_of_test_sequences():
    for name, counts in (("enhancers", [200, 200]), ("enhancers_types", [200, 100, 100])):
        task = load_genomics_task(name, data_root=SHARED_GENOMICS)
        assert task.input_shape == (5, 200) and np.bincount(task.y_test).tolist() == counts
        assert task.sizes["train"] + task.sizes["val"] == 2968 - 100
        removed = [n for n in task.notes if n.startswith("removed")]
        assert removed and int(removed[0].split()[1]) == 100
        test_rows = row_keys(task.x_test)
        assert not test_rows & row_keys(task.x_train) and not test_rows & row_keys(task.x_val)
        assert any("stands in for NT" in note for note in task.notes)


@needs_shared
def test_real_gue_task_without_train_file_trains_on_dev():
    task = load_genomics_task("prom_300_all", data_root=SHARED_GENOMICS, max_train=500)
    assert task.sizes == {"train": 500, "val": 592, "test": 5920}
    assert any("no train file" in note for note in task.notes)


# ---------------------------------------------------------------------------------- generated layouts
def write_fna(path, sequences, labels, wrap=60):
    with open(path, "w") as handle:
        for i, (sequence, label) in enumerate(zip(sequences, labels)):
            handle.write(f">seq{i}|{label}\n")
            for start in range(0, len(sequence), wrap):
                handle.write(sequence[start:start + wrap] + "\n")


def test_nt_fasta_layout_with_wrapped_lower_case_short_and_n(tmp_path):
    folder = tmp_path / "enhancers"
    folder.mkdir()
    train = random_sequences(40, 200, 0)
    train[0] = "acgtn" + train[0][5:]          # soft-masked and N
    train[1] = train[1][:150]                  # shorter than the task: zero-padded
    write_fna(folder / "train.fna", train, [i % 2 for i in range(40)])
    write_fna(folder / "test.fna", random_sequences(10, 200, 1), [i % 2 for i in range(10)])
    task = load_genomics_task("enhancers", data_root=tmp_path, val_fraction=0.25, seed=0)
    assert task.sizes == {"train": 30, "val": 10, "test": 10}
    x = np.concatenate([task.x_train, task.x_val])
    first = next(row for row in x if np.array_equal(row[:, :5], np.eye(5, dtype=np.float32)))
    assert first.sum() == 200
    short = [row for row in x if row.sum() == 150]
    assert len(short) == 1 and not short[0][:, 150:].any()
    assert not any("stands in" in note for note in task.notes)  # the NT files themselves: no substitute


def test_csv_layout(tmp_path):
    folder = tmp_path / "promoter_tata"
    folder.mkdir()
    for split, n in (("train", 30), ("test", 8)):
        pd.DataFrame({"sequence": random_sequences(n, 300, n), "label": [i % 2 for i in range(n)]}).to_csv(
            folder / f"{split}.csv", index=False)
    task = load_genomics_task("promoter_tata", path=folder, val_fraction=0.2, seed=1)
    assert task.sizes == {"train": 24, "val": 6, "test": 8} and task.metric == "f1"


def test_parquet_layout_ignores_extra_columns(tmp_path):
    pytest.importorskip("pyarrow")
    folder = tmp_path / "nucleotide_transformer_downstream_tasks" / "splice_sites_all"
    folder.mkdir(parents=True)
    for split, n in (("train", 30), ("test", 9)):
        pd.DataFrame({"sequence": random_sequences(n, 400, n), "name": [f"r{i}" for i in range(n)],
                      "label": [i % 3 for i in range(n)]}).to_parquet(folder / f"{split}.parquet")
    task = load_genomics_task("splice_sites_all", data_root=tmp_path, val_fraction=0.1)
    assert task.sizes == {"train": 27, "val": 3, "test": 9}
    assert task.input_shape == (5, 400) and task.metric == "accuracy" and set(task.y_test) == {0, 1, 2}


def test_gue_layout_uses_its_own_dev_split(tmp_path):
    folder = tmp_path / "GUE" / "prom" / "prom_core_tata"
    folder.mkdir(parents=True)
    dev_sequences = random_sequences(6, 70, 7)
    for split, n in (("train", 20), ("dev", 6), ("test", 6)):
        sequences = dev_sequences if split == "dev" else random_sequences(n, 70, n + 100)
        frame = pd.DataFrame({"sequence": sequences, "label": [i % 2 for i in range(n)]})
        with gzip.open(folder / f"{split}.csv.gz", "wt") as handle:
            frame.to_csv(handle, index=False)
    task = load_genomics_task("prom_core_tata", data_root=tmp_path, max_train=10)
    assert task.sizes == {"train": 10, "val": 6, "test": 6}
    assert np.array_equal(np.bincount(task.y_train), [5, 5])
    assert any("dev split" in note for note in task.notes)


def write_ienhancer(folder, duplicate_test_in_train=True):
    folder.mkdir(parents=True)
    sequences = {}
    for i, stem in enumerate(genomics.IENHANCER_FILES):
        n = 6 if stem.startswith("train") else 3
        sequences[stem] = random_sequences(n, 200, 50 + i)
    if duplicate_test_in_train:
        sequences["train_strong"][0] = sequences["test_strong"][0].lower()  # a case-insensitive copy
    for stem, file_name in genomics.IENHANCER_FILES.items():
        with open(folder / file_name, "w") as handle:
            for j, sequence in enumerate(sequences[stem]):
                handle.write(f">chr1_{j}\n{sequence[:100]}\n{sequence[100:]}\n")
    return sequences


def test_ienhancer_class_files_layout(tmp_path):
    write_ienhancer(tmp_path / "iEnhancer_Liu2016")
    binary = load_genomics_task("enhancers", data_root=tmp_path, val_fraction=0.0)
    types = load_genomics_task("enhancers_types", data_root=tmp_path, val_fraction=0.0)
    assert binary.sizes["train"] == 18 - 1 and binary.sizes["test"] == 9
    assert np.bincount(binary.y_test).tolist() == [3, 6]
    assert np.bincount(types.y_test).tolist() == [3, 3, 3] and types.class_names == ("non", "weak", "strong")
    assert np.bincount(types.y_train).tolist() == [6, 6, 5]  # the strong copy of a test sequence is gone
    assert any(n.startswith("removed 1 train sequences") for n in binary.notes)


# -------------------------------------------------------------------------------------- bad input
def test_missing_dataset_lists_paths_and_source(tmp_path):
    with pytest.raises(DatasetMissingError) as error:
        load_genomics_task("H3K4me3", data_root=tmp_path)
    message = str(error.value)
    assert str(tmp_path / "H3K4me3") in message and str(tmp_path / "genomics" / "H3K4me3") in message
    assert "InstaDeepAI/nucleotide_transformer_downstream_tasks" in message
    assert isinstance(error.value, DatasetError) and isinstance(error.value, ValueError)


def test_missing_enhancers_also_names_the_ienhancer_layout(tmp_path, monkeypatch):
    with pytest.raises(DatasetMissingError, match="iEnhancer") as error:
        load_genomics_task("enhancers", data_root=tmp_path)
    assert "train,test}_{strong,weak,non}_enhancers.txt" in str(error.value)


def write_csv_task(folder, train_rows, header="sequence,label"):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "train.csv").write_text(header + "\n" + "\n".join(train_rows) + "\n")
    (folder / "test.csv").write_text("sequence,label\n" + f"{'A' * 70},0\n{'C' * 70},1\n")


def test_wrong_csv_header(tmp_path):
    write_csv_task(tmp_path, [f"{'A' * 70},0"], header="seq,lab")
    with pytest.raises(DatasetError, match="expected a header with columns 'sequence' and 'label'") as error:
        load_genomics_task("prom_core_tata", path=tmp_path)
    assert str(tmp_path / "train.csv") in str(error.value)


def test_sequence_longer_than_the_task(tmp_path):
    write_csv_task(tmp_path, [f"{'A' * 70},0", f"{'G' * 71},1"])
    with pytest.raises(DatasetError, match=r"line 3: sequence of 71 bp is longer than the task length 70") as error:
        load_genomics_task("prom_core_tata", path=tmp_path, val_fraction=0.0)
    assert str(tmp_path / "train.csv") in str(error.value)


def test_unknown_character(tmp_path):
    folder = tmp_path / "enhancers"
    folder.mkdir()
    write_fna(folder / "train.fna", ["ACGT" * 50, "ACGT" * 20 + "ACXT" + "ACGT" * 29], [0, 1])
    write_fna(folder / "test.fna", ["ACGT" * 50], [1])
    with pytest.raises(DatasetError, match=r"record '>seq1\|1' \(line \d+\): unknown character 'X' at position 83") \
            as error:
        load_genomics_task("enhancers", path=folder, val_fraction=0.0)
    assert str(folder / "train.fna") in str(error.value)


def test_fasta_header_without_label_and_label_out_of_range(tmp_path):
    folder = tmp_path / "H3"
    folder.mkdir()
    (folder / "train.fna").write_text(">seq0\n" + "A" * 500 + "\n")
    (folder / "test.fna").write_text(">seq0|1\n" + "A" * 500 + "\n")
    with pytest.raises(DatasetError, match="no integer label after '\\|'"):
        load_genomics_task("H3", path=folder)
    (folder / "train.fna").write_text(">seq0|2\n" + "A" * 500 + "\n")
    with pytest.raises(DatasetError, match="label 2 is outside 0..1"):
        load_genomics_task("H3", path=folder, val_fraction=0.0)


def test_every_registered_task_has_a_searchable_folder():
    for info in GENOMICS_TASKS.values():
        assert info.folders and info.length in (70, 200, 300, 400, 500, 600)
