"""Fixtures and texts shared by the sweep-spec tests (test_config.py, test_config_search.py)."""
from __future__ import annotations

import importlib.util
import types
from pathlib import Path

import pytest

from launcher.spec import sweep as config

_Info = types.SimpleNamespace
FAKE_DATASETS = {
    "ETTh1": _Info(horizons=(96, 192, 336, 720), context=512),
    "ETTh2": _Info(horizons=(96, 192, 336, 720), context=512),
    "ETTm1": _Info(horizons=(96, 192, 336, 720), context=512),
    "ETTm2": _Info(horizons=(96, 192, 336, 720), context=512),
    "illness": _Info(horizons=(24, 36, 48, 60), context=96),
}
HAVE_REAL_DATASETS = importlib.util.find_spec("tasks.timeseries") is not None


@pytest.fixture(autouse=True)
def datasets(monkeypatch):
    """The real registry when tasks.timeseries exists, otherwise a fake with the same shape."""
    if HAVE_REAL_DATASETS:
        return config.known_datasets()
    monkeypatch.setattr(config, "known_datasets", lambda: FAKE_DATASETS)
    return FAKE_DATASETS


@pytest.fixture(params=["fake", "real"])
def registry(request, monkeypatch):
    """Run a test once against the fake registry and once against tasks.timeseries (if present)."""
    if request.param == "real":
        if not HAVE_REAL_DATASETS:
            pytest.skip("tasks.timeseries not there yet")
        return config.known_datasets()
    monkeypatch.setattr(config, "known_datasets", lambda: FAKE_DATASETS)
    return FAKE_DATASETS


MINIMAL = """\
name: minimal
tasks:
  - dataset: ETTh1
methods:
  naive:
"""

@pytest.fixture
def layout(tmp_path, monkeypatch):
    """A sweep folder (with data) and a different working directory."""
    sweeps = tmp_path / "project" / "sweeps"
    (sweeps / "data").mkdir(parents=True)
    (sweeps / "data" / "ETTh2.csv").write_text("date,a\n")
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    return sweeps, work


def write_spec(folder: Path, text: str, name: str = "sweep.yaml") -> Path:
    path = folder / name
    path.write_text(text)
    return path
