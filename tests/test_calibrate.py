"""`sweep --dry-run --calibrate`: one short segment per (task, method) on this machine, timed, used as that
study's epoch time; progress on stderr; nothing written in the sweep's folder (nor left in the temp folder);
a measurement that fails falls back and says why; one-off study work (the DASH search) is left out."""
from __future__ import annotations

import tempfile
import time

import pytest

from launcher.__main__ import main
from launcher.engine import calibrate
from launcher.engine.plan import plan_studies
from launcher.spec.load import load_sweep

TINY = """
name: tiny
out: {out}
tasks:
  - dataset: ETTh1
    horizons: [96]
methods:
  naive: {{}}
  linear:
    max_windows_per_epoch: 256
    epoch_minutes: 7
search:
  trials: 4
  scheduler: {{type: asha, eta: 2, grace: 1, max_epochs: 4}}
executor:
  backend: local
  workers: 2
"""


def _table(text: str) -> dict[str, tuple[int, float, str]]:
    rows = text.split("expected epochs per study")[1].split("\n\n")[0].splitlines()[1:]
    out = {}
    for line in rows:
        name, epochs = line.split()[:2]
        seconds, source = line.split(")", 1)[1].split("s/epoch (")
        out[name] = (int(epochs), float(seconds), source[:-1])
    return out


@pytest.fixture
def scratch(tmp_path_factory, monkeypatch):
    """The temporary folder calibration uses, where the test can see that it was emptied."""
    folder = tmp_path_factory.mktemp("scratch")
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


def _left_behind(scratch):
    """What calibration left in the temp folder (torch's own caches, such as torchinductor_<user>, are not ours)."""
    return [p.name for p in scratch.iterdir() if p.name.startswith("launcher-calibrate-")]


def test_calibrate_measures_each_study_and_writes_nothing(tmp_path, monkeypatch, capsys, scratch):
    monkeypatch.chdir(tmp_path)
    sweep = tmp_path / "sweep.yaml"
    sweep.write_text(TINY.format(out=tmp_path / "out"))
    before = sorted(tmp_path.rglob("*"))
    folders = []
    measure = calibrate.measure
    monkeypatch.setattr(calibrate, "measure", lambda spec, plan, folder: folders.append(folder) or measure(spec, plan, folder))
    assert main(["sweep", str(sweep), "--dry-run", "--calibrate"]) == 0
    captured = capsys.readouterr()
    # nothing in the sweep's folder (not even the folder), no MLflow store, nothing left in the temp folder
    assert sorted(tmp_path.rglob("*")) == before and not (tmp_path / "out").exists()
    assert len(folders) == 2 and all(f.parent == scratch and not f.exists() for f in folders)
    assert _left_behind(scratch) == []
    # progress on stderr, one line per (task, method) and its measurement
    assert "[1/2] ETTh1-96/naive: one run ..." in captured.err
    assert "[2/2] ETTh1-96/linear: one epoch ..." in captured.err
    measured = [float(line.split()[0]) for line in captured.err.splitlines() if line.strip().endswith(("per run", "per epoch"))]
    assert len(measured) == 2 and all(s > 0 for s in measured)
    table = _table(captured.out)
    assert table["ETTh1-96/naive"][2] == "calibrated"
    # the measurement wins over the row's epoch_minutes (7 min = 420 s), and says so
    assert table["ETTh1-96/linear"][2] == "calibrated; the sweep file's 7 min not used"
    assert [table["ETTh1-96/naive"][1], table["ETTh1-96/linear"][1]] == pytest.approx(measured, abs=0.006)
    assert table["ETTh1-96/linear"][1] < 420
    # the expected time is the printed epochs x the measured seconds
    total = float(captured.out.split("trial time expected: ")[1].split("(")[1].split()[0])
    recomputed = sum(epochs * seconds for epochs, seconds, _ in table.values())
    assert total == pytest.approx(recomputed, abs=0.5 * sum(s for _, s, _ in table.values()) + 1)
    assert "calibration measured THIS machine" in captured.out and "GPUs differs" in captured.out


def test_a_failed_measurement_falls_back_and_says_why(tmp_path, monkeypatch, capsys, scratch):
    for var in ("LAUNCHER_DATA", "LAUNCHER_DATA_ROOT"):
        monkeypatch.delenv(var, raising=False)
    sweep = tmp_path / "sweep.yaml"
    sweep.write_text(f"name: nodata\nout: {tmp_path / 'out'}\ntasks:\n  - dataset: H3\nmethods:\n"
                     "  backbone: {epoch_minutes: 2}\n  wrn: {method: backbone, arch: wrn}\n"
                     "executor: {backend: slurm, slurm: {gpus_per_node: 1}}\n")
    assert main(["sweep", str(sweep), "--dry-run", "--calibrate", "--epoch-minutes", "3"]) == 0
    captured = capsys.readouterr()
    assert captured.err.count("failed (") == 2
    table = _table(captured.out)
    assert table["H3/backbone"][1] == 120.0 and table["H3/backbone"][2].startswith(
        "epoch_minutes in the sweep file; calibration failed: ")
    assert table["H3/wrn"][1] == 180.0 and table["H3/wrn"][2].startswith("--epoch-minutes; calibration failed: ")
    assert "H3" in table["H3/wrn"][2]
    # GPU-hours from the fallbacks: each study's epochs x its own minutes x 1 GPU
    expected = float(captured.out.split("GPU-hours expected: ")[1].split()[0])
    assert expected == pytest.approx((table["H3/backbone"][0] * 2 + table["H3/wrn"][0] * 3) / 60, abs=0.1)
    assert not (tmp_path / "out").exists() and _left_behind(scratch) == []


def test_one_off_study_work_is_shrunk_and_left_out(tmp_path, monkeypatch):
    """DASHA's first segment runs the DASH search, which the dry run counts on its own (study_overhead_epochs):
    the measurement asks for the smallest search and subtracts the seconds it reports."""
    import launcher.job.trial as trial_module

    sweep = tmp_path / "sweep.yaml"
    sweep.write_text(f"name: d\nout: {tmp_path / 'out'}\ntasks:\n  - dataset: H3\nmethods:\n  dasha: {{}}\n"
                     "executor: {backend: slurm, slurm: {cpus_per_task: 64}}\n")
    spec = load_sweep(sweep)
    plan = plan_studies(spec)[0]
    seen = []

    def fake_run_trial(trial_spec):
        seen.append(trial_spec)
        time.sleep(0.3)
        return {"metrics": {"search_seconds": 0.25, "epoch": 1}}

    monkeypatch.setattr(trial_module, "run_trial", fake_run_trial)
    monkeypatch.setattr(calibrate, "_import_first", lambda method: None)
    seconds, note = calibrate.measure(spec, plan, tmp_path / "scratch")
    assert 0.04 <= seconds < 0.25            # 0.3 s wall less 0.25 s of search
    assert "0.2 s of one-off study work left out" in note
    (trial_spec,) = seen
    assert trial_spec.until_epoch == 1 and trial_spec.params["search_epochs"] == 1
    assert trial_spec.params["search_batches_per_epoch"] == 1
    assert trial_spec.trial_dir.startswith(str(tmp_path / "scratch"))
    assert trial_spec.distributed is None and 1 <= trial_spec.threads <= 64


def test_precedence_measured_then_the_rows_epoch_minutes_then_the_command_line(tmp_path):
    sweep = tmp_path / "sweep.yaml"
    sweep.write_text(TINY.format(out=tmp_path / "out"))
    spec = load_sweep(sweep)
    plans = plan_studies(spec)
    plain = calibrate.epoch_times(spec, plans, 4.0)
    assert (plain["ETTh1-96/naive"].minutes, plain["ETTh1-96/naive"].source) == (4.0, calibrate.COMMAND_LINE)
    assert (plain["ETTh1-96/linear"].minutes, plain["ETTh1-96/linear"].source) == (7.0, calibrate.SWEEP_FILE)
    measured = {("ETTh1-96", "linear"): calibrate.Measurement(30.0, "epoch"),
                ("ETTh1-96", "naive"): calibrate.Measurement(None, "run", error="OSError: no")}
    got = calibrate.epoch_times(spec, plans, 4.0, measured)
    assert (got["ETTh1-96/linear"].minutes, got["ETTh1-96/linear"].source) == (0.5, calibrate.CALIBRATED)
    assert (got["ETTh1-96/naive"].minutes, got["ETTh1-96/naive"].source) == (4.0, calibrate.COMMAND_LINE)
    assert got["ETTh1-96/naive"].note == "calibration failed: OSError: no"
