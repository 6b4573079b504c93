"""`sweep --dry-run`: what a sweep would do, for any backend, without writing or submitting anything.

Printed: every study and its budget (preflight.describe_plan), the resources each trial holds, how the
first wave of trials would be grouped into job arrays under the cluster's limits, the exact sbatch
script of each distinct resource set (rendered by submitit's own renderer), and GPU-hours twice:
  - the upper bound: every trial trained to the last rung, plus the final retrains;
  - the expected figure: the epochs ASHA is expected to train (the real scheduler run over synthetic
    learning curves with the sweep's workers, engine.asha_sim), plus each method's one-off study work
    (DASHA's architecture search), plus the final retrains x seeds;
both times an assumed epoch time (--epoch-minutes) and the GPUs each trial holds.
"""
from __future__ import annotations

import sys
from pathlib import Path

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


def describe_dry_run(spec: SweepSpec, epoch_minutes: float = DEFAULT_EPOCH_MINUTES, limits=None) -> str:
    from launcher.backends.slurm_resources import ClusterLimits, plan_arrays, render_sbatch

    plans = plan_studies(spec)
    lines = [describe_plan(spec), "", "resources per trial:"]
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
            gpu_minutes += epochs_upper_bound(plan, len(spec.seeds)) * epoch_minutes * gpus
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
                  "such as the DASH search, counted as model epochs; + final retrains x seeds):"]
    for plan in plans:
        bound = epochs_upper_bound(plan, len(spec.seeds))
        lines.append(f"  {plan.name:<34} {expected[plan.name][0]:8.0f} (upper bound {bound})")
    expected_hours = sum(e * epoch_minutes * g for e, g in expected.values()) / 60.0
    if spec.executor.backend == "slurm":
        limit = ", ".join(sorted({f"{_resources(spec, p).time_min} min" for p in plans}))
        lines += ["", f"job time limit per segment: {limit} (executor.slurm.time_min, else executor.timeout_min)",
                  f"GPU-hours upper bound: {hours:.1f} (every trial to its last rung, plus final retrains, "
                  f"x {epoch_minutes:g} min per epoch (--epoch-minutes) x GPUs per trial)",
                  f"GPU-hours expected: {expected_hours:.1f} (the expected epochs above x {epoch_minutes:g} min "
                  f"x GPUs per trial)"]
    else:
        lines += ["", "GPU-hours upper bound: 0 (this backend runs trials on this machine's CPUs)"]
    return "\n".join(lines)


def normalize_paths(text: str) -> str:
    """Machine-specific prefixes as placeholders (for stable golden output)."""
    return text.replace(str(Path(sys.executable).parent), "<venv>/bin").replace(sys.executable, "<python>")
