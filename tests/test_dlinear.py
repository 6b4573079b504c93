import dataclasses
import math

import numpy as np
import pytest
import torch

from launcher.errors import SpecError
from launcher.methods.dlinear import DLinearMethod, dlinear_recipe
from launcher.methods.forecast_recipe import gather_channel_windows
from launcher.spec.load import load_sweep
from launcher.training.checkpoints import CheckpointMismatch, checkpoint_folders
from launcher.training.epoch_loop import final_weights, run_segment
from models.dlinear import DLinear, SeriesDecomposition
from tasks.timeseries import load_forecast_task

torch.set_num_threads(1)

CONTEXT, HORIZON = 96, 24
REPRODUCIBLE = ("epoch", "train_loss", "val_mse", "val_mae", "best_val_mse", "test_mse_at_best_val",
                "test_mae_at_best_val", "test_mse_last", "test_mae_last")  # all but epoch_seconds
# The method's declared defaults (written out: the tests need no particular place of declaration).
DEFAULTS = {"lr": 5e-3, "weight_decay": 0.0, "batch_size": 32, "moving_avg": 25, "seed": 0, "max_windows_per_epoch": None}


@pytest.fixture(scope="module")
def etth1():
    return load_forecast_task("ETTh1", HORIZON, context=CONTEXT)


def reproducible(metrics: dict) -> dict:
    return {key: metrics[key] for key in REPRODUCIBLE}


def small_params(**overrides) -> dict:
    return {**DEFAULTS, "max_windows_per_epoch": 300, "seed": 3, **overrides}


def train(task, folder, until: int, params: dict, reported: list | None = None):
    """One segment of a DLinear trial in `folder`, as the trial job runs it (a fresh method object: a new process)."""
    method = DLinearMethod()
    method.distributed = None
    report = (lambda step, metrics: reported.append((step, metrics))) if reported is not None else (lambda *a: None)
    return method.run_segment(task, dict(params), folder, until, report)


# ------------------------------------------------------------------------------------------- model
def test_trend_of_a_constant_is_the_constant():
    seasonal, trend = SeriesDecomposition(25)(torch.full((3, 40), 2.5))
    torch.testing.assert_close(trend, torch.full((3, 40), 2.5))
    torch.testing.assert_close(seasonal, torch.zeros(3, 40))


def test_seasonal_plus_trend_is_the_input():
    x = torch.randn(4, 50, generator=torch.Generator().manual_seed(0))
    seasonal, trend = SeriesDecomposition(7)(x)
    torch.testing.assert_close(seasonal + trend, x)


def test_trend_replicates_the_end_values_as_padding():
    # kernel 3 pads one copy of each end: [1, 1, 2, 4, 8, 8] averaged over 3.
    _, trend = SeriesDecomposition(3)(torch.tensor([[1.0, 2.0, 4.0, 8.0]]))
    torch.testing.assert_close(trend, torch.tensor([[4 / 3, 7 / 3, 14 / 3, 20 / 3]]))
    # kernel 5 pads two copies: [1, 1, 1, 2, 4, 8, 8, 8].
    _, trend = SeriesDecomposition(5)(torch.tensor([[1.0, 2.0, 4.0, 8.0]]))
    torch.testing.assert_close(trend, torch.tensor([[9 / 5, 16 / 5, 23 / 5, 30 / 5]]))


def test_even_kernel_is_rejected(etth1):
    with pytest.raises(ValueError, match="odd"):
        SeriesDecomposition(24)
    with pytest.raises(ValueError, match="odd"):   # by the method too, before any training starts
        dlinear_recipe(etth1, small_params(moving_avg=24))


def test_shapes_init_and_parameter_count():
    model = DLinear(context=12, horizon=5, moving_avg=5)
    assert model(torch.randn(7, 12)).shape == (7, 5)
    assert sum(p.numel() for p in model.parameters()) == 2 * (12 * 5 + 5)
    # Reference init: both weight matrices start as the plain average of the context.
    torch.testing.assert_close(model.seasonal.weight, torch.full((5, 12), 1 / 12))
    torch.testing.assert_close(model.trend.weight, torch.full((5, 12), 1 / 12))


def test_empty_epochs_are_rejected(write_sweep):
    with pytest.raises(SpecError, match="max_windows_per_epoch"):
        load_sweep(write_sweep("name: b\ntasks: [{dataset: ETTh1}]\nmethods: {dlinear: {max_windows_per_epoch: 0}}\n"))


def test_parameter_count(etth1):
    model = dlinear_recipe(etth1, DEFAULTS).build_model()
    assert sum(p.numel() for p in model.parameters()) == 2 * (96 * 24 + 24) == 4656


def test_channel_windows_are_cut_per_channel():
    series = torch.arange(20.0).reshape(10, 2)  # row t = [2t, 2t + 1]
    windows = gather_channel_windows(series, torch.tensor([0, 3]), width=4)
    expected = [[0, 2, 4, 6], [1, 3, 5, 7], [6, 8, 10, 12], [7, 9, 11, 13]]
    torch.testing.assert_close(windows, torch.tensor(expected, dtype=torch.float32))


# ------------------------------------------------------------------------------------------- training
def test_training_lowers_the_training_loss(etth1, tmp_path):
    reported = []
    result = train(etth1, tmp_path, 3, small_params(max_windows_per_epoch=2000), reported)
    epochs = [m for _, m in reported]
    assert [step for step, _ in reported] == [m["epoch"] for m in epochs] == [1, 2, 3]
    assert {key: result.metrics[key] for key in epochs[-1]} == epochs[-1]
    assert epochs[-1]["train_loss"] < epochs[0]["train_loss"]
    assert all(math.isfinite(m["val_mse"]) and math.isfinite(m["test_mse_last"]) for m in epochs)
    assert result.metrics["test_mse_at_best_val"] < 1.0  # z-scored units; predicting zeros scores about 1
    # the headline numbers, as reports and ASHA read them
    assert (result.metrics["test_mse"], result.metrics["test_mae"]) == (
        result.metrics["test_mse_at_best_val"], result.metrics["test_mae_at_best_val"])
    assert result.n_parameters == 4656
    assert [e for e, _ in checkpoint_folders(tmp_path / "checkpoints")] == [3, 2]  # only the newest two are kept


def test_stop_and_resume_is_bit_identical(etth1, tmp_path):
    straight_epochs = []
    straight = train(etth1, tmp_path / "straight", 4, small_params(), straight_epochs)

    train(etth1, tmp_path / "resumed", 2, small_params())
    resumed_epochs = []
    resumed = train(etth1, tmp_path / "resumed", 4, small_params(), resumed_epochs)  # a fresh process, in effect

    # epochs 1-2 came from the checkpoint, not retrained; epoch 2's line is replayed from it (the outbox drops repeats)
    assert [step for step, _ in resumed_epochs] == [2, 3, 4]
    assert reproducible(resumed_epochs[0][1]) == reproducible(straight_epochs[1][1])
    assert reproducible(resumed.metrics) == reproducible(straight.metrics)
    assert resumed.metrics["test_mse"] == straight.metrics["test_mse"]
    a, b = final_weights(tmp_path / "straight/checkpoints"), final_weights(tmp_path / "resumed/checkpoints")
    assert a.keys() == b.keys() and all(torch.equal(a[name], b[name]) for name in a)


def test_a_truncated_checkpoint_is_skipped(etth1, tmp_path):
    reference = train(etth1, tmp_path, 3, small_params())
    newest = checkpoint_folders(tmp_path / "checkpoints")[0][1]
    assert newest.name == "epoch_000003"
    state = newest / "state.pt"
    state.write_bytes(state.read_bytes()[: state.stat().st_size // 2])

    resumed_epochs = []
    with pytest.warns(RuntimeWarning, match="skipping unloadable checkpoint"):
        again = train(etth1, tmp_path, 3, small_params(), resumed_epochs)
    assert [step for step, _ in resumed_epochs] == [2, 3]  # resumed from epoch 2 (replayed) and redid only epoch 3
    assert reproducible(again.metrics) == reproducible(reference.metrics)


def test_garbage_only_checkpoints_start_from_scratch(etth1, tmp_path):
    folder = tmp_path / "checkpoints/epoch_000001"
    folder.mkdir(parents=True)
    (folder / "state.pt").write_bytes(b"not a checkpoint")
    (folder / "COMPLETE").write_text("1\n")
    with pytest.warns(RuntimeWarning, match="skipping unloadable checkpoint"):
        result = train(etth1, tmp_path, 1, small_params())
    assert result.metrics["epoch"] == 1


def test_resuming_a_different_config_is_refused(etth1, tmp_path):
    train(etth1, tmp_path, 1, small_params())
    with pytest.raises(CheckpointMismatch, match="different run"):
        train(etth1, tmp_path, 2, small_params(lr=0.01))


def test_resuming_a_different_context_is_refused(etth1, tmp_path):
    train(etth1, tmp_path, 1, small_params())
    other = load_forecast_task("ETTh1", HORIZON, context=CONTEXT // 2)
    with pytest.raises(CheckpointMismatch, match="different run"):
        train(other, tmp_path, 2, small_params())


def test_test_metric_is_taken_at_the_best_validation_epoch(etth1, tmp_path):
    # Val/test scores from a script, so the selection rule is tested on a known sequence.
    val_mse, test_mse = [3.0, 1.0, 2.0, math.nan, 0.5], [10.0, 20.0, 30.0, 40.0, 50.0]
    scripted = iter(mse for pair in zip(val_mse, test_mse) for mse in pair)   # the loop scores val, then test

    def score(outputs):
        mse = next(scripted)
        return {"mse": mse, "mae": mse / 10}

    recipe = dataclasses.replace(dlinear_recipe(etth1, small_params(max_windows_per_epoch=32)), score=score)
    epochs = []
    run_segment(recipe, None, tmp_path, 5, lambda epoch, metrics: epochs.append(metrics))
    assert [m["best_val_mse"] for m in epochs] == [3.0, 1.0, 1.0, 1.0, 0.5]
    assert [m["test_mse_at_best_val"] for m in epochs] == [10.0, 20.0, 20.0, 20.0, 50.0]
    assert [m["test_mae_at_best_val"] for m in epochs] == [1.0, 2.0, 2.0, 2.0, 5.0]
    assert [m["test_mse_last"] for m in epochs] == [10.0, 20.0, 30.0, 40.0, 50.0]


def test_best_val_bookkeeping_matches_the_per_epoch_scores(etth1, tmp_path):
    # A large learning rate makes val MSE move around, so the best epoch is not simply the last.
    reported = []
    train(etth1, tmp_path, 4, small_params(lr=0.05), reported)
    epochs = [m for _, m in reported]
    for seen in range(1, len(epochs) + 1):
        best = min(epochs[:seen], key=lambda m: m["val_mse"])
        assert epochs[seen - 1]["best_val_mse"] == best["val_mse"]
        assert epochs[seen - 1]["test_mse_at_best_val"] == best["test_mse_last"]
        assert epochs[seen - 1]["test_mae_at_best_val"] == best["test_mae_last"]


def test_val_metrics_match_a_direct_computation(etth1, tmp_path):
    params = small_params()
    recipe = dlinear_recipe(etth1, params)
    assert recipe.eval_sizes["val"] == etth1.n_val_windows     # every stride-1 window of the val slice
    reported = []
    train(etth1, tmp_path, 1, params, reported)
    model = recipe.build_model()
    model.load_state_dict(final_weights(tmp_path / "checkpoints"))
    windows = np.lib.stride_tricks.sliding_window_view(etth1.val, CONTEXT + HORIZON, axis=0)  # (N, C, width)
    windows = windows.reshape(-1, CONTEXT + HORIZON)
    assert len(windows) == etth1.n_val_windows * etth1.n_channels
    with torch.no_grad():
        predicted = model(torch.tensor(windows[:, :CONTEXT], dtype=torch.float32)).double().numpy()
    error = predicted - windows[:, CONTEXT:]
    metrics = reported[-1][1]
    # the loop holds the series as float32, so targets differ from the float64 ones by float32 rounding
    assert metrics["val_mse"] == pytest.approx(np.mean(error ** 2), rel=1e-6)
    assert metrics["val_mae"] == pytest.approx(np.mean(np.abs(error)), rel=1e-6)
