"""`dasha`'s `protocol` param (launcher/methods/dasha.py): the reference's LR schedules in both protocols,
MCC for genomics and the leaky test-selected score (reference only), and a clean protocol whose choices
never depend on the test split."""
from dataclasses import replace

import numpy as np
import pytest
import torch

from launcher.methods import get_method
from launcher.methods.conv_backbones import lr_schedule, resolve_backbone
from launcher.methods.registry import method_class
from launcher.training.epoch_loop import TrainingRecipe, _lr_factor
from models.dash import _schedule
from tasks.classification import ClassificationTask

torch.set_num_threads(1)


# ------------------------------------------------------------------------------------------- the reference's rules
# Written from the DASHA code's task_configs.py (weight_sched_train / _hpo / _search), independently of ours.
def reference_step(sched):
    def weight_sched(epoch):
        optim_factor = 0
        for i in range(len(sched)):
            if epoch > sched[len(sched) - 1 - i]:
                optim_factor = len(sched) - i
                break
        return 0.2 ** optim_factor
    return weight_sched


def reference_warmup(warmup, decay):
    def weight_sched(step):
        if step < warmup:
            return float(step) / float(warmup)
        return max((decay - step) / (decay - warmup), 0)
    return weight_sched


def lrs_of(factor, epochs):
    """The LR each epoch runs at when LambdaLR(factor) steps once per epoch, as both codes do."""
    weight = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([weight], lr=1.0)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
    out = []
    for _ in range(epochs):
        out.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return out


def loop_factor(schedule: dict):
    recipe = TrainingRecipe(build_model=None, n_train=1, train_batch=None, loss=None, eval_sizes={}, eval_batch=None,
                            eval_step=None, score=None, objective="score", mode="max", lr=1.0, **schedule)
    return _lr_factor(recipe)


SCHED_1D, SCHED_2D = [30, 60, 90, 120, 160], [60, 120, 160]


@pytest.mark.parametrize("domain, arch, final, epochs, reference", [
    ("genomics", "wrn", False, 20, reference_step([s // 5 for s in SCHED_1D])),
    ("genomics", "wrn", True, 200, reference_step(SCHED_1D)),
    ("genomics", "unet", False, 20, reference_step([s // 10 for s in SCHED_1D])),
    ("genomics", "unet", True, 200, reference_step(SCHED_1D)),
    ("satellite", "wrn", False, 20, reference_step([s // 5 for s in SCHED_2D])),
    ("satellite", "wrn", True, 200, reference_step(SCHED_2D)),
    ("satellite", "unet", False, 20, reference_warmup(5, 80 + 5)),
    ("satellite", "unet", True, 100, reference_warmup(5, 100 + 5)),
])
def test_every_epochs_lr_is_the_references_at_the_full_budget(domain, arch, final, epochs, reference):
    choice = resolve_backbone(domain, "eurosat" if domain == "satellite" else "H3", {"arch": arch})
    ours = lrs_of(loop_factor(lr_schedule(choice, epochs, final)), epochs)
    theirs = lrs_of(reference, epochs)
    assert ours == pytest.approx(theirs, rel=1e-12, abs=1e-15)
    if arch == "unet" and domain == "satellite":
        assert ours[0] == 0.0 and ours[5] == 1.0      # the warm-up's first epoch runs at lr 0
    else:
        first_drop = next(i for i, lr in enumerate(ours) if lr < 1)
        assert first_drop == min(m for m in (SCHED_1D if domain == "genomics" else SCHED_2D)) // (
            1 if final else (10 if arch == "unet" else 5)) + 1


@pytest.mark.parametrize("optimizer, reference", [
    ("sgd", reference_step([30, 60, 80])), ("adamw", reference_warmup(5, 60 + 5))])
def test_the_search_schedule_is_the_references(optimizer, reference):
    epochs = 100 if optimizer == "sgd" else 60
    ours = lrs_of(_schedule(optimizer, epochs, (30, 60, 80), 0.2, 5), epochs)
    assert ours == pytest.approx(lrs_of(reference, epochs), rel=1e-12, abs=1e-15)


# ------------------------------------------------------------------------------------------- tiny runs
def motif_task(metric="f1", n_train=96, n_eval=48, length=40, seed=0) -> ClassificationTask:
    rng = np.random.default_rng(seed)

    def split(n):
        bases = rng.integers(0, 4, size=(n, length))
        labels = rng.integers(0, 2, size=n)
        for i in np.flatnonzero(labels):
            start = rng.integers(0, length - 6)
            bases[i, start:start + 6] = [3, 0, 3, 0, 0, 0]
        x = np.zeros((n, 5, length), dtype=np.float32)
        x[np.arange(n)[:, None], bases, np.arange(length)[None, :]] = 1.0
        return x, labels.astype(np.int64)

    (xt, yt), (xv, yv), (xs, ys) = split(n_train), split(n_eval), split(n_eval)
    return ClassificationTask("toy_motif", "genomics", xt, yt, xv, yv, xs, ys, n_classes=2, metric=metric)


SMALL = dict(width=8, batch_size=32, lr=0.3, momentum=0.95, epochs=4, search_epochs=1, search_batches_per_epoch=2,
             kernel_sizes=[3, 5], dilations=[1, 2])


def run(task, trial_dir, until, cache, **overrides):
    method = get_method("dasha")
    method.cache_dir = cache
    params = {k: p.default for k, p in method_class("dasha").params.items()}
    params.update(SMALL)
    params.update(overrides)
    lines = []
    result = method.run_segment(task, params, trial_dir, until, lambda step, metrics: lines.append((step, metrics)))
    return result, lines


def final_run(task, tmp_path, name, until=5, **overrides):
    """An HPO trial (1 epoch), then a final retrain from it, as the controller runs them."""
    hpo = tmp_path / f"{name}-hpo"
    run(task, hpo, 1, tmp_path / "cache", seed=3, **overrides)
    return run(task, tmp_path / f"{name}-final", until, tmp_path / "cache", seed=3, final_seed=0,
               init_from=str(hpo), **overrides)


def test_protocol_is_declared_with_clean_as_default():
    params = method_class("dasha").params
    assert params["protocol"].default == "clean" and set(params["protocol"].choices) == {"clean", "reference"}
    assert params["final_train_val"].default is False


def test_the_lr_each_epoch_runs_at_is_the_same_under_both_protocols(tmp_path):
    # epochs 4: milestones round(6/20*4, 12/20*4, 18/20*4) = 1, 2, 4; the reference decays when epoch > m
    expected = [0.3 * reference_step([1, 2, 4])(e) for e in range(1, 5)]   # `lr` is logged after the step
    for protocol in ("clean", "reference"):
        _, lines = run(motif_task(), tmp_path / protocol, 4, tmp_path / "cache", protocol=protocol)
        assert [m["lr"] for _, m in lines] == pytest.approx(expected), protocol


def test_reference_records_a_test_selected_score_at_least_the_validation_selected_one(tmp_path):
    result, lines = final_run(motif_task(), tmp_path, "ref", protocol="reference")
    metrics = result.metrics
    tests = [m["test_score_last"] for _, m in lines]
    assert metrics["test_score_testselected_leaky"] == max(tests)
    best_val = max(lines, key=lambda line: (line[1]["val_score"], -line[0]))    # the first of equal bests
    assert metrics["test_score"] == best_val[1]["test_score_last"]
    assert metrics["test_score_testselected_leaky"] >= metrics["test_score"]
    # the test-selected epoch is the LAST of tied best test scores, as the reference saves it
    chosen = max(range(len(tests)), key=lambda i: (tests[i], i))
    for name in ("mcc", "f1", "accuracy"):
        assert metrics[f"test_{name}_testselected_leaky"] == lines[chosen][1][f"test_{name}_last"], name
    assert any("LEAKY" in note for note in result.notes) and result.info["protocol"] == "reference"


def test_reference_tunes_and_scores_genomics_with_mcc_and_clean_keeps_the_tasks_metric(tmp_path):
    task = motif_task(metric="f1")
    ref, ref_lines = run(task, tmp_path / "ref", 2, tmp_path / "cache", protocol="reference")
    clean, clean_lines = run(task, tmp_path / "clean", 2, tmp_path / "cache")
    assert all(m["val_score"] == m["val_mcc"] for _, m in ref_lines)
    assert ref.metrics["test_score"] == ref.metrics["test_mcc"] and ref.info["score_metric"] == "mcc"
    assert all(m["val_score"] == m["val_f1"] for _, m in clean_lines)
    assert clean.metrics["test_score"] == clean.metrics["test_f1"] and clean.info["score_metric"] == "f1"
    # an HPO trial of the reference protocol selects nothing on test: only its final retrain does
    assert not any("testselected" in k or "best_test" in k for k in ref.metrics)


def test_clean_choices_never_depend_on_the_test_split(tmp_path):
    task = motif_task()
    shuffled = replace(task, y_test=np.random.default_rng(1).permutation(task.y_test[::-1]))
    first, first_lines = final_run(task, tmp_path, "a")
    second, second_lines = final_run(shuffled, tmp_path, "b")
    assert not any("testselected" in k or "best_test" in k for k in first.metrics)
    # the same training, the same validation curve, the same selected epoch: test only rides along
    for (_, a), (_, b) in zip(first_lines, second_lines):
        assert {k: v for k, v in a.items() if k.startswith("val_") or k == "train_loss"} == \
               {k: v for k, v in b.items() if k.startswith("val_") or k == "train_loss"}
    best = max(range(len(first_lines)), key=lambda i: (first_lines[i][1]["val_score"], -i))
    assert second.metrics["test_score"] == second_lines[best][1]["test_score_last"]
    assert first.metrics["best_val_score"] == second.metrics["best_val_score"]


def test_the_test_selected_score_survives_a_resume(tmp_path):
    from launcher.methods.classification_recipe import classification_recipe, headline_metrics
    from launcher.training.epoch_loop import run_segment
    from models.wrn1d import WRN1D

    task = motif_task()

    def recipe():
        return classification_recipe(task, lambda: WRN1D(5, 2, width=4), lr=0.3, weight_decay=0.0, batch_size=32,
                                     seed=0, max_epochs=4, select_on_test=True)

    straight = headline_metrics(run_segment(recipe(), None, tmp_path / "straight", 4))
    run_segment(recipe(), None, tmp_path / "resumed", 2)
    resumed = headline_metrics(run_segment(recipe(), None, tmp_path / "resumed", 4))
    for key in ("test_score_testselected_leaky", "test_mcc_testselected_leaky", "test_score", "best_test_score"):
        assert resumed[key] == straight[key], key


def test_final_train_val_retrains_on_train_plus_validation_and_needs_the_reference_protocol(tmp_path):
    task = motif_task()
    result, _ = final_run(task, tmp_path, "full", until=1, protocol="reference", final_train_val=True)
    import json
    state = torch.load(next((tmp_path / "full-final" / "checkpoints").rglob("state.pt")), weights_only=True)
    assert state["identity"]["n_train"] == len(task.y_train) + len(task.y_val)
    hpo_state = torch.load(next((tmp_path / "full-hpo" / "checkpoints").rglob("state.pt")), weights_only=True)
    assert hpo_state["identity"]["n_train"] == len(task.y_train)       # HPO trials keep validation out
    assert any("train + validation" in note for note in result.notes)
    json.dumps(result.info)
    with pytest.raises(ValueError, match="protocol: reference"):
        run(task, tmp_path / "bad", 1, tmp_path / "cache", final_train_val=True)


def test_reference_view_trains_satellite_tasks_with_the_authors_augmentation_and_keys_the_search_by_it():
    import types

    from launcher.methods.dasha import ReferenceTaskView, _augmentation
    from tasks.satellite import reference_flips_rotation

    def task(name, domain):
        return types.SimpleNamespace(name=name, domain=domain, metric="accuracy", notes=[], multi_label=False)

    choice = types.SimpleNamespace(augment=True)
    for name, vertical in (("m-so2sat", True), ("eurosat", False)):
        view = ReferenceTaskView(task(name, "satellite"), final=False, train_val=False)
        assert view.reference_augment.func is reference_flips_rotation
        assert view.reference_augment.keywords == {"vertical": vertical}
        assert any("augmentation" in note for note in view.notes)
        assert _augmentation(view, choice) != _augmentation(task(name, "satellite"), choice) == True  # noqa: E712
    genomics = ReferenceTaskView(task("H3", "genomics"), final=False, train_val=False)
    assert getattr(genomics, "reference_augment", None) is None
