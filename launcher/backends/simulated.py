"""The `simulated` backend: a FAKE cluster, for benchmarks and tests of the engine at a scale this
machine cannot have (a thousand GPUs). Nothing trains and nothing is started; everything else is real:
the controller, journal, ASHA, nevergrad and the MLflow store see segments end as they would on a
cluster, and the trial folders get the files a real job leaves (outbox, result, checkpoint).

Time. A segment "runs" for its epochs x `epoch_seconds` (x a per-configuration speed from the curves
file, x lognormal jitter) on a clock that runs at the real rate while the controller works and jumps
ahead when the controller waits on a poll with nothing ended. So slot idleness measured on this
clock is exactly the controller's own latency (its time between a segment's end and its slot's next
submission), whatever `epoch_seconds` is.

Values. With `curves` (a JSON file of real learning curves: `grid` and `curves`, as in
benchmarks/data/), a configuration is answered by the nearest curve (log distance for positive
numbers, normalized by the grid's range); without it, by the `synthetic` method's curve of (x, y).

Faults, drawn per segment attempt from a seeded generator (the same sweep fails the same way):
`preemption` and `node_failure` end the job early without a Python error (the controller retries it
from its checkpoint), `out_of_memory` ends it with one (a trial error, told to the optimizer).
"""
from __future__ import annotations

import contextlib
import hashlib
import heapq
import json
import math
import random
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from launcher.backends.base import Handle, Outcome
from launcher.job.outbox import Outbox
from launcher.job.trial import TrialSpec
from launcher.training.files import write_json_atomic

CHECKPOINT = "simulated-checkpoint.json"


@dataclass(frozen=True)
class Simulation:
    epoch_seconds: float = 60.0     # virtual seconds per epoch (the mean over configurations)
    jitter: float = 0.0             # sigma of a lognormal factor on each segment's duration
    curves: str | None = None       # learning curves to answer from; the synthetic curve otherwise
    preemption: float = 0.0         # probability that a segment attempt is preempted
    node_failure: float = 0.0       # ... that its node fails
    out_of_memory: float = 0.0      # ... that it runs out of memory (a trial error)
    seed: int = 0

    @classmethod
    def from_dict(cls, values: dict | None) -> "Simulation":
        return cls(**(values or {}))


class VirtualClock:
    """Real time plus the waits skipped so far; it stands still while the fake cluster itself works
    (`frozen`): writing a fake job's files stands for work a real job does on its own node, at no
    cost to the controller, so it must not count as time the controller left a slot empty."""

    def __init__(self) -> None:
        self.skipped = 0.0
        self._frozen_at: float | None = None

    def now(self) -> float:
        return self._frozen_at if self._frozen_at is not None else time.monotonic() + self.skipped

    def advance_to(self, moment: float) -> None:
        if self._frozen_at is not None:
            self._frozen_at = max(self._frozen_at, moment)
        else:
            self.skipped += max(0.0, moment - self.now())

    @contextlib.contextmanager
    def frozen(self):
        if self._frozen_at is not None:        # re-entrant (submit_many calls submit)
            yield
            return
        self._frozen_at = self.now()
        try:
            yield
        finally:
            self.skipped = self._frozen_at - time.monotonic()
            self._frozen_at = None


class Landscape:
    """Per-epoch metrics of a configuration: the nearest real curve, or the synthetic method's curve."""

    def __init__(self, curves: str | None):
        self.curves: list[dict] | None = None
        if curves is not None:
            table = json.loads(Path(curves).read_text())
            self.curves = table["curves"]
            self.grid: dict[str, list] = table["grid"]
            seconds = [c["seconds"] for c in self.curves if isinstance(c.get("seconds"), (int, float))]
            self.mean_seconds = sum(seconds) / len(seconds) if seconds else None
            self._nearest: dict[str, dict] = {}

    def _coordinate(self, key: str, value: Any) -> float:
        grid = self.grid[key]
        if all(isinstance(g, (int, float)) and g > 0 for g in grid) and isinstance(value, (int, float)) and value > 0:
            low, high = math.log(min(grid)), math.log(max(grid))
            return (math.log(value) - low) / ((high - low) or 1.0)
        if isinstance(value, (int, float)) and all(isinstance(g, (int, float)) for g in grid):
            return (value - min(grid)) / ((max(grid) - min(grid)) or 1.0)
        return 0.0

    def curve_for(self, params: dict) -> dict:
        key = json.dumps({k: params.get(k) for k in self.grid}, sort_keys=True, default=str)
        if key not in self._nearest:
            def distance(curve: dict) -> float:
                total = 0.0
                for name in self.grid:
                    value = params.get(name)
                    if isinstance(value, (int, float)) and isinstance(curve[name], (int, float)):
                        total += (self._coordinate(name, value) - self._coordinate(name, curve[name])) ** 2
                    elif value != curve[name]:
                        total += 1.0
                return total
            self._nearest[key] = min(self.curves, key=distance)
        return self._nearest[key]

    def speed(self, params: dict) -> float:
        """This configuration's time per epoch relative to the mean (1 for the synthetic curve)."""
        if self.curves is None or not self.mean_seconds:
            return 1.0
        return float(self.curve_for(params).get("seconds", self.mean_seconds)) / self.mean_seconds

    def metrics(self, params: dict, seed: int, epoch: int, best: float) -> dict[str, float]:
        """The metrics reported at `epoch` (1-based) given the best validation loss before it."""
        if self.curves is None:
            from launcher.methods.synthetic import curve

            value = curve(float(params.get("x", 0.5)), float(params.get("y", 0.5)), seed, epoch)
            best = min(best, value)
            return {"val_loss": value, "best_val_loss": best, "test_mse": best + 0.05,
                    "test_mae": math.sqrt(best + 0.05)}
        chosen = self.curve_for(params)
        out = {}
        for name, values in chosen.items():
            if isinstance(values, list) and values:
                out[name] = float(values[min(epoch, len(values)) - 1])
        return out


@dataclass
class SimulatedJob:
    """What a handle's `job` is: when the segment ends and how."""
    spec: TrialSpec
    start_epoch: int
    ends_at: float
    ended_epoch: int            # the epoch it reaches (< until_epoch when a fault stops it)
    fault: str | None           # None, "preempted", "node_fail" or "out_of_memory"
    started_at: float
    done: bool = False

    def cancel(self, check: bool = False) -> None:
        self.done = True


class SimulatedExecutor:
    """The Executor protocol over a virtual cluster with unlimited nodes (the controller's `workers`
    is the only limit)."""

    name = "simulated"
    poll_seconds = 0.0          # a poll with nothing ended moves the clock instead

    def __init__(self, folder: Path, simulation: Simulation, workers: int | None = None):
        self.simulation = simulation
        self.workers = workers
        self.clock = VirtualClock()
        self.landscape = Landscape(simulation.curves)
        self._pending: list[tuple[float, int, Handle]] = []     # heap of (ends_at, order, handle)
        self._ended: dict[int, Handle] = {}                      # ended, and still watched by the controller
        self._order = 0
        self._attempts: dict[tuple[str, int | None], int] = {}
        # Occupancy: slot-seconds spent running segments, and slot-seconds of the waits the clock skipped
        # while slots stood free (the controller polled with nothing left to start: no work, not latency).
        self.busy_seconds = 0.0
        self.idle_without_work = 0.0
        self.first_submit: float | None = None
        self.segments = 0

    def occupancy(self) -> float:
        """Busy slot time / slot time the controller could have filled (`workers` slots from the first
        submission to now, less the free slot time of skipped waits)."""
        if self.first_submit is None or not self.workers:
            return 0.0
        capacity = self.workers * (self.clock.now() - self.first_submit) - self.idle_without_work
        return self.busy_seconds / capacity if capacity > 0 else 0.0

    # -------------------------------------------------------------- the Executor protocol
    def submit(self, spec: TrialSpec) -> Handle:
        with self.clock.frozen():
            return self._submit(spec)

    def _submit(self, spec: TrialSpec) -> Handle:
        trial_dir = Path(spec.trial_dir)
        start = _checkpoint_epoch(trial_dir)
        until = spec.until_epoch if spec.until_epoch is not None else max(start, 1)
        attempt = self._attempts.get((spec.trial_id, spec.until_epoch), 0)
        self._attempts[(spec.trial_id, spec.until_epoch)] = attempt + 1
        draw = random.Random(_seed(self.simulation.seed, spec.trial_id, spec.until_epoch, attempt))
        epochs = max(0, until - start)
        duration = epochs * self.simulation.epoch_seconds * self.landscape.speed(spec.params)
        if self.simulation.jitter:
            duration *= math.exp(draw.gauss(0.0, self.simulation.jitter))
        fault, ended = None, until
        u = draw.random()
        sim = self.simulation
        for name, rate in (("preemption", sim.preemption), ("node_fail", sim.node_failure),
                           ("out_of_memory", sim.out_of_memory)):
            if u < rate:
                fault = "preempted" if name == "preemption" else name
                break
            u -= rate
        if fault is not None and epochs > 0:
            fraction = draw.random()
            ended = start + int(epochs * fraction)
            duration *= fraction
        now = self.clock.now()
        if self.first_submit is None:
            self.first_submit = now
        job = SimulatedJob(spec, start, now + duration, ended, fault, now)
        self._order += 1
        handle = Handle(spec.trial_id, job, f"sim-{self._order}")
        heapq.heappush(self._pending, (job.ends_at, self._order, handle))
        return handle

    def submit_many(self, specs: list[TrialSpec]) -> list[Handle]:
        with self.clock.frozen():
            return [self._submit(spec) for spec in specs]

    def poll(self, handles: list[Handle]) -> list[Handle]:
        """The handles whose segments have ended by now; when none has, the clock jumps to the first end."""
        with self.clock.frozen():
            return self._poll(handles)

    def _poll(self, handles: list[Handle]) -> list[Handle]:
        live = {id(h) for h in handles}
        # Like a real scheduler, an ended job stays ended until the controller stops watching it (it may
        # ingest only part of what ended in one round and poll again for the rest).
        ended = [h for key, h in self._ended.items() if key in live]
        self._ended = {id(h): h for h in ended}
        while self._pending and (self._pending[0][2].job.done or id(self._pending[0][2]) not in live):
            heapq.heappop(self._pending)     # cancelled, or a handle the controller no longer watches
        if not self._pending:
            return ended
        if not ended and self._pending[0][0] > self.clock.now():
            wait = self._pending[0][0] - self.clock.now()
            if self.workers:
                self.idle_without_work += max(0, self.workers - len(handles)) * wait
            self.clock.advance_to(self._pending[0][0])
        now = self.clock.now()
        while self._pending and self._pending[0][0] <= now:
            _, _, handle = heapq.heappop(self._pending)
            if handle.job.done or id(handle) not in live:
                continue
            self._finish(handle.job)
            ended.append(handle)
            self._ended[id(handle)] = handle
        return ended

    def outcome(self, handle: Handle) -> Outcome:
        job: SimulatedJob = handle.job
        if job.fault == "out_of_memory":
            return Outcome(False, error="simulated: CUDA out of memory (a fault injected by the simulated backend)",
                           user_error=True, state="failed")
        if job.fault is not None:
            return Outcome(False, error=f"simulated: the job was {job.fault} (a fault injected by the simulated "
                                        "backend)", user_error=False, state=job.fault)
        return Outcome(True, result=json.loads((Path(job.spec.trial_dir) / job.spec.result_name).read_text()))

    # -------------------------------------------------------------- the fake job's files
    def _finish(self, job: SimulatedJob) -> None:
        """Leave what a real job leaves: outbox lines for the epochs trained, the checkpoint, the result."""
        job.done = True
        spec, trial_dir = job.spec, Path(job.spec.trial_dir)
        trial_dir.mkdir(parents=True, exist_ok=True)
        self.busy_seconds += job.ends_at - job.started_at
        self.segments += 1
        state = _read_checkpoint(trial_dir)
        outbox = Outbox(trial_dir / "outbox.jsonl")
        metrics = state.get("metrics", {})
        for epoch in range(job.start_epoch + 1, job.ended_epoch + 1):
            metrics = self.landscape.metrics(spec.params, spec.seed, epoch, state.get("best", math.inf))
            state = {"epoch": epoch, "best": metrics.get("best_val_loss", math.inf), "metrics": metrics}
            outbox(epoch, {k: v for k, v in metrics.items() if not k.startswith("test_")})
        write_json_atomic(trial_dir / CHECKPOINT, state)
        if job.fault == "out_of_memory":
            (trial_dir / "error.txt").write_text("simulated: CUDA out of memory (a fault injected by the "
                                                 "simulated backend)\n")
        if job.fault is not None:
            return
        result = {"trial_id": spec.trial_id, "until_epoch": spec.until_epoch,
                  "metrics": {"epoch": float(state.get("epoch", 0)), **metrics}, "n_parameters": 2, "info": None,
                  "notes": ["simulated backend: no training ran"], "wall_seconds": job.ends_at - job.started_at,
                  "host": "simulated", "rank": 0, "spec": asdict(spec)}
        write_json_atomic(trial_dir / spec.result_name, result)


def _seed(base: int, trial_id: str, until_epoch: int | None, attempt: int) -> int:
    digest = hashlib.sha256(f"{base}:{trial_id}:{until_epoch}:{attempt}".encode()).digest()
    return int.from_bytes(digest[:8], "big")


def _read_checkpoint(trial_dir: Path) -> dict:
    try:
        return json.loads((trial_dir / CHECKPOINT).read_text())
    except (OSError, ValueError):
        return {}


def _checkpoint_epoch(trial_dir: Path) -> int:
    return int(_read_checkpoint(trial_dir).get("epoch", 0))
