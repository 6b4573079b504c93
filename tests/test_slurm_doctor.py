"""`launcher doctor` on the real test cluster (slurm/up.sh), and on a machine without SLURM."""
from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest

from launcher.backends import doctor
from launcher.backends.slurm_resources import ClusterLimits

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
@pytest.mark.slurm
def test_doctor_passes_on_the_test_cluster_and_reports_its_limits(slurm_cluster):
    out = io.StringIO()
    assert doctor.run_doctor(out=out) == 0, out.getvalue()
    text = out.getvalue()
    assert "MaxArraySize=" in text and "MaxSubmitJobs=" in text
    assert "partition" in text and "usable" in text
    assert " fail " not in text


def test_doctor_without_slurm_binaries_exits_2_and_says_why():
    # PATH holds only the venv: no sbatch, squeue, scontrol, sinfo (and no cluster needed)
    env = {**os.environ, "PATH": str(Path(sys.executable).parent)}
    done = subprocess.run([sys.executable, "-m", "launcher.backends.doctor"], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "not on PATH" in done.stdout and "NOT usable" in done.stdout and "slurm/up.sh" in done.stdout


def test_missing_preemption_signal_is_a_warning_that_explains_the_fix():
    check = doctor.check_preemption(ClusterLimits(preempt_user_signal=False))
    assert check.status == "warn"
    assert "preempt_send_user_signal" in check.detail and "scontrol reconfigure" in check.detail
