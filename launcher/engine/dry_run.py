"""`sweep --dry-run`: what a sweep would do, for any backend, without writing or submitting anything.

Printed: every study and its budget (preflight.describe_plan), the resources each trial holds, how the
first wave of trials would be grouped into job arrays under the cluster's limits, the exact sbatch
script of each distinct resource set (rendered by submitit's own renderer), and GPU-hours twice:
  - the upper bound: every trial trained to the last rung, plus the final retrains;
  - the expected figure: the epochs ASHA is expected to train (the real scheduler run over synthetic
    learning curves with the sweep's workers, engine.asha_sim), plus each method's one-off study work
    (DASHA's architecture search), plus the final retrains x seeds;
both times each study's epoch time and the GPUs each trial holds. A study's epoch time is, in this order:
what `--calibrate` measured on this machine (engine.calibrate), its method row's `epoch_minutes:` in the
sweep file, or --epoch-minutes; each study's line says which. The header names the job time limit the
backend actually applies (a SLURM sweep's executor.slurm.time_min, or a method's resources.time_min,
wins over executor.timeout_min).
"""
from __future__ import annotations

import sys
from pathlib import Path

from launcher.engine.calibrate import COMMAND_LINE, EpochTime, epoch_times, machine
from launcher.engine.plan import plan_studies
from launcher.engine.preflight import describe_plan
from launcher.engine.study import StudyPlan
from launcher.spec.sweep import SweepSpec

DEFAULT_EPOCH_MINUTES = 5.0


def _resources(spec: SweepSpec, plan: StudyPlan):
    from launcher.backends.slurm_resources import SlurmResources, trial_resources

    base = SlurmResources.from_dict({"time_min": spec.executor.timeout_min, **(spec.executor.slurm or {})})
    return trial_resources(base, plan.resources, plan.distributed)


def epochs_upper_bound(plan: StudyPlan, seeds: int) -> int:
    """Epochs (one-shot methods: 1 unit per run) if no trial were ever stopped early."""
    per_trial = plan.asha.max_epochs if plan.asha is not None else (plan.epochs or 1)
    total = plan.trials * per_trial
    if plan.epoch_budget is not None:
        total = min(total, plan.epoch_budget)
    if plan.final_epochs:
        total += seeds * plan.final_epochs
    return total


def expected_epochs(plan: StudyPlan, seeds: int, workers: int) -> float:
    """Epochs a study is expected to train: ASHA's simulated count (or every trial to the end without ASHA),
    the method's one-off study work (e.g. the DASH search), and the final retrains."""
    from launcher.engine.asha_sim import expected_epochs as asha_epochs
    from launcher.methods.registry import method_class

    if plan.asha is not None:
        total = asha_epochs(plan.asha, plan.trials, max(1, workers), epoch_budget=plan.epoch_budget)
    else:
        total = float(epochs_upper_bound(plan, seeds) - seeds * (plan.final_epochs or 0))
    total += method_class(plan.implementation).study_overhead_epochs(plan.fixed_params, plan.domain)
    return total + seeds * (plan.final_epochs or 0)


def job_time_limit(spec: SweepSpec, plans: list[StudyPlan]) -> str:
    """The time limit the backend applies to one trial job, and where it comes from."""
    backend = spec.executor.backend
    if backend == "slurm":
        limits = sorted({_resources(spec, p).time_min for p in plans})
        source = "executor.slurm.time_min" if "time_min" in (spec.executor.slurm or {}) else "executor.timeout_min"
        if any("time_min" in (p.resources or {}) for p in plans):
            source += "; a method's resources.time_min for its own trials"
        return f"job time limit {', '.join(f'{m} min' for m in limits) or '-'} per segment ({source})"
    if backend == "local":
        return f"job time limit {spec.executor.timeout_min} min per trial job (executor.timeout_min)"
    return f"no job time limit (the {backend} backend does not apply executor.timeout_min)"


def _with_time_limit(header: str, spec: SweepSpec, plans: list[StudyPlan]) -> str:
    """describe_plan's header, its executor line naming the time limit actually used (not timeout_min as written)."""
    lines = header.split("\n")
    prefix = f"  backend {spec.executor.backend}, {spec.executor.workers} worker slot(s)"
    for i, line in enumerate(lines):
        if line.startswith(prefix):
            lines[i] = f"{prefix}, {job_time_limit(spec, plans)}"
            break
    return "\n".join(lines)


def describe_dry_run(spec: SweepSpec, epoch_minutes: float = DEFAULT_EPOCH_MINUTES, limits=None,
                     calibrated: dict | None = None) -> str:
    """The dry run's text. `calibrated`: engine.calibrate.calibrate's measurements (None: no --calibrate)."""
    from launcher.backends.slurm_resources import ClusterLimits, plan_arrays, render_sbatch

    plans = plan_studies(spec)
    times = epoch_times(spec, plans, epoch_minutes, calibrated)
    lines = [_with_time_limit(describe_plan(spec), spec, plans), "", "resources per trial:"]
    by_resources: dict = {}
    for plan in plans:
        resources = _resources(spec, plan)
        by_resources.setdefault(resources, []).append(plan)
    gpu_minutes = 0.0
    expected: dict[str, tuple[float, int]] = {}      # study -> (expected epochs, GPUs per trial)
    for resources, group in by_resources.items():
        strategy = group[0].distributed or {"strategy": "none"}
        gpus = resources.gpus_per_node * resources.nodes
        where = (f"{resources.nodes} node(s) x {resources.tasks_per_node} task(s), {resources.cpus_per_task} CPU(s)/task, "
                 f"{gpus} GPU(s), mem {resources.mem or 'default'}, {resources.time_min} min"
                 if spec.executor.backend == "slurm" else
                 f"{int(strategy.get('ranks', 1))} process(es) on this machine")
        lines.append(f"  {where}; distributed {strategy.get('strategy', 'none')}: "
                     + ", ".join(p.name for p in group[:4]) + (f" (+{len(group) - 4} more)" if len(group) > 4 else ""))
        for plan in group:
            gpu_minutes += epochs_upper_bound(plan, len(spec.seeds)) * times[plan.name].minutes * gpus
            expected[plan.name] = (expected_epochs(plan, len(spec.seeds), spec.executor.workers), gpus)
    if spec.executor.backend == "slurm":
        limits = limits or ClusterLimits.read()
        first_wave = min(spec.executor.workers, sum(p.trials for p in plans))
        chunks = plan_arrays(first_wave, limits)
        lines += ["", f"job arrays: up to {spec.executor.workers} trials at once; the first wave of {first_wave} "
                      f"goes out as arrays of {chunks} (MaxArraySize {limits.max_array_size}, "
                      f"MaxSubmitJobs {limits.max_submit_jobs}; from {limits.source})"]
        for index, resources in enumerate(by_resources, 1):
            script = render_sbatch(resources, Path(spec.out) / "jobs" / "slurm-<stamp>", n_tasks=min(first_wave, chunks[0]))
            lines += ["", f"sbatch script {index} of {len(by_resources)}:", script.rstrip()]
    hours = gpu_minutes / 60.0
    lines += ["", "expected epochs per study (ASHA simulated with the sweep's workers; + one-off study work "
                  "such as the DASH search, counted as model epochs; + final retrains x seeds; a one-shot "
                  "method's run counts as one epoch), and the seconds per epoch used, with where they come from:"]
    for plan in plans:
        bound = epochs_upper_bound(plan, len(spec.seeds))
        lines.append(f"  {plan.name:<34} {expected[plan.name][0]:8.0f} (upper bound {bound})  "
                     f"{_epoch_time_text(times[plan.name])}")
    uniform = all(t.source == COMMAND_LINE for t in times.values())
    per_epoch = f"{epoch_minutes:g} min per epoch (--epoch-minutes)" if uniform else "each study's time per epoch above"
    expected_hours = sum(e * times[name].minutes * g for name, (e, g) in expected.items()) / 60.0
    if spec.executor.backend == "slurm":
        lines += ["", f"job time limit per segment: {_slurm_limits(spec, plans)} (executor.slurm.time_min, "
                      f"else executor.timeout_min)",
                  f"GPU-hours upper bound: {hours:.1f} (every trial to its last rung, plus final retrains, "
                  f"x {per_epoch} x GPUs per trial)",
                  f"GPU-hours expected: {expected_hours:.1f} (the expected epochs above x "
                  f"{f'{epoch_minutes:g} min' if uniform else per_epoch} x GPUs per trial)"]
    else:
        lines += ["", "GPU-hours upper bound: 0 (this backend runs trials on this machine's CPUs)"]
        if not uniform:
            trial_seconds = sum(e * times[name].seconds for name, (e, _) in expected.items())
            workers = max(1, spec.executor.workers)
            lines.append(f"trial time expected: {_duration(trial_seconds)} ({trial_seconds:.0f} s; the expected "
                         f"epochs above x {per_epoch}); over {workers} worker slot(s), about "
                         f"{_duration(trial_seconds / workers)} of wall time")
    if calibrated is not None:
        lines += ["", f"calibration measured THIS machine ({machine()}): one segment per (task, method) -- epoch 1, or "
                      "a one-shot method's whole run -- in this process, in a temporary folder since deleted, data "
                      "loading and model setup included. An epoch on the cluster's GPUs differs, often by far: take "
                      "these as this machine's figures, or run --calibrate on a node like the cluster's, or write "
                      "each method row's `epoch_minutes:`."]
    return "\n".join(lines)


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.2f} h"


def _epoch_time_text(time: EpochTime) -> str:
    text = f"{time.seconds:9.2f} s/epoch ({time.source}"
    return text + (f"; {time.note})" if time.note else ")")


def _slurm_limits(spec: SweepSpec, plans: list[StudyPlan]) -> str:
    return ", ".join(f"{m} min" for m in sorted({_resources(spec, p).time_min for p in plans}))


def normalize_paths(text: str) -> str:
    """Machine-specific prefixes as placeholders (for stable golden output)."""
    return text.replace(str(Path(sys.executable).parent), "<venv>/bin").replace(sys.executable, "<python>")
