"""Reading labelled satellite patches from the public layouts into (N, C, H, W) arrays.

Layouts:
- GEO-Bench: a task folder of per-sample `<name>.hdf5` files plus `default_partition.json`
  ({"train", "valid", "test"} -> sample names). Each file holds one dataset per band, named by band, and
  an attribute "pickle": the repr of a pickled dict with "bands_order" and, for classification, "label"
  (an int, or a multi-hot list for multi-label tasks). The pickle also holds geobench band-info objects;
  it is read with a restricted unpickler that turns those into inert stand-ins and refuses anything
  else (a sample file must never run code), so geobench itself need not be installed.
- Image folders (EuroSAT): one sub-folder per class of .tif/.tiff/.jpg/.jpeg/.png files, optionally
  under train/, val/ and test/ folders. Multi-band GeoTIFFs need `tifffile`.
- Brazilian Coffee Scenes: `desc.txt` lines `<class>.<image stem>` with images in `images/`; the
  original 5-fold distribution (`fold<k>.txt` lists in the same format) is used when present.
"""
from __future__ import annotations

import ast
import io
import json
import os
import pickle
import shutil
import tarfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tasks.classification import DatasetError

IMAGE_SUFFIXES = (".tif", ".tiff", ".jpg", ".jpeg", ".png")
COFFEE_FOLDER = "dataset-brazilian_coffee_scenes"
COFFEE_TARBALL = COFFEE_FOLDER + ".tar.gz"


@dataclass
class ImageSet:
    """Raw images (N, C, H, W) in their stored dtype, labels, and the file each image came from."""
    images: np.ndarray
    labels: np.ndarray
    files: list[Path]


# ------------------------------------------------------------------------------------------ GEO-Bench
class _InertObject:
    """Stands in for a geobench / rasterio / affine object inside a sample's metadata pickle."""

    def __new__(cls, *args, **kwargs):
        return object.__new__(cls)

    def __init__(self, *args, **kwargs):
        self.args = args

    def __setstate__(self, state):
        self.state = state


_INERT_MODULE_PREFIXES = ("geobench", "ccb", "affine", "rasterio")
_SAFE_GLOBALS = {("datetime", n) for n in ("date", "datetime", "time", "timedelta", "timezone")} | {
    ("collections", "OrderedDict"), ("builtins", "set"), ("builtins", "frozenset"), ("builtins", "complex")}


def _no_object_dtype(*args, **kwargs) -> np.dtype:
    dtype = np.dtype(*args, **kwargs)  # pickles call numpy.dtype(code, align, copy)
    if dtype.hasobject:  # numpy unpickles object arrays with pickle itself, outside this unpickler
        raise pickle.UnpicklingError("object dtypes are not allowed")
    return dtype


def _reconstruct(subtype, shape, dtype):
    if subtype is not np.ndarray:
        raise pickle.UnpicklingError(f"ndarray subclass {subtype!r} is not allowed")
    return np.ndarray.__new__(np.ndarray, shape, _no_object_dtype(dtype))


def _scalar(dtype, data=None):
    dtype = _no_object_dtype(dtype)
    return np.frombuffer(data, dtype=dtype, count=1)[0] if data is not None else dtype.type()


def _frombuffer(buffer, dtype, shape, order):
    return np.frombuffer(buffer, dtype=_no_object_dtype(dtype)).reshape(shape, order=order)


_NUMPY_GLOBALS = {("numpy", "dtype"): _no_object_dtype, ("numpy", "ndarray"): np.ndarray}
for _module in ("numpy.core.multiarray", "numpy._core.multiarray"):
    _NUMPY_GLOBALS[(_module, "_reconstruct")] = _reconstruct
    _NUMPY_GLOBALS[(_module, "scalar")] = _scalar
for _module in ("numpy.core.numeric", "numpy._core.numeric"):
    _NUMPY_GLOBALS[(_module, "_frombuffer")] = _frombuffer


class _MetadataUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        if (module, name) in _NUMPY_GLOBALS:
            return _NUMPY_GLOBALS[(module, name)]
        if (module, name) in _SAFE_GLOBALS:
            return super().find_class(module, name)
        if module.split(".")[0] in _INERT_MODULE_PREFIXES:
            return type(name, (_InertObject,), {"__module__": module})
        raise pickle.UnpicklingError(f"refusing to unpickle {module}.{name}: not part of the GEO-Bench format")


def _sample_metadata(handle, path: Path) -> dict:
    raw = handle.attrs.get("pickle")
    if raw is None:
        raise DatasetError(f"{path}: no 'pickle' attribute; expected a GEO-Bench sample file")
    try:
        text = raw.decode() if isinstance(raw, bytes) else str(raw)
        metadata = _MetadataUnpickler(io.BytesIO(ast.literal_eval(text))).load()
    except (ValueError, SyntaxError, pickle.UnpicklingError, EOFError, TypeError, AttributeError) as error:
        raise DatasetError(f"{path}: unreadable GEO-Bench metadata ({type(error).__name__}: {error})") from error
    if not isinstance(metadata, dict):
        raise DatasetError(f"{path}: GEO-Bench metadata is a {type(metadata).__name__}, expected a dict")
    return metadata


def _resize_nearest(band: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    rows = np.arange(shape[0]) * band.shape[0] // shape[0]
    columns = np.arange(shape[1]) * band.shape[1] // shape[1]
    return band[rows][:, columns]


def _geobench_label(label, path: Path, n_classes: int, multi_label: bool):
    if multi_label:
        values = np.asarray(label).reshape(-1)
        if len(values) == n_classes and np.isin(values, (0, 1)).all():
            return values.astype(np.float32)
        hot = np.zeros(n_classes, dtype=np.float32)
        if values.size and (values.min() < 0 or values.max() >= n_classes):
            raise DatasetError(f"{path}: label {label!r} names a class outside 0..{n_classes - 1}")
        hot[values.astype(np.int64)] = 1.0
        return hot
    if np.ndim(label) != 0 or not float(label).is_integer() or not 0 <= int(label) < n_classes:
        raise DatasetError(f"{path}: label {label!r} is not a class index in 0..{n_classes - 1}")
    return int(label)


def read_geobench_sample(path: Path, n_classes: int, multi_label: bool) -> tuple[np.ndarray, object, list[str]]:
    """(bands (C, H, W), label, band names) of one sample; bands of lower resolution are upsampled
    (nearest neighbour) to the largest band, as GEO-Bench's own loader packs them."""
    import h5py  # only the GEO-Bench layout needs it

    try:
        with h5py.File(path, "r") as handle:
            metadata = _sample_metadata(handle, path)
            names = [n for n in metadata.get("bands_order", list(handle.keys())) if not n.startswith("label")]
            bands = [np.asarray(handle[n]) for n in names]
    except OSError as error:
        raise DatasetError(f"{path}: cannot be read as HDF5 ({error})") from error
    except KeyError as error:
        raise DatasetError(f"{path}: band listed in bands_order is missing ({error})") from error
    if "label" not in metadata:
        raise DatasetError(f"{path}: no 'label' in the sample metadata (a segmentation sample?)")
    if not bands:
        raise DatasetError(f"{path}: no band datasets")
    planes = [b[..., None] if b.ndim == 2 else b for b in bands]  # multi-bands are (H, W, k)
    shape = max((p.shape[:2] for p in planes), key=lambda s: s[0] * s[1])
    stacked = np.concatenate([p if p.shape[:2] == shape else _resize_nearest(p, shape) for p in planes], axis=2)
    return np.ascontiguousarray(stacked.transpose(2, 0, 1)), _geobench_label(metadata["label"], path, n_classes,
                                                                           multi_label), names


def geobench_partition(folder: Path) -> dict[str, list[str]]:
    path = folder / "default_partition.json"
    if not path.is_file():
        candidates = sorted(folder.glob("*_partition.json"))
        if not candidates:
            raise DatasetError(f"{folder}: no default_partition.json")
        path = candidates[0]
    try:
        partition = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise DatasetError(f"{path}: not a readable partition JSON ({error})") from error
    missing = [s for s in ("train", "valid", "test") if not isinstance(partition.get(s), list)]
    if missing:
        raise DatasetError(f"{path}: partition lacks the list(s) {missing}; expected train, valid and test")
    return partition


def read_geobench_split(folder: Path, sample_names: list[str], n_classes: int, multi_label: bool) -> ImageSet:
    images, labels, files = None, [], []
    for i, sample_name in enumerate(sample_names):
        path = folder / f"{sample_name}.hdf5"
        if not path.is_file():
            raise DatasetError(f"{path}: listed in the partition but missing")
        bands, label, _ = read_geobench_sample(path, n_classes, multi_label)
        if images is None:
            images = np.empty((len(sample_names), *bands.shape), dtype=bands.dtype)
        if bands.shape != images.shape[1:]:
            raise DatasetError(f"{path}: bands of shape {bands.shape}, but {files[0]} has {images.shape[1:]}")
        images[i] = bands
        labels.append(label)
        files.append(path)
    label_array = np.array(labels, dtype=np.float32 if multi_label else np.int64)
    return ImageSet(images if images is not None else np.empty((0,)), label_array, files)


# ------------------------------------------------------------------------------------ image files
def read_image(path: Path) -> np.ndarray:
    """(C, H, W) in the stored dtype. TIFFs go through tifffile when installed (multi-band GeoTIFFs
    need it), everything else through PIL, which always returns (H, W[, C])."""
    try:
        if path.suffix.lower() in (".tif", ".tiff") and _tifffile() is not None:
            return _read_with_tifffile(path)
        return _channels_first(_read_with_pil(path), channel_axis=2, path=path)
    except DatasetError:
        raise
    except Exception as error:  # decoders raise many types (OSError, ValueError, TiffFileError, ...)
        raise DatasetError(f"{path}: cannot be decoded as an image ({type(error).__name__}: {error})") from error


def _tifffile():
    try:
        import tifffile
        return tifffile
    except ImportError:
        return None


def _read_with_tifffile(path: Path) -> np.ndarray:
    with _tifffile().TiffFile(path) as tiff:
        series = tiff.series[0]
        array, axes = np.asarray(series.asarray()), series.axes
    # The band axis is whichever axis is not Y or X: 'YXS' (interleaved) or 'SYX'/'CYX'/'IYX' (planar).
    others = [i for i, axis in enumerate(axes) if axis not in "YX"]
    return _channels_first(array, channel_axis=others[0] if others else None, path=path)


def _channels_first(array: np.ndarray, channel_axis: int | None, path: Path | None = None) -> np.ndarray:
    if array.ndim == 2:
        return array[None]
    if array.ndim != 3 or channel_axis is None:
        raise DatasetError(f"{path}: image of shape {array.shape}; expected (H, W) or (H, W, bands)")
    return np.ascontiguousarray(np.moveaxis(array, channel_axis, 0))


def _read_with_pil(path: Path) -> np.ndarray:
    try:
        from PIL import Image
    except ImportError as error:
        raise DatasetError(f"{path}: reading images needs pillow (pip install pillow)") from error
    with Image.open(path) as image:
        return np.asarray(image)


def read_images(files: list[Path], labels: list[int]) -> ImageSet:
    """All images into one preallocated array (the first image fixes shape and dtype)."""
    if not files:
        return ImageSet(np.empty((0,)), np.empty(0, dtype=np.int64), [])
    first = read_image(files[0])
    images = np.empty((len(files), *first.shape), dtype=first.dtype)
    images[0] = first
    for i, path in enumerate(files[1:], start=1):
        image = read_image(path)
        if image.shape != first.shape:
            raise DatasetError(f"{path}: image of shape {image.shape} (C, H, W), but {files[0]} has {first.shape}")
        images[i] = image
    return ImageSet(images, np.array(labels, dtype=np.int64), list(files))


def _class_files(folder: Path) -> dict[str, list[Path]]:
    classes = {}
    for sub in sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")):
        files = sorted(p for p in sub.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
        if not files:
            raise DatasetError(f"{sub}: class folder holds no image ({', '.join(IMAGE_SUFFIXES)})")
        classes[sub.name] = files
    if not classes:
        raise DatasetError(f"{folder}: no class sub-folders")
    return classes


def image_folder_splits(folder: Path) -> tuple[list[str], dict[str, tuple[list[Path], list[int]]]]:
    """(class names, {split: (files, labels)}); split is "all" unless train/ and test/ folders exist."""
    if (folder / "train").is_dir() and (folder / "test").is_dir():
        per_split = {s: _class_files(folder / s) for s in ("train", "val", "test") if (folder / s).is_dir()}
        class_names = sorted(per_split["train"])
        for split, classes in per_split.items():
            unknown = sorted(set(classes) - set(class_names))
            if unknown:
                raise DatasetError(f"{folder / split}: classes {unknown} do not occur in {folder / 'train'}")
    else:
        per_split = {"all": _class_files(folder)}
        class_names = sorted(per_split["all"])
    return class_names, {split: ([f for c in classes for f in classes[c]],
                                 [class_names.index(c) for c in classes for _ in classes[c]])
                         for split, classes in per_split.items()}


def is_image_folder(folder: Path) -> bool:
    return folder.is_dir() and any(p.is_dir() and not p.name.startswith(".") for p in folder.iterdir())


# ------------------------------------------------------------------------------------ coffee scenes
def extract_tarball(tarball: Path, cache_dir: Path) -> Path:
    """Unpack once into `cache_dir/<tarball name>-<size>/`. Trials may load concurrently, so each process
    unpacks into its own temporary folder and renames it into place; the first rename wins."""
    target = cache_dir / f"{tarball.name.removesuffix('.tar.gz')}-{tarball.stat().st_size}"
    if (target / ".complete").is_file():
        return target
    cache_dir.mkdir(parents=True, exist_ok=True)
    partial = cache_dir / f".{target.name}.{os.getpid()}.partial"
    shutil.rmtree(partial, ignore_errors=True)
    try:
        with tarfile.open(tarball) as archive:
            archive.extractall(partial, filter="data")  # refuses absolute paths, '..', links out and devices
        (partial / ".complete").write_text(str(tarball) + "\n")
    except (tarfile.TarError, OSError, EOFError) as error:
        shutil.rmtree(partial, ignore_errors=True)
        raise DatasetError(f"{tarball}: cannot be unpacked into {cache_dir} ({error})") from error
    if target.exists() and not (target / ".complete").is_file():
        shutil.rmtree(target, ignore_errors=True)  # left by an interrupted older run
    try:
        partial.rename(target)
    except OSError:  # another process finished first
        shutil.rmtree(partial, ignore_errors=True)
        if not (target / ".complete").is_file():
            raise DatasetError(f"{target}: exists but is incomplete; remove it and retry") from None
    return target


def coffee_root(folder: Path, cache_dir: Path) -> Path | None:
    """The folder holding desc.txt: `folder` itself, its dataset sub-folder, or the unpacked tarball."""
    for candidate in (folder, folder / COFFEE_FOLDER):
        if (candidate / "desc.txt").is_file():
            return candidate
    if (folder / COFFEE_TARBALL).is_file():
        return extract_tarball(folder / COFFEE_TARBALL, cache_dir) / COFFEE_FOLDER
    return None


def _coffee_list(path: Path) -> list[tuple[str, str]]:
    entries = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        label, dot, stem = line.strip().partition(".")
        if not dot or label not in ("coffee", "noncoffee"):
            raise DatasetError(f"{path}: line {number} {line!r} is not '<coffee|noncoffee>.<image name>'")
        entries.append((label, stem))
    return entries


def coffee_splits(root: Path) -> dict[str, tuple[list[Path], list[int]]]:
    """{"all": ...} from desc.txt, or {"fold1": ..., ...} when the original fold lists exist.
    Labels: noncoffee = 0, coffee = 1."""
    folds = sorted(root.glob("fold*.txt"))
    lists = {p.stem: _coffee_list(p) for p in folds} if folds else {"all": _coffee_list(root / "desc.txt")}
    splits = {}
    for split, entries in lists.items():
        files, labels = [], []
        for label, stem in entries:
            places = [root / "images" / f"{stem}.jpg", root / split / f"{stem}.jpg", root / f"{stem}.jpg"]
            found = next((p for p in places if p.is_file()), None)
            if found is None:
                raise DatasetError(f"{root}: image of '{label}.{stem}' not found (looked in {', '.join(map(str, places))})")
            files.append(found)
            labels.append(int(label == "coffee"))
        splits[split] = (files, labels)
    return splits
