"""`launcher status DIR` on a 5,000-trial journal: wall time of the real CLI, against `python -c pass`.

Writes a synthetic journal shaped like a real one (ask, submit, segment_done per rung, ASHA-like
stops) into a temp folder, then times `python -m launcher status DIR` end to end (interpreter
start included) and the in-process read+render alone.

    python benchmarks/status_speed.py [--trials 5000]
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

from launcher.progress import read_status, render_status  # noqa: E402


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
    parser.add_argument("--trials", type=int, default=5000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        lines = write_journal(folder, args.trials)
        started = time.perf_counter()
        text = render_status(read_status(folder))
        in_process = time.perf_counter() - started

        def timed(*command: str) -> float:
            started = time.perf_counter()
            subprocess.run(command, check=True, capture_output=True)
            return time.perf_counter() - started

        bare = min(timed(sys.executable, "-c", "pass") for _ in range(3))
        cli = min(timed(sys.executable, "-m", "launcher", "status", str(folder)) for _ in range(3))
    print(f"command: {sys.executable} {' '.join(sys.argv)}")
    print(f"journal: {args.trials} trials, {lines} events")
    print(f"read + render in process: {in_process:.3f} s")
    print(f"`python -m launcher status DIR`: {cli:.3f} s (best of 3); `python -c pass`: {bare:.3f} s; ratio {cli / bare:.1f}x")
    print(f"target < 1 s: {'MET' if cli < 1.0 else 'MISSED'}")
    print(text.splitlines()[0])
    return 0


if __name__ == "__main__":
    sys.exit(main())
