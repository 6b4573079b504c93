"""The trial job: what runs inside one submitit job (a local process, or in-process when inline).

It loads the task, runs the method, and leaves everything the controller needs in the trial
folder: `outbox.jsonl` (one JSON line per reported step, appended and flushed), `result.json`
(written atomically at the end) and, on failure, `error.txt` with the traceback. The controller
is the only MLflow writer; the job never talks to the tracking store.
"""
from __future__ import annotations

import json
import os
import random
import socket
import sys
import time
import traceback
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


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

    @property
    def task_name(self) -> str:
        return f"{self.dataset}-{self.horizon}"

    @property
    def result_name(self) -> str:
        # One result file per segment: a controller that restarts finds which segments completed.
        return "result.json" if self.until_epoch is None else f"result-e{self.until_epoch}.json"


def write_json_atomic(path: Path, payload: dict) -> None:
    """Write to a temporary file and rename: a reader never sees half a file."""
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    with open(tmp, "w") as fh:
        json.dump(payload, fh, indent=2, sort_keys=True)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


class Outbox:
    """Append-only JSONL of reported steps; the controller copies new lines into MLflow."""

    def __init__(self, path: Path):
        self.path = path

    def __call__(self, step: int, metrics: dict[str, float]) -> None:
        line = json.dumps({"step": int(step), "time": time.time(), "metrics": metrics}, sort_keys=True)
        with open(self.path, "a") as fh:
            fh.write(line + "\n")
            fh.flush()


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


def run_trial(spec: TrialSpec) -> dict[str, Any]:
    """Entry point of a trial job. Returns the result dict (also written to result.json)."""
    trial_dir = Path(spec.trial_dir)
    trial_dir.mkdir(parents=True, exist_ok=True)
    started = time.time()
    try:
        _limit_threads(spec.threads)
        _seed_everything(spec.seed)
        from launcher.methods import get_method

        method = get_method(spec.method)
        method.cache_dir = Path(spec.trial_dir).parent.parent / "cache"   # <out>/cache
        task = None
        if method.needs_task:
            from tasks.timeseries import load_forecast_task

            task = load_forecast_task(spec.dataset, spec.horizon, data_root=spec.data_root,
                                      context=spec.context, path=spec.data_path)
        outbox = Outbox(trial_dir / "outbox.jsonl")
        if spec.until_epoch is None:
            outcome = method.run(task, dict(spec.params), outbox)
        else:
            outcome = method.run_segment(task, dict(spec.params), trial_dir, spec.until_epoch, outbox)
    except BaseException:
        (trial_dir / "error.txt").write_text(traceback.format_exc())
        raise
    result = {
        "trial_id": spec.trial_id,
        "until_epoch": spec.until_epoch,
        "metrics": outcome.metrics,
        "n_parameters": outcome.n_parameters,
        "info": outcome.info,
        "notes": outcome.notes,
        "wall_seconds": time.time() - started,
        "host": socket.gethostname(),
        "spec": asdict(spec),
    }
    write_json_atomic(trial_dir / spec.result_name, result)
    # One line per completed segment: shows retries, and proves no segment completed twice.
    with open(trial_dir / "segments.jsonl", "a") as fh:
        fh.write(json.dumps({"until_epoch": spec.until_epoch, "started": started, "ended": time.time(),
                             "pid": os.getpid()}) + "\n")
    return result
