"""`sweep --dry-run --calibrate`: how long one epoch of each study takes on THIS machine, and where each
study's epoch time for the dry run's expected GPU-hours comes from.

For each distinct (task, method row) of the plan, one short training segment runs through the very path
a trial job takes (`launcher.job.trial.run_trial`, with the TrialSpec the controller would build for the
study's first trial, `engine.trial_specs.build_trial_spec`): epoch 1 of a method trained in epochs, one
whole run of a one-shot method (Auto-AR, naive: one fit). Its wall seconds are the study's epoch time.

- It runs in this process, on one rank (a `distributed` row's ranks are not started), with at most this
  machine's cores, in a temporary folder that is deleted afterwards: nothing is written in the sweep's
  `out` folder, no MLflow store is touched (a trial job never talks to MLflow).
- The seconds include loading the data and building the model, as every segment of a real trial does:
  for a long segment (a 200-epoch retrain) they overstate the time per epoch a little. Python imports
  (torch) are done before the clock starts.
- A method's one-off study work that the dry run counts separately (`study_overhead_epochs`: the DASH
  search) is shrunk for the measurement (`CALIBRATION_PARAMS`) and its reported seconds
  (`search_seconds`) are subtracted, so that it is not counted twice.
- It measures this machine (often a CPU); an epoch on the cluster's GPUs differs, often by far.

Precedence for a study's epoch time: the measurement, else the row's `epoch_minutes:` in the sweep file,
else `--epoch-minutes`. A measurement that fails (no data here, no checkpoint) falls back, and says why.
"""
from __future__ import annotations

import os
import platform
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

from launcher.engine.study import StudyPlan
from launcher.spec.sweep import SweepSpec

CALIBRATED = "calibrated"
SWEEP_FILE = "epoch_minutes in the sweep file"
COMMAND_LINE = "--epoch-minutes"

# Params set for the measurement when the method declares them: the DASH search is one-off study work
# that the dry run counts on its own (study_overhead_epochs); the smallest search keeps the segment short.
CALIBRATION_PARAMS = {"search_epochs": 1, "search_batches_per_epoch": 1}
# Metrics a method reports for one-off study work inside a segment, in seconds: subtracted.
STUDY_WORK_SECONDS = ("search_seconds",)


@dataclass(frozen=True)
class EpochTime:
    """A study's time per epoch (per run for a one-shot method) and where it comes from."""
    minutes: float
    source: str         # CALIBRATED, SWEEP_FILE or COMMAND_LINE
    note: str = ""      # e.g. why a calibration fell back

    @property
    def seconds(self) -> float:
        return self.minutes * 60.0


@dataclass(frozen=True)
class Measurement:
    seconds: float | None       # None: the segment failed
    unit: str                   # "epoch" or "run"
    error: str = ""
    note: str = ""


def calibration_key(plan: StudyPlan) -> tuple[str, str]:
    """Studies that share an epoch time: the same task and method row (a random-search arm trains the same model)."""
    return plan.task, plan.method


def _progress(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def calibrate(spec: SweepSpec, plans: list[StudyPlan],
              progress: Callable[[str], None] = _progress) -> dict[tuple[str, str], Measurement]:
    """One short segment per distinct (task, method row), timed; in a temporary folder, deleted afterwards."""
    distinct: dict[tuple[str, str], StudyPlan] = {}
    for plan in plans:
        distinct.setdefault(calibration_key(plan), plan)
    progress(f"calibrating {len(distinct)} (task, method) pair(s) on this machine: one short segment each, "
             f"in a temporary folder")
    measured: dict[tuple[str, str], Measurement] = {}
    with tempfile.TemporaryDirectory(prefix="launcher-calibrate-") as folder:
        for index, (key, plan) in enumerate(distinct.items(), 1):
            unit = "epoch" if _multi_fidelity(plan) else "run"
            progress(f"  [{index}/{len(distinct)}] {plan.task}/{plan.method}: one {unit} ...")
            try:
                seconds, note = measure(spec, plan, Path(folder))
            except Exception as error:   # no data here, no checkpoint, a method that fails: fall back, say why
                text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
                measured[key] = Measurement(None, unit, error=f"{type(error).__name__}: {text[:300]}")
                progress(f"      failed ({measured[key].error}); this study keeps its other epoch time")
                continue
            measured[key] = Measurement(seconds, unit, note=note)
            progress(f"      {seconds:.2f} s per {unit}" + (f" ({note})" if note else ""))
    return measured


def _multi_fidelity(plan: StudyPlan) -> bool:
    from launcher.methods.registry import method_class

    return bool(method_class(plan.implementation).multi_fidelity)


def measure(spec: SweepSpec, plan: StudyPlan, folder: Path) -> tuple[float, str]:
    """Wall seconds of one segment of `plan`'s first trial (epoch 1; a one-shot method's whole run), run
    in this process under `folder`; and a note on what differs from the sweep's own trials."""
    from launcher.engine.study import Study
    from launcher.engine.trial_specs import build_trial_spec
    from launcher.job.trial import run_trial
    from launcher.methods.registry import method_class

    cls = method_class(plan.implementation)
    trial = Study(plan, num_workers=1).ask()          # the configuration the study would try first
    trial.params = {**trial.params, **{k: v for k, v in CALIBRATION_PARAMS.items() if k in cls.params}}
    until = 1 if cls.multi_fidelity else None
    trial_spec = build_trial_spec(spec, plan, trial, until, folder / "trials" / trial.trial_id)
    notes = []
    ranks = int((plan.distributed or {}).get("ranks", 1))
    if ranks > 1:
        notes.append(f"one process; the sweep runs {ranks} ranks")
    threads = max(1, min(trial_spec.threads, os.cpu_count() or 1))
    trial_spec = replace(trial_spec, threads=threads, distributed=None, resources=None)
    _import_first(trial_spec.method)
    started = time.perf_counter()
    result = run_trial(trial_spec)
    seconds = time.perf_counter() - started
    study_work = sum(float(result["metrics"].get(name) or 0.0) for name in STUDY_WORK_SECONDS)
    if study_work:
        notes.append(f"{study_work:.1f} s of one-off study work left out")
        seconds = max(seconds - study_work, 1e-3)
    return seconds, "; ".join(notes)


def _import_first(method: str) -> None:
    """Python imports before the clock starts: this process pays them once, where each job pays them once per
    segment (seconds, not per epoch); left in, the first study measured would carry torch's import alone."""
    import importlib.util

    from launcher.methods import get_method

    get_method(method)
    if importlib.util.find_spec("torch") is not None:
        import torch  # noqa: F401


def epoch_times(spec: SweepSpec, plans: list[StudyPlan], default_minutes: float,
                measured: dict[tuple[str, str], Measurement] | None = None) -> dict[str, EpochTime]:
    """Study name -> its epoch time: measured (--calibrate), else the row's epoch_minutes, else --epoch-minutes."""
    rows = {m.name: m for m in spec.methods}
    out: dict[str, EpochTime] = {}
    for plan in plans:
        row = rows.get(plan.method)
        written = getattr(row, "epoch_minutes", None)
        fallback = EpochTime(written, SWEEP_FILE) if written is not None else EpochTime(default_minutes, COMMAND_LINE)
        got = (measured or {}).get(calibration_key(plan))
        if got is not None and got.seconds is not None:
            note = "; ".join(filter(None, [got.note, f"the sweep file's {written:g} min not used" if written else ""]))
            out[plan.name] = EpochTime(got.seconds / 60.0, CALIBRATED, note)
        elif got is not None:
            out[plan.name] = replace(fallback, note=f"calibration failed: {got.error}")
        else:
            out[plan.name] = fallback
    return out


def machine() -> str:
    """This machine in a few words: processor, cores, and a GPU only if torch (already imported) sees one."""
    cpu = platform.processor() or platform.machine() or "unknown CPU"
    text = f"{cpu}, {os.cpu_count() or '?'} CPU core(s)"
    torch = sys.modules.get("torch")
    try:
        if torch is not None and torch.cuda.is_available():
            return f"{text}, GPU {torch.cuda.get_device_name(0)}"
    except Exception:   # a broken CUDA setup: the figure is still this machine's
        pass
    return f"{text}, no GPU in use"
