"""What a SLURM trial job asks for and what the cluster allows: resources, limits, sbatch text.

`SlurmResources` is the YAML `executor.slurm` block (a method's `resources:` overrides it, see
`trial_resources`); `ClusterLimits` comes from `scontrol show config`; `plan_arrays` cuts a wave of
trials into arrays under those limits; `render_sbatch` is the exact script submitit would submit (the
executor in `launcher.backends.slurm` uses the same pieces, and `--dry-run` prints them without a cluster).
"""
from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any, Mapping

from launcher.errors import did_you_mean

COMMAND_TIMEOUT_S = 30


def run_command(args: list[str], timeout: float = COMMAND_TIMEOUT_S) -> subprocess.CompletedProcess:
    """Run one SLURM client command. Every squeue/sacct/scontrol/sinfo call goes through here, so a
    missing binary or a hung controller becomes a non-zero return code, never an exception."""
    try:
        return subprocess.run(args, capture_output=True, text=True, timeout=timeout, check=False)
    except FileNotFoundError:
        return subprocess.CompletedProcess(args, 127, "", f"{args[0]}: not found on PATH")
    except subprocess.TimeoutExpired:
        return subprocess.CompletedProcess(args, 124, "", f"{args[0]}: no answer in {timeout:.0f} s")


# ---------------------------------------------------------------------------------------- resources
_MEM = re.compile(r"^[1-9]\d*[KMGT]?$", re.IGNORECASE)


@dataclass(frozen=True)
class SlurmResources:
    """What one trial job asks SLURM for. Lists from YAML become tuples (hashable: one submitit
    executor per distinct resource set)."""

    partition: str | None = None
    nodes: int = 1
    gpus_per_node: int = 0
    tasks_per_node: int = 1
    cpus_per_task: int = 1
    mem: str | None = None                 # sbatch --mem, e.g. "2G" or "500M"; None: the cluster default
    time_min: int = 60
    account: str | None = None
    qos: str | None = None
    constraint: str | None = None
    sbatch_extra: tuple[str, ...] = ()     # extra "#SBATCH" options, e.g. "--exclusive", "--reservation=x"
    setup: tuple[str, ...] = ()            # shell lines run in the job before the trial starts
    signal_delay_s: int | None = None      # USR2 this long before the time limit (then checkpoint, requeue);
                                           # None: 90 s, at most half the time limit
    max_requeues: int = 3                  # timeouts a checkpointable job may be requeued after

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SlurmResources:
        known = [f.name for f in fields(cls)]
        unknown = sorted(set(data) - set(known))
        if unknown:
            hints = [f"{k!r} ({h[0].lower()}{h[1:]})" if (h := did_you_mean(k, known)) else repr(k) for k in unknown]
            raise ValueError(f"unknown slurm resource key(s) {', '.join(hints)}; known keys: {', '.join(known)}")
        return cls(**dict(data))

    def __post_init__(self) -> None:
        extra = tuple(_sbatch_option(line) for line in _string_list("sbatch_extra", self.sbatch_extra))
        object.__setattr__(self, "sbatch_extra", extra)                 # frozen: normalise once here
        object.__setattr__(self, "setup", tuple(_string_list("setup", self.setup)))
        if self.signal_delay_s is None and isinstance(self.time_min, int):
            object.__setattr__(self, "signal_delay_s", min(90, self.time_min * 30))
        self.validate()

    def validate(self) -> None:
        for name, low in (("nodes", 1), ("tasks_per_node", 1), ("cpus_per_task", 1), ("time_min", 1),
                          ("gpus_per_node", 0), ("signal_delay_s", 0), ("max_requeues", 0)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"slurm resource {name!r} must be an integer >= {low}, got {value!r}")
        for name in ("partition", "account", "qos", "constraint"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, str) or not value.strip() or "\n" in value):
                raise ValueError(f"slurm resource {name!r} must be a non-empty one-line string, got {value!r}")
        if self.mem is not None and not (isinstance(self.mem, str) and _MEM.match(self.mem)):
            raise ValueError(f"slurm resource 'mem' must look like '2G', '500M' or '4096' (MB), got {self.mem!r}")
        if self.signal_delay_s >= self.time_min * 60:
            raise ValueError(f"slurm resource 'signal_delay_s' ({self.signal_delay_s}) must be shorter than the "
                             f"time limit (time_min={self.time_min} -> {self.time_min * 60} s)")

    def sbatch_parameters(self) -> dict[str, Any]:
        """The parameters of submitit.SlurmExecutor.update_parameters (SLURM's names)."""
        params: dict[str, Any] = {"job_name": "launcher", "nodes": self.nodes, "ntasks_per_node": self.tasks_per_node,
                                  "cpus_per_task": self.cpus_per_task, "time": self.time_min,
                                  "signal_delay_s": self.signal_delay_s,
                                  # jobs must run the controller's venv (same pickles, same ninja build cache)
                                  "setup": [f"export PATH={shlex.quote(str(Path(sys.executable).parent))}:$PATH",
                                            *self.setup]}
        for name in ("partition", "mem", "account", "qos", "constraint"):
            if getattr(self, name) is not None:
                params[name] = getattr(self, name)
        if self.gpus_per_node:
            params["gpus_per_node"] = self.gpus_per_node
        if self.sbatch_extra:
            params["additional_parameters"] = dict(_split_option(line) for line in self.sbatch_extra)
        return params


def _string_list(key: str, value: Any) -> list[str]:
    if isinstance(value, str) or not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"slurm resource {key!r} must be a list of strings, got {value!r}")
    if any("\n" in v for v in value):
        raise ValueError(f"slurm resource {key!r}: one line per list item, got {value!r}")
    return list(value)


def _sbatch_option(line: str) -> str:
    option = line.strip().removeprefix("#SBATCH").strip()
    if not option.startswith("--") or " " in option.split("=", 1)[0]:
        raise ValueError(f"sbatch_extra line {line!r} must be a long sbatch option like '--exclusive' or '--reservation=x'")
    return option


def _split_option(option: str) -> tuple[str, Any]:
    key, sep, value = option[2:].partition("=")
    return key, (value if sep else True)


# ---------------------------------------------------------------------------------------- the cluster
@dataclass(frozen=True)
class ClusterLimits:
    max_array_size: int = 1001             # SLURM's default; an array index must stay below it
    max_submit_jobs: int = 10000           # min(MaxJobCount, the association's MaxSubmitJobs)
    preempt_user_signal: bool = False      # preempted jobs get --signal (USR2) first, so they can checkpoint
    accounting: str = "unknown"            # AccountingStorageType
    source: str = "defaults"               # where the numbers came from

    @property
    def has_accounting(self) -> bool:
        return self.accounting not in ("accounting_storage/none", "none", "unknown", "")

    @classmethod
    def read(cls) -> ClusterLimits:
        """From `scontrol show config` (+ sacctmgr for MaxSubmitJobs); SLURM's defaults if unreadable."""
        done = run_command(["scontrol", "show", "config"])
        if done.returncode != 0:
            return cls(source=f"defaults (scontrol show config failed: {done.stderr.strip()[:200]})")
        config = parse_config(done.stdout)
        params = (config.get("SlurmctldParameters", "") + "," + config.get("PreemptParameters", "")).lower()
        limits = cls(max_array_size=_int(config.get("MaxArraySize"), 1001),
                     max_submit_jobs=_int(config.get("MaxJobCount"), 10000),
                     preempt_user_signal="send_user_signal" in params,   # preempt_send_user_signal / send_user_signal
                     accounting=config.get("AccountingStorageType", "unknown"), source="scontrol show config")
        assoc = _association_max_submit() if limits.has_accounting else None
        if assoc is not None and assoc < limits.max_submit_jobs:
            limits = replace(limits, max_submit_jobs=assoc, source="scontrol show config + sacctmgr")
        return limits


def parse_config(text: str) -> dict[str, str]:
    """`Key = Value` lines of `scontrol show config`."""
    pairs = (line.split("=", 1) for line in text.splitlines() if " = " in line)
    return {key.strip(): value.strip() for key, value in pairs}


def _int(text: str | None, default: int) -> int:
    try:
        return int(str(text).split()[0])
    except (ValueError, IndexError):
        return default


def _association_max_submit() -> int | None:
    user = os.environ.get("USER") or os.environ.get("LOGNAME") or "root"
    done = run_command(["sacctmgr", "-n", "-P", "show", "assoc", f"user={user}", "format=MaxSubmitJobs"], timeout=10)
    values = [int(v) for v in done.stdout.split() if v.strip().isdigit()] if done.returncode == 0 else []
    return min(values) if values else None


def plan_arrays(n_trials: int, limits: ClusterLimits, max_array_size: int | None = None) -> list[int]:
    """Array sizes for n trials: none larger than MaxArraySize (submitit indexes 0..n-1, and SLURM
    limits the index, not the count) nor than what may be queued at all."""
    cap = min(limits.max_array_size, limits.max_submit_jobs, max_array_size or limits.max_array_size)
    if cap < 1:
        raise ValueError(f"cannot plan arrays with a cap of {cap} jobs")
    return [min(cap, n_trials - start) for start in range(0, n_trials, cap)]


def job_python() -> str:
    """submitit's `python` setting for trial jobs: this venv's interpreter running launcher.job.entry, which
    is submitit's own job entry point without the numpy import it makes first (~0.15 CPU-s per job)."""
    return f"{shlex.quote(sys.executable)} -u -m launcher.job.entry"


def render_sbatch(resources: SlurmResources, folder: Path | str = "<jobs folder>", n_tasks: int = 1,
                  python: str | None = None) -> str:
    """The sbatch script submitit would submit for these resources (an array when n_tasks > 1),
    built by submitit's own renderer: `--dry-run` prints it without any cluster."""
    from submitit.slurm.slurm import _make_sbatch_string

    python = python or job_python()
    command = f"{python} -u -m submitit.core._submit {shlex.quote(str(folder))}"
    params = resources.sbatch_parameters()
    if n_tasks > 1:
        params["map_count"] = n_tasks
    return _make_sbatch_string(command=command, folder=folder, **params)


def trial_resources(base: SlurmResources, overrides: Mapping[str, Any] | None = None,
                    distributed: Mapping[str, Any] | None = None) -> SlurmResources:
    """The resources of one trial's job: the sweep's `executor.slurm`, the method's `resources:` over it,
    and one SLURM task per rank for a distributed trial (srun starts them) unless tasks_per_node is given."""
    resources = SlurmResources.from_dict({**asdict(base), **overrides}) if overrides else base
    ranks = int((distributed or {}).get("ranks", 1))
    if ranks > 1 and not (overrides or {}).get("tasks_per_node"):
        resources = replace(resources, tasks_per_node=max(1, ranks // resources.nodes))
    return resources
