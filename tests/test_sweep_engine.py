"""The sweep engine through the real controller: ASHA promotion by segments, the failure policy,
the pause and resume, status from the journal, and bad search spaces refused before anything runs."""
import json

import pytest
from mlflow.tracking import MlflowClient

from launcher.__main__ import main
from launcher.engine.asha import Asha, AshaConfig
from launcher.engine.progress import read_status, render_status

SYNTHETIC = """
name: engine
out: {out}
tasks:
  - dataset: ETTh1
    horizons: [96]
methods:
  synthetic: {params}
search:
  trials: {trials}
  max_failure_rate: {rate}
  scheduler: {{type: asha, eta: 2, grace: 1, max_epochs: 8}}
executor: {{backend: inline, workers: 3}}
"""


def events(out):
    return [json.loads(line) for line in (out / "journal.jsonl").read_text().splitlines()]


def test_asha_decisions_in_the_journal_follow_the_rule(write_sweep, tmp_path):
    out = tmp_path / "out"
    assert main(["sweep", str(write_sweep(SYNTHETIC.format(out=out, params="{}", trials=16, rate=0.5)))]) == 0
    done = [e for e in events(out) if e["event"] == "segment_done"]
    # Replay the recorded values through a fresh ASHA: every decision must be the same.
    asha = Asha(AshaConfig(eta=2, grace=1, max_epochs=8, mode="min"))
    for e in done:
        assert asha.report(e["trial_id"], e["until_epoch"], e["value"]) == e["decision"]
    # promotions are real: some trials went past the first rung, some were stopped there
    reached = {}
    for e in done:
        reached[e["trial_id"]] = max(reached.get(e["trial_id"], 0), e["until_epoch"])
    assert 8 in reached.values() and 1 in reached.values()
    # a promoted trial resumed from its checkpoint: epochs 1..8 each reported once
    best = max(reached, key=reached.get)
    lines = [json.loads(s) for s in (out / "trials" / best / "outbox.jsonl").read_text().splitlines()]
    assert [line["step"] for line in lines] == list(range(1, 9))
    # the report shows the validation-selected trial of the study
    client = MlflowClient(f"sqlite:///{out / 'mlflow.db'}")
    exp = client.get_experiment_by_name("engine")
    selected = client.search_runs([exp.experiment_id], "tags.`launcher.selected` = 'true'")
    assert len(selected) == 1 and selected[0].data.tags["launcher.asha"] == "complete"


def test_failures_are_told_and_too_many_pause_the_sweep_resumably(write_sweep, tmp_path, capsys):
    out = tmp_path / "out"
    params = "{fail_above: 0.5}"     # roughly half of the configurations raise
    sweep = write_sweep(SYNTHETIC.format(out=out, params=params, trials=12, rate=0.2))
    assert main(["sweep", str(sweep)]) == 3                       # paused
    err = capsys.readouterr().err
    assert "PAUSED" in err and f"launcher resume {out}" in err
    log = events(out)
    assert log[-1]["event"] == "paused"
    failed = [e for e in log if e["event"] == "trial_failed"]
    assert failed and all(not e["retry"] and e["loss"] is not None for e in failed)  # told as failures
    assert "synthetic failure" in (out / "trials" / failed[0]["trial_id"] / "error.txt").read_text()
    asked_before = sum(e["event"] == "asked" for e in log)
    assert asked_before < 12                                      # it stopped asking

    status = render_status(read_status(out))
    assert "PAUSED" in status

    # raising the cap is allowed on resume and the sweep finishes the remaining budget
    sweep.write_text(sweep.read_text().replace("max_failure_rate: 0.2", "max_failure_rate: 0.9"))
    assert main(["sweep", str(sweep)]) == 1                       # finished, some trials failed
    log = events(out)
    assert sum(e["event"] == "asked" for e in log) == 12
    assert log[-1]["event"] == "sweep_finished"
    ended = {e["trial_id"] for e in log if e["event"] == "trial_failed"} | \
            {e["trial_id"] for e in log if e["event"] == "segment_done" and e["decision"] != "continue"}
    assert len(ended) == 12


def test_status_reads_the_journal_alone(write_sweep, tmp_path):
    out = tmp_path / "out"
    assert main(["sweep", str(write_sweep(SYNTHETIC.format(out=out, params="{}", trials=6, rate=0.5)))]) == 0
    (out / "mlflow.db").unlink()                                  # no tracking store needed
    status = read_status(out)
    assert status.finished and status.totals()["done"] == 6
    recorded = [e["value"] for e in events(out) if e["event"] == "segment_done"]
    assert status.studies["ETTh1-96/synthetic"].best == min(recorded)
    assert sum(status.rungs.values()) == len(recorded)


@pytest.mark.parametrize("space, message", [
    ("{lr: {log: [0, 0.1]}}", "log"),
    ("{lr: {float: [0.1, 0.01]}}", "lower"),
    ("{batch_size: {choice: []}}", "empty"),
])
def test_bad_space_exits_2_with_file_line_and_writes_nothing(write_sweep, tmp_path, capsys, space, message):
    out = tmp_path / "out"
    sweep = write_sweep(f"name: bad\nout: {out}\ntasks:\n  - dataset: ETTh1\nmethods:\n"
                        f"  dlinear:\n    space: {space}\n")
    assert main(["sweep", str(sweep)]) == 2
    err = capsys.readouterr().err
    assert f"{sweep}:7:" in err and message in err.lower()
    assert not out.exists()


def test_unknown_optimizer_exits_2(write_sweep, tmp_path, capsys):
    sweep = write_sweep(f"name: bad\nout: {tmp_path / 'o'}\ntasks:\n  - dataset: ETTh1\nmethods:\n  dlinear: {{}}\n"
                        "search:\n  optimizer: TwoPointDE\n")
    assert main(["sweep", str(sweep)]) == 2
    err = capsys.readouterr().err
    assert f"{sweep}:8:" in err and "TwoPointsDE" in err


FINAL = """
name: final
out: {out}
seeds: [0, 1, 2]
tasks:
  - dataset: ETTh1
    horizons: [96]
methods:
  synthetic: {{}}
search:
  trials: 6
  final_epochs: 5
  scheduler: {{type: asha, eta: 2, grace: 1, max_epochs: 4}}
executor: {{backend: inline, workers: 2}}
"""


def test_final_stage_retrains_the_best_configuration_once_per_seed(write_sweep, tmp_path):
    out = tmp_path / "out"
    assert main(["sweep", str(write_sweep(FINAL.format(out=out)))]) == 0
    journal = events(out)
    finals = [e for e in journal if e["event"] == "final_asked"]
    last_search = max(i for i, e in enumerate(journal) if e["event"] == "segment_done" and "__final" not in e["trial_id"])
    first_final = min(i for i, e in enumerate(journal) if e["event"] == "final_asked")
    assert first_final > last_search, "the retrain starts only once the search has ended"
    # the best search trial by fidelity loss: highest rung reached, then rank there (recomputed here)
    done = [e for e in journal if e["event"] == "segment_done" and "__final" not in e["trial_id"]]
    top = max(e["until_epoch"] for e in done)
    best = min((e for e in done if e["until_epoch"] == top), key=lambda e: e["value"])["trial_id"]
    asked = {e["trial_id"]: e["params"] for e in journal if e["event"] == "asked"}
    assert [e["seed"] for e in finals] == [0, 1, 2] and {e["best"] for e in finals} == {best}
    for e in finals:   # same configuration, its own seed
        assert {k: v for k, v in e["params"].items() if k != "seed"} == {k: v for k, v in asked[best].items() if k != "seed"}
        assert e["params"]["seed"] == e["seed"]
    # each retrain ran all 5 epochs in one segment and nothing was told for it
    final_done = [e for e in journal if e["event"] == "segment_done" and "__final" in e["trial_id"]]
    assert sorted(e["until_epoch"] for e in final_done) == [5, 5, 5]
    assert all(e["loss"] is None for e in final_done)
    # the retrains, not the search trial, are the study's reported result
    client = MlflowClient(f"sqlite:///{out / 'mlflow.db'}")
    exp = client.get_experiment_by_name("final")
    selected = client.search_runs([exp.experiment_id], "tags.`launcher.selected` = 'true'")
    assert sorted(r.data.tags["launcher.trial"] for r in selected) == sorted(e["trial_id"] for e in finals)
    assert {r.data.tags["launcher.final"] for r in selected} == {"true"}

