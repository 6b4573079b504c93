"""Controller cost per segment event and slot occupancy as sweeps grow, on the SIMULATED backend.

The simulated backend (launcher.backends.simulated, a fake cluster: nothing trains) stands in for a
cluster this machine cannot have; everything else is the real controller: YAML -> load_sweep ->
Controller.run(), the journal (fsynced), nevergrad (the default optimizer), ASHA (eta 3, grace 1,
max 9) and the MLflow store (SQLite in the sweep folder, or an `mlflow server` this script starts).
Segments last their epochs x --epoch-seconds on the simulated clock, which runs at the real rate
while the controller works and jumps over waits; so a slot is idle exactly while the controller has
not yet refilled it. Occupancy = busy slot-time / (workers x makespan - the free slot-time of waits
the clock skipped because the controller had nothing to start: ASHA's rung barriers and the sweep's tail
are the schedule's, not the controller's).

Per configuration (trials x workers), each in its own process (for its peak RSS):
  controller ms/event = (wall time from the start of the controller's loop to its end (its
                         `sweep_finished` event) - time inside the simulated executor, which stands for
                         the cluster and its jobs) / segment events (a segment that ended and was
                         ingested); the set-up before the loop (imports, optimizers built) is a one-off,
                         left out; the loop's first wave of asks is in (until 2026-12-08 the window
                         started at the first submission and left the first wave's asks out, which
                         flattered small sweeps: their asks are mostly in that wave)
  CPU ms/event        = the same window in the controller process's CPU time (its writer is another process)
  tuner ms/event      = the part of it inside nevergrad (Study.ask and Study.tell)
  occupancy           = SimulatedExecutor.occupancy() (above) at the loop's last poll
  peak RSS            = ru_maxrss of the controller process (its MLflow writer is a child process)
  MLflow lag s        = from the loop's end until the tracking writer (a child process following the
                         journal, engine.tracking_writer) has copied everything into MLflow and run()
                         returns: MLflow is off the critical path, this is how far behind it ran

Targets (issue 14): <= 10 ms per event at 1,000 workers; >= 99% occupancy with 60 s segments at
1,000 workers; per-event cost at 10,000 trials within 1.5x of that at 100 trials; peak RSS < 1 GB
at 10,000 trials. Baseline of the ratio: the 100-trial run of the same script.

    .venv/bin/python benchmarks/controller_scale.py                # 100/1,000/10,000 x 10/100/1,000, SQLite
    .venv/bin/python benchmarks/controller_scale.py --server       # the same against an MLflow server
    .venv/bin/python benchmarks/controller_scale.py --trials 100 1000 --workers 10 100
    .venv/bin/python benchmarks/controller_scale.py --quick        # 20 and 60 trials x 10 workers
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from _verdict import print_verdicts, skipped, verdict

SWEEP = """
name: scale
out: {out}
seeds: [0]
tasks:
  - dataset: ETTh1
    horizons: [96, 192, 336, 720]
methods:
  synthetic: {{}}
search:
  trials: {per_study}
  scheduler: {{type: asha, eta: 3, grace: 1, max_epochs: 9}}
executor:
  backend: simulated
  workers: {workers}
  simulated: {{epoch_seconds: {epoch_seconds}, jitter: 0.3}}
{tracking}
"""
STUDIES = 4
TARGET_MS, TARGET_OCCUPANCY, TARGET_GROWTH, TARGET_RSS_MB = 10.0, 0.99, 1.5, 1024


class TimedExecutor:
    """Wraps the simulated executor: time spent inside it is the fake cluster's, not the controller's."""

    def __init__(self, inner):
        self.inner = inner
        self.inside = 0.0
        self.inside_cpu = 0.0
        # made at the start of the controller's loop (after its replay and set-up): the window starts here,
        # so the loop's first wave of asks counts (a window from the first submission left it out)
        self.loop_wall, self.loop_cpu = time.time(), time.process_time()
        self.first_wall: float | None = None
        self.occupancy = 0.0                     # as of the last poll (not counting the wait for MLflow)

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def _timed(self, fn, *args):
        started, started_cpu = time.perf_counter(), time.process_time()
        try:
            return fn(*args)
        finally:
            self.inside += time.perf_counter() - started
            self.inside_cpu += time.process_time() - started_cpu

    def submit(self, spec):
        return self._timed(self.inner.submit, spec)

    def submit_many(self, specs):
        return self._timed(self.inner.submit_many, specs)

    def poll(self, handles):
        try:
            return self._timed(self.inner.poll, handles)
        finally:
            self.occupancy = self.inner.occupancy()

    def outcome(self, handle):
        return self._timed(self.inner.outcome, handle)


def one_run(trials: int, workers: int, epoch_seconds: float, uri: str | None) -> dict:
    """Runs in a child process: one sweep, its measurements as a dict."""
    import launcher.engine.controller as controller_mod
    from launcher.engine.study import Study
    from launcher.spec.load import load_sweep

    made: list[TimedExecutor] = []
    real_make = controller_mod.make_executor

    def make(*args, **kwargs):
        made.append(TimedExecutor(real_make(*args, **kwargs)))
        return made[-1]

    controller_mod.make_executor = make
    tuner = {"s": 0.0}       # time inside nevergrad (Study.ask / Study.tell), for the breakdown
    for name in ("ask", "tell"):
        real = getattr(Study, name)

        def timed(*args, _real=real):
            started = time.perf_counter()
            try:
                return _real(*args)
            finally:
                tuner["s"] += time.perf_counter() - started
        setattr(Study, name, timed)
    loop_end_cpu = {}
    real_finish = controller_mod.Controller._finish_studies

    def finish(self):
        loop_end_cpu["cpu"] = time.process_time()
        return real_finish(self)
    controller_mod.Controller._finish_studies = finish
    with tempfile.TemporaryDirectory() as tmp, contextlib.redirect_stderr(io.StringIO()):
        path = Path(tmp) / "sweep.yaml"
        tracking = f"tracking: {{uri: '{uri}'}}" if uri else ""
        path.write_text(SWEEP.format(out=Path(tmp) / "out", per_study=max(1, trials // STUDIES), workers=workers,
                                     epoch_seconds=epoch_seconds, tracking=tracking))
        spec = load_sweep(path)
        summary = controller_mod.Controller(spec, echo=lambda *_: None).run()
        ended = time.time()
        journal = [json.loads(line) for line in (Path(tmp) / "out" / "journal.jsonl").open()]
        events = sum(1 for event in journal if event["event"] == "segment_done")
        loop_end = max(event["time"] for event in journal if event["event"] == "sweep_finished")
    executor = made[0]
    loop = loop_end - executor.loop_wall
    cpu = loop_end_cpu["cpu"] - executor.loop_cpu - executor.inside_cpu
    return {"trials": summary["trials"], "workers": workers, "events": events, "wall_s": loop,
            "cluster_s": executor.inside, "ms_per_event": 1000 * (loop - executor.inside) / max(events, 1),
            "cpu_ms_per_event": 1000 * cpu / max(events, 1), "tuner_ms_per_event": 1000 * tuner["s"] / max(events, 1),
            "occupancy": executor.occupancy, "tracking_lag_s": ended - loop_end,
            "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def run_child(trials: int, workers: int, epoch_seconds: float, uri: str | None) -> dict:
    code = ("import json, sys; sys.path.insert(0, 'benchmarks'); import controller_scale as c; "
            f"print('RESULT', json.dumps(c.one_run({trials}, {workers}, {epoch_seconds}, {uri!r})))")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=False)
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    if done.returncode != 0 or not lines:
        raise SystemExit(f"run {trials} x {workers} failed (exit {done.returncode}):\n{done.stderr[-3000:]}")
    return json.loads(lines[-1][len("RESULT "):])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, nargs="+", default=None, help="default 100 1000 10000")
    parser.add_argument("--workers", type=int, nargs="+", default=None, help="default 10 100 1000")
    parser.add_argument("--epoch-seconds", type=float, default=20.0,
                        help="simulated seconds per epoch (default 20: ASHA's 3-epoch rungs are 60 s segments)")
    parser.add_argument("--server", action="store_true", help="track into an MLflow server started here")
    parser.add_argument("--quick", action="store_true", help="20 and 60 trials x 10 workers")
    args = parser.parse_args()
    trials = args.trials or ([20, 60] if args.quick else [100, 1000, 10000])
    workers = args.workers or ([10] if args.quick else [10, 100, 1000])
    print(f"command: {sys.executable} {' '.join(sys.argv)}")
    print(f"simulated backend (a fake cluster), {STUDIES} studies, ASHA eta 3 grace 1 max 9, "
          f"{args.epoch_seconds:g} simulated s per epoch, tracking: {'MLflow server' if args.server else 'SQLite'}\n")
    rows = []
    with contextlib.ExitStack() as stack:
        uri = None
        if args.server:
            from launcher.ui import served_store

            folder = Path(stack.enter_context(tempfile.TemporaryDirectory()))
            uri = stack.enter_context(served_store(f"sqlite:///{folder / 'server.db'}", folder,
                                                   artifact_root=folder / "artifacts", timeout_s=120))
        print(f"{'trials':>7} {'workers':>7} {'events':>7} {'wall s':>8} {'cluster s':>9} {'ms/event':>9} "
              f"{'CPU ms/ev':>9} {'tuner ms/ev':>11} {'occupancy':>9} {'RSS MB':>7} {'MLflow lag s':>12}")
        for n in trials:
            for w in workers:
                if w > n:
                    continue
                r = run_child(n, w, args.epoch_seconds, uri)
                rows.append(r)
                print(f"{n:>7} {w:>7} {r['events']:>7} {r['wall_s']:>8.1f} {r['cluster_s']:>9.2f} "
                      f"{r['ms_per_event']:>9.2f} {r['cpu_ms_per_event']:>9.2f} {r['tuner_ms_per_event']:>11.2f} "
                      f"{r['occupancy']:>9.4f} {r['rss_mb']:>7.0f} "
                      f"{r['tracking_lag_s']:>12.1f}", flush=True)
    top_w = max(r["workers"] for r in rows)
    at_top = [r for r in rows if r["workers"] == top_w]
    # growth: the largest sweep against the smallest measured with the same workers
    pairs = []
    for w in sorted({r["workers"] for r in rows}):
        same = sorted((r for r in rows if r["workers"] == w), key=lambda r: r["trials"])
        if len(same) > 1:
            pairs.append((same[-1]["ms_per_event"] / same[0]["ms_per_event"], same[0]["trials"], same[-1]["trials"], w))
    large = max(r["trials"] for r in rows)
    print()
    items = [
        verdict(f"ms_per_event@{top_w}_workers", max(r["ms_per_event"] for r in at_top), "<=", TARGET_MS, unit="ms"),
        verdict(f"occupancy@{top_w}_workers", min(r["occupancy"] for r in at_top), ">=", TARGET_OCCUPANCY),
        verdict(f"peak_rss@{large}_trials", max(r["rss_mb"] for r in rows if r["trials"] == large),
                "<", TARGET_RSS_MB, unit="MB", fmt=".0f"),
    ]
    if pairs:
        ratio, small, big, w = max(pairs)
        items.insert(2, verdict(f"ms_per_event_{big}_over_{small}_trials@{w}_workers", ratio, "<=", TARGET_GROWTH))
    else:
        items.insert(2, skipped("ms_per_event_growth", "<=", TARGET_GROWTH,
                                "one sweep size per worker count: pass several --trials"))
    print_verdicts(items)
    return 0


if __name__ == "__main__":
    sys.exit(main())
