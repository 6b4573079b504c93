"""Controller overhead per no-op trial on the LOCAL backend (one OS process per trial, submitit).

A real sweep (YAML -> load_sweep -> Controller(spec).run(), SQLite MLflow, journal, TwoPointsDE asks)
of N `synthetic` trials that do no work (seconds_per_epoch 0, 1 epoch, no ASHA), 2 worker slots.
Nothing in the library is replaced; two thin timers are wrapped around it:
  * launcher.engine.controller.make_executor -> the real executor (LocalExecutor) inside StampedExecutor, which
    time-stamps submit() / outcome() and the poll wait (from a poll() that found no ended job to the
    controller's next call on the executor: the controller sleeps the executor's poll_seconds there);
    every other attribute (poll_seconds, name, adopt, ...) is delegated to the real executor, so a new
    executor attribute needs no change here,
  * the Tracker methods the controller calls (MLflow writes; outermost calls only).
Baseline, measured in the same run: a bare `python -c "import launcher.job.trial"` subprocess (median of 5).

Split of the steady wall time per trial W = (last ingest - first submit) / N:
  process start + import  = baseline / workers  (the slots start processes in parallel)
  MLflow writes           = controller time in Tracker calls / N  (serial, in the controller)
  rest                    = W - the two above (submitit pickling + Popen + its own imports, poll
                            latency, journal, optimizer ask/tell, CPU contention on a busy machine)

Target: steady wall time per no-op trial < 0.5 s.

    .venv/bin/python benchmarks/controller_overhead.py [--trials 20] [--workers 2]
    .venv/bin/python benchmarks/controller_overhead.py --quick    # 6 trials, baselines median of 3
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

from _verdict import print_verdicts, verdict

import launcher.engine.controller as controller_mod
from launcher.backends.local import LocalExecutor
from launcher.spec.load import load_sweep
from launcher.tracking import Tracker

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


def subprocess_seconds(code: str, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


class StampedExecutor:
    """Wraps the real executor: records when each job was submitted and ingested, and how long the
    controller waited after a poll that found nothing ended. Any other attribute (poll_seconds, name,
    adopt, ...) is the real executor's, looked up on each access."""

    def __init__(self, inner):
        self.inner = inner
        self.submits: list[float] = []
        self.ingests: list[float] = []
        self.waited = 0.0
        self.idle_since: float | None = None   # end of the last poll() that found no ended job

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def woke(self) -> None:
        if self.idle_since is not None:
            self.waited += time.perf_counter() - self.idle_since
            self.idle_since = None

    def submit(self, spec):
        self.woke()
        self.submits.append(time.perf_counter())
        return self.inner.submit(spec)

    def submit_many(self, specs):
        self.woke()
        self.submits += [time.perf_counter()] * len(specs)
        many = getattr(self.inner, "submit_many", None)
        return many(specs) if many is not None else [self.inner.submit(spec) for spec in specs]

    def poll(self, handles):
        self.woke()
        ended = self.inner.poll(handles)
        if not ended:
            self.idle_since = time.perf_counter()
        return ended

    def outcome(self, handle):
        self.woke()
        self.ingests.append(time.perf_counter())
        return self.inner.outcome(handle)


@contextlib.contextmanager
def timed_tracker(spent: dict):
    names = [n for n in TRACKER_CALLS if callable(getattr(Tracker, n, None))]   # those that exist today
    saved = {n: getattr(Tracker, n) for n in names}
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

    for n in names:
        setattr(Tracker, n, wrap(n, saved[n]))
    try:
        yield
    finally:
        for n in names:
            setattr(Tracker, n, saved[n])


def run_sweep(trials: int, workers: int) -> dict:
    stamped: list[StampedExecutor] = []
    real_make = controller_mod.make_executor
    spent: dict[str, float] = {}

    def make(*args, **kwargs):
        stamped.append(StampedExecutor(real_make(*args, **kwargs)))
        return stamped[-1]

    controller_mod.make_executor = make
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
        controller_mod.make_executor = real_make
    if not stamped:
        raise SystemExit("the Controller no longer builds its executor with launcher.engine.controller.make_executor: "
                         "update benchmarks/controller_overhead.py")
    ex = stamped[0]
    assert summary["done"] == trials and len(ex.ingests) == trials, summary
    return {"total": total, "steady": max(ex.ingests) - min(ex.submits), "setup": min(ex.submits) - started,
            "tracker": spent, "slept": ex.waited}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=None, help="default 20 (--quick: 6)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="6 trials, baselines median of 3 (CI: checks that it runs)")
    args = parser.parse_args()
    n, w = args.trials or (6 if args.quick else 20), args.workers
    repeats = 3 if args.quick else 5
    print(f"command: {sys.executable} {' '.join(sys.argv)}")
    print(f"{n} no-op synthetic trials (0 s/epoch, 1 epoch), backend local (submitit LocalExecutor), "
          f"{w} workers, poll interval={LocalExecutor.poll_seconds}s\n")
    bare = subprocess_seconds("pass", repeats)
    baseline = subprocess_seconds("import launcher.job.trial", repeats)
    with_submitit = subprocess_seconds("import submitit, submitit.core._submit, launcher.job.trial, "
                                       "launcher.methods.synthetic", repeats)
    r = run_sweep(n, w)
    per_trial = r["steady"] / n
    start_import = baseline / w
    mlflow_total = sum(r["tracker"].values())
    mlflow = mlflow_total / n
    rest = per_trial - start_import - mlflow

    print(f"baseline subprocesses (median of {repeats}, same run):")
    print(f"  python -c pass                                         {bare * 1000:8.1f} ms")
    print(f"  python -c 'import launcher.job.trial'       (the baseline)  {baseline * 1000:8.1f} ms")
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
    print(f"  waiting after an empty poll {r['slept'] / n * 1000:7.1f} ms | in MLflow {mlflow * 1000:7.1f} ms | "
          f"other controller work {(r['steady'] - r['slept'] - mlflow_total) / n * 1000:7.1f} ms")
    print("  MLflow by call (ms per trial): " + ", ".join(
        f"{k} {v / n * 1000:.1f}" for k, v in sorted(r["tracker"].items(), key=lambda kv: -kv[1])))
    for label, value in (("steady", per_trial), ("incl. setup", r["total"] / n)):
        print(f"{'' if label != 'steady' else chr(10)}wall time per trial ({label}) {value:.3f} s; ratio to the baseline "
              f"process start + import {value / baseline:.1f}x; ratio to the {TARGET_SECONDS} s target "
              f"{value / TARGET_SECONDS:.2f}")
    print_verdicts([verdict("wall_per_trial_steady", per_trial, "<", TARGET_SECONDS, unit="s", fmt=".3f")])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
