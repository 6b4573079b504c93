"""Resume on a long journal: how long the controller takes to replay it before it can go on.

Builds a sweep folder whose journal is the controller's own events (asked, submitted, ingesting,
segment_done, with the decisions the real Study and ASHA take, written by the real Journal), for a
4-study sweep on the simulated backend with RandomSearch and ASHA (eta 3, grace 1, max 9), then times
the real controller's start (`Controller._start`: folder check, torn-tail check, replay of every
event into studies, ASHA rungs, queues) in this process. Two folders:

  finished  every study asked all its trials (the optimizers are never needed again: not rebuilt)
  searching one study still has trials to ask (its optimizer is rebuilt from the journal's asks and
            tells, in order: the cost a resume of a sweep in mid-search pays)

MLflow is not involved: the tracking writer follows the journal in its own process, after the start.
Target (issue 14): resume replay < 10 s on a 10^6-event journal.

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


def time_start(spec) -> tuple[float, int, int]:
    controller = Controller(spec, echo=lambda *_: None)
    started = time.perf_counter()
    with controller.lock:
        replayed = controller._start()
    seconds = time.perf_counter() - started
    rebuilt = sum(1 for s in controller.studies.values() if s.optimizer is not None and s.can_ask())
    return seconds, replayed, rebuilt


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000, help="journal size to build (default 10^6)")
    parser.add_argument("--quick", action="store_true", help="20,000 events")
    args = parser.parse_args()
    events = 20_000 if args.quick else args.events
    trials = max(8, int(math.ceil(events / EVENTS_PER_TRIAL / 4)) * 4)
    print(f"command: {sys.executable} {' '.join(sys.argv)}")
    rows = []
    for searching in (False, True):
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            spec, written = build(Path(tmp), trials, searching)
            built = time.perf_counter() - t0
            seconds, replayed, rebuilt = time_start(spec)
            name = "searching" if searching else "finished"
            rows.append((name, written, seconds))
            print(f"{name:>9}: {trials} trials, {written:,} events (built in {built:.0f} s); controller start "
                  f"(replay) {seconds:.2f} s = {1e6 * seconds / max(replayed, 1):.1f} us/event; "
                  f"optimizers rebuilt: {rebuilt}", flush=True)
    worst = max(seconds * 1_000_000 / written for _, written, seconds in rows)
    print_verdicts([verdict("resume_replay_s_per_1e6_events", worst, "<", TARGET_SECONDS, unit="s")])
    return 0


if __name__ == "__main__":
    sys.exit(main())
