"""Named method rows: several variants of one method in one sweep, each its own study, MLflow label and
report column (`methods: {wrn: {method: backbone, arch: wrn}, unet: {method: backbone, arch: unet}}`),
and the `distributed` strategies a method declares."""
from __future__ import annotations

import csv
import json
import random
import subprocess
import sys
from pathlib import Path

import pytest

from launcher.engine.plan import plan_studies
from launcher.errors import SpecError
from launcher.spec.load import load_sweep, record_as_sweep_file, spec_to_dict

ROOT = Path(__file__).resolve().parents[1]


def write_gue_task(root: Path, name: str = "prom_core_tata", seed: int = 0) -> Path:
    """A tiny GUE-layout task (train/dev/test CSVs) whose positives carry a TATA box."""
    folder = root / "GUE" / "prom" / name
    folder.mkdir(parents=True)
    rng = random.Random(seed)

    def sequence(label: int) -> str:
        bases = [rng.choice("ACGT") for _ in range(70)]
        if label:
            bases[30:36] = list("TATAAA")
        return "".join(bases)

    for split, n in (("train", 48), ("dev", 16), ("test", 16)):
        rows = ["sequence,label"] + [f"{sequence(i % 2)},{i % 2}" for i in range(n)]
        (folder / f"{split}.csv").write_text("\n".join(rows) + "\n")
    return folder


ROWS = """name: rows
out: {out}
data_root: {data}
seeds: [0]
tasks:
  - dataset: prom_core_tata
methods:
  wrn: {{method: backbone, arch: wrn, width: 4, epochs: 1, batch_size: 16, max_batches_per_epoch: 2, space: {{}}}}
  unet: {{method: backbone, arch: unet, width: 4, epochs: 1, batch_size: 16, max_batches_per_epoch: 2, space: {{}}}}
executor: {{backend: inline}}
search: {{trials: 1, scheduler: {{type: none, max_epochs: 1}}}}
"""


def test_named_rows_are_their_own_studies_with_one_implementation(tmp_path):
    write_gue_task(tmp_path / "data")
    path = tmp_path / "rows.yaml"
    path.write_text(ROWS.format(out=tmp_path / "out", data=tmp_path / "data"))
    spec = load_sweep(path)
    assert [(m.name, m.method, m.params["arch"]) for m in spec.methods] == [("wrn", "backbone", "wrn"),
                                                                          ("unet", "backbone", "unet")]
    studies = plan_studies(spec)
    assert [(s.name, s.column, s.implementation, s.kind) for s in studies] == [
        ("prom_core_tata/wrn", "wrn", "backbone", "supervised"),
        ("prom_core_tata/unet", "unet", "backbone", "supervised")]
    # the record a resumed sweep reloads keeps what each row runs
    record = spec_to_dict(spec)
    again = record_as_sweep_file(record, tmp_path / "out")
    assert again["methods"]["wrn"]["method"] == "backbone" and again["methods"]["unet"]["arch"] == "unet"
    reloaded = tmp_path / "again.yaml"
    import yaml

    reloaded.write_text(yaml.safe_dump(again, sort_keys=False))
    assert [(m.name, m.method, m.params) for m in load_sweep(reloaded).methods] == \
        [(m.name, m.method, m.params) for m in spec.methods]


def test_plain_form_still_names_the_method(tmp_path):
    path = tmp_path / "plain.yaml"
    path.write_text(f"name: plain\nout: {tmp_path / 'out'}\ntasks: [{{dataset: ETTh1, horizons: [24]}}]\n"
                    "methods:\n  naive: {}\n  drifty: {method: seasonal_naive, period: 24}\n")
    spec = load_sweep(path)
    assert [(m.name, m.method) for m in spec.methods] == [("naive", "naive"), ("drifty", "seasonal_naive")]
    # a row's check that depends on what runs follows the implementation, not the row's name
    path.write_text(path.read_text().replace("period: 24", "period: 5000"))
    with pytest.raises(SpecError) as err:
        load_sweep(path)
    assert "methods.drifty.period" in str(err.value) and f"{path}:6:" in str(err.value)


@pytest.mark.parametrize("row, wanted", [
    ("autoar: {distributed: {strategy: ddp, ranks: 2}}", "method autoar does not support distributed training"),
    ("dlinear: {distributed: {strategy: deepspeed, ranks: 2}}", "method dlinear does not support"),
    ("synthetic: {distributed: {ranks: 2}}", "with ranks > 1"),
    ("mine: {method: naiive}", "unknown method 'naiive'"),
    ("mine: {method: 3}", "methods.mine.method"),
    ("bad/name: {method: naive}", "not a valid method row name"),
])
def test_rows_that_cannot_run_are_spec_errors_at_their_line(tmp_path, row, wanted):
    path = tmp_path / "bad.yaml"
    path.write_text(f"name: bad\nout: {tmp_path / 'out'}\ntasks: [{{dataset: ETTh1, horizons: [24]}}]\n"
                    f"methods:\n  naive: {{}}\n  {row}\n")
    done = subprocess.run([sys.executable, "-m", "launcher", "sweep", str(path)], cwd=ROOT, capture_output=True,
                          text=True)
    assert done.returncode == 2, done.stderr
    assert wanted in done.stderr and f"{path}:6:" in done.stderr, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr
    assert not (tmp_path / "out").exists()


def test_a_strategy_the_method_declares_is_accepted(tmp_path):
    path = tmp_path / "ok.yaml"
    path.write_text(f"name: ok\nout: {tmp_path / 'out'}\ntasks: [{{dataset: ETTh1, horizons: [24]}}]\n"
                    "methods:\n  linear: {distributed: {strategy: ddp, ranks: 2}}\n")
    assert load_sweep(path).methods[0].distributed == {"strategy": "ddp", "zero_stage": 0, "ranks": 2}


@pytest.mark.slow
def test_wrn_and_unet_rows_of_backbone_run_in_one_sweep_and_report_two_columns(tmp_path):
    write_gue_task(tmp_path / "data")
    path = tmp_path / "rows.yaml"
    out = tmp_path / "out"
    path.write_text(ROWS.format(out=out, data=tmp_path / "data"))
    done = subprocess.run([sys.executable, "-m", "launcher", "sweep", str(path)], cwd=ROOT, capture_output=True,
                          text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    cells = [r for r in csv.DictReader((out / "report.csv").open())
             if r["section"] == "cell" and r["metric"] == "test_score"]
    assert sorted((r["row"], r["column"], r["method"]) for r in cells) == [
        ("prom_core_tata", "unet", "backbone"), ("prom_core_tata", "wrn", "backbone")]
    assert all(r["status"] == "ok" and 0.0 <= float(r["mean"]) <= 1.0 for r in cells), cells
    # each column ran its own architecture (the trial results record what ran)
    archs: dict[str, set] = {}
    for result in out.glob("trials/*/result*.json"):
        record = json.loads(result.read_text())["spec"]
        archs.setdefault(record["study"].split("/")[1], set()).add((record["method"], record["params"]["arch"]))
    assert archs == {"wrn": {("backbone", "wrn")}, "unet": {("backbone", "unet")}}
