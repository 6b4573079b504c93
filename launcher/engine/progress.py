"""Progress while a sweep runs, and `launcher status DIR` from the journal alone.

Both show the same things: trials done / running / failed / pending, the best validation value
so far per study, ASHA rung occupancy, elapsed time and an ETA. `status` reads only the journal
(no MLflow, no scheduler query, no heavy imports), so it stays fast on long sweeps.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from launcher.jsonl import complete_lines, parse_object


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


STATUS_CACHE = "status.cache.json"
CACHE_VERSION = 1
_HASHED = 1 << 16      # bytes of the journal hashed at its head and before the cached offset


class StatusFold:
    """The status, folded event by event over the journal; its state is plain JSON, so `status` can
    keep it beside the journal (STATUS_CACHE) and next time read only the events appended since."""

    def __init__(self, plan: list[dict]):
        self.status = SweepStatus()
        for entry in plan:
            self.status.studies[entry["study"]] = StudyStatus(trials=entry.get("trials", 1),
                                                              mode=entry.get("mode", "min"),
                                                              objective=entry.get("objective"))
        self.owner: dict[str, str] = {}
        self.running: set[str] = set()

    def apply(self, event: dict) -> None:
        status = self.status
        kind, when = event["event"], event.get("time")
        status.started = status.started if status.started is not None else when
        status.last = when
        if kind == "asked":
            self.owner[event["trial_id"]] = event["study"]
            status.studies.setdefault(event["study"], StudyStatus()).asked += 1
        elif kind == "submitted":
            self.running.add(event["trial_id"])
        elif kind == "segment_done":
            self.running.discard(event["trial_id"])
            study = status.studies.setdefault(self.owner.get(event["trial_id"], event.get("study", "?")), StudyStatus())
            study.offer(event.get("value"))
            if event.get("until_epoch") is not None:
                status.rungs[event["until_epoch"]] += 1
            if event["decision"] != "continue":
                study.done += 1
        elif kind == "trial_failed":
            self.running.discard(event["trial_id"])
            if not event["retry"]:
                status.studies.setdefault(self.owner.get(event["trial_id"], "?"), StudyStatus()).failed += 1
        elif kind == "paused":
            status.paused = True
        elif kind == "sweep_started":
            status.paused = False
        elif kind == "sweep_finished":
            status.finished = True

    def result(self) -> SweepStatus:
        """The status with the running trials counted (the fold itself is left as it is)."""
        out = SweepStatus(studies={k: StudyStatus(**vars(v)) for k, v in self.status.studies.items()},
                          rungs=Counter(self.status.rungs), started=self.status.started, last=self.status.last,
                          paused=self.status.paused, finished=self.status.finished)
        for trial_id in self.running:
            out.studies.setdefault(self.owner.get(trial_id, "?"), StudyStatus()).running += 1
        return out

    def to_json(self) -> dict:
        s = self.status
        return {"studies": {k: vars(v) for k, v in s.studies.items()}, "rungs": [[k, v] for k, v in s.rungs.items()],
                "started": s.started, "last": s.last, "paused": s.paused, "finished": s.finished,
                "owner": self.owner, "running": sorted(self.running)}

    @classmethod
    def from_json(cls, data: dict) -> "StatusFold":
        fold = cls([])
        fold.status = SweepStatus(studies={k: StudyStatus(**v) for k, v in data["studies"].items()},
                                  rungs=Counter({k: int(v) for k, v in data["rungs"]}), started=data["started"],
                                  last=data["last"], paused=bool(data["paused"]), finished=bool(data["finished"]))
        fold.owner = {str(k): str(v) for k, v in data["owner"].items()}
        fold.running = {str(t) for t in data["running"]}
        return fold


def _fingerprint(journal: Path, offset: int, plan: bytes) -> dict:
    """What must still hold for a fold up to `offset` to be this journal's: the same file (inode), the
    same first bytes, the same bytes just before the offset, the same plan."""
    with open(journal, "rb") as fh:
        head = fh.read(min(offset, _HASHED))
        fh.seek(max(0, offset - _HASHED))
        before = fh.read(offset - max(0, offset - _HASHED))
    digest = lambda data: hashlib.sha256(data).hexdigest()  # noqa: E731
    return {"inode": journal.stat().st_ino, "head": digest(head), "before": digest(before), "plan": digest(plan)}


def _cached_fold(folder: Path, journal: Path, plan: bytes) -> tuple[StatusFold, int] | None:
    try:
        data = json.loads((folder / STATUS_CACHE).read_text())
        offset = int(data["offset"])
        if data.get("version") != CACHE_VERSION or not 0 < offset <= journal.stat().st_size:
            return None
        if data["fingerprint"] != _fingerprint(journal, offset, plan):
            return None
        return StatusFold.from_json(data["fold"]), offset
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None      # none, another journal's, or damaged: fold from the start


def read_status(folder: Path, *, cache: bool = True) -> SweepStatus:
    """The sweep's status from its journal (a torn or damaged line is skipped). With `cache`, the fold
    is kept in STATUS_CACHE beside the journal, so a later call reads only the events appended since
    (10^5-trial journals: seconds the first time, a fraction of a second after)."""
    folder = Path(folder)
    plan_file = folder / "plan.json"
    plan = plan_file.read_bytes() if plan_file.exists() else b"[]"
    journal = folder / "journal.jsonl"
    if not journal.exists():
        return StatusFold(json.loads(plan)).result()
    found = _cached_fold(folder, journal, plan) if cache else None
    fold, offset = found if found is not None else (StatusFold(json.loads(plan)), 0)
    with open(journal, "rb") as fh:
        fh.seek(offset)
        data = fh.read()
    end = data.rfind(b"\n") + 1          # complete lines only: a torn last line is not read
    for raw in complete_lines(data[:end]):
        event = parse_object(raw)
        if event is not None and isinstance(event.get("event"), str):
            fold.apply(event)
    if cache and end > 0:
        offset += end
        record = {"version": CACHE_VERSION, "offset": offset,
                  "fingerprint": _fingerprint(journal, offset, plan), "fold": fold.to_json()}
        tmp = folder / f".{STATUS_CACHE}.tmp{os.getpid()}"
        try:
            tmp.write_text(json.dumps(record))
            os.replace(tmp, folder / STATUS_CACHE)
        except OSError:
            tmp.unlink(missing_ok=True)     # a read-only folder: no cache, same answer
    return fold.result()


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
