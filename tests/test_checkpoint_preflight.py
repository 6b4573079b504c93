"""An FM row whose checkpoint folder is missing or incomplete is found before anything runs: `sweep` stops
with one message naming the folder and the exact fetch command (exit 2, nothing written); `--dry-run`
warns and still plans. A complete folder passes."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

SWEEP = """name: ckpt
out: {out}
tasks:
  - dataset: ETTh1
    horizons: [24]
    context: 96
methods:
  naive: {{}}
  finetune: {{adapter: patchtst, checkpoint: {checkpoint}, epochs: 1, space: {{}}}}
executor: {{backend: inline}}
"""


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "launcher", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)


def write(tmp_path: Path, checkpoint: Path) -> Path:
    path = tmp_path / "sweep.yaml"
    path.write_text(SWEEP.format(out=tmp_path / "out", checkpoint=checkpoint))
    return path


def test_a_missing_checkpoint_stops_the_sweep_before_anything_is_written(tmp_path):
    folder = tmp_path / "checkpoints" / "patchtst"
    done = run("sweep", str(write(tmp_path, folder)))
    assert done.returncode == 2, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr
    assert "methods.finetune (forecasting)" in done.stderr and str(folder) in done.stderr
    assert f"--local-dir {folder}" in done.stderr and "hf download" in done.stderr
    assert not (tmp_path / "out").exists()


def test_an_incomplete_checkpoint_is_named_and_a_dry_run_only_warns(tmp_path):
    folder = tmp_path / "patchtst"
    folder.mkdir()
    (folder / "config.json").write_text('{"model_type": "patchtst"}')     # no weights
    path = write(tmp_path, folder)
    done = run("sweep", str(path))
    assert done.returncode == 2 and "weights" in done.stderr.lower() and str(folder) in done.stderr, done.stderr
    dry = run("sweep", str(path), "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert dry.stdout.startswith("warning: ") and str(folder) in dry.stdout and "studies:" in dry.stdout
    assert not (tmp_path / "out").exists()


def test_a_complete_checkpoint_passes_the_check(tmp_path):
    from launcher.engine.preflight import check_method_rows
    from launcher.spec.load import load_sweep
    from models.fm.tiny import write_tiny_checkpoint

    folder = write_tiny_checkpoint("patchtst", tmp_path / "patchtst", context_length=96, prediction_length=24)
    check_method_rows(load_sweep(write(tmp_path, folder)))      # raises SpecError when a problem is found
