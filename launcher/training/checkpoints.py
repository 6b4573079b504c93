"""Determinism (seeds, RNG capture) and checkpoint folders, shared by every rank of a trial job.

A checkpoint is a folder `epoch_<N>/` written by every rank into `.epoch_<N>.tmp/`, then renamed by rank 0
once all ranks are done (a barrier), with a `COMPLETE` marker inside: a job killed mid-write leaves only a
`.tmp` folder that resume ignores. A checkpoint whose files do not load (truncated, corrupt) is skipped for
the one before it, and all ranks agree on which one they restored.
"""
from __future__ import annotations

import os
import random
import re
import shutil
import warnings
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from launcher.training.ranks import Ranks, all_agree, barrier, gather_objects

CHECKPOINT_DIR = re.compile(r"^epoch_(\d+)$")
COMPLETE = "COMPLETE"


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def use_deterministic_algorithms() -> None:
    """Bit-identical reruns: deterministic kernels (CPU ones already are; cuBLAS needs its workspace setting)."""
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(True, warn_only=True)


def capture_rng(extra: dict[str, torch.Generator] | None = None) -> dict:
    """Python, numpy, torch (CPU and CUDA) and named generator states, as types `weights_only` loading accepts."""
    name, keys, position, has_gauss, cached = np.random.get_state(legacy=True)
    state = {
        "python": random.getstate(),
        "numpy": (name, keys.tolist(), int(position), int(has_gauss), float(cached)),
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "generators": {k: g.get_state() for k, g in (extra or {}).items()},
    }
    return state


def restore_rng(state: dict, extra: dict[str, torch.Generator] | None = None) -> None:
    random.setstate(state["python"])
    name, keys, position, has_gauss, cached = state["numpy"]
    np.random.set_state((name, np.asarray(keys, dtype=np.uint32), position, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if state.get("cuda") and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    for key, generator in (extra or {}).items():
        generator.set_state(state["generators"][key])


# ------------------------------------------------------------------------------------------ checkpoints
def checkpoint_folders(root: Path) -> list[tuple[int, Path]]:
    """(epoch, folder) of every complete checkpoint under `root`, newest first."""
    if not root.is_dir():
        return []
    found = []
    for path in root.iterdir():
        match = CHECKPOINT_DIR.match(path.name)
        if match and (path / COMPLETE).exists():
            found.append((int(match.group(1)), path))
    return sorted(found, reverse=True)


def checkpoint_name(epoch: int) -> str:
    return f"epoch_{epoch:06d}"


def save_torch_atomic(obj: Any, path: Path) -> None:
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        torch.save(obj, temporary)
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def write_checkpoint(ranks: Ranks, root: Path, epoch: int, write: Callable[[Path], None], keep: int = 2) -> Path:
    """Every rank calls `write(folder)` into a temporary folder; rank 0 publishes it once all have written.

    `keep` newest checkpoints stay; older ones are removed (by rank 0, after the new one is complete).
    """
    root.mkdir(parents=True, exist_ok=True)
    final = root / checkpoint_name(epoch)
    staging = root / f".{checkpoint_name(epoch)}.tmp"
    if ranks.is_main:
        shutil.rmtree(staging, ignore_errors=True)   # left by a job killed mid-write
        staging.mkdir()
    barrier(ranks)
    write(staging)
    barrier(ranks)
    if ranks.is_main:
        (staging / COMPLETE).write_text(f"{epoch}\n")
        shutil.rmtree(final, ignore_errors=True)     # a rerun of the same epoch after a requeue
        os.replace(staging, final)
        for _, old in checkpoint_folders(root)[keep:]:
            shutil.rmtree(old, ignore_errors=True)
    barrier(ranks)
    return final


class CheckpointMismatch(ValueError):
    """A checkpoint of another run (other task, data or hyperparameters): never resumed, never skipped silently."""


def restore_newest(ranks: Ranks, root: Path, load: Callable[[Path], Any]) -> tuple[int, Any] | None:
    """Call `load(folder)` on the newest checkpoint all ranks can load; (epoch, what load returned) or None.

    A folder whose files fail to load on any rank (truncated by a kill, a full disk) is skipped, with a
    warning, for the one before it; ranks vote so that they never resume from different epochs.
    """
    candidates = checkpoint_folders(root) if ranks.is_main else None
    candidates = gather_objects(ranks, candidates)[0]
    for epoch, folder in candidates:
        try:
            loaded, ok = load(Path(folder)), True
        except CheckpointMismatch:
            raise
        except Exception as error:  # truncated zip, garbage, missing shard: this checkpoint is not usable
            loaded, ok = None, False
            warnings.warn(f"skipping unloadable checkpoint {folder}: {type(error).__name__}: {error}",
                          RuntimeWarning, stacklevel=2)
        if all_agree(ranks, ok):
            return epoch, loaded
    return None
