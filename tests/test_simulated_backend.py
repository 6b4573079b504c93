"""The simulated backend (a FAKE cluster for benchmarks; nothing trains) drives the real controller,
journal, ASHA, nevergrad and MLflow store: a sweep on it completes with the decisions a real backend's
would take, faults land where they should (infrastructure retried, out-of-memory told as a failure),
slot occupancy is measured on its clock, and the spec checks its options at their line."""
import json
import math
import sqlite3
from pathlib import Path

import pytest

from launcher.__main__ import main
from launcher.backends.simulated import Landscape, SimulatedExecutor, Simulation
from launcher.job.trial import TrialSpec
from launcher.methods.synthetic import curve

SWEEP = """
name: sim
out: {out}
seeds: [0]
tasks:
  - dataset: ETTh1
    horizons: [96]
methods:
  synthetic: {{}}
search:
  trials: {trials}
  scheduler: {{type: asha, eta: 3, grace: 1, max_epochs: 9}}
executor:
  backend: simulated
  workers: {workers}
  simulated: {simulated}
"""


def events(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "journal.jsonl").read_text().splitlines()]


def spec(tmp_path: Path, trial_id: str, until: int, **params) -> TrialSpec:
    return TrialSpec(trial_id=trial_id, study="s", dataset="ETTh1", horizon=96, context=96, method="synthetic",
                     params={"x": 0.3, "y": 0.7, **params}, seed=0, trial_dir=str(tmp_path / trial_id),
                     until_epoch=until)


def test_a_sweep_on_the_simulated_cluster_ends_like_a_real_one(write_sweep, tmp_path):
    out = tmp_path / "out"
    path = write_sweep(SWEEP.format(out=out, trials=12, workers=4, simulated="{epoch_seconds: 3600, jitter: 0.5}"))
    assert main(["sweep", str(path)]) == 0
    log = events(out)
    done = [e for e in log if e["event"] == "segment_done"]
    ended = {e["trial_id"] for e in done if e["decision"] != "continue"}
    assert len({e["trial_id"] for e in log if e["event"] == "asked"}) == 12 == len(ended)
    # Every segment's result is the synthetic curve of its configuration at its last epoch (the value
    # the controller told ASHA), though a simulated hour per epoch passed in well under a minute.
    asked = {e["trial_id"]: e["params"] for e in log if e["event"] == "asked"}
    for e in done:
        p, until = asked[e["trial_id"]], e["until_epoch"]
        best = min(curve(p["x"], p["y"], 0, epoch) for epoch in range(1, until + 1))
        assert math.isclose(e["metrics"]["best_val_loss"], best, rel_tol=1e-12)
        assert e["metrics"]["wall_seconds"] > 0
    # ASHA promoted some trials past the first rung and stopped others there
    assert {e["until_epoch"] for e in done} >= {1, 3}
    # MLflow holds each trial's curve, one point per epoch
    with sqlite3.connect(out / "mlflow.db") as db:
        assert db.execute("SELECT COUNT(*) FROM (SELECT run_uuid, key, step FROM metrics GROUP BY run_uuid, key, step "
                          "HAVING COUNT(*) > 1)").fetchone()[0] == 0
        epochs = db.execute("SELECT COUNT(*) FROM metrics WHERE key = 'val_loss'").fetchone()[0]
    assert epochs == sum(e["until_epoch"] for e in done if e["decision"] != "continue")


def test_faults_preemption_is_retried_and_out_of_memory_is_a_trial_failure(write_sweep, tmp_path):
    out = tmp_path / "out"
    simulated = "{epoch_seconds: 60, preemption: 0.25, node_failure: 0.1, out_of_memory: 0.08, seed: 3}"
    path = write_sweep(SWEEP.format(out=out, trials=20, workers=5, simulated=simulated))
    main(["sweep", str(path)])      # may pause on the failure rate: the journal says what happened
    log = events(out)
    failed = [e for e in log if e["event"] == "trial_failed"]
    retried = [e for e in failed if e["retry"]]
    told = [e for e in failed if not e["retry"]]
    assert retried and all("preempted" in e["error"] or "node_fail" in e["error"] for e in retried)
    assert told and all("out of memory" in e["error"] for e in told)
    assert all(e["loss"] is not None for e in told)          # told to the optimizer as the worst loss
    # a retried segment resumes from the checkpoint the preempted job left: the epochs it had reached
    # are not reported twice
    for outbox in (out / "trials").glob("*/outbox.jsonl"):
        steps = [json.loads(line)["step"] for line in outbox.read_text().splitlines()]
        assert steps == sorted(set(steps))


def test_the_same_simulation_fails_the_same_way(tmp_path):
    def outcomes(folder: Path) -> list:
        executor = SimulatedExecutor(folder, Simulation(preemption=0.3, out_of_memory=0.2, seed=7), workers=4)
        handles = [executor.submit(spec(folder, f"t{i}", 3)) for i in range(30)]
        ended = []
        while len(ended) < len(handles):
            ended += executor.poll([h for h in handles if h not in ended])
        return [(h.trial_id, executor.outcome(h).state) for h in handles]

    first, second = outcomes(tmp_path / "a"), outcomes(tmp_path / "b")
    assert first == second
    assert {state for _, state in first} == {None, "preempted", "failed"}


def test_occupancy_counts_controller_latency_not_waits_for_work(tmp_path):
    executor = SimulatedExecutor(tmp_path, Simulation(epoch_seconds=1000.0), workers=2)
    a = executor.submit(spec(tmp_path, "a", 1))
    # one slot stays free and the controller has nothing for it: the skipped wait is not idleness
    assert executor.poll([a]) == [a]
    assert executor.occupancy() == pytest.approx(1.0, abs=1e-3)
    # now the controller takes (real) time before refilling: that is idleness
    b = executor.submit(spec(tmp_path, "b", 1))
    executor.poll([b])
    executor.clock.skipped += 1000.0        # stands for 1,000 s of controller work with both slots free
    assert executor.occupancy() == pytest.approx(2000 / 4000, abs=1e-3)


def test_curves_answer_from_the_nearest_configuration(tmp_path):
    table = {"grid": {"lr": [1e-4, 1e-2], "batch_size": [16, 64]},
             "curves": [{"lr": lr, "batch_size": bs, "val_mse": [lr * bs, lr * bs / 2], "seconds": 2.0 if bs == 64 else 1.0}
                        for lr in (1e-4, 1e-2) for bs in (16, 64)]}
    path = tmp_path / "curves.json"
    path.write_text(json.dumps(table))
    landscape = Landscape(str(path))
    assert landscape.metrics({"lr": 2e-4, "batch_size": 60}, 0, 2, math.inf) == {"val_mse": 1e-4 * 64 / 2}
    assert landscape.metrics({"lr": 5e-3, "batch_size": 16}, 0, 9, math.inf) == {"val_mse": 1e-2 * 16 / 2}
    assert landscape.speed({"lr": 1e-2, "batch_size": 64}) == pytest.approx(2.0 / 1.5)


@pytest.mark.parametrize("executor, message", [
    ("{backend: local, simulated: {epoch_seconds: 1}}", "applies only to `backend: simulated`"),
    ("{backend: simulated, simulated: {preemption: 1.5}}", "must be between 0 and 1"),
    ("{backend: simulated, simulated: {preemption: 0.6, out_of_memory: 0.6}}", "add up to more than 1"),
    ("{backend: simulated, simulated: {epoch_secs: 1}}", "epoch_seconds"),
    ("{backend: simulated, simulated: {curves: missing.json}}", "missing.json"),
])
def test_bad_simulation_options_are_spec_errors(write_sweep, tmp_path, capsys, executor, message):
    text = SWEEP.format(out=tmp_path / "out", trials=2, workers=1, simulated="{}").split("executor:")[0]
    path = write_sweep(text + f"executor: {executor}\n")
    assert main(["sweep", str(path)]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()
