"""Controller overhead per no-op trial on the LOCAL backend (one OS process per trial, submitit).

A real sweep (YAML -> load_sweep -> Controller(spec).run(), SQLite MLflow, journal, TwoPointsDE asks)
of N `synthetic` trials that do no work (seconds_per_epoch 0, 1 epoch, no ASHA), 2 worker slots.
Nothing in the library is replaced; three thin timers are wrapped around it:
  * make_executor -> the real LocalExecutor, with submit() / outcome() time-stamped,
  * the Tracker methods the controller calls (MLflow writes; outermost calls only),
  * the controller's time.sleep (the poll wait, the executor's poll_seconds per empty poll).
Baseline, measured in the same run: a bare `python -c "import launcher.trial"` subprocess (median of 5).

Split of the steady wall time per trial W = (last ingest - first submit) / N:
  process start + import  = baseline / workers  (the slots start processes in parallel)
  MLflow writes           = controller time in Tracker calls / N  (serial, in the controller)
  rest                    = W - the two above (submitit pickling + Popen + its own imports, poll
                            latency, journal, optimizer ask/tell, CPU contention on a busy machine)

    .venv/bin/python benchmarks/controller_overhead.py [--trials 20] [--workers 2]
"""
from __future__ import annotations

import argparse
import contextlib
import io
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import launcher.controller as controller_mod  # noqa: E402
from launcher.executors import LocalExecutor  # noqa: E402
from launcher.config import load_sweep  # noqa: E402
from launcher.tracking import Tracker  # noqa: E402

TARGET_SECONDS = 0.5
SWEEP = """
name: bench_overhead
out: {out}
tasks:
  - dataset: ETTh1
    horizons: [96]
methods:
  synthetic: {{seconds_per_epoch: 0.0}}
executor: {{backend: local, workers: {workers}}}
search: {{trials: {trials}, scheduler: {{type: none, max_epochs: 1}}}}
"""
TRACKER_CALLS = ("create_run", "log_params", "set_tags", "log_metrics", "log_outbox_lines", "log_text", "finish")


def subprocess_seconds(code: str, repeats: int = 5) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


class StampedExecutor:
    """Delegates to the real executor; records when each job was submitted and ingested."""

    def __init__(self, inner):
        self.inner, self.name = inner, inner.name
        self.submits: list[float] = []
        self.ingests: list[float] = []

    def submit(self, spec):
        self.submits.append(time.perf_counter())
        return self.inner.submit(spec)

    def poll(self, handles):
        return self.inner.poll(handles)

    def outcome(self, handle):
        self.ingests.append(time.perf_counter())
        return self.inner.outcome(handle)


class SleepTimer:
    """Stands in for the `time` module inside launcher.controller: counts time.sleep."""

    def __init__(self):
        self.slept = 0.0

    def sleep(self, seconds: float) -> None:
        started = time.perf_counter()
        time.sleep(seconds)
        self.slept += time.perf_counter() - started

    def __getattr__(self, name):
        return getattr(time, name)


@contextlib.contextmanager
def timed_tracker(spent: dict):
    saved = {n: getattr(Tracker, n) for n in TRACKER_CALLS}
    depth = [0]

    def wrap(name, fn):
        def timed(*args, **kwargs):
            depth[0] += 1
            started = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                depth[0] -= 1
                if depth[0] == 0:
                    spent[name] = spent.get(name, 0.0) + time.perf_counter() - started
        return timed

    for n in TRACKER_CALLS:
        setattr(Tracker, n, wrap(n, saved[n]))
    try:
        yield
    finally:
        for n in TRACKER_CALLS:
            setattr(Tracker, n, saved[n])


def run_sweep(trials: int, workers: int) -> dict:
    stamped: list[StampedExecutor] = []
    real_make = controller_mod.make_executor
    sleeper = SleepTimer()
    spent: dict[str, float] = {}

    def make(*args, **kwargs):
        stamped.append(StampedExecutor(real_make(*args, **kwargs)))
        return stamped[-1]

    controller_mod.make_executor, controller_mod.time = make, sleeper
    try:
        with tempfile.TemporaryDirectory() as tmp, timed_tracker(spent), contextlib.redirect_stderr(io.StringIO()):
            path = Path(tmp) / "sweep.yaml"
            path.write_text(SWEEP.format(out=Path(tmp) / "out", workers=workers, trials=trials))
            spec = load_sweep(path)
            assert spec.executor.backend == "local"
            started = time.perf_counter()
            summary = controller_mod.Controller(spec, echo=lambda *_: None).run()
            total = time.perf_counter() - started
    finally:
        controller_mod.make_executor, controller_mod.time = real_make, time
    ex = stamped[0]
    assert summary["done"] == trials and len(ex.ingests) == trials, summary
    return {"total": total, "steady": max(ex.ingests) - min(ex.submits), "setup": min(ex.submits) - started,
            "tracker": spent, "slept": sleeper.slept}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    n, w = args.trials, args.workers
    print(f"command: {sys.executable} {' '.join(sys.argv)}")
    print(f"{n} no-op synthetic trials (0 s/epoch, 1 epoch), backend local (submitit LocalExecutor), "
          f"{w} workers, poll interval={LocalExecutor.poll_seconds}s\n")
    bare = subprocess_seconds("pass")
    baseline = subprocess_seconds("import launcher.trial")
    with_submitit = subprocess_seconds("import submitit, submitit.core._submit, launcher.trial, "
                                       "launcher.methods.synthetic")
    r = run_sweep(n, w)
    per_trial = r["steady"] / n
    start_import = baseline / w
    mlflow_total = sum(r["tracker"].values())
    mlflow = mlflow_total / n
    rest = per_trial - start_import - mlflow

    print("baseline subprocesses (median of 5, same run):")
    print(f"  python -c pass                                         {bare * 1000:8.1f} ms")
    print(f"  python -c 'import launcher.trial'       (the baseline)  {baseline * 1000:8.1f} ms")
    print(f"  + submitit + its job entry point + synthetic method    {with_submitit * 1000:8.1f} ms\n")
    print(f"controller run(): {r['total']:.2f} s in all; setup before the first submit {r['setup']:.2f} s; "
          f"first submit -> last ingest {r['steady']:.2f} s")
    print("  (setup = sweep folder, nevergrad optimizer, journal, MLflow store creation, git revision)\n")
    header = f"{'per trial':<52} {'ms':>9} {'share':>7}"
    print(header)
    print("-" * len(header))
    for name, value in ((f"process start + import (baseline / {w} workers)", start_import),
                        ("MLflow writes (controller, Tracker calls)", mlflow),
                        ("rest (submitit, poll wait, journal, ask/tell, ...)", rest),
                        ("wall time per trial (steady)", per_trial)):
        print(f"{name:<52} {value * 1000:>9.1f} {value / per_trial:>7.0%}")
    print(f"{'wall time per trial incl. setup (run() / N)':<52} {r['total'] / n * 1000:>9.1f}")
    print("\ncontroller-side view (additive, the controller is one thread), per trial:")
    print(f"  sleeping in poll wait {r['slept'] / n * 1000:7.1f} ms | in MLflow {mlflow * 1000:7.1f} ms | "
          f"other controller work {(r['steady'] - r['slept'] - mlflow_total) / n * 1000:7.1f} ms")
    print("  MLflow by call (ms per trial): " + ", ".join(
        f"{k} {v / n * 1000:.1f}" for k, v in sorted(r["tracker"].items(), key=lambda kv: -kv[1])))
    for label, value in (("steady", per_trial), ("incl. setup", r["total"] / n)):
        print(f"{'' if label != 'steady' else chr(10)}wall time per trial ({label}) {value:.3f} s; ratio to the baseline "
              f"process start + import {value / baseline:.1f}x; ratio to the {TARGET_SECONDS} s target "
              f"{value / TARGET_SECONDS:.2f}: " + ("MET" if value < TARGET_SECONDS else "MISSED"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
