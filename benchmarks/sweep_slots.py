"""Steady-state slot usage of the real Controller loop vs a batch-synchronous (Hydra-style) loop.

4 slots, 40 one-epoch `synthetic` trials whose durations cycle {1, 1, 1, 10} units by trial index
(trial t000 -> 1, t001 -> 1, t002 -> 1, t003 -> 10, ...). The sweep itself is real (YAML ->
load_sweep -> Controller(spec).run(), SQLite MLflow, journal, TwoPointsDE asks); only the backend is
swapped: `launcher.engine.controller.make_executor` is monkeypatched to a thread-per-job executor that runs
the real `run_trial` with `seconds_per_epoch` set from the trial index (the sweep file cannot vary it
per trial). Each job's life is stamped: submit -> job end -> noticed by poll -> outcome() (ingest).

Definitions (window W = [first submit, submit of the last new trial]; the final drain is excluded):
  busy(slot)  = union of [submit, outcome() call] intervals of that slot, clipped to W
  idle        = 1 - sum busy / (slots x |W|)      <- the headline number (target < 5 %)
  not working = 1 - sum [submit, job end] / (slots x |W|): also counts the poll latency, i.e. the
                time a finished job holds its slot until the controller notices it (the executor's poll_seconds)
The batch-synchronous loop (ask 4, wait for all 4, repeat) is simulated on the same durations with
zero overhead; its idle over its own window is 1 - 13/40 = 67.5 % by construction.

Target (goal G1): idle < 5 % (the stricter "not working" is printed, not a target).

    .venv/bin/python benchmarks/sweep_slots.py [--unit 0.15] [--diagnostic-poll 0.02]
    .venv/bin/python benchmarks/sweep_slots.py --quick     # unit 0.05 s, no diagnostic run
"""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import io
import itertools
import re
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _verdict import print_verdicts, verdict

import launcher.engine.controller as controller_mod
from launcher.backends.base import Handle, Outcome
from launcher.backends.local import LocalExecutor
from launcher.job.trial import run_trial
from launcher.spec.load import load_sweep
from launcher.tracking import Tracker

SLOTS, TRIALS, CYCLE = 4, 40, (1, 1, 1, 10)
TARGET_IDLE = 0.05
SWEEP = """
name: bench_slots
out: {out}
tasks:
  - dataset: ETTh1
    horizons: [96]
methods:
  synthetic: {{seconds_per_epoch: 0.0}}
executor: {{backend: local, workers: {slots}}}
search: {{trials: {trials}, scheduler: {{type: none, max_epochs: 1}}}}
"""


class ThreadExecutor:
    """Executor protocol; one thread per job running the real run_trial, stamped with perf_counter."""

    name = "bench-threads"

    def __init__(self, unit: float):
        self.unit = unit
        self.jobs: dict[str, dict] = {}     # trial_id -> {"slot", "submit", "end", "noticed", "ingest", "result"}
        self.free = list(range(SLOTS))
        self.lock = threading.Lock()

    def submit(self, spec) -> Handle:
        index = int(re.search(r"__t(\d+)$", spec.trial_id).group(1))
        seconds = CYCLE[index % len(CYCLE)] * self.unit
        spec = dataclasses.replace(spec, params={**spec.params, "seconds_per_epoch": seconds}, threads=1)
        job = {"slot": self.free.pop(0), "index": index, "units": CYCLE[index % len(CYCLE)],
               "submit": time.perf_counter(), "end": None, "noticed": None, "ingest": None}
        self.jobs[spec.trial_id] = job

        def work():
            try:
                job["result"], job["error"] = run_trial(spec), None
            except BaseException as exc:  # noqa: BLE001 - reported through outcome()
                job["result"], job["error"] = None, repr(exc)
            job["end"] = time.perf_counter()

        job["thread"] = threading.Thread(target=work, daemon=True)
        job["thread"].start()
        return Handle(spec.trial_id, job["thread"], f"thread-{index}")

    def poll(self, handles: list[Handle]) -> list[Handle]:
        ended = [h for h in handles if not self.jobs[h.trial_id]["thread"].is_alive()]
        now = time.perf_counter()
        for h in ended:
            self.jobs[h.trial_id]["noticed"] = self.jobs[h.trial_id]["noticed"] or now
        return ended

    def outcome(self, handle: Handle) -> Outcome:
        job = self.jobs[handle.trial_id]
        job["ingest"] = time.perf_counter()
        self.free.append(job["slot"])
        if job["error"] is not None:
            return Outcome(False, error=job["error"], user_error=True)
        return Outcome(True, result=job["result"])


@contextlib.contextmanager
def timed_tracker(spent: list):
    """Time the controller's MLflow calls (outermost calls only: log_outbox_lines calls log_metrics)."""
    names = ("create_run", "log_params", "set_tags", "log_metrics", "log_outbox_lines", "log_text", "finish")
    saved = {n: getattr(Tracker, n) for n in names}
    depth = [0]

    def wrap(fn):
        def timed(*args, **kwargs):
            depth[0] += 1
            started = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                depth[0] -= 1
                if depth[0] == 0:
                    spent.append(time.perf_counter() - started)
        return timed

    for n in names:
        setattr(Tracker, n, wrap(saved[n]))
    try:
        yield
    finally:
        for n in names:
            setattr(Tracker, n, saved[n])


def overlap(a: float, b: float, lo: float, hi: float) -> float:
    return max(0.0, min(b, hi) - max(a, lo))


def measure_controller(unit: float, poll_seconds: float | None) -> dict:
    executor = ThreadExecutor(unit)
    # as shipped, a background executor is polled like the local backend's processes
    executor.poll_seconds = LocalExecutor.poll_seconds if poll_seconds is None else poll_seconds
    saved = controller_mod.make_executor
    controller_mod.make_executor = lambda *args, **kwargs: executor
    spent: list[float] = []
    try:
        with tempfile.TemporaryDirectory() as tmp, timed_tracker(spent), contextlib.redirect_stderr(io.StringIO()):
            path = Path(tmp) / "sweep.yaml"
            path.write_text(SWEEP.format(out=Path(tmp) / "out", slots=SLOTS, trials=TRIALS))
            spec = load_sweep(path)
            started = time.perf_counter()
            summary = controller_mod.Controller(spec, echo=lambda *_: None).run()
            total = time.perf_counter() - started
    finally:
        controller_mod.make_executor = saved
    jobs = list(executor.jobs.values())
    if not jobs:
        raise SystemExit("the Controller no longer builds its executor with launcher.engine.controller.make_executor: "
                         "update benchmarks/sweep_slots.py")
    assert summary["done"] == TRIALS and len(jobs) == TRIALS, summary
    t0 = min(j["submit"] for j in jobs)
    t_last = max(j["submit"] for j in jobs)        # the last new trial starts: the drain begins
    window = t_last - t0
    capacity = SLOTS * window
    busy = sum(overlap(j["submit"], j["ingest"], t0, t_last) for j in jobs)
    work = sum(overlap(j["submit"], j["end"], t0, t_last) for j in jobs)
    poll_wait = sum(overlap(j["end"], j["noticed"], t0, t_last) for j in jobs)
    ordered = sorted(jobs, key=lambda j: j["submit"])
    # per ingest->next submit gap on the same slot: controller time (MLflow, journal, ask, submit)
    gaps = []
    for slot in range(SLOTS):
        mine = [j for j in ordered if j["slot"] == slot]
        gaps += [b["submit"] - a["ingest"] for a, b in itertools.pairwise(mine)]
    return {"poll": executor.poll_seconds,
            "window": window, "total": total, "idle": 1 - busy / capacity, "not_working": 1 - work / capacity,
            "poll_share": poll_wait / capacity, "gap_ms": 1000 * sum(gaps) / max(1, len(gaps)),
            "mlflow_ms": 1000 * sum(spent) / TRIALS}


def simulate(durations: list[int], batch: bool) -> dict:
    """Zero-overhead schedule in units; window = [0, start of the last new trial]."""
    starts, ends = [], []
    if batch:
        now = 0
        for first in range(0, len(durations), SLOTS):
            group = durations[first:first + SLOTS]
            starts += [now] * len(group)
            ends += [now + d for d in group]
            now += max(group)
    else:   # work-conserving: a freed slot takes the next trial at once
        free = [0.0] * SLOTS
        for d in durations:
            slot = min(range(SLOTS), key=lambda s: free[s])
            starts.append(free[slot])
            free[slot] += d
            ends.append(free[slot])
    t_last = max(starts)
    busy = sum(overlap(s, e, 0, t_last) for s, e in zip(starts, ends))
    return {"window": t_last, "idle": 1 - busy / (SLOTS * t_last), "makespan": max(ends)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--unit", type=float, default=None, help="seconds per duration unit (default 0.15, --quick 0.05)")
    parser.add_argument("--diagnostic-poll", type=float, default=None,
                        help="also run with the executor's poll interval set to this (0: skip; default 0.02, --quick 0)")
    parser.add_argument("--quick", action="store_true", help="unit 0.05 s, no diagnostic run (CI: checks that it runs)")
    args = parser.parse_args()
    if args.unit is None:
        args.unit = 0.05 if args.quick else 0.15
    if args.diagnostic_poll is None:
        args.diagnostic_poll = 0.0 if args.quick else 0.02
    durations = [CYCLE[i % len(CYCLE)] for i in range(TRIALS)]
    print(f"command: {sys.executable} {' '.join(sys.argv)}")
    print(f"{SLOTS} slots, {TRIALS} trials, durations cycle {CYCLE} units, unit = {args.unit:.3f} s; "
          "window = first submit .. last new trial's submit (final drain excluded)\n")
    rows = [("Controller loop (real, poll interval as shipped)", measure_controller(args.unit, None))]
    if args.diagnostic_poll > 0:
        rows.append((f"Controller loop, poll interval -> {args.diagnostic_poll} (diagnostic)",
                     measure_controller(args.unit, args.diagnostic_poll)))
    greedy, batch = simulate(durations, batch=False), simulate(durations, batch=True)
    header = f"{'loop':<52} {'window s':>9} {'idle':>7} {'not working':>12} {'poll wait':>10} {'ctl gap ms':>11} {'mlflow ms':>10}"
    print(header)
    print("-" * len(header))
    for name, r in rows:
        print(f"{name:<52} {r['window']:>9.2f} {r['idle']:>7.1%} {r['not_working']:>12.1%} "
              f"{r['poll_share']:>10.1%} {r['gap_ms']:>11.1f} {r['mlflow_ms']:>10.1f}")
    for name, r in (("work-conserving, zero overhead (simulated)", greedy),
                    ("batch-synchronous ask 4 / wait 4 (simulated)", batch)):
        print(f"{name:<52} {r['window'] * args.unit:>9.2f} {r['idle']:>7.1%} {r['idle']:>12.1%} "
              f"{'-':>10} {'-':>11} {'-':>10}")
    print("\nidle        = 1 - sum(submit..ingest per slot) / (slots x window)")
    print("not working = 1 - sum(submit..job end) / (slots x window)  (adds the poll latency)")
    print("poll wait   = share of capacity where a finished job waited to be noticed by poll() "
          "(controller asleep, or busy ingesting others)")
    print("ctl gap ms  = mean time from ingest (outcome()) to the next submit on the same slot")
    print("mlflow ms   = controller time inside Tracker calls per trial (submit + ingest + finish)\n")
    real = rows[0][1]
    ratio = real["idle"] / batch["idle"]
    print(f"steady-state idle {real['idle']:.1%} vs batch-synchronous {batch['idle']:.1%} "
          f"(ratio {ratio:.3f}); target idle < {TARGET_IDLE:.0%}")
    print(f"stricter 'not working' (poll latency counted as idle) {real['not_working']:.1%}: "
          + ("< 5 %" if real["not_working"] < TARGET_IDLE else ">= 5 %"))
    print_verdicts([verdict(f"slot_idle@unit_{args.unit:g}s", 100 * real["idle"], "<", 100 * TARGET_IDLE,
                            unit="%", fmt=".1f")])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
