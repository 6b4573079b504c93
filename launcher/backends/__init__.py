"""Execution backends: where trial jobs run. One interface (`base.Executor`), several backends:
`inline` and `local` (local.py), `slurm` (slurm.py, with slurm_resources.py and doctor.py), and
`simulated` (simulated.py: a fake cluster for benchmarks and engine tests; nothing trains).

May import: launcher.job, launcher.methods (through the job), launcher.training, launcher.errors.
Never: launcher.engine, launcher.spec, launcher.report, mlflow.
"""
from __future__ import annotations

from pathlib import Path

from launcher.backends.base import BACKENDS, Executor, Handle, Outcome

__all__ = ["BACKENDS", "Executor", "Handle", "Outcome", "make_executor"]


def make_executor(spec, folder: Path) -> Executor:
    """The executor for a sweep's `executor:` block (launcher.spec.sweep.ExecutorSpec)."""
    backend, timeout_min = spec.backend, spec.timeout_min
    if backend == "inline":
        from launcher.backends.local import InlineExecutor

        return InlineExecutor(folder, timeout_min)
    if backend == "local":
        from launcher.backends.local import LocalExecutor

        return LocalExecutor(folder, timeout_min)
    if backend == "slurm":
        from launcher.backends.slurm import SlurmExecutor, SlurmResources  # imported here: only SLURM sweeps need it
        from launcher.job.trial import TrialJob

        resources = SlurmResources.from_dict({"time_min": timeout_min, **(spec.slurm or {})})
        return SlurmExecutor(folder, resources, job_fn=TrialJob())
    if backend == "simulated":
        from launcher.backends.simulated import SimulatedExecutor, Simulation

        return SimulatedExecutor(folder, Simulation.from_dict(getattr(spec, "simulated", None)), spec.workers)
    raise ValueError(f"unknown backend {backend!r}; known: {', '.join(BACKENDS)}")
