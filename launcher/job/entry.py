"""The command a SLURM trial job runs: submitit's own job entry point, without its numpy preload.

submitit starts every job with `<python> -u -m submitit.core._submit FOLDER`, where `<python>` is the
executor's `python` setting. The SLURM backend sets it to `<venv python> -u -m launcher.job.entry`, so a
job runs

    <venv python> -u -m launcher.job.entry -u -m submitit.core._submit FOLDER

and this module calls the same `submitit.core.submission.process_job(FOLDER)` that submitit's entry point
calls (same pickles, same result file, same USR2 checkpoint/requeue handling). The one difference:
`submitit.core.submission` imports numpy before it unpickles the job "to avoid unexpected interactions",
which is ~0.15 CPU-s of a job's ~0.45 (a synthetic or one-shot trial never needs numpy; a method that does
imports it itself, and so does unpickling anything that holds a numpy object). On a cluster that runs
thousands of short trials that is a third of the CPU the jobs cost.

Any other argument shape (a submitit that builds its command differently) runs what submitit asked for,
unchanged: `python <args>`.
"""
from __future__ import annotations

import os
import sys

SUBMITIT_ARGS = ("-u", "-m", "submitit.core._submit")   # what submitit appends to its `python` setting


def main(argv: list[str]) -> None:
    if len(argv) != len(SUBMITIT_ARGS) + 1 or tuple(argv[:-1]) != SUBMITIT_ARGS:
        os.execv(sys.executable, [sys.executable, *argv])
    preloaded = "numpy" in sys.modules
    if not preloaded:
        sys.modules["numpy"] = None        # submitit's `try: import numpy except ImportError: pass` skips it
    try:
        from submitit.core.submission import process_job
    finally:
        if not preloaded:
            del sys.modules["numpy"]       # a later `import numpy` (a method, an unpickled array) works as usual
    process_job(argv[-1])


if __name__ == "__main__":
    main(sys.argv[1:])
