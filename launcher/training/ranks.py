"""What a trial job needs around its training loop: ranks, device, RNG states and checkpoint folders.

Ranks come from wherever the job was started, first match wins:
  - a submitit job (SLURM or the local backend with several tasks): submitit's JobEnvironment, exported
    through `TorchDistributedEnvironment` so that torch and DeepSpeed read the usual variables;
  - torchrun / an explicit environment: RANK, WORLD_SIZE (+ MASTER_ADDR, MASTER_PORT, LOCAL_RANK);
  - a bare `srun`: SLURM_PROCID / SLURM_NTASKS / SLURM_LOCALID, the first node of the allocation as master.
One process, no process group, when none of these says there is more than one rank.

Backend: nccl when CUDA is available, gloo otherwise (DDP and DeepSpeed both run on CPU with gloo).
"""
from __future__ import annotations

import os
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist

STRATEGIES = ("none", "ddp", "deepspeed")


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
