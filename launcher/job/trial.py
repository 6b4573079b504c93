"""The trial job: what runs inside one submitit job (a local process, or in-process when inline).

It loads the task, runs the method, and leaves everything the controller needs in the trial
folder: `outbox.jsonl` (one JSON line per reported step, appended and flushed), `result.json`
(written atomically at the end) and, on failure, `error.txt` with the traceback. The controller's
tracking writer is the only MLflow writer; the job never talks to the tracking store.
"""
from __future__ import annotations

import json
import math
import os
import random
import socket
import sys
import time
import traceback
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from submitit.helpers import Checkpointable, DelayedSubmission

from launcher.job.outbox import Outbox
from launcher.training.files import write_json_atomic


@dataclass(frozen=True)
class TrialSpec:
    trial_id: str                 # unique in the sweep, also the trial folder name
    study: str                    # "<task>/<method>"
    dataset: str
    horizon: int
    context: int
    method: str
    params: dict[str, Any]
    seed: int
    trial_dir: str
    data_root: str | None = None
    data_path: str | None = None
    threads: int = 1              # CPU threads for numpy/torch inside the job
    until_epoch: int | None = None   # multi-fidelity methods: train up to this epoch (one segment)
    extra: dict[str, Any] = field(default_factory=dict)
    distributed: dict | None = None  # {strategy, zero_stage, ranks}; None: one process
    resources: dict | None = None    # SLURM resources overriding the executor's defaults for this trial
    domain: str = "forecasting"      # forecasting | genomics | satellite
    task_options: dict[str, Any] = field(default_factory=dict)   # classification: max_train, val_fraction

    @property
    def task_name(self) -> str:
        from tasks.registry import task_name

        return task_name(self.dataset, self.domain, self.horizon)

    @property
    def result_name(self) -> str:
        return result_name(self.until_epoch)


def result_name(until_epoch: int | None) -> str:
    """The result file of the segment that trains to `until_epoch` (None: a one-shot method). One per
    segment: a controller that restarts finds which segments completed."""
    return "result.json" if until_epoch is None else f"result-e{until_epoch}.json"


def _limit_threads(threads: int) -> None:
    # Two single-threaded jobs on two cores beat two jobs fighting over four threads.
    # Environment variables cover libraries imported later; already-loaded ones are told directly.
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(threads)
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(threads)
    if "numpy" in sys.modules:
        try:
            from threadpoolctl import threadpool_limits

            threadpool_limits(threads)
        except ImportError:
            pass


def _seed_everything(seed: int) -> None:
    # Global seeds for code that forgets to seed itself; methods seed their own generators.
    random.seed(seed)
    if "numpy" in sys.modules:
        sys.modules["numpy"].random.seed(seed)
    if "torch" in sys.modules:
        sys.modules["torch"].manual_seed(seed)


def _rank(spec: TrialSpec) -> int:
    """This process's global rank (0 for one-process trials, which never import torch here)."""
    if (spec.distributed or {}).get("strategy", "none") == "none":
        return 0
    from launcher.training.ranks import export_rank_environment

    export_rank_environment()
    return int(os.environ.get("RANK", "0"))


class TrialJob(Checkpointable):
    """What executors submit: a trial job that submitit requeues on preemption or timeout.

    On SIGUSR2 (sent before the time limit, or on preemption when the cluster sets
    preempt_send_user_signal) submitit calls `checkpoint`, which resubmits the same spec; nothing needs
    saving at that moment because the method checkpoints at every epoch end, so the requeued job resumes
    from the newest checkpoint through the very path an ASHA promotion uses.
    """

    def __call__(self, spec: TrialSpec) -> dict[str, Any]:
        return run_trial(spec)

    def checkpoint(self, spec: TrialSpec) -> DelayedSubmission:
        trial_dir = Path(spec.trial_dir)
        if trial_dir.is_dir():
            with open(trial_dir / "requeues.jsonl", "a") as fh:
                fh.write(json.dumps({"time": time.time(), "pid": os.getpid(), "host": socket.gethostname()}) + "\n")
        return DelayedSubmission(TrialJob(), spec)


class NonFiniteMetricError(ValueError):
    """A method returned nan or inf as a validation or test score: the trial failed, it is not a result."""


def _check_finite_metrics(spec: TrialSpec, metrics: dict[str, Any]) -> None:
    scored = ("test_", "val_", "best_val")
    bad = {}
    for name, value in (metrics or {}).items():
        try:
            number = float(value)
        except (TypeError, ValueError):
            continue
        if name.startswith(scored) and not math.isfinite(number):
            bad[name] = number
    if bad:
        listing = ", ".join(f"{name}={value}" for name, value in sorted(bad.items()))
        raise NonFiniteMetricError(
            f"{spec.method} on {spec.task_name} returned non-finite scores ({listing}): the forecasts or the "
            f"errors overflowed or diverged. The trial counts as failed. Check the data for extreme values "
            f"(the loader reports their file and line) or lower the learning rate")


def run_trial(spec: TrialSpec) -> dict[str, Any]:
    """Entry point of a trial job (every rank runs it). Returns the result dict (rank 0 also writes result.json)."""
    trial_dir = Path(spec.trial_dir)
    trial_dir.mkdir(parents=True, exist_ok=True)
    started = time.time()
    rank = 0
    try:
        _limit_threads(spec.threads)
        _seed_everything(spec.seed)
        rank = _rank(spec)
        from launcher.methods import get_method

        method = get_method(spec.method)
        method.cache_dir = Path(spec.trial_dir).parent.parent / "cache"   # <out>/cache
        if spec.distributed:
            from launcher.training.ranks import DistributedSpec

            method.distributed = DistributedSpec(**spec.distributed)
        else:
            method.distributed = None
        task = None
        if method.needs_task:
            from tasks.registry import load_task

            task = load_task(spec.domain, spec.dataset, horizon=spec.horizon, context=spec.context,
                             data_root=spec.data_root, path=spec.data_path, cache_dir=method.cache_dir,
                             options=spec.task_options)
        outbox = Outbox(trial_dir / "outbox.jsonl")
        if spec.until_epoch is None:
            outcome = method.run(task, dict(spec.params), outbox)
        else:
            outcome = method.run_segment(task, dict(spec.params), trial_dir, spec.until_epoch, outbox)
        _check_finite_metrics(spec, outcome.metrics)
    except BaseException as error:
        # error.txt marks a failure of the trial's own code (told to the optimizer). A job stopped from
        # outside -- submitit's time-limit/preemption handling (UncompletedJobError, SystemExit), a
        # Ctrl-C -- is infrastructure: no error.txt, so the controller retries instead of blaming the config.
        if isinstance(error, Exception) and type(error).__name__ != "UncompletedJobError":
            (trial_dir / ("error.txt" if rank == 0 else f"error_rank{rank}.txt")).write_text(traceback.format_exc())
        raise
    result = {
        "trial_id": spec.trial_id,
        "until_epoch": spec.until_epoch,
        "metrics": outcome.metrics,
        "n_parameters": outcome.n_parameters,
        "info": outcome.info,
        "notes": list(outcome.notes or ()),
        "wall_seconds": time.time() - started,
        "host": socket.gethostname(),
        "rank": rank,
        "spec": asdict(spec),
    }
    cleaning = getattr(task, "cleaning", None)
    if cleaning:       # forecasting: what the loader interpolated or dropped (tasks.timeseries_data)
        from tasks.timeseries_csv import describe_cleaning

        path = getattr(task, "path", None)
        result["data_cleaning"] = {"file": None if path is None else str(path), **cleaning}
        line = describe_cleaning(path, cleaning)
        if line:
            result["notes"].append(line)
    if rank != 0:       # one writer per trial folder: rank 0's view is the trial's result
        return result
    write_json_atomic(trial_dir / spec.result_name, result)
    # One line per completed segment: shows retries, and proves no segment completed twice.
    with open(trial_dir / "segments.jsonl", "a") as fh:
        fh.write(json.dumps({"until_epoch": spec.until_epoch, "started": started, "ended": time.time(),
                             "pid": os.getpid()}) + "\n")
    return result
