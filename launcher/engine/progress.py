"""Progress while a sweep runs, and `launcher status DIR` from the journal alone.

Both show the same things: trials done / running / failed / pending, the best validation value
so far per study, ASHA rung occupancy, elapsed time and an ETA. `status` reads only the journal
(no MLflow, no scheduler query, no heavy imports), so it stays fast on long sweeps.
"""
from __future__ import annotations

import json
import math
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from launcher.engine.journal import Journal


@dataclass
class StudyStatus:
    trials: int = 0               # budget
    asked: int = 0
    running: int = 0
    done: int = 0
    failed: int = 0
    best: float | None = None
    mode: str = "min"
    objective: str | None = None

    def offer(self, value) -> None:
        if value is None or not math.isfinite(value):
            return
        if self.best is None or (value < self.best if self.mode == "min" else value > self.best):
            self.best = value


@dataclass
class SweepStatus:
    studies: dict[str, StudyStatus] = field(default_factory=dict)
    rungs: Counter = field(default_factory=Counter)
    started: float | None = None
    last: float | None = None
    paused: bool = False
    finished: bool = False

    def totals(self) -> dict[str, int]:
        s = self.studies.values()
        budget = sum(x.trials for x in s)
        done, failed, running = sum(x.done for x in s), sum(x.failed for x in s), sum(x.running for x in s)
        return {"budget": budget, "done": done, "failed": failed, "running": running,
                "pending": max(0, budget - done - failed - running)}

    def eta_seconds(self) -> float | None:
        t = self.totals()
        ended = t["done"] + t["failed"]
        if not ended or self.started is None or self.last is None:
            return None
        return (self.last - self.started) * (t["budget"] - ended) / ended


def read_status(folder: Path) -> SweepStatus:
    folder = Path(folder)
    status = SweepStatus()
    plan_file = folder / "plan.json"
    if plan_file.exists():
        for entry in json.loads(plan_file.read_text()):
            status.studies[entry["study"]] = StudyStatus(trials=entry.get("trials", 1), mode=entry.get("mode", "min"),
                                                         objective=entry.get("objective"))
    owner: dict[str, str] = {}
    running: set[str] = set()
    journal = folder / "journal.jsonl"
    if not journal.exists():
        return status
    for event in Journal(journal).replay(strict=False):    # a torn or damaged line is skipped
        kind, when = event["event"], event.get("time")
        status.started = status.started if status.started is not None else when
        status.last = when
        if kind == "asked":
            owner[event["trial_id"]] = event["study"]
            status.studies.setdefault(event["study"], StudyStatus()).asked += 1
        elif kind == "submitted":
            running.add(event["trial_id"])
        elif kind == "segment_done":
            running.discard(event["trial_id"])
            study = status.studies.setdefault(owner.get(event["trial_id"], event.get("study", "?")), StudyStatus())
            study.offer(event.get("value"))
            if event.get("until_epoch") is not None:
                status.rungs[event["until_epoch"]] += 1
            if event["decision"] != "continue":
                study.done += 1
        elif kind == "trial_failed":
            running.discard(event["trial_id"])
            if not event["retry"]:
                status.studies.setdefault(owner.get(event["trial_id"], "?"), StudyStatus()).failed += 1
        elif kind == "paused":
            status.paused = True
        elif kind == "sweep_started":
            status.paused = False
        elif kind == "sweep_finished":
            status.finished = True
    for trial_id in running:
        status.studies.setdefault(owner.get(trial_id, "?"), StudyStatus()).running += 1
    return status


def _fmt_duration(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    seconds = int(seconds)
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m" if seconds >= 3600 else f"{seconds // 60}m{seconds % 60:02d}s"


def render_status(status: SweepStatus) -> str:
    t = status.totals()
    state = "finished" if status.finished else ("PAUSED (too many failures; fix, then `launcher resume DIR`)"
                                                if status.paused else "running or stopped")
    elapsed = (status.last - status.started) if status.started is not None else None
    lines = [f"sweep {state}: {t['done']} done, {t['running']} running, {t['failed']} failed, "
             f"{t['pending']} pending of {t['budget']}; elapsed {_fmt_duration(elapsed)}, "
             f"ETA {_fmt_duration(status.eta_seconds()) if not status.finished else '-'}"]
    if status.rungs:
        lines.append("rung occupancy (epoch: trials): " + ", ".join(f"{e}: {n}" for e, n in sorted(status.rungs.items())))
    lines.append(f"{'study':<36} {'done':>5} {'run':>4} {'fail':>5} {'budget':>6}  best so far")
    for name, s in status.studies.items():
        best = "-" if s.best is None else f"{s.best:.5g} ({s.objective}, {s.mode})"
        lines.append(f"{name:<36} {s.done:>5} {s.running:>4} {s.failed:>5} {s.trials:>6}  {best}")
    return "\n".join(lines)


class Progress:
    """A live line during `sweep`: rewritten in place on a terminal, one line per change otherwise."""

    def __init__(self, studies: dict, counts: dict, stream=None):
        self.studies, self.counts = studies, counts
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.started = time.time()
        self._last_state = None
        self._last_draw = 0.0

    def show(self, running: int, queued: int, latest_study: str | None = None) -> None:
        budget = sum(s.plan.trials for s in self.studies.values())
        done, failed = self.counts["done"], self.counts["failed"]
        ended = done + failed
        elapsed = time.time() - self.started
        eta = elapsed * (budget - ended) / ended if ended else None
        state = (done, failed, running, queued)
        now = time.time()
        if not self.tty and state == self._last_state:
            return        # in a log file, print only when something changed
        if self.tty and state == self._last_state and now - self._last_draw < 1.0:
            return
        self._last_state, self._last_draw = state, now
        line = (f"[{ended}/{budget}] done {done}  running {running}  failed {failed}  "
                f"pending {max(0, budget - ended - running)}  elapsed {_fmt_duration(elapsed)}  ETA {_fmt_duration(eta)}")
        occupancy = Counter()
        for study in self.studies.values():
            if study.asha is not None:
                occupancy.update(study.asha.occupancy())
        if occupancy:
            line += "  rungs " + " ".join(f"{e}:{n}" for e, n in sorted(occupancy.items()))
        study = self.studies.get(latest_study) if latest_study else None
        if study is not None and study.plan.objective:
            best = study.best_trial()
            if best is not None and study.plan.objective in best.last_metrics:
                line += f"  best {study.plan.name}: {best.last_metrics[study.plan.objective]:.4g}"
        if self.tty:
            self.stream.write("\r" + line[:160].ljust(160))
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self.tty:
            self.stream.write("\n")
