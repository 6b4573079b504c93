"""The worked plugin package in examples/launcher-plugin-example, installed and run through real sweeps.

The package is installed WITHOUT touching the project's environment: `pip install --no-deps
--no-build-isolation --target <tmp>` of a copy of it, then every launcher command runs in a subprocess
with PYTHONPATH=<tmp>, where importlib.metadata finds its entry points (`launcher.methods` drift,
`launcher.tasks` sine_waves, `launcher.adapters` tiny_mlp). A second sweep names the same classes by
import path, with only a plain copy of the source (no installed metadata) on PYTHONPATH.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from numpy.lib.stride_tricks import sliding_window_view

from tests.conftest import ROOT

pytestmark = pytest.mark.slow

EXAMPLE = ROOT / "examples" / "launcher-plugin-example"
CONTEXT, HORIZON = 96, 24
COPY_IGNORE = shutil.ignore_patterns("build", "dist", "*.egg-info", "__pycache__")

SWEEP_ENTRY_POINTS = """
name: plugin_example
tasks:
  - dataset: sine_waves          # registered by the plugin (entry point launcher.tasks)
  - dataset: ETTh1               # built in, embedded in the repository
    horizons: [24]
    context: 96
methods:
  naive: {{}}
  drift: {{}}                    # registered by the plugin (entry point launcher.methods)
  fm:
    method: finetune
    adapter: tiny_mlp            # registered by the plugin (entry point launcher.adapters)
    checkpoint: {checkpoint}
    train_layers: full
    lr: 1.0e-3
    epochs: 2
    max_batches_per_epoch: 4
    space: {{}}
search:
  trials: 1
  scheduler: {{type: none, max_epochs: 2}}
executor: {{backend: local, workers: 2}}
"""

SWEEP_IMPORT_PATHS = """
name: plugin_example_paths
tasks:
  - task: launcher_plugin_example.data:sine_waves
methods:
  drift: {{method: launcher_plugin_example.methods:DriftMethod}}
  fm:
    method: finetune
    adapter: launcher_plugin_example.fm:TinyMLPAdapter
    checkpoint: {checkpoint}
    epochs: 2
    max_batches_per_epoch: 4
    space: {{}}
search:
  trials: 1
  scheduler: {{type: none, max_epochs: 2}}
executor: {{backend: local, workers: 2}}
"""


def launcher(args: list[str], *, pythonpath: Path, cwd: Path, timeout: int = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(pythonpath)}
    return subprocess.run([sys.executable, "-m", "launcher", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout)


@pytest.fixture(scope="module")
def plugin(tmp_path_factory):
    """The example installed into a --target folder, a plain copy of its source, and a stand-in checkpoint."""
    root = tmp_path_factory.mktemp("plugin_example")
    source, site, plain = root / "source", root / "site", root / "plain"
    # pip builds in the source tree (build/, *.egg-info): build a copy, never the repository's folder.
    shutil.copytree(EXAMPLE, source, ignore=COPY_IGNORE)
    shutil.copytree(EXAMPLE, plain, ignore=COPY_IGNORE)
    done = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-build-isolation",
                           "--no-input", "--disable-pip-version-check", "--quiet", "--target", str(site),
                           str(source)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    assert (site / "launcher_plugin_example" / "fm.py").is_file()
    checkpoint = root / "tiny_mlp_checkpoint"
    done = subprocess.run([sys.executable, "-m", "launcher_plugin_example.fm", str(checkpoint),
                           "--context", str(CONTEXT), "--seed", "0"],
                          env={**os.environ, "PYTHONPATH": str(site)}, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert {"config.json", "model.safetensors", "README.txt"} <= {p.name for p in checkpoint.iterdir()}
    return {"root": root, "site": site, "plain": plain, "checkpoint": checkpoint}


def mse_cells(out: Path) -> pd.DataFrame:
    """The report's test-MSE cells (one row per task x column)."""
    report = pd.read_csv(out / "report.csv")
    return report[(report["section"] == "cell") & (report["metric"] == "test_mse")]


@pytest.fixture(scope="module")
def entry_point_sweep(plugin):
    root = plugin["root"]
    sweep = root / "entry_points.yaml"
    sweep.write_text(SWEEP_ENTRY_POINTS.format(checkpoint=plugin["checkpoint"]))
    out = root / "out_entry_points"
    proc = launcher(["sweep", str(sweep), "--out", str(out)], pythonpath=plugin["site"], cwd=root)
    return proc, out


def independent_task():
    """The sine_waves task rebuilt here with numpy from the generator: 70/10/20, z-scored on train."""
    from launcher_plugin_example.data import sine_wave_values

    raw = sine_wave_values()
    n = len(raw)
    n_train, n_test = int(0.7 * n), int(0.2 * n)
    n_val = n - n_train - n_test
    mean, std = raw[:n_train].mean(axis=0), raw[:n_train].std(axis=0)
    scaled = (raw - mean) / std
    return scaled[:n_train], scaled[n_train + n_val - CONTEXT:]


def drift_test_mse(test: np.ndarray) -> float:
    """Random walk with drift on every stride-1 (context + horizon) window, each channel a sample."""
    windows = sliding_window_view(test, CONTEXT + HORIZON, axis=0)      # (n_windows, C, context + horizon)
    past, future = windows[..., :CONTEXT], windows[..., CONTEXT:]
    slope = (past[..., -1] - past[..., 0]) / (CONTEXT - 1)
    forecast = past[..., -1:] + slope[..., None] * np.arange(1, HORIZON + 1)
    return float(np.mean((forecast - future) ** 2))


@pytest.fixture(scope="module")
def expected_drift_mse(plugin):
    """The drift forecast's test MSE on the task the plugin's loader builds, computed here, not by the method."""
    sys.path.insert(0, str(plugin["plain"]))
    try:
        from launcher_plugin_example.data import sine_waves

        task = sine_waves(horizon=HORIZON, context=CONTEXT)
        train, test = independent_task()
    finally:
        sys.path.remove(str(plugin["plain"]))
        for name in [m for m in sys.modules if m == "launcher_plugin_example" or m.startswith("launcher_plugin_example.")]:
            del sys.modules[name]
    assert task.name == f"sine_waves-{HORIZON}" and (task.context, task.horizon) == (CONTEXT, HORIZON)
    assert (task.n_train, task.n_val, task.n_test) == (2800, 400, 800) and task.n_channels == 3
    np.testing.assert_allclose(task.train, train, rtol=0, atol=1e-12)
    np.testing.assert_allclose(task.test, test, rtol=0, atol=1e-12)
    return drift_test_mse(task.test)


def test_sweep_runs_the_plugin_task_method_and_adapter_by_registered_name(entry_point_sweep, expected_drift_mse):
    proc, out = entry_point_sweep
    assert proc.returncode == 0, proc.stderr[-4000:]
    cells = mse_cells(out)
    assert set(cells["row"]) == {f"sine_waves-{HORIZON}", f"ETTh1-{HORIZON}"}
    assert set(cells["column"]) == {"naive", "drift", "fm"}
    assert len(cells) == 6 and (cells["status"] == "ok").all()
    assert np.isfinite(cells["mean"]).all() and (cells["mean"] > 0).all()
    by = cells.set_index(["row", "column"])
    assert by.loc[(f"sine_waves-{HORIZON}", "drift"), "method"] == "drift"
    assert by.loc[(f"sine_waves-{HORIZON}", "fm"), "method"] == "finetune"
    drift = float(by.loc[(f"sine_waves-{HORIZON}", "drift"), "values"])
    assert drift == pytest.approx(expected_drift_mse, rel=1e-9)
    # the stand-in checkpoint is labelled as one in the report
    assert "stand-in" in (out / "report.md").read_text()


def test_same_classes_by_import_path_give_the_same_numbers(plugin, entry_point_sweep, expected_drift_mse):
    root = plugin["root"]
    sweep = root / "import_paths.yaml"
    sweep.write_text(SWEEP_IMPORT_PATHS.format(checkpoint=plugin["checkpoint"]))
    out = root / "out_import_paths"
    # only the plain source folder on the path: no installed metadata, so no entry points
    proc = launcher(["sweep", str(sweep), "--out", str(out)], pythonpath=plugin["plain"], cwd=root)
    assert proc.returncode == 0, proc.stderr[-4000:]
    cells = mse_cells(out)
    assert set(cells["row"]) == {f"sine_waves-{HORIZON}"} and set(cells["column"]) == {"drift", "fm"}
    assert np.isfinite(cells["mean"]).all() and (cells["status"] == "ok").all()
    drift = float(cells.set_index("column").loc["drift", "values"])
    assert drift == pytest.approx(expected_drift_mse, rel=1e-9)
    first = mse_cells(entry_point_sweep[1])
    first_drift = float(first.set_index(["row", "column"]).loc[(f"sine_waves-{HORIZON}", "drift"), "values"])
    assert drift == pytest.approx(first_drift, rel=1e-12)


def test_methods_command_lists_drift_as_a_plugin(plugin):
    help_text = launcher(["--help"], pythonpath=plugin["site"], cwd=plugin["root"]).stdout
    if "methods" not in help_text.split("positional arguments")[-1].split("options:")[0]:
        pytest.skip("the `python -m launcher methods` command (launcher/catalog.py) is not there yet")
    proc = launcher(["methods"], pythonpath=plugin["site"], cwd=plugin["root"])
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = [line for line in proc.stdout.splitlines() if line.startswith("drift ")]
    assert len(lines) == 1 and "plugin launcher_plugin_example.methods" in lines[0], proc.stdout
    assert "damping" in proc.stdout
