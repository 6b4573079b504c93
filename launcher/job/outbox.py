"""A trial's outbox (`outbox.jsonl`): one JSON line per reported step, written by the job, read by the
controller (which copies new lines into MLflow) with the one rule of `launcher.jsonl`."""
from __future__ import annotations

import json
import time
from pathlib import Path

from launcher.jsonl import cut_torn_tail, read_objects

OUTBOX = "outbox.jsonl"


class Outbox:
    """Append-only JSONL of reported steps; the controller's tracking writer copies new lines into MLflow.

    Steps only grow: a job requeued after preemption may report an epoch again (it was killed between
    its checkpoint and its report, or it re-announces the restored epoch); such repeats are dropped here,
    so MLflow never sees a step twice. A line cut by a kill is removed before the next one is appended.
    """

    def __init__(self, path: Path):
        self.path = path
        self.last_step = -1
        cut_torn_tail(path)
        for line in read_objects(path):
            self.last_step = max(self.last_step, int(line.get("step", -1)))

    def __call__(self, step: int, metrics: dict[str, float]) -> None:
        if step <= self.last_step:
            return
        self.last_step = int(step)
        line = json.dumps({"step": int(step), "time": time.time(), "metrics": metrics}, sort_keys=True)
        with open(self.path, "a") as fh:
            fh.write(line + "\n")
            fh.flush()


def read_outbox(trial_dir: Path, start: int = 0, stop: int | None = None) -> list[dict]:
    """The trial's complete outbox lines [start:stop] (a line being written is not one yet)."""
    return read_objects(Path(trial_dir) / OUTBOX, start, stop)
