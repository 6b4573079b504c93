"""Satellite tasks: the real coffee scenes (`tests.conftest.SHARED_DATA`/satellite, skipped when absent), GEO-Bench HDF5 and image-folder
layouts on generated fixtures, normalization, augmentation, and one clear DatasetError per bad input."""
import json
import pickle
import sys
import types

import numpy as np
import pytest

import tasks.satellite as satellite
from tasks.classification import DatasetError, DatasetMissingError
from tasks.satellite import (
    PAPER_SATELLITE_TASKS,
    SATELLITE_TASKS,
    channel_statistics,
    load_satellite_task,
    random_flips_rot90,
)
from tasks.satellite_formats import read_images
from tests.conftest import SHARED_DATA

SHARED_SATELLITE = SHARED_DATA / "satellite"
needs_shared = pytest.mark.skipif(not SHARED_SATELLITE.is_dir(), reason=f"{SHARED_SATELLITE} not present")


@pytest.fixture(autouse=True)
def isolated_search(monkeypatch, tmp_path_factory):
    for variable in (*satellite.ENV_DATA_ROOTS, "GEO_BENCH_DIR"):
        monkeypatch.delenv(variable, raising=False)


def row_keys(x):
    return {row.tobytes() for row in x.reshape(len(x), -1)}


# ------------------------------------------------------------------------------------------ registry
def test_registry_has_the_papers_nine_tasks():
    assert len(PAPER_SATELLITE_TASKS) == 9
    assert SATELLITE_TASKS["m-bigearthnet"].multi_label and SATELLITE_TASKS["m-bigearthnet"].n_classes == 43
    assert SATELLITE_TASKS["m-bigearthnet"].metric == "average_precision"
    assert SATELLITE_TASKS["bigearthnet"].metric == "average_precision_micro"
    assert len(SATELLITE_TASKS["m-brick-kiln"].bands) == 13 and len(SATELLITE_TASKS["m-so2sat"].bands) == 18
    assert SATELLITE_TASKS["eurosat"].n_classes == 10 and SATELLITE_TASKS["fmow"].n_classes == 62
    assert "brazilian_coffee_scenes" not in PAPER_SATELLITE_TASKS
    assert satellite.satellite_task_info("brick_kiln").name == "m-brick-kiln"  # the authors' code keys work


# ------------------------------------------------------------------------------------------ real data
@pytest.fixture(scope="module")
def coffee(tmp_path_factory):
    if not SHARED_SATELLITE.is_dir():
        pytest.skip(f"{SHARED_SATELLITE} not present")
    shared_before = sorted(p.name for p in SHARED_SATELLITE.rglob("*"))
    cache = tmp_path_factory.mktemp("coffee_cache")
    task = load_satellite_task("brazilian_coffee_scenes", data_root=SHARED_SATELLITE.parent, cache_dir=cache)
    assert sorted(p.name for p in SHARED_SATELLITE.rglob("*")) == shared_before  # nothing written to shared
    return task, cache


@needs_shared
def test_real_coffee_scenes_shapes_classes_and_split(coffee):
    task, cache = coffee
    assert task.input_shape == (3, 64, 64) and task.x_train.dtype == np.float32
    assert task.sizes == {"train": 1726, "val": 575, "test": 575} and sum(task.sizes.values()) == 2876
    assert task.n_classes == 2 and task.metric == "accuracy" and task.class_names == ("noncoffee", "coffee")
    for y in (task.y_train, task.y_val, task.y_test):
        assert abs(y.mean() - 0.5) < 0.01  # stratified; the dataset is exactly balanced
    assert not row_keys(task.x_test) & row_keys(task.x_train)
    assert any(note.startswith("substitute") for note in task.notes)
    assert any(cache.iterdir())  # the tarball was unpacked in the cache, not beside the data


@needs_shared
def test_real_coffee_scenes_normalized_with_train_statistics(coffee):
    task, _ = coffee
    assert np.allclose(task.x_train.mean(axis=(0, 2, 3)), 0, atol=1e-4)
    assert np.allclose(task.x_train.std(axis=(0, 2, 3)), 1, atol=1e-3)
    assert task.channel_mean[0] > task.channel_mean[2]  # PROVENANCE: channel 0 (NIR) is the brightest
    assert np.abs(task.x_test.mean(axis=(0, 2, 3))).max() < 0.2  # same distribution, not exactly 0


# --------------------------------------------------------------------------------------- GEO-Bench
@pytest.fixture
def fake_geobench(monkeypatch):
    """A stand-in `geobench.dataset.Sentinel2` so fixtures pickle band info as GEO-Bench does."""
    package, module = types.ModuleType("geobench"), types.ModuleType("geobench.dataset")

    class Sentinel2:
        def __init__(self, name, spatial_resolution):
            self.name, self.spatial_resolution = name, spatial_resolution

    Sentinel2.__module__, Sentinel2.__qualname__ = "geobench.dataset", "Sentinel2"
    module.Sentinel2, package.dataset = Sentinel2, module
    monkeypatch.setitem(sys.modules, "geobench", package)
    monkeypatch.setitem(sys.modules, "geobench.dataset", module)
    return Sentinel2


def write_geobench_sample(path, bands, label, band_info):
    h5py = pytest.importorskip("h5py")
    attributes, order = {}, []
    with h5py.File(path, "w") as handle:
        for name, data in bands.items():
            handle.create_dataset(name, data=data)
            order.append(name)
            attributes[name] = dict(date=None, date_id=None, spatial_resolution=10.0, band_info=band_info(name, 10.0),
                                    meta_info=None, transform=None, crs=None)
        attributes["label"], attributes["bands_order"] = label, order
        handle.attrs["pickle"] = str(pickle.dumps(attributes))


def write_geobench_task(folder, band_names, labels_by_split, band_info, size=8, low_res_band=None):
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    partition = {}
    for split, labels in labels_by_split.items():
        partition[split] = []
        for i, label in enumerate(labels):
            name = f"{split}_{i}"
            bands = {b: rng.integers(0, 3000, (size, size)).astype(np.int16) for b in band_names}
            if low_res_band:
                bands[low_res_band] = rng.integers(0, 3000, (size // 2, size // 2)).astype(np.int16)
            write_geobench_sample(folder / f"{name}.hdf5", bands, label, band_info)
            partition[split].append(name)
    (folder / "default_partition.json").write_text(json.dumps(partition))


def test_geobench_hdf5_layout(tmp_path, fake_geobench):
    bands = satellite.SATELLITE_TASKS["m-brick-kiln"].bands
    labels = {"train": [0, 1, 1, np.int64(0)], "valid": [1, 0], "test": [0, 1, 1]}
    write_geobench_task(tmp_path / "classification_v1.0" / "m-brick-kiln", bands, labels, fake_geobench,
                        low_res_band=bands[0])
    task = load_satellite_task("m-brick-kiln", data_root=tmp_path)
    assert task.sizes == {"train": 4, "val": 2, "test": 3} and task.input_shape == (13, 8, 8)
    assert task.y_train.tolist() == [0, 1, 1, 0] and task.y_val.tolist() == [1, 0]
    assert np.allclose(task.x_train.mean(axis=(0, 2, 3)), 0, atol=1e-5)
    assert any("GEO-Bench default partition" in note for note in task.notes)


def test_geobench_multi_label(tmp_path, fake_geobench):
    info = satellite.SATELLITE_TASKS["m-bigearthnet"]
    hot = lambda *classes: np.isin(np.arange(43), classes).astype(np.int64)  # noqa: E731
    labels = {"train": [hot(0, 5), hot(42)], "valid": [hot(1)], "test": [hot(0), hot(5, 42)]}
    write_geobench_task(tmp_path / "m-bigearthnet", info.bands, labels, fake_geobench)
    task = load_satellite_task("m-bigearthnet", path=tmp_path / "m-bigearthnet")
    assert task.multi_label and task.y_test.dtype == np.float32 and task.y_test.shape == (2, 43)
    assert task.y_train[0].nonzero()[0].tolist() == [0, 5]
    scores = task.score(task.y_test, np.where(task.y_test > 0, 3.0, -3.0))
    assert scores["average_precision"] == pytest.approx(1.0) and scores["accuracy"] == 1.0


def test_corrupt_geobench_sample(tmp_path, fake_geobench):
    folder = tmp_path / "m-brick-kiln"
    write_geobench_task(folder, SATELLITE_TASKS["m-brick-kiln"].bands, {"train": [0, 1], "valid": [0], "test": [1]},
                        fake_geobench)
    (folder / "train_1.hdf5").write_bytes(b"not an HDF5 file at all")
    with pytest.raises(DatasetError, match="cannot be read as HDF5") as error:
        load_satellite_task("m-brick-kiln", path=folder)
    assert str(folder / "train_1.hdf5") in str(error.value)


def test_geobench_metadata_that_would_run_code_is_refused(tmp_path, fake_geobench):
    folder = tmp_path / "m-pv4ger"
    write_geobench_task(folder, ("Red", "Green", "Blue"), {"train": [0], "valid": [0], "test": [1]}, fake_geobench)
    h5py = pytest.importorskip("h5py")

    class Exploit:
        def __reduce__(self):
            return (print, ("pwned",))

    with h5py.File(folder / "train_0.hdf5", "a") as handle:
        handle.attrs["pickle"] = str(pickle.dumps({"label": Exploit(), "bands_order": ["Red"]}))
    with pytest.raises(DatasetError, match="refusing to unpickle builtins.print") as error:
        load_satellite_task("m-pv4ger", path=folder)
    assert str(folder / "train_0.hdf5") in str(error.value)


# ----------------------------------------------------------------------------------- image folders
def write_eurosat(folder, per_class=5, size=16):
    tifffile = pytest.importorskip("tifffile")
    rng = np.random.default_rng(1)
    for c, name in enumerate(satellite.EUROSAT_CLASSES):
        (folder / name).mkdir(parents=True)
        for i in range(per_class):
            image = (rng.integers(0, 1000, (size, size, 13)) + 100 * c).astype(np.uint16)
            if c % 2:  # pixel-interleaved (H, W, bands), as GDAL writes by default
                tifffile.imwrite(folder / name / f"{name}_{i}.tif", image, photometric="minisblack",
                                 planarconfig="contig")
            else:      # band-interleaved (bands, H, W)
                tifffile.imwrite(folder / name / f"{name}_{i}.tif", image.transpose(2, 0, 1),
                                 photometric="minisblack", planarconfig="separate")


def test_eurosat_folder_of_multiband_tiffs(tmp_path):
    write_eurosat(tmp_path / "EuroSAT_MS")
    task = load_satellite_task("eurosat", data_root=tmp_path, test_fraction=0.2, val_fraction=0.25, seed=2)
    assert task.input_shape == (13, 16, 16) and task.class_names == satellite.EUROSAT_CLASSES
    assert task.sizes == {"train": 30, "val": 10, "test": 10}
    assert np.bincount(task.y_test).tolist() == [1] * 10
    other_seed = load_satellite_task("eurosat", data_root=tmp_path, seed=3)
    raw = lambda t, x: x * t.channel_std[None, :, None, None] + t.channel_mean[None, :, None, None]  # noqa: E731
    # The test images never move with the seed (only their normalization, which follows the train set).
    assert np.allclose(raw(task, task.x_test), raw(other_seed, other_seed.x_test), atol=1e-2)
    assert not np.allclose(raw(task, task.x_val), raw(other_seed, other_seed.x_val), atol=1e-2)


def test_presplit_image_folders_and_png(tmp_path):
    from PIL import Image
    rng = np.random.default_rng(0)
    for split, n in (("train", 4), ("test", 2)):
        for label in ("coffee", "noncoffee"):
            (tmp_path / split / label).mkdir(parents=True)
            for i in range(n):
                Image.fromarray(rng.integers(0, 255, (12, 12, 3), dtype=np.uint8)).save(tmp_path / split / label / f"{i}.png")
    task = load_satellite_task("brazilian_coffee_scenes", path=tmp_path, val_fraction=0.25)
    assert task.sizes == {"train": 6, "val": 2, "test": 4} and task.input_shape == (3, 12, 12)
    image_set = read_images([tmp_path / "train" / "coffee" / "0.png"], [1])
    assert image_set.images.shape == (1, 3, 12, 12) and image_set.images.dtype == np.uint8


def test_coffee_layout_with_original_fold_lists(tmp_path):
    from PIL import Image
    root = tmp_path / "brazilian_coffee_scenes"
    (root / "images").mkdir(parents=True)
    for fold in range(1, 4):
        lines = []
        for i in range(4):
            label = "coffee" if i % 2 else "noncoffee"
            stem = f"region.T{fold}.B{i}"
            Image.fromarray(np.full((8, 8, 3), 10 * fold + i, dtype=np.uint8)).save(root / "images" / f"{stem}.jpg")
            lines.append(f"{label}.{stem}")
        (root / f"fold{fold}.txt").write_text("\n".join(lines) + "\n")
    (root / "desc.txt").write_text("")
    task = load_satellite_task("coffee", data_root=tmp_path, val_fraction=0.25)
    assert task.sizes == {"train": 6, "val": 2, "test": 4}
    assert any(note.startswith("test: fold3; train pool: fold1, fold2") for note in task.notes)


def test_empty_class_folder(tmp_path):
    write_eurosat(tmp_path, per_class=2)
    (tmp_path / "Forest").rename(tmp_path / "Forest_old")
    (tmp_path / "Forest").mkdir()
    with pytest.raises(DatasetError, match="class folder holds no image") as error:
        load_satellite_task("eurosat", path=tmp_path)
    assert str(tmp_path / "Forest") in str(error.value)


def test_wrong_number_of_bands_or_classes(tmp_path):
    write_eurosat(tmp_path / "a", per_class=2)
    (tmp_path / "a" / "Forest_extra").mkdir()
    (tmp_path / "a" / "Forest" / "Forest_0.tif").rename(tmp_path / "a" / "Forest_extra" / "x.tif")
    with pytest.raises(DatasetError, match="11 class folders"):
        load_satellite_task("eurosat", path=tmp_path / "a")
    with pytest.raises(DatasetError, match="13 bands, but task brazilian_coffee_scenes expects 3"):
        load_satellite_task("coffee", path=_two_class_copy(tmp_path))


def _two_class_copy(tmp_path):
    write_eurosat(tmp_path / "b", per_class=3)
    for extra in satellite.EUROSAT_CLASSES[2:]:
        for f in (tmp_path / "b" / extra).iterdir():
            f.unlink()
        (tmp_path / "b" / extra).rmdir()
    return tmp_path / "b"


def test_missing_dataset_lists_paths_and_source(tmp_path, monkeypatch):
    with pytest.raises(DatasetMissingError) as error:
        load_satellite_task("m-so2sat", data_root=tmp_path)
    message = str(error.value)
    assert str(tmp_path / "classification_v1.0" / "m-so2sat") in message
    assert "github.com/ServiceNow/geo-bench" in message and isinstance(error.value, ValueError)


# --------------------------------------------------------------------------- normalization, augmentation
def test_channel_statistics_match_numpy():
    images = np.random.default_rng(0).integers(0, 255, (50, 3, 4, 5)).astype(np.uint8)
    mean, std = channel_statistics(images, chunk=7)
    assert np.allclose(mean, images.mean(axis=(0, 2, 3))) and np.allclose(std, images.std(axis=(0, 2, 3)))
    assert channel_statistics(np.ones((2, 1, 2, 2)))[1].tolist() == [1.0]  # constant channel: std 1


def dihedral_images(image):
    rotations = [np.rot90(image, k, axes=(-2, -1)) for k in range(4)]
    return rotations + [np.flip(r, -1) for r in rotations]


def test_flips_and_rotations_numpy_and_torch():
    batch = np.arange(64 * 2 * 4 * 4, dtype=np.float32).reshape(64, 2, 4, 4)
    original = batch.copy()
    out = random_flips_rot90(batch, np.random.default_rng(0))
    assert np.array_equal(batch, original)  # the input is untouched
    assert np.array_equal(out, random_flips_rot90(batch, np.random.default_rng(0)))
    seen = set()
    for image, result in zip(batch, out):
        matches = [k for k, d in enumerate(dihedral_images(image)) if np.array_equal(d, result)]
        assert matches
        seen.add(matches[0])
    assert seen == set(range(8))  # every flip/rotation combination occurs
    torch = pytest.importorskip("torch")
    tensor_out = random_flips_rot90(torch.from_numpy(batch), torch.Generator().manual_seed(0))
    assert isinstance(tensor_out, torch.Tensor) and tensor_out.shape == batch.shape
    for image, result in zip(batch, tensor_out.numpy()):
        assert any(np.array_equal(d, result) for d in dihedral_images(image))


def test_non_square_images_keep_their_shape():
    batch = np.random.default_rng(0).random((32, 1, 3, 5))
    out = random_flips_rot90(batch, np.random.default_rng(1))
    assert out.shape == batch.shape


@pytest.mark.parametrize("vertical", [True, False])
def test_the_reference_augmentation_flips_then_rotates_by_any_angle(vertical):
    """DASHA `protocol: reference` trains satellite tasks with the authors' augmentation. Checked against an
    independent nearest-neighbour rotation written here from the definition: the same draws (flips, then
    an angle uniform in [-90, 90] degrees), each output pixel read from the input pixel its centre rotates
    onto, zero outside; no up-down flip when `vertical` is False (the authors' EuroSAT)."""
    import math

    import torch

    from tasks.satellite import reference_flips_rotation

    batch = torch.arange(8 * 2 * 15 * 15, dtype=torch.float32).reshape(8, 2, 15, 15) + 1.0
    out = reference_flips_rotation(batch, torch.Generator().manual_seed(3), vertical=vertical)
    draw = torch.Generator().manual_seed(3)
    flips = torch.randint(0, 2, (8, 2), generator=draw) == 1
    angles = (torch.rand(8, generator=draw, dtype=torch.float64) * 180.0 - 90.0) * math.pi / 180.0
    assert out.shape == batch.shape and not torch.equal(out, batch)
    agree = total = 0
    zeroed = 0
    for k in range(8):
        image = batch[k].numpy()
        if flips[k, 0]:
            image = image[:, :, ::-1]
        if flips[k, 1] and vertical:
            image = image[:, ::-1, :]
        c, s = math.cos(angles[k]), math.sin(angles[k])
        for i in range(15):
            for j in range(15):
                x, y = (2 * j + 1) / 15 - 1, (2 * i + 1) / 15 - 1
                xs, ys = c * x - s * y, s * x + c * y
                col, row = ((xs + 1) * 15 - 1) / 2, ((ys + 1) * 15 - 1) / 2
                r, q = round(row), round(col)
                expected = image[:, r, q] if 0 <= r < 15 and 0 <= q < 15 else np.zeros(2)
                agree += int(np.array_equal(out[k, :, i, j].numpy(), expected))
                total += 1
                zeroed += int(not expected.any())
    assert agree / total > 0.99          # (a pixel centre exactly half-way between two may round either way)
    assert zeroed > 0                     # corners fall outside at angles that are not multiples of 90 degrees
    assert torch.equal(batch, torch.arange(8 * 2 * 15 * 15, dtype=torch.float32).reshape(8, 2, 15, 15) + 1.0)
