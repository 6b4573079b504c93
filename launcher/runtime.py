"""What a trial job needs around its training loop: ranks, device, RNG states and checkpoint folders.

Ranks come from wherever the job was started, first match wins:
  - a submitit job (SLURM or the local backend with several tasks): submitit's JobEnvironment, exported
    through `TorchDistributedEnvironment` so that torch and DeepSpeed read the usual variables;
  - torchrun / an explicit environment: RANK, WORLD_SIZE (+ MASTER_ADDR, MASTER_PORT, LOCAL_RANK);
  - a bare `srun`: SLURM_PROCID / SLURM_NTASKS / SLURM_LOCALID, the first node of the allocation as master.
One process, no process group, when none of these says there is more than one rank.

Backend: nccl when CUDA is available, gloo otherwise (DDP and DeepSpeed both run on CPU with gloo).

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
import socket
import subprocess
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import torch.distributed as dist

STRATEGIES = ("none", "ddp", "deepspeed")
CHECKPOINT_DIR = re.compile(r"^epoch_(\d+)$")
COMPLETE = "COMPLETE"


@dataclass(frozen=True)
class DistributedSpec:
    """How one trial's training is spread over processes (the sweep YAML's `distributed:` block)."""

    strategy: str = "none"      # none | ddp | deepspeed
    zero_stage: int = 0         # DeepSpeed ZeRO stage 0-3
    ranks: int = 1              # local backend: processes to start; SLURM: nodes x tasks_per_node

    def __post_init__(self):
        if self.strategy not in STRATEGIES:
            raise ValueError(f"distributed.strategy must be one of {', '.join(STRATEGIES)}, got {self.strategy!r}")
        if not 0 <= self.zero_stage <= 3:
            raise ValueError(f"distributed.zero_stage must be 0-3, got {self.zero_stage}")
        if self.ranks < 1:
            raise ValueError(f"distributed.ranks must be >= 1, got {self.ranks}")


@dataclass(frozen=True)
class Ranks:
    rank: int
    world_size: int
    local_rank: int
    device: torch.device
    backend: str | None          # None: single process, no process group
    strategy: str = "none"

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.backend is not None


def _first_slurm_host() -> str:
    nodelist = os.environ.get("SLURM_JOB_NODELIST") or os.environ.get("SLURM_NODELIST")
    if nodelist:
        try:
            out = subprocess.run(["scontrol", "show", "hostnames", nodelist], capture_output=True, text=True, timeout=10)
            if out.returncode == 0 and out.stdout.split():
                return out.stdout.split()[0]
        except (OSError, subprocess.TimeoutExpired):
            pass
    return "127.0.0.1"


def export_rank_environment() -> None:
    """Make RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT visible to torch and DeepSpeed."""
    if "SUBMITIT_EXECUTOR" in os.environ or "SUBMITIT_LOCAL_JOB_ID" in os.environ:
        try:
            from submitit.helpers import TorchDistributedEnvironment

            # The job's own tasks decide the ranks: variables inherited from the submitting process (say,
            # a controller started under torchrun) are overwritten. set_cuda_visible_devices=False: each
            # rank picks cuda:LOCAL_RANK itself (and CPU jobs have none).
            TorchDistributedEnvironment().export(set_cuda_visible_devices=False, overwrite=True)
            return
        except RuntimeError:    # not actually inside a submitit job
            pass
    if "RANK" in os.environ and "WORLD_SIZE" in os.environ:
        os.environ.setdefault("LOCAL_RANK", "0")
        os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
        os.environ.setdefault("MASTER_PORT", "29500")
        return
    if "SLURM_PROCID" in os.environ and int(os.environ.get("SLURM_NTASKS", "1")) > 1:
        os.environ["RANK"] = os.environ["SLURM_PROCID"]
        os.environ["WORLD_SIZE"] = os.environ["SLURM_NTASKS"]
        os.environ["LOCAL_RANK"] = os.environ.get("SLURM_LOCALID", "0")
        os.environ.setdefault("MASTER_ADDR", _first_slurm_host())
        # The same port on every rank of the job, different across concurrent jobs on one node.
        os.environ.setdefault("MASTER_PORT", str(20000 + int(os.environ.get("SLURM_JOB_ID", "0")) % 40000))


def prepare_deepspeed_environment(cuda: bool) -> None:
    """Defaults that keep DeepSpeed on CPU from rebuilding its JIT ops on every run (infra notes, pitfall 11).

    Its communication op is compiled with ninja into TORCH_EXTENSIONS_DIR on first use (~1 min); the cache is
    invalidated whenever another ninja binary or another venv's torch builds into the same folder. So: this
    venv's own cache folder and this venv's bin first on PATH, unless the user set them.
    """
    venv_bin = str(Path(sys.executable).parent)
    if not os.environ.get("PATH", "").startswith(venv_bin + os.pathsep):
        os.environ["PATH"] = venv_bin + os.pathsep + os.environ.get("PATH", "")
    os.environ.setdefault("TORCH_EXTENSIONS_DIR", str(Path(sys.prefix) / "torch_extensions"))
    if not cuda:
        os.environ.setdefault("DS_ACCELERATOR", "cpu")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def setup_ranks(strategy: str = "none") -> Ranks:
    """Find this process's rank, pick its device and join the process group (if there is more than one rank)."""
    export_rank_environment()
    if strategy == "deepspeed" and "RANK" not in os.environ:
        # DeepSpeed always wants a process group; a lone process is rank 0 of 1 (not an MPI discovery).
        os.environ.update(RANK="0", WORLD_SIZE="1", LOCAL_RANK="0", MASTER_ADDR="127.0.0.1",
                          MASTER_PORT=str(_free_port()))
    rank = int(os.environ.get("RANK", "0"))
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if world_size > 1 and strategy == "none":
        raise ValueError(f"this job has {world_size} ranks but distributed.strategy is 'none': "
                         "set strategy to ddp or deepspeed, or ask for one task per job")
    cuda = torch.cuda.is_available()
    device = torch.device(f"cuda:{local_rank % max(torch.cuda.device_count(), 1)}") if cuda else torch.device("cpu")
    if cuda:
        torch.cuda.set_device(device)
    backend = None
    if world_size > 1 or strategy == "deepspeed":
        backend = "nccl" if cuda else "gloo"
        if strategy == "deepspeed":
            prepare_deepspeed_environment(cuda)
            import deepspeed

            if not dist.is_initialized():
                deepspeed.init_distributed(dist_backend=backend)
        elif not dist.is_initialized():
            dist.init_process_group(backend=backend)
    return Ranks(rank, world_size, local_rank, device, backend, strategy)


def teardown_ranks(ranks: Ranks) -> None:
    if ranks.distributed and dist.is_initialized():
        dist.barrier()
        # DeepSpeed caches groups built on the default process group; destroying it would break a
        # second segment in the same process (tests, notebooks). The process exit closes it.
        if ranks.strategy != "deepspeed":
            dist.destroy_process_group()


def barrier(ranks: Ranks) -> None:
    if ranks.distributed:
        dist.barrier()


def all_agree(ranks: Ranks, ok: bool) -> bool:
    """True only if `ok` is true on every rank."""
    if not ranks.distributed:
        return ok
    flag = torch.tensor([1 if ok else 0], dtype=torch.int64, device=ranks.device if ranks.backend == "nccl" else "cpu")
    dist.all_reduce(flag, op=dist.ReduceOp.MIN)
    return bool(flag.item())


def gather_objects(ranks: Ranks, value: Any) -> list[Any]:
    """Every rank's `value`, in rank order, on every rank."""
    if not ranks.distributed:
        return [value]
    gathered: list[Any] = [None] * ranks.world_size
    dist.all_gather_object(gathered, value)
    return gathered


# ------------------------------------------------------------------------------------------ determinism
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


def host() -> str:
    return socket.gethostname()
