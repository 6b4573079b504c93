"""`launcher status DIR` on a 5,000-trial journal: wall time of the real CLI, against `python -c pass`.

Writes a synthetic journal shaped like a real one (ask, submit, segment_done per rung, ASHA-like
stops) into a temp folder, then times `python -m launcher status DIR` end to end (interpreter
start included) and the in-process read+render alone.

Targets: `launcher status DIR` answers in under 1 s on a 5,000-trial journal (goal G16) with no cache
(the first call on a folder folds the whole journal); and, once it has kept its fold (status.cache.json),
in under 1 s at any size when 100 events were appended since (issue 14: 10^6-event journals).

    python benchmarks/status_speed.py [--trials 5000]
    python benchmarks/status_speed.py --quick           # 500 trials, best of 2: seconds
"""
from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _verdict import print_verdicts, verdict

from launcher.engine.progress import STATUS_CACHE, read_status, render_status

TARGET_SECONDS = 1.0


def write_journal(folder: Path, trials: int, studies: int = 20) -> int:
    rng = random.Random(0)
    names = [f"task{i}/dlinear" for i in range(studies)]
    (folder / "plan.json").write_text(json.dumps([{"study": n, "task": n.split("/")[0], "column": "dlinear",
                                                   "method": "dlinear", "arm": "tuned", "trials": trials // studies,
                                                   "objective": "best_val_mse", "mode": "min"} for n in names]))
    lines, now = 0, time.time()
    with open(folder / "journal.jsonl", "w") as fh:
        def emit(**event):
            nonlocal lines, now
            now += 0.5
            fh.write(json.dumps({"time": now, **event}) + "\n")
            lines += 1
        emit(event="sweep_started", pid=1, studies=studies, resumed=False)
        for t in range(trials):
            study, tid = names[t % studies], f"{names[t % studies]}__t{t:05d}"
            emit(event="asked", study=study, trial_id=tid, params={"lr": rng.random(), "batch_size": 32})
            for rung in (1, 2, 4, 8, 16, 20):
                emit(event="submitted", trial_id=tid, until_epoch=rung, job_id=str(t))
                stop = rung == 20 or rng.random() < 0.5
                emit(event="segment_done", trial_id=tid, until_epoch=rung, study=study, value=rng.random(),
                     metrics={"best_val_mse": rng.random(), "test_mse": rng.random()}, lines=rung,
                     decision=("complete" if rung == 20 else "stop") if stop else "continue",
                     next_epoch=None, loss=rng.random() if stop else None)
                if stop:
                    break
        emit(event="sweep_finished", done=trials, failed=0)
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=None, help="default 5000 (--quick: 500)")
    parser.add_argument("--quick", action="store_true", help="500 trials, best of 2 (CI: checks that it runs)")
    args = parser.parse_args()
    args.trials = args.trials or (500 if args.quick else 5000)
    repeats = 2 if args.quick else 3
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        lines = write_journal(folder, args.trials)
        started = time.perf_counter()
        text = render_status(read_status(folder, cache=False))
        in_process = time.perf_counter() - started

        def timed(*command: str) -> float:
            started = time.perf_counter()
            subprocess.run(command, check=True, capture_output=True)
            return time.perf_counter() - started

        bare = min(timed(sys.executable, "-c", "pass") for _ in range(repeats))
        cache = folder / STATUS_CACHE

        def cold() -> float:        # no cache: the whole journal is folded (the first call on a folder)
            cache.unlink(missing_ok=True)
            return timed(sys.executable, "-m", "launcher", "status", str(folder))

        cli = min(cold() for _ in range(repeats))
        cold()
        with open(folder / "journal.jsonl", "a") as fh:       # a controller went on: 100 more events
            for i in range(100):
                fh.write(json.dumps({"event": "submitted", "time": time.time(), "trial_id": f"x{i}",
                                     "until_epoch": 1, "job_id": "1"}) + "\n")
        warm = timed(sys.executable, "-m", "launcher", "status", str(folder))
    print(f"command: {sys.executable} {' '.join(sys.argv)}")
    print(f"journal: {args.trials} trials, {lines} events")
    print(f"read + render in process: {in_process:.3f} s")
    print(f"`python -m launcher status DIR`: {cli:.3f} s (best of {repeats}); `python -c pass`: {bare:.3f} s; "
          f"ratio {cli / bare:.1f}x")
    print(f"the next call, 100 events later (folds only those, from {STATUS_CACHE}): {warm:.3f} s")
    print(text.splitlines()[0])
    print_verdicts([verdict(f"status_cli_seconds@{args.trials}_trials", cli, "<", TARGET_SECONDS, unit="s", fmt=".3f"),
                    verdict(f"status_cli_cached_seconds@{lines}_events", warm, "<", TARGET_SECONDS, unit="s",
                            fmt=".3f")])
    return 0


if __name__ == "__main__":
    sys.exit(main())
