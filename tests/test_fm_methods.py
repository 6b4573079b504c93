"""The FM methods: `finetune` on tiny random-init stand-ins of each domain's FM, trained on real data
(ETTh1, GUE prom_300_tata, Brazilian coffee scenes) through the method's own run_segment; `zeroshot`
with the real Fracast-0; and one slow DeepSpeed ZeRO-3 trial on 2 CPU ranks (gloo).

The stand-ins are written on demand by the method (`stand_in: tiny`) into a cache folder shared by
the module's tests, exactly as a CPU sweep does.
"""
from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from launcher.job.trial import TrialJob, TrialSpec
from launcher.methods import get_method
from launcher.methods.fm_common import stand_in_folder
from launcher.methods.registry import method_class
from launcher.training.epoch_loop import final_weights
from models.fm.base import load_adapter
from tasks.timeseries import evaluate_forecaster, load_forecast_task
from tests.conftest import SHARED_DATA

# The machine's 2 cores are shared: more than one intra-op thread makes tiny models much slower.
torch.set_num_threads(1)

FINETUNE = {k: p.default for k, p in method_class("finetune").params.items()}
CHEAP = {"stand_in": "tiny", "lr": 3e-3, "warmup_epochs": 0, "epochs": 3, "batch_size": 16}
needs_shared = pytest.mark.skipif(not (SHARED_DATA / "genomics").is_dir() or not (SHARED_DATA / "satellite").is_dir(),
                                  reason=f"{SHARED_DATA} not present")


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("fm_cache")


@pytest.fixture(scope="module")
def etth1():
    return load_forecast_task("ETTh1", 24, context=96)


def finetune(task, cache: Path, folder: Path, until: int, **overrides):
    method = get_method("finetune")
    method.cache_dir, method.distributed = cache, None
    reported = []
    result = method.run_segment(task, {**FINETUNE, **CHEAP, **overrides}, folder, until,
                                lambda step, metrics: reported.append(metrics))
    return result, reported


def same_weights(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


# ------------------------------------------------------------------------------------------- forecasting
def test_finetune_patchtst_on_etth1_learns_and_resumes_exactly(etth1, cache, tmp_path):
    # The first 512 training windows, all of them every epoch: epoch losses then compare the same windows
    # (random subsets of all 8,640 differ in difficulty by more than three short epochs learn).
    first_windows = replace(etth1, train=etth1.train[: etth1.context + etth1.horizon + 511])
    settings = {"adapter": "patchtst", "batch_size": 32, "eval_stride": 8}
    straight, reported = finetune(first_windows, cache, tmp_path / "straight", 3, **settings)
    losses = [m["train_loss"] for m in reported]
    assert len(losses) == 3 and losses[0] > losses[1] > losses[2]
    assert straight.metrics["test_mse"] == straight.metrics["test_mse_at_best_val"]
    assert "best_val_mse" in straight.metrics and straight.metrics["n_trainable"] > 0
    assert any("random-init stand-in, not the pretrained FM" in note for note in straight.notes)
    assert straight.info["stand_in"] is True

    finetune(first_windows, cache, tmp_path / "resumed", 1, **settings)
    resumed, _ = finetune(first_windows, cache, tmp_path / "resumed", 3, **settings)
    assert same_weights(final_weights(tmp_path / "straight/checkpoints"), final_weights(tmp_path / "resumed/checkpoints"))
    assert resumed.metrics["test_mse"] == straight.metrics["test_mse"]


def test_head_only_trains_fewer_parameters_than_full(etth1, cache, tmp_path):
    # Counted here from a freshly loaded adapter, not through the method's own accounting.
    adapter = load_adapter("patchtst", stand_in_folder("patchtst", etth1, cache), _forecasting_spec(etth1))
    total = sum(p.numel() for p in adapter.parameters())
    head = sum(p.numel() for p in adapter.head.parameters())
    trainable_at_load = sum(p.numel() for p in adapter.parameters() if p.requires_grad)   # less the fixed sincos table
    counts = {}
    for layers in ("head", "full", "lora"):
        result, _ = finetune(etth1, cache, tmp_path / layers, 1, adapter="patchtst", train_layers=layers,
                             max_batches_per_epoch=1, eval_stride=64)
        counts[layers] = result.metrics["n_trainable"]
        assert result.n_parameters >= total           # LoRA adds its matrices to the model
    assert counts["head"] == head < counts["full"] == trainable_at_load
    assert head < counts["lora"] < counts["full"]


def _forecasting_spec(task):
    from models.fm.base import Forecasting

    return Forecasting(task.context, task.horizon)


def test_zeroshot_fracast_beats_naive_on_etth1():
    from models.naive import naive_forecast

    task = load_forecast_task("ETTh1", 24, context=512)
    method = get_method("zeroshot")
    result = method.run(task, {**{k: p.default for k, p in method_class("zeroshot").params.items()}, "eval_stride": 240},
                        lambda *a: None)
    naive = evaluate_forecaster(lambda x: naive_forecast(x, task.horizon), task.test, task.context, task.horizon,
                                window_stride=240)
    assert result.metrics["test_windows"] == naive["n_windows"]
    assert result.metrics["test_mse"] < naive["mse"]
    assert result.n_parameters == 85001 and result.metrics["n_trainable"] == 0
    assert any("leakage" in note for note in result.notes) and any("240th" in note for note in result.notes)


def test_zeroshot_refuses_a_checkpoint_whose_head_does_not_fit(etth1, tmp_path):
    from models.fm import tiny

    folder = tiny.write_tiny_checkpoint("patchtst", tmp_path / "h48", context_length=etth1.context, prediction_length=48)
    (folder / "README.txt").unlink()         # pose as a real checkpoint: a stand-in may be scored as it is
    params = {**{k: p.default for k, p in method_class("zeroshot").params.items()}, "adapter": "patchtst",
              "checkpoint": str(folder), "eval_stride": 64}
    with pytest.raises(ValueError, match="not zero-shot"):
        get_method("zeroshot").run(etth1, params, lambda *a: None)
    stand_in = get_method("zeroshot")
    stand_in.cache_dir = tmp_path
    result = stand_in.run(etth1, {**params, "checkpoint": None, "stand_in": "tiny"}, lambda *a: None)
    assert result.info["stand_in"] is True and any("random-init stand-in" in n for n in result.notes)


def test_finetune_without_a_checkpoint_says_where_to_get_one(etth1, tmp_path):
    with pytest.raises(ValueError, match="README"):
        finetune(etth1, tmp_path, tmp_path / "trial", 1, stand_in="none")


def test_objective_follows_the_task_domain():
    assert method_class("finetune").objective_for("forecasting") == ("best_val_mse", "min")
    assert method_class("finetune").objective_for("genomics") == ("best_val_score", "max")
    assert method_class("linear").objective_for("forecasting") == ("best_val_mse", "min")
    assert method_class("zeroshot").objective_for("forecasting") == (None, "min")


ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("name, cpu", [("timeseries", True), ("genomics-cpu", True), ("satellite-cpu", True),
                                       ("genomics", False), ("satellite", False)])
def test_sweep_files_carry_fm_rows(name, cpu):
    from launcher.engine.plan import plan_studies
    from launcher.spec.load import load_sweep

    if name.endswith("-cpu") and not SHARED_DATA.is_dir():
        pytest.skip(f"{SHARED_DATA} (the CPU sweep's data_root) not present")
    spec = load_sweep(ROOT / "sweeps" / f"{name}.yaml")
    row = next(m for m in spec.methods if m.name == "finetune")
    if cpu:      # offline from a fresh clone: the stand-in, written on demand
        assert row.params["stand_in"] == "tiny" and row.params["checkpoint"] is None
    else:        # a local folder of the public checkpoint, which the README says how to fetch
        folder = Path(row.params["checkpoint"])
        assert folder.parent == ROOT / "checkpoints" and row.params["stand_in"] == "none"
        assert f"--local-dir checkpoints/{folder.name}" in (ROOT / "README.md").read_text()
    studies = [s for s in plan_studies(spec) if s.method == "finetune"]
    domain = spec.tasks[0].domain
    assert studies and all((s.objective, s.mode) == method_class("finetune").objective_for(domain) for s in studies)


# ---------------------------------------------------------------------------------------- classification
@needs_shared
def test_finetune_nucleotide_transformer_on_gue_prom_300_tata(cache, tmp_path):
    from tasks.genomics import load_genomics_task

    task = load_genomics_task("prom_300_tata", data_root=SHARED_DATA, max_train=256)
    result, reported = finetune(task, cache, tmp_path / "nt", 3, max_batches_per_epoch=16, eval_stride=4)
    assert result.info["adapter"] == "nucleotide_transformer"        # the genomics default
    losses = [m["train_loss"] for m in reported]                     # all 256 sequences every epoch
    assert losses[0] > losses[1] > losses[2]
    assert {"best_val_score", "test_score", "test_score_last"} <= result.metrics.keys()


@needs_shared
def test_finetune_vit_on_coffee_scenes(cache, tmp_path):
    from tasks.satellite import load_satellite_task

    task = load_satellite_task("brazilian_coffee_scenes", data_root=SHARED_DATA, max_train=256,
                               cache_dir=tmp_path / "unpacked")
    result, reported = finetune(task, cache, tmp_path / "vit", 3, adapter="vit", max_batches_per_epoch=16,
                                eval_stride=4)
    losses = [m["train_loss"] for m in reported]
    assert losses[0] > losses[1] > losses[2]
    assert 0.0 <= result.metrics["test_score"] <= 1.0


# ------------------------------------------------------------------------------- DeepSpeed ZeRO-3, 2 ranks
@pytest.mark.slow
@needs_shared
def test_finetune_with_deepspeed_zero3_on_two_cpu_ranks(tmp_path):
    import submitit

    # GUE prom_300_tata capped at 256 sequences: every epoch sees all of them (128 per rank), so the
    # epoch losses are comparable.
    params = {**FINETUNE, **CHEAP, "max_batches_per_epoch": None, "eval_stride": 4}
    trial_dir = tmp_path / "sweep/trials/zero3"        # the stand-in goes to <sweep>/cache, as in a sweep
    executor = submitit.LocalExecutor(folder=str(tmp_path / "jobs/%j"))
    executor.update_parameters(timeout_min=10, tasks_per_node=2)
    spec = TrialSpec(trial_id="zero3", study="prom_300_tata/finetune", dataset="prom_300_tata", horizon=0, context=0,
                     method="finetune", params=params, seed=0, trial_dir=str(trial_dir), until_epoch=3,
                     data_root=str(SHARED_DATA), domain="genomics", task_options={"max_train": 256},
                     distributed={"strategy": "deepspeed", "zero_stage": 3, "ranks": 2})
    results = executor.submit(TrialJob(), spec).results()
    assert [r["rank"] for r in results] == [0, 1] and results[0]["metrics"]["world_size"] == 2
    # rank 0 alone writes the outbox (one line per epoch) and the result
    lines = [json.loads(x) for x in (trial_dir / "outbox.jsonl").read_text().splitlines()]
    assert [x["step"] for x in lines] == [1, 2, 3]
    losses = [x["metrics"]["train_loss"] for x in lines]
    assert losses[0] > losses[1] > losses[2]
    result = json.loads((trial_dir / "result-e3.json").read_text())
    assert result["n_parameters"] == results[0]["n_parameters"] >= result["metrics"]["n_trainable"] > 0
    assert not list(trial_dir.glob("error*.txt"))
    # the model really was partitioned by ZeRO-3: one model and one optimizer shard per rank
    shards = trial_dir / "checkpoints/epoch_000003/deepspeed"
    states = torch.load(next(shards.glob("*rank_1*model_states.pt")), map_location="cpu", weights_only=False)
    assert states["ds_config"]["zero_optimization"]["stage"] == 3
    assert len(list(shards.glob("*optim_states.pt"))) == 2
    weights = final_weights(trial_dir / "checkpoints")               # consolidated from the shards
    assert sum(w.numel() for k, w in weights.items() if "classifier" in k) > 0
