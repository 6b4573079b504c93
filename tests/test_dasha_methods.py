"""`backbone` and `dasha` methods (launcher/methods/backbone.py, dasha.py) on tiny data: learning, exact
resume, the DASH search cache and its lock, final retrains from saved initial weights, validation-selected
test scores, and the sweep files that use them."""
import json
import multiprocessing
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from launcher.methods import get_method
from launcher.methods.backbone import INIT_WEIGHTS
from launcher.methods.conv_backbones import lr_schedule, resolve_backbone
from launcher.methods.dasha import PATTERN_FILE, cached_search
from launcher.methods.registry import method_class
from launcher.spec.load import load_sweep
from launcher.training.epoch_loop import final_weights
from tasks.classification import ClassificationTask, DatasetError

ROOT = Path(__file__).resolve().parents[1]
torch.set_num_threads(1)


# ------------------------------------------------------------------------------------------- tiny tasks
def motif_task(n_train=256, n_eval=96, length=40, seed=0) -> ClassificationTask:
    """One-hot (5, L) sequences; label 1 when the motif TATAAA occurs (planted in half of them)."""
    rng = np.random.default_rng(seed)

    def split(n):
        bases = rng.integers(0, 4, size=(n, length))
        labels = rng.integers(0, 2, size=n)
        for i in np.flatnonzero(labels):
            start = rng.integers(0, length - 6)
            bases[i, start:start + 6] = [3, 0, 3, 0, 0, 0]      # T A T A A A over (A, C, G, T)
        x = np.zeros((n, 5, length), dtype=np.float32)
        x[np.arange(n)[:, None], bases, np.arange(length)[None, :]] = 1.0
        return x, labels.astype(np.int64)

    (xt, yt), (xv, yv), (xs, ys) = split(n_train), split(n_eval), split(n_eval)
    return ClassificationTask("toy_motif", "genomics", xt, yt, xv, yv, xs, ys, n_classes=2, metric="mcc")


def image_task(n=48, size=16, seed=0) -> ClassificationTask:
    """3x16x16 images; label 1 when the first channel's mean is shifted up."""
    rng = np.random.default_rng(seed)

    def split(m):
        y = rng.integers(0, 2, size=m)
        x = rng.normal(size=(m, 3, size, size)).astype(np.float32)
        x[:, 0] += y[:, None, None] * 1.5
        return x, y.astype(np.int64)

    (xt, yt), (xv, yv), (xs, ys) = split(n), split(n // 2), split(n // 2)
    return ClassificationTask("toy_images", "satellite", xt, yt, xv, yv, xs, ys, n_classes=2, metric="accuracy")


def params_of(name: str, **overrides) -> dict:
    params = {k: p.default for k, p in method_class(name).params.items()}
    params.update(overrides)
    return params


GENOMICS_SMALL = dict(width=8, batch_size=32, lr=0.05, epochs=4)
DASH_SMALL = dict(search_epochs=1, search_batches_per_epoch=2, kernel_sizes=[3, 5], dilations=[1, 2])


def run(name, task, trial_dir, until, cache=None, **overrides):
    method = get_method(name)
    method.cache_dir = cache
    lines = []
    result = method.run_segment(task, params_of(name, **overrides), trial_dir, until,
                                lambda step, metrics: lines.append((step, metrics)))
    return result, lines


# ------------------------------------------------------------------------------------------- declarations
def test_declarations_follow_the_final_stage_contract():
    for name in ("backbone", "dasha"):
        params = method_class(name).params
        assert params["final_seed"].nullable and params["final_seed"].default is None
        assert params["init_from"].nullable and params["init_from"].default is None
        assert method_class(name).multi_fidelity and not method_class(name).deterministic
        assert method_class(name).kind == "supervised" and method_class(name).domains == ("genomics", "satellite")
        assert method_class(name).objective == ("best_val_score", "max")
        assert set(method_class(name).default_space) == {"seed", "lr", "dropout", "weight_decay", "momentum"}


@pytest.mark.parametrize("sweep", ["genomics", "satellite", "genomics-cpu", "satellite-cpu"])
def test_sweep_files_validate(sweep):
    from tests.conftest import SHARED_DATA

    if sweep.endswith("-cpu") and not SHARED_DATA.is_dir():
        pytest.skip(f"{SHARED_DATA} (the CPU sweep's data_root) not present")
    spec = load_sweep(ROOT / "sweeps" / f"{sweep}.yaml")
    assert spec.seeds == (0, 1, 2) or list(spec.seeds) == [0, 1, 2]
    assert {"dasha", "backbone"} <= {m.name for m in spec.methods}   # FM columns may sit beside them
    if sweep.endswith("-cpu"):
        assert "REDUCED" in spec.description and spec.executor.backend == "local"
    else:
        assert spec.search.trials == 120 and spec.search.final_epochs == 200 and spec.executor.backend == "slurm"
        assert len(spec.tasks) == (18 if sweep == "genomics" else 9)


def test_schedules_keep_the_reference_milestones_at_full_budget():
    choice = resolve_backbone("genomics", "H3", {})
    assert lr_schedule(choice, 20, final=False)["milestones"] == (6, 12, 18)
    assert lr_schedule(choice, 200, final=True)["milestones"] == (30, 60, 90, 120, 160)
    wrn = resolve_backbone("satellite", "eurosat", {})
    assert (wrn.depth, wrn.width, wrn.search_width, wrn.batch_size) == (22, 8, 1, 16)
    assert lr_schedule(wrn, 200, final=True)["milestones"] == (60, 120, 160)
    forestnet = resolve_backbone("satellite", "m-forestnet", {})
    assert (forestnet.depth, forestnet.width, forestnet.batch_size) == (16, 4, 8)


@pytest.mark.parametrize("domain, arch, shape, kind", [
    ("genomics", "wrn", (5, 32), "wrn1d"), ("genomics", "unet", (5, 32), "unet1d"),
    ("satellite", "wrn", (3, 16, 16), "wrn2d"), ("satellite", "unet", (3, 16, 16), "unet2d"),
])
def test_each_arch_builds_its_network_and_search_base(domain, arch, shape, kind):
    from launcher.methods.conv_backbones import build_backbone

    choice = resolve_backbone(domain, "task", {"arch": arch, "width": 2, "depth": 10})
    assert choice.kind == kind and choice.optimizer == ("adamw" if kind == "unet2d" else "sgd")
    for for_search in (False, True):
        model = build_backbone(choice, shape, 3, for_search=for_search).eval()
        assert model(torch.zeros(2, *shape)).shape == (2, 3)


# ------------------------------------------------------------------------------------------- backbone
def test_backbone_learns_a_motif_and_saves_its_initial_weights(tmp_path):
    # epochs=20: the LR schedule of a 20-epoch HPO trial, so no LR drop within these 4 epochs
    result, lines = run("backbone", motif_task(), tmp_path / "t", 4, width=8, batch_size=16, lr=0.1, epochs=20)
    assert [step for step, _ in lines] == [1, 2, 3, 4]
    assert result.metrics["best_val_score"] > 0.5          # MCC; chance is 0
    assert (tmp_path / "t" / INIT_WEIGHTS).is_file()
    assert result.info["stage"] == "hpo" and result.info["backbone"].startswith("WRN-1D")


def test_stop_and_resume_gives_identical_weights(tmp_path):
    task = motif_task(n_train=128)
    run("backbone", task, tmp_path / "straight", 2, **GENOMICS_SMALL, dropout=0.1)
    run("backbone", task, tmp_path / "resumed", 1, **GENOMICS_SMALL, dropout=0.1)
    run("backbone", task, tmp_path / "resumed", 2, **GENOMICS_SMALL, dropout=0.1)
    a, b = final_weights(tmp_path / "straight/checkpoints"), final_weights(tmp_path / "resumed/checkpoints")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_test_score_is_taken_at_the_best_validation_epoch(tmp_path):
    result, lines = run("backbone", motif_task(n_train=96, n_eval=48), tmp_path / "t", 5,
                        **{**GENOMICS_SMALL, "lr": 0.3, "momentum": 0.95})
    best_epoch = max(lines, key=lambda line: (line[1]["val_score"], -line[0]))   # the first of equal bests
    assert result.metrics["test_score"] == best_epoch[1]["test_score_last"]
    assert result.metrics["test_score_last"] == lines[-1][1]["test_score_last"]
    assert result.metrics["best_val_score"] == best_epoch[1]["val_score"]


def test_every_genomics_result_carries_mcc_f1_and_accuracy_at_the_selected_epoch(tmp_path):
    task = motif_task(n_train=96, n_eval=48)
    result, lines = run("backbone", task, tmp_path / "t", 3, **GENOMICS_SMALL)
    best_epoch = max(lines, key=lambda line: (line[1]["val_score"], -line[0]))
    for name in ("mcc", "f1", "accuracy"):
        assert result.metrics[f"test_{name}"] == best_epoch[1][f"test_{name}_last"], name
        assert all(f"val_{name}" in metrics for _, metrics in lines)
    # the task's own metric is one of them, at the same epoch
    assert result.metrics["test_score"] == result.metrics[f"test_{task.metric}"]


def test_final_retrain_starts_from_the_saved_initial_weights(tmp_path):
    task = motif_task(n_train=64)
    run("backbone", task, tmp_path / "hpo", 1, **GENOMICS_SMALL, seed=7)
    saved = torch.load(tmp_path / "hpo" / INIT_WEIGHTS, weights_only=True)
    result, _ = run("backbone", task, tmp_path / "final", 2, **GENOMICS_SMALL, seed=7, final_seed=1,
                    init_from=str(tmp_path / "hpo"))
    started = torch.load(tmp_path / "final" / INIT_WEIGHTS, weights_only=True)   # the model the loop trained
    assert all(torch.equal(saved[k], started[k]) for k in saved)
    run("backbone", task, tmp_path / "fresh", 1, **GENOMICS_SMALL, seed=1)
    fresh = torch.load(tmp_path / "fresh" / INIT_WEIGHTS, weights_only=True)
    assert not all(torch.equal(fresh[k], started[k]) for k in fresh)   # not a fresh init under final_seed
    assert result.info["stage"] == "final" and result.info["recipe_seed"] == 1
    assert result.info["lr_schedule"]["max_epochs"] == 2              # the schedule spans the retrain


def test_backbone_trains_on_images_with_augmentation(tmp_path):
    result, _ = run("backbone", image_task(), tmp_path / "t", 1, depth=10, width=1, batch_size=16)
    assert result.info["backbone"] == "WRN-10-1" and np.isfinite(result.metrics["test_score"])


# ------------------------------------------------------------------------------------------- dasha
def test_dasha_searches_once_and_later_trials_read_the_cache(tmp_path, monkeypatch):
    import launcher.methods.dasha as dasha

    calls = []
    real = dasha.run_search
    monkeypatch.setattr(dasha, "run_search", lambda *a, **k: calls.append(1) or real(*a, **k))
    task = motif_task(n_train=64)
    first, _ = run("dasha", task, tmp_path / "t0", 1, tmp_path / "cache", **GENOMICS_SMALL, **DASH_SMALL)
    second, _ = run("dasha", task, tmp_path / "t1", 1, tmp_path / "cache", **GENOMICS_SMALL, **DASH_SMALL, seed=3)
    assert len(calls) == 1
    assert first.metrics["search_cached"] == 0.0 and first.metrics["search_seconds"] > 0
    assert second.metrics["search_cached"] == 1.0 and "search_seconds" not in second.metrics
    assert first.info["dash_pattern"] == second.info["dash_pattern"]
    assert len(list((tmp_path / "cache" / "dash").glob("*.json"))) == 1
    # A later ASHA segment of the searching trial keeps reporting the cost it paid, without searching.
    again, _ = run("dasha", task, tmp_path / "t0", 2, tmp_path / "cache", **GENOMICS_SMALL, **DASH_SMALL)
    assert len(calls) == 1 and again.metrics["search_seconds"] == first.metrics["search_seconds"]
    # Another search config is another search.
    run("dasha", task, tmp_path / "t2", 1, tmp_path / "cache", **GENOMICS_SMALL, **{**DASH_SMALL, "dilations": [1]})
    assert len(calls) == 2


def test_dasha_final_retrain_reuses_the_pattern_and_init_of_the_best_trial(tmp_path):
    task = motif_task(n_train=64)
    hpo, _ = run("dasha", task, tmp_path / "hpo", 1, tmp_path / "cache", **GENOMICS_SMALL, **DASH_SMALL)
    final, _ = run("dasha", task, tmp_path / "final", 1, tmp_path / "other-cache", **GENOMICS_SMALL, **DASH_SMALL,
                   final_seed=2, init_from=str(tmp_path / "hpo"))
    assert final.info["dash_pattern"] == hpo.info["dash_pattern"]
    assert not (tmp_path / "other-cache").exists()          # the pattern came from the best trial's folder
    assert json.loads((tmp_path / "final" / PATTERN_FILE).read_text())["pattern"]
    saved = torch.load(tmp_path / "hpo" / INIT_WEIGHTS, weights_only=True)
    started = torch.load(tmp_path / "final" / INIT_WEIGHTS, weights_only=True)
    assert all(torch.equal(saved[k], started[k]) for k in saved)


def test_dasha_on_images(tmp_path):
    result, _ = run("dasha", image_task(), tmp_path / "t", 1, tmp_path / "cache", depth=10, width=1,
                    batch_size=16, search_epochs=1, search_batches_per_epoch=1, kernel_sizes=[3, 5], dilations=[1, 2])
    assert len(result.info["dash_pattern"].split()) == 7      # WRN-10: stem + 2 per block x 3 blocks
    assert result.info["dash_search"]["grad_scale"] == 100.0


def _search_in_process(cache: str, log: str, delay: float) -> None:
    def compute():
        with open(log, "a") as fh:
            fh.write(f"start {time.time()}\n")
        time.sleep(delay)
        with open(log, "a") as fh:
            fh.write(f"end {time.time()}\n")
        return {"pattern": [[3, 1]], "search_seconds": delay}

    record, computed = cached_search(Path(cache), "key", compute)
    with open(log, "a") as fh:
        fh.write(f"result {int(computed)} {record['pattern']}\n")


def test_concurrent_searches_are_serialised_by_the_lock(tmp_path):
    log = tmp_path / "log.txt"
    context = multiprocessing.get_context("fork")
    workers = [context.Process(target=_search_in_process, args=(str(tmp_path / "cache"), str(log), 0.5))
               for _ in range(2)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(30)
        assert w.exitcode == 0
    lines = log.read_text().split("\n")
    assert sum(line.startswith("start") for line in lines) == 1        # one search, the other waited
    results = sorted(line for line in lines if line.startswith("result"))
    assert results == ["result 0 [[3, 1]]", "result 1 [[3, 1]]"]


# ------------------------------------------------------------------------------------------- real rows
def _small(task, n_eval=32):
    return replace(task, x_val=task.x_val[:n_eval], y_val=task.y_val[:n_eval],
                   x_test=task.x_test[:n_eval], y_test=task.y_test[:n_eval])


@pytest.mark.parametrize("domain, dataset, overrides", [
    ("genomics", "prom_300_tata", dict(width=4, batch_size=16)),
    ("satellite", "brazilian_coffee_scenes", dict(depth=10, width=1, batch_size=8)),
])
def test_real_rows_of_the_offline_data(tmp_path, domain, dataset, overrides):
    from tasks.registry import load_task

    try:
        task = load_task(domain, dataset, cache_dir=tmp_path / "data-cache", options={"max_train": 32})
    except DatasetError as err:
        pytest.skip(f"offline data not available: {err}")
    result, lines = run("dasha", _small(task), tmp_path / "t", 1, tmp_path / "cache", **overrides,
                        max_batches_per_epoch=2, search_epochs=1, search_batches_per_epoch=1,
                        kernel_sizes=[3, 5], dilations=[1, 3])
    assert len(lines) == 1 and 0.0 <= result.metrics["test_score"] <= 1.0
    assert any("reduced" in note for note in result.notes)
