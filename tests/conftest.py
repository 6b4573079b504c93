import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("DO_NOT_TRACK", "true")
# The offline benchmark data, where this checkout has it beside it: the CPU sweep files find their tasks
# through $LAUNCHER_DATA_ROOT (tests that need the data skip when it is absent).
if SHARED_DATA.is_dir():
    os.environ.setdefault("LAUNCHER_DATA_ROOT", str(SHARED_DATA))


@pytest.fixture
def write_sweep(tmp_path):
    """Write a sweep YAML into tmp_path and return its path; `out` defaults inside tmp_path."""

    def write(text: str, name: str = "sweep.yaml") -> Path:
        path = tmp_path / name
        path.write_text(text)
        return path

    return write


def python() -> str:
    return sys.executable


@pytest.fixture(scope="session")
def slurm_cluster():
    """The local test cluster (bash slurm/up.sh). Absent: skip, except under CI, where it is a failure."""
    from launcher.backends.slurm_resources import run_command

    done = run_command(["scontrol", "ping"], timeout=10)
    if done.returncode != 0 or "is UP" not in done.stdout:
        message = "no SLURM cluster answers `scontrol ping` (start one with: bash slurm/up.sh)"
        if os.environ.get("CI"):
            pytest.fail(f"CI is set but {message}")
        pytest.skip(message)
