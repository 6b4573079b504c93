"""Resume on a long journal: how long the controller takes to replay it before it can go on.

Builds a sweep folder whose journal is the controller's own events (asked, submitted, ingesting,
segment_done, with the decisions the real Study and ASHA take, written by the real Journal), for a
4-study sweep on the simulated backend with RandomSearch and ASHA (eta 3, grace 1, max 9), then times
the real controller's start (`Controller._start`: folder check, torn-tail check, replay of every
event into studies, ASHA rungs, queues) in this process: once replaying the whole journal, once from
the journal snapshot a killed controller leaves in the worst case (engine.snapshot: its child had
snapshotted all but the last SNAPSHOT_EVERY events). Two folders:

  finished  every study asked all its trials (the optimizers are never needed again: not rebuilt)
  searching one study still has trials to ask (its optimizer is rebuilt from the journal's asks and
            tells, in order: the cost a resume of a sweep in mid-search pays)

MLflow is not involved: the tracking writer follows the journal in its own process, after the start.
Target (issue 14): resume replay < 10 s on a 10^6-event journal. Rebuilding a nevergrad optimizer replays
every ask and tell of its study into nevergrad (milliseconds each, nevergrad's own cost); a resume does
it at the study's first ask, after it resubmitted the segments it found in flight: printed beside.

    .venv/bin/python benchmarks/resume_speed.py                 # 10^6 events
    .venv/bin/python benchmarks/resume_speed.py --events 200000
    .venv/bin/python benchmarks/resume_speed.py --quick         # 20,000 events
"""
from __future__ import annotations

import argparse
import json
import math
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from _verdict import print_verdicts, verdict

from launcher.engine.controller import Controller
from launcher.engine.journal import Journal
from launcher.engine.plan import plan_studies
from launcher.engine.preflight import prepare_out
from launcher.engine.snapshot import SNAPSHOT_NAME, make_snapshot, snapshot_every
from launcher.engine.study import Study
from launcher.spec.load import load_sweep

TARGET_SECONDS = 10.0
EVENTS_PER_TRIAL = 5.2          # asked + (submitted, ingesting, segment_done) x ~1.4 segments
SWEEP = """
name: resume-speed
out: {out}
seeds: [0]
tasks:
  - dataset: ETTh1
    horizons: [96, 192, 336, 720]
methods:
  synthetic: {{}}
search:
  trials: {per_study}
  optimizer: RandomSearch
  scheduler: {{type: asha, eta: 3, grace: 1, max_epochs: 9}}
executor:
  backend: simulated
  workers: 1
"""


def build(folder: Path, trials: int, searching: bool) -> tuple[object, int]:
    """A sweep folder and its journal; returns (spec, events written)."""
    path = folder / "sweep.yaml"
    per_study = trials // 4
    path.write_text(SWEEP.format(out=folder / "out", per_study=per_study))
    spec = load_sweep(path)
    plans = plan_studies(spec)
    prepare_out(spec, plans)
    journal = Journal(Path(spec.out) / "journal.jsonl")
    rng = random.Random(0)
    events = 0
    with journal.batched(), open(journal.path, "a") as fh:
        def emit(event: str, **fields) -> None:
            nonlocal events
            fh.write(json.dumps({"event": event, "time": time.time(), **fields}, sort_keys=True) + "\n")
            events += 1

        emit("sweep_started", pid=1, studies=len(plans), resumed=False)
        for number, plan in enumerate(plans):
            study = Study(plan, 1)
            study.begin_replay()          # configurations drawn here, not by nevergrad: building stays fast
            asks = per_study - (per_study // 10 if searching and number == 0 else 0)
            for index in range(asks):
                params = {**plan.fixed_params, **{name: rng.random() for name in plan.space.names}}
                trial = study.replay_ask(f"{plan.slug}__t{index:03d}", params)
                emit("asked", study=plan.name, trial_id=trial.trial_id, params=trial.params, seed=trial.seed)
                target = study.first_target()
                while True:
                    study.schedule(trial, target)
                    emit("submitted", trial_id=trial.trial_id, until_epoch=target, job_id=f"sim-{events}")
                    emit("ingesting", trial_ids=[trial.trial_id])
                    value = rng.random() * (1 + 1 / target)
                    metrics = {"best_val_loss": value, "val_loss": value, "test_mse": value, "wall_seconds": 1.0,
                               "job_seconds": float(target)}
                    decision, next_epoch, loss = study.segment_done(trial, target, metrics, plan.objective)
                    emit("segment_done", trial_id=trial.trial_id, until_epoch=target, metrics=metrics,
                         value=metrics.get(plan.objective), decision=decision, next_epoch=next_epoch, loss=loss,
                         lines=target, study=plan.name, job_id=f"sim-{events}")
                    if decision != "continue":
                        study.tell(trial, loss)
                        break
                    target = next_epoch
    return spec, events


def time_start(spec) -> tuple[float, int, int, float]:
    """The controller's start, then the first ask of each study still searching, which rebuilds its
    optimizer (engine.study: deferred to that ask, so that a resume resubmits what was in flight first).
    Returns (start seconds, events, optimizers rebuilt, seconds of those first asks)."""
    controller = Controller(spec, echo=lambda *_: None)
    started = time.perf_counter()
    with controller.lock:
        replayed = controller._start()
    seconds = time.perf_counter() - started
    searching = [s for s in controller.studies.values() if s.optimizer is not None and s.can_ask()]
    started = time.perf_counter()
    for study in searching:
        study.ask()
    return seconds, replayed, len(searching), time.perf_counter() - started


def snapshot_before_tail(spec, tail: int) -> tuple[float, float]:
    """The snapshot a controller killed just before its next one was due leaves: all but the last `tail`
    events (made here as its snapshot child makes it). Returns (seconds to make it, its size in MB)."""
    out = Path(spec.out)
    data = (out / "journal.jsonl").read_bytes()
    cut = len(data)
    for _ in range(tail + 1):
        cut = data.rfind(b"\n", 0, cut)
    started = time.perf_counter()
    make_snapshot(out, plan_studies(spec), spec.executor.workers, data[:cut + 1])
    return time.perf_counter() - started, (out / SNAPSHOT_NAME).stat().st_size / 1e6


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000, help="journal size to build (default 10^6)")
    parser.add_argument("--quick", action="store_true", help="20,000 events")
    args = parser.parse_args()
    events = 20_000 if args.quick else args.events
    trials = max(8, int(math.ceil(events / EVENTS_PER_TRIAL / 4)) * 4)
    tail = min(snapshot_every(), events // 2)
    print(f"command: {sys.executable} {' '.join(sys.argv)}")
    print(f"controller start = folder check + replay of the journal (from a snapshot: only the events after "
          f"it) + optimizers rebuilt for studies that ask again; the snapshot is the worst case a kill leaves: "
          f"{tail:,} events before the next one was due\n")
    rows = []
    for searching in (False, True):
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            spec, written = build(Path(tmp), trials, searching)
            built = time.perf_counter() - t0
            name = "searching" if searching else "finished"
            full, replayed, rebuilt, rebuilding = time_start(spec)
            print(f"{name:>9}: {trials} trials, {written:,} events (built in {built:.0f} s)\n"
                  f"           no snapshot: start {full:.2f} s = {1e6 * full / max(replayed, 1):.1f} us/event; "
                  f"first ask of the {rebuilt} studies still searching (nevergrad rebuilt) {rebuilding:.2f} s",
                  flush=True)
            made_s, size_mb = snapshot_before_tail(spec, tail)
            fast, replayed, rebuilt, rebuilding = time_start(spec)
            print(f"           snapshot ({size_mb:.0f} MB, made in {made_s:.1f} s by the controller's child, off "
                  f"its loop): start {fast:.2f} s; first ask of the {rebuilt} studies still searching "
                  f"{rebuilding:.2f} s", flush=True)
            rows.append((name, written, full, fast, rebuilding))
    # the target is for a 10^6-event journal; other sizes are measured as they are (a start from a snapshot
    # is not linear in the journal's length: its tail is fixed, the snapshot grows with the trials)
    size = f"{rows[0][1] / 1e6:.2g}e6_events"
    items = [verdict(f"resume_start_s_{size}_{name}", fast, "<", TARGET_SECONDS, unit="s")
             for name, _, _, fast, _ in rows]
    print_verdicts(items)
    return 0


if __name__ == "__main__":
    sys.exit(main())
