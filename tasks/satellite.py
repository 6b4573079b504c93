"""Satellite image classification tasks: the paper's 9 tasks (Xu et al. 2025, Table 2) and the offline
Brazilian Coffee Scenes stand-in.

Protocol:
- Inputs are float32 (N, C, H, W), every channel z-scored with the mean and (population) std of the
  TRAINING images (a constant channel keeps std 1). The authors skip normalization for EuroSAT; here
  every task is normalized, so that all tasks share one input convention.
- Splits: the dataset's own (GEO-Bench partition train/valid/test; train/val/test folders; the coffee
  scenes' original folds, last fold = test). A dataset without a test split gets a stratified
  `test_fraction` hold-out with a FIXED seed (every run scores the same images); validation is
  `val_fraction` of the remaining training pool, stratified, moved by `seed`.
- Metric: accuracy; per-class-averaged AP for GEO-Bench m-bigearthnet and micro AP for BigEarthNet-10%
  (multi-label). Scores are 0-1 (the paper prints accuracies in %).
- Training augmentation (`random_flips_rot90`): random horizontal and vertical flips and rotations by
  multiples of 90 degrees. (The authors' RandomRotation(90) draws a continuous angle; right angles keep
  every pixel exact and need no interpolation or fill.)

File layouts are read in `tasks.satellite_formats`.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tasks.classification import ClassificationTask, DatasetError, DatasetMissingError, holdout_split, stratified_pick
from tasks.satellite_formats import (
    COFFEE_TARBALL,
    ImageSet,
    coffee_root,
    coffee_splits,
    geobench_partition,
    image_folder_splits,
    is_image_folder,
    read_geobench_split,
    read_images,
)

ENV_DATA_ROOTS = ("LAUNCHER_DATA", "LAUNCHER_DATA_ROOT")
DEFAULT_CACHE_DIR = Path("~/.cache/launcher/satellite").expanduser()
TEST_SPLIT_SEED = 0

S2_13 = ("01 - Coastal aerosol", "02 - Blue", "03 - Green", "04 - Red", "05 - Vegetation Red Edge",
         "06 - Vegetation Red Edge", "07 - Vegetation Red Edge", "08 - NIR", "08A - Vegetation Red Edge",
         "09 - Water vapour", "10 - SWIR - Cirrus", "11 - SWIR", "12 - SWIR")
S2_12 = tuple(b for b in S2_13 if "Cirrus" not in b)
S2_10 = tuple(b for b in S2_12 if not b.startswith(("01", "09")))
S1_8 = ("01 - VH.Real", "02 - VH.Imaginary", "03 - VV.Real", "04 - VV.Imaginary", "05 - VH.LEE Filtered",
        "06 - VV.LEE Filtered", "07 - VH.LEE Filtered.Real", "08 - VV.LEE Filtered.Imaginary")
LANDSAT8_6 = ("02 - Blue", "03 - Green", "04 - Red", "05 - NIR", "06 - SWIR1", "07 - SWIR2")
EUROSAT_CLASSES = ("AnnualCrop", "Forest", "HerbaceousVegetation", "Highway", "Industrial", "Pasture",
                   "PermanentCrop", "Residential", "River", "SeaLake")

GEOBENCH_SOURCE = ("GEO-Bench v1.0, https://github.com/ServiceNow/geo-bench (`geobench-download`, data on "
                   "Zenodo); the task folder holds <sample>.hdf5 files and default_partition.json")
UNSUPPORTED = "its native layout is not read yet: convert it to an image-folder or GEO-Bench-HDF5 layout"


@dataclass(frozen=True)
class SatelliteTaskInfo:
    name: str
    bands: tuple[str, ...]
    image_size: int            # native side in pixels (inputs are fed at this size)
    n_classes: int
    multi_label: bool
    metric: str
    folders: tuple[str, ...]   # where the task folder may sit under a data root
    source: str
    in_paper: bool = True
    notes: tuple[str, ...] = ()
    class_names: tuple[str, ...] = ()


def _geobench(name: str, bands, size: int, n_classes: int, multi_label: bool = False, notes=()) -> SatelliteTaskInfo:
    folders = tuple(f"{prefix}{name}" for prefix in ("", "classification_v1.0/", "classification_v0.9.1/",
                                                     "geobench/classification_v1.0/"))
    return SatelliteTaskInfo(name, tuple(bands), size, n_classes, multi_label,
                             "average_precision" if multi_label else "accuracy", folders, GEOBENCH_SOURCE,
                             notes=tuple(notes))


SATELLITE_TASKS: dict[str, SatelliteTaskInfo] = {info.name: info for info in (
    _geobench("m-bigearthnet", S2_12, 120, 43, multi_label=True),
    _geobench("m-brick-kiln", S2_13, 64, 2),
    _geobench("m-so2sat", S1_8 + S2_10, 32, 17,
              notes=("fed at the native 32x32 (the authors' code resizes m-so2sat to 64x64)",)),
    _geobench("m-forestnet", LANDSAT8_6, 332, 12),
    _geobench("m-pv4ger", ("Red", "Green", "Blue"), 320, 2),
    SatelliteTaskInfo("eurosat", S2_13, 64, 10, False, "accuracy", ("EuroSAT_MS", "eurosat", "EuroSAT"),
                      "EuroSAT-MS, https://github.com/phelber/EuroSAT (one folder per class of 13-band GeoTIFFs)",
                      notes=("normalized with train statistics (the authors' code feeds EuroSAT unnormalized)",),
                      class_names=EUROSAT_CLASSES),
    SatelliteTaskInfo("bigearthnet", S2_12, 120, 19, True, "average_precision_micro", ("BigEarthNet", "bigearthnet"),
                      f"BigEarthNet-S2 v1.0, https://bigearth.net (19-class nomenclature, 10% train subset); {UNSUPPORTED}"),
    SatelliteTaskInfo("canadian_cropland", S2_12, 65, 10, False, "accuracy", ("canadian_cropland", "cropland"),
                      f"Canadian Cropland (CROMA benchmark files), https://github.com/bioinfoUQAM/Canadian-Cropland-Dataset; {UNSUPPORTED}"),
    SatelliteTaskInfo("fmow", S2_13, 96, 62, False, "accuracy", ("fmow", "fmow-sentinel"),
                      f"fMoW-Sentinel (SatMAE), https://purl.stanford.edu/vg497cb6002 (10% train subset); {UNSUPPORTED}"),
    SatelliteTaskInfo("brazilian_coffee_scenes", ("NIR", "Red", "Green"), 64, 2, False, "accuracy",
                      ("brazilian_coffee_scenes", "dataset-brazilian_coffee_scenes"),
                      "Brazilian Coffee Scenes (Penatti et al. 2015), http://www.patreo.dcc.ufmg.br/downloads/brazilian-coffee-dataset/",
                      in_paper=False,
                      notes=("substitute: Brazilian Coffee Scenes (3-band SPOT, 64x64, binary) stands in for GEO-Bench "
                             "m-brick-kiln (13-band Sentinel-2, binary); not one of the paper's tasks",
                             "band order presumed NIR, R, G (false-colour JPEG), not confirmed by the source",
                             "hardImages/ (47 byte-identical copies of images/ files) ignored"),
                      class_names=("noncoffee", "coffee")),
)}
PAPER_SATELLITE_TASKS = tuple(name for name, info in SATELLITE_TASKS.items() if info.in_paper)
ALIASES = {"big_earth_net": "m-bigearthnet", "brick_kiln": "m-brick-kiln", "so2sat": "m-so2sat",
           "forestnet": "m-forestnet", "pv4ger": "m-pv4ger", "BigEarth": "bigearthnet", "coffee": "brazilian_coffee_scenes"}


def list_satellite_tasks() -> list[str]:
    return list(SATELLITE_TASKS)


def satellite_task_info(name: str) -> SatelliteTaskInfo:
    info = SATELLITE_TASKS.get(ALIASES.get(name, name))
    if info is None:
        raise ValueError(f"unknown satellite task {name!r}; known: {', '.join(SATELLITE_TASKS)}")
    return info


def search_roots(data_root: str | Path | None = None) -> list[Path]:
    """`data_root` (a sweep's `data_root`), $LAUNCHER_DATA, $LAUNCHER_DATA_ROOT, $GEO_BENCH_DIR; each also
    in its `satellite/` subfolder. Nothing outside those is searched."""
    roots = [Path(data_root)] if data_root is not None else []
    roots += [Path(os.environ[v]) for v in (*ENV_DATA_ROOTS, "GEO_BENCH_DIR") if os.environ.get(v)]
    expanded: list[Path] = []
    for root in roots:
        for candidate in (root, root / "satellite") if root.name != "satellite" else (root,):
            if candidate not in expanded:
                expanded.append(candidate)
    return expanded


def _detect(folder: Path, cache_dir: Path) -> tuple[str, Path] | None:
    if not folder.is_dir():
        return None
    if (folder / "default_partition.json").is_file() or any(folder.glob("*_partition.json")):
        return "geobench", folder
    root = coffee_root(folder, cache_dir)
    if root is not None:
        return "coffee", root
    return ("image_folder", folder) if is_image_folder(folder) else None


def find_satellite_task(name: str, data_root: str | Path | None = None, path: str | Path | None = None,
                        cache_dir: str | Path | None = None) -> tuple[str, Path]:
    """(layout, folder): layout is "geobench", "coffee" or "image_folder"; `path` skips the search."""
    info = satellite_task_info(name)
    cache = Path(cache_dir) if cache_dir is not None else DEFAULT_CACHE_DIR
    folders = [Path(path)] if path is not None else [r / sub for r in search_roots(data_root) for sub in info.folders]
    for folder in folders:
        found = _detect(folder, cache)
        if found is not None:
            return found
    listing = "\n  ".join(str(f) for f in folders)
    raise DatasetMissingError(
        f"satellite task {info.name!r} not found. Looked in these folders for default_partition.json + "
        f"<sample>.hdf5 (GEO-Bench), desc.txt + images/ or {COFFEE_TARBALL} (coffee scenes), or one "
        f"sub-folder per class (image folders):\n  {listing}\n"
        f"Source: {info.source}. Pass its folder as data_root/path or set ${ENV_DATA_ROOTS[0]}.")


# ------------------------------------------------------------------------------------------ splits
def _split_file_lists(splits: dict[str, tuple[list[Path], list[int]]], val_fraction: float, test_fraction: float,
                      seed: int, notes: list[str]) -> dict[str, tuple[list[Path], list[int]]]:
    """{"train", "val", "test": (files, labels)} from whichever splits the dataset provides."""
    def take(pair, index):
        return [pair[0][i] for i in index], [pair[1][i] for i in index]

    if "all" in splits:
        pool_idx, test_idx = holdout_split(np.array(splits["all"][1]), test_fraction, TEST_SPLIT_SEED)
        pool, test = take(splits["all"], pool_idx), take(splits["all"], test_idx)
        notes.append(f"test: {len(test_idx)} of {len(splits['all'][0])} images ({test_fraction:.0%}, stratified, "
                     f"fixed seed {TEST_SPLIT_SEED})")
    elif "test" in splits:
        pool, test = splits["train"], splits["test"]
    else:  # the coffee scenes' original folds: the last fold is the test set
        folds = sorted(splits, key=lambda f: int("".join(filter(str.isdigit, f)) or 0))
        test = splits[folds[-1]]
        pool = ([f for k in folds[:-1] for f in splits[k][0]], [y for k in folds[:-1] for y in splits[k][1]])
        notes.append(f"test: {folds[-1]}; train pool: {', '.join(folds[:-1])}")
    if "val" in splits:
        return {"train": pool, "val": splits["val"], "test": test}
    train_idx, val_idx = holdout_split(np.array(pool[1]), val_fraction, seed)
    notes.append(f"validation: {len(val_idx)} of {len(pool[0])} training images ({val_fraction:.0%}, stratified, seed {seed})")
    return {"train": take(pool, train_idx), "val": take(pool, val_idx), "test": test}


def _geobench_sets(info: SatelliteTaskInfo, folder: Path, seed: int, max_train: int | None,
                   notes: list[str]) -> dict[str, ImageSet]:
    partition = geobench_partition(folder)
    names = {"train": partition["train"], "val": partition["valid"], "test": partition["test"]}
    if max_train is not None and max_train < len(names["train"]):
        # Labels live inside the sample files, so the cap is a uniform draw of sample names.
        picked = np.sort(np.random.default_rng(seed).permutation(len(names["train"]))[:max_train])
        notes.append(f"training set capped at {max_train} of {len(names['train'])} samples (uniform, seed {seed})")
        names["train"] = [names["train"][i] for i in picked]
    notes.append("splits: GEO-Bench default partition (train / valid / test)")
    return {s: read_geobench_split(folder, n, info.n_classes, info.multi_label) for s, n in names.items()}


def _file_sets(lists: dict[str, tuple[list[Path], list[int]]], seed: int, max_train: int | None,
               notes: list[str]) -> dict[str, ImageSet]:
    files, labels = lists["train"]
    if max_train is not None and max_train < len(files):
        _, picked = stratified_pick(np.array(labels), max_train, seed)
        notes.append(f"training set capped at {max_train} of {len(files)} images (stratified, seed {seed})")
        lists = {**lists, "train": ([files[i] for i in picked], [labels[i] for i in picked])}
    return {split: read_images(*pair) for split, pair in lists.items()}


# ----------------------------------------------------------------------------------- normalization
def channel_statistics(images: np.ndarray, chunk: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and population std of (N, C, H, W), accumulated in float64 chunk by chunk
    (about 4 M values, 32 MB, per chunk by default)."""
    n_channels = images.shape[1]
    chunk = chunk or max(1, 4_000_000 // max(1, int(np.prod(images.shape[1:]))))
    total, squares, count = np.zeros(n_channels), np.zeros(n_channels), 0
    for start in range(0, len(images), chunk):
        block = images[start:start + chunk].astype(np.float64)
        total += block.sum(axis=(0, 2, 3))
        squares += np.square(block).sum(axis=(0, 2, 3))
        count += block.shape[0] * block.shape[2] * block.shape[3]
    mean = total / max(count, 1)
    std = np.sqrt(np.maximum(squares / max(count, 1) - mean ** 2, 0.0))
    std[std == 0] = 1.0
    return mean, std


def normalize(images: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    out = images.astype(np.float32)  # one float32 copy, then in place
    out -= mean.astype(np.float32)[None, :, None, None]
    out /= std.astype(np.float32)[None, :, None, None]
    return out


def reference_flips_rotation(batch, generator, *, vertical: bool = True):
    """The DASHA reference code's training augmentation (its `protocol: reference`): each image flipped
    left-right and (unless `vertical` is False, as for its EuroSAT) up-down with probability 1/2, then
    rotated by an angle drawn uniformly from [-90, 90] degrees (torchvision's `RandomRotation(90)`: any
    angle, not multiples of 90; nearest neighbour, zero fill outside the rotated image, same size).
    `batch` is a torch tensor (N, C, H, W) with a CPU `torch.Generator` (or None); never modified."""
    import math

    import torch
    import torch.nn.functional as F

    n = batch.shape[0]
    flips = (torch.randint(0, 2, (n, 2), generator=generator) == 1).to(batch.device)
    angles = (torch.rand(n, generator=generator, dtype=torch.float64) * 180.0 - 90.0) * math.pi / 180.0
    out = batch.clone()
    for column, axis in ((0, -1), (1, -2)):
        mask = flips[:, column]
        if (column == 0 or vertical) and mask.any():
            out[mask] = torch.flip(out[mask], dims=(axis,))
    cos, sin = torch.cos(angles), torch.sin(angles)
    zero = torch.zeros_like(cos)
    theta = torch.stack([torch.stack([cos, -sin, zero], 1), torch.stack([sin, cos, zero], 1)], 1)
    grid = F.affine_grid(theta.to(batch.device, torch.float32), list(out.shape), align_corners=False)
    return F.grid_sample(out.float(), grid, mode="nearest", padding_mode="zeros", align_corners=False).to(out.dtype)


def random_flips_rot90(batch, generator):
    """A new batch (N, C, H, W) with each image independently flipped left-right and up-down (each with
    probability 1/2) and rotated by a uniform multiple of 90 degrees (only 0 or 180 for non-square images).

    `batch` is a numpy array with a `numpy.random.Generator`, or a torch tensor with a CPU
    `torch.Generator` (or None for torch's global one); the input is never modified.
    """
    n, square = batch.shape[0], batch.shape[-1] == batch.shape[-2]
    if isinstance(batch, np.ndarray):
        flips, turns = generator.integers(0, 2, size=(n, 2)) == 1, generator.integers(0, 4 if square else 2, size=n)
        out = batch.copy()
        flip = lambda x, axis: np.flip(x, axis)  # noqa: E731
        rotate = lambda x, k: np.rot90(x, k, axes=(-2, -1))  # noqa: E731
    else:
        import torch
        # Drawn on the CPU so a CPU generator serves any device; masks then follow the batch.
        flips = (torch.randint(0, 2, (n, 2), generator=generator) == 1).to(batch.device)
        turns = torch.randint(0, 4 if square else 2, (n,), generator=generator).to(batch.device)
        out = batch.clone()
        flip = lambda x, axis: torch.flip(x, dims=(axis,))  # noqa: E731
        rotate = lambda x, k: torch.rot90(x, k, dims=(-2, -1))  # noqa: E731
    if not square:
        turns = 2 * turns  # a quarter turn would change H x W
    for column, axis in ((0, -1), (1, -2)):
        mask = flips[:, column]
        if mask.any():
            out[mask] = flip(out[mask], axis)
    for k in (1, 2, 3):
        mask = turns == k
        if mask.any():
            out[mask] = rotate(out[mask], k)
    return out


# ------------------------------------------------------------------------------------------ loading
def load_satellite_task(name: str, data_root: str | Path | None = None, path: str | Path | None = None,
                        val_fraction: float = 0.25, seed: int = 0, cache_dir: str | Path | None = None,
                        test_fraction: float = 0.2, max_train: int | None = None) -> ClassificationTask:
    """The task `name` as normalized (N, C, H, W) float32 arrays.

    `path` is the task's folder (any supported layout); otherwise it is searched under the data roots
    (see `search_roots`). Tarballs are unpacked under `cache_dir` (default ~/.cache/launcher/satellite),
    never beside the data. With the defaults a dataset without its own splits is divided 60/20/20.
    """
    info = satellite_task_info(name)
    layout, folder = find_satellite_task(name, data_root, path, cache_dir)
    notes = list(info.notes)
    class_names = info.class_names
    if layout == "geobench":
        sets = _geobench_sets(info, folder, seed, max_train, notes)
    else:
        if info.multi_label:
            raise DatasetError(f"{folder}: task {info.name} is multi-label; only the GEO-Bench HDF5 layout carries "
                               "multi-label targets")
        if layout == "coffee":
            lists = coffee_splits(folder)
        else:
            class_names, lists = image_folder_splits(folder)
            class_names = tuple(class_names)
            if len(class_names) != info.n_classes:
                raise DatasetError(f"{folder}: {len(class_names)} class folders {list(class_names)[:12]}, but task "
                                   f"{info.name} has {info.n_classes} classes")
        sets = _file_sets(_split_file_lists(lists, val_fraction, test_fraction, seed, notes), seed, max_train, notes)

    train = sets["train"]
    if len(train.labels) == 0:
        raise DatasetError(f"{folder}: the training split is empty")
    if info.bands and train.images.shape[1] != len(info.bands):
        raise DatasetError(f"{train.files[0]}: {train.images.shape[1]} bands, but task {info.name} expects "
                           f"{len(info.bands)} ({', '.join(info.bands)})")
    for split, image_set in sets.items():
        if len(image_set.labels) and image_set.images.shape[1:] != train.images.shape[1:]:
            raise DatasetError(f"{image_set.files[0]}: {split} images are {image_set.images.shape[1:]} (C, H, W), "
                               f"training images {train.images.shape[1:]}")
    mean, std = channel_statistics(train.images)
    notes.append("inputs z-scored per channel with training-set mean and std")
    arrays = {s: (normalize(v.images, mean, std) if len(v.labels) else
                  np.empty((0, *train.images.shape[1:]), dtype=np.float32)) for s, v in sets.items()}
    return ClassificationTask(
        name=info.name, domain="satellite",
        x_train=arrays["train"], y_train=sets["train"].labels, x_val=arrays["val"], y_val=sets["val"].labels,
        x_test=arrays["test"], y_test=sets["test"].labels, n_classes=info.n_classes, metric=info.metric,
        multi_label=info.multi_label, class_names=class_names, notes=notes, source=folder,
        channel_mean=mean, channel_std=std)


__all__ = [
    "DatasetError", "DatasetMissingError", "PAPER_SATELLITE_TASKS", "SATELLITE_TASKS", "SatelliteTaskInfo",
    "channel_statistics", "find_satellite_task", "list_satellite_tasks", "load_satellite_task", "normalize",
    "random_flips_rot90", "reference_flips_rotation", "satellite_task_info", "search_roots",
]
