"""What a trial job process imports, through the entry point SLURM jobs run (launcher.job.entry).

Run with submitit's LocalExecutor (the same `<python> -u -m submitit.core._submit FOLDER` command as the
SLURM executor's jobs, same pickles): a synthetic trial runs to its result without numpy, torch, pandas,
MLflow or the other built-in method modules ever being imported in the job.
"""
from __future__ import annotations

import sys
from pathlib import Path

import cloudpickle
import submitit

from launcher.backends.slurm_resources import job_python
from launcher.job.trial import TrialSpec, run_trial

cloudpickle.register_pickle_by_value(sys.modules[__name__])   # the jobs cannot import this test module

HEAVY = ("numpy", "torch", "pandas", "mlflow", "nevergrad", "scipy", "tasks")


def synthetic_trial_and_its_imports(spec: TrialSpec) -> tuple[dict, list[str], list[str]]:
    result = run_trial(spec)
    heavy = sorted({name.split(".")[0] for name in sys.modules if name.split(".")[0] in HEAVY})
    methods = sorted(name for name in sys.modules if name.startswith("launcher.methods."))
    return result, heavy, methods


def uses_numpy(_: int) -> str:
    import numpy

    return str(numpy.arange(3).sum())


def test_a_synthetic_trial_job_imports_nothing_heavy(tmp_path):
    spec = TrialSpec(trial_id="t0", study="ETTh1-96/synthetic", dataset="ETTh1", horizon=96, context=96,
                     method="synthetic", seed=0, trial_dir=str(tmp_path / "trials" / "t0"), until_epoch=1,
                     params={"x": 0.3, "y": 0.7, "seed": 0, "seconds_per_epoch": 0.0, "fail_above": None})
    executor = submitit.LocalExecutor(folder=str(tmp_path / "jobs"), python=job_python())
    executor.update_parameters(timeout_min=2)
    job = executor.submit(synthetic_trial_and_its_imports, spec)
    result, heavy, methods = job.result()
    assert result["trial_id"] == "t0" and result["metrics"]["epoch"] == 1.0
    assert (Path(spec.trial_dir) / "result-e1.json").exists()
    assert heavy == [], heavy
    assert methods == ["launcher.methods.base", "launcher.methods.params", "launcher.methods.registry",
                       "launcher.methods.synthetic"], methods
    # a job that does need numpy still imports it (the entry point only skips submitit's preload)
    assert executor.submit(uses_numpy, 0).result() == "3"
