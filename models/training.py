"""Pieces shared by the supervised forecasters' training loops.

- `gather_channel_windows`: the training batch, cut from the series on the fly, so that memory holds one
  batch of windows rather than every (window, channel) pair of the training slice.
- `module_forecaster`: wraps a torch module as the numpy forecast function `evaluate_forecaster` expects.
- Checkpoints that make stop-and-resume exact: everything a run's future depends on (weights, optimizer
  moments, RNG states, best-so-far bookkeeping) is saved after every epoch, written atomically, and a
  checkpoint that does not load (a job killed mid-write, a full disk) is skipped for the one before it.
"""
from __future__ import annotations

import os
import random
import re
import warnings
from pathlib import Path
from typing import Callable

import numpy as np
import torch

CHECKPOINT_NAME = re.compile(r"^epoch_(\d+)\.pt$")


# ------------------------------------------------------------------------------------------- data
def gather_channel_windows(series: torch.Tensor, starts: torch.Tensor, width: int) -> torch.Tensor:
    """The `width`-row windows of `series` (T, C) starting at `starts` (B,), one row per channel: (B*C, width).

    Row b*C + c is channel c of the window at starts[b]: channel-independent models see each channel
    of each window as a separate univariate sample.
    """
    rows = starts[:, None] + torch.arange(width)  # (B, width) row indices
    windows = series[rows]                         # (B, width, C), a copy of just this batch
    return windows.transpose(1, 2).reshape(-1, width)


def module_forecaster(model: torch.nn.Module, rows_per_batch: int = 8192) -> Callable[[np.ndarray], np.ndarray]:
    """A forecast function (N, context) float64 -> (N, horizon) float64 running `model` in eval mode."""

    def forecast(contexts: np.ndarray) -> np.ndarray:
        was_training = model.training
        model.eval()
        outputs = []
        with torch.no_grad():
            for first in range(0, len(contexts), rows_per_batch):
                batch = torch.as_tensor(contexts[first: first + rows_per_batch], dtype=torch.float32)
                outputs.append(model(batch).double().numpy())
        model.train(was_training)
        return np.concatenate(outputs, axis=0)

    return forecast


# ------------------------------------------------------------------------------------------- RNG state
def capture_rng_state(generator: torch.Generator) -> dict:
    """Python, numpy, torch-global and `generator` RNG states, in types `torch.load(weights_only=True)` accepts."""
    name, keys, position, has_gauss, cached_gaussian = np.random.get_state(legacy=True)
    return {
        "python": random.getstate(),
        # numpy's state holds an ndarray, which the safe unpickler refuses; a list of ints round-trips exactly.
        "numpy": (name, keys.tolist(), int(position), int(has_gauss), float(cached_gaussian)),
        "torch": torch.get_rng_state(),
        "generator": generator.get_state(),
    }


def restore_rng_state(state: dict, generator: torch.Generator) -> None:
    random.setstate(state["python"])
    name, keys, position, has_gauss, cached_gaussian = state["numpy"]
    np.random.set_state((name, np.asarray(keys, dtype=np.uint32), position, has_gauss, cached_gaussian))
    torch.set_rng_state(state["torch"])
    generator.set_state(state["generator"])


# ------------------------------------------------------------------------------------------- checkpoints
def checkpoint_paths(checkpoint_dir: Path) -> list[tuple[int, Path]]:
    """(epoch, path) of every checkpoint file in `checkpoint_dir`, newest (highest epoch) first."""
    if not checkpoint_dir.is_dir():
        return []
    found = []
    for path in checkpoint_dir.iterdir():
        match = CHECKPOINT_NAME.match(path.name)
        if match:
            found.append((int(match.group(1)), path))
    return sorted(found, reverse=True)


def save_checkpoint(state: dict, checkpoint_dir: Path, epoch: int, keep: int = 2) -> Path:
    """Write `state` as epoch_<epoch>.pt atomically, then delete all but the newest `keep` checkpoints.

    torch.save goes to a temporary file in the same folder and os.replace renames it into place, so a
    reader (or a resume after a kill) sees either the whole new file or none of it.
    """
    checkpoint_dir.mkdir(parents=True, exist_ok=True)
    path = checkpoint_dir / f"epoch_{epoch:06d}.pt"
    temporary = checkpoint_dir / f".{path.name}.{os.getpid()}.tmp"
    try:
        torch.save(state, temporary)
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
    for _, old in checkpoint_paths(checkpoint_dir)[keep:]:
        old.unlink(missing_ok=True)
    return path


def load_newest_checkpoint(checkpoint_dir: Path) -> dict | None:
    """The newest checkpoint that loads, or None. Unloadable (e.g. truncated) ones are skipped with a warning."""
    for epoch, path in checkpoint_paths(checkpoint_dir):
        try:
            # weights_only: a checkpoint is data, so loading one must never run code from the file.
            return torch.load(path, map_location="cpu", weights_only=True)
        except Exception as error:  # truncated zip, garbage bytes, unreadable file: all mean "not usable"
            warnings.warn(f"skipping unloadable checkpoint {path} (epoch {epoch}): {type(error).__name__}: {error}",
                          RuntimeWarning, stacklevel=2)
    return None
