import math

import numpy as np
import pytest
import torch

from models.dlinear import DLinear, DLinearConfig, DLinearTrainer, SeriesDecomposition
from models.training import checkpoint_paths, gather_channel_windows
from tasks.timeseries import load_forecast_task

torch.set_num_threads(1)

CONTEXT, HORIZON = 96, 24
REPRODUCIBLE = ("epoch", "train_loss", "val_mse", "val_mae", "best_val_mse", "test_mse_at_best_val",
                "test_mae_at_best_val", "test_mse_last", "test_mae_last")  # all but epoch_seconds


@pytest.fixture(scope="module")
def etth1():
    return load_forecast_task("ETTh1", HORIZON, context=CONTEXT)


@pytest.fixture
def deterministic():
    was = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True)
    yield
    torch.use_deterministic_algorithms(was)


def reproducible(metrics: dict) -> dict:
    return {key: metrics[key] for key in REPRODUCIBLE}


def small_config(**overrides) -> DLinearConfig:
    return DLinearConfig(**{"max_windows_per_epoch": 300, "seed": 3, **overrides})


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


def test_even_kernel_is_rejected():
    with pytest.raises(ValueError, match="odd"):
        SeriesDecomposition(24)


def test_shapes_init_and_parameter_count():
    model = DLinear(context=12, horizon=5, moving_avg=5)
    assert model(torch.randn(7, 12)).shape == (7, 5)
    assert sum(p.numel() for p in model.parameters()) == 2 * (12 * 5 + 5)
    # Reference init: both weight matrices start as the plain average of the context.
    torch.testing.assert_close(model.seasonal.weight, torch.full((5, 12), 1 / 12))
    torch.testing.assert_close(model.trend.weight, torch.full((5, 12), 1 / 12))


def test_trainer_rejects_empty_epochs(etth1, tmp_path):
    with pytest.raises(ValueError, match="max_windows_per_epoch"):
        DLinearTrainer(etth1, DLinearConfig(max_windows_per_epoch=0), tmp_path)


def test_trainer_parameter_count(etth1, tmp_path):
    trainer = DLinearTrainer(etth1, DLinearConfig(), tmp_path)
    assert trainer.n_parameters == 2 * (96 * 24 + 24) == 4656


def test_channel_windows_are_cut_per_channel():
    series = torch.arange(20.0).reshape(10, 2)  # row t = [2t, 2t + 1]
    windows = gather_channel_windows(series, torch.tensor([0, 3]), width=4)
    expected = [[0, 2, 4, 6], [1, 3, 5, 7], [6, 8, 10, 12], [7, 9, 11, 13]]
    torch.testing.assert_close(windows, torch.tensor(expected, dtype=torch.float32))


# ------------------------------------------------------------------------------------------- training
def test_training_lowers_the_training_loss(etth1, tmp_path):
    epochs = []
    trainer = DLinearTrainer(etth1, DLinearConfig(max_windows_per_epoch=2000), tmp_path)
    last = trainer.train_until(3, on_epoch=lambda epoch, metrics: epochs.append(metrics))
    assert [m["epoch"] for m in epochs] == [1, 2, 3] and last == epochs[-1]
    assert epochs[-1]["train_loss"] < epochs[0]["train_loss"]
    assert all(math.isfinite(m["val_mse"]) and math.isfinite(m["test_mse_last"]) for m in epochs)
    assert last["test_mse_at_best_val"] < 1.0  # z-scored units; predicting zeros scores about 1
    assert len(checkpoint_paths(tmp_path)) == 2  # only the newest two are kept


def test_stop_and_resume_is_bit_identical(etth1, tmp_path, deterministic):
    straight = DLinearTrainer(etth1, small_config(), tmp_path / "straight")
    straight_metrics = straight.train_until(4)

    first = DLinearTrainer(etth1, small_config(), tmp_path / "resumed")
    first.train_until(2)
    resumed_epochs = []
    second = DLinearTrainer(etth1, small_config(), tmp_path / "resumed")  # a fresh process, in effect
    resumed_metrics = second.train_until(4, on_epoch=lambda epoch, metrics: resumed_epochs.append(epoch))

    assert resumed_epochs == [3, 4]  # epochs 1-2 came from the checkpoint, not retrained
    assert reproducible(resumed_metrics) == reproducible(straight_metrics)
    for name, value in straight.model.state_dict().items():
        assert torch.equal(value, second.model.state_dict()[name]), name


def test_a_truncated_checkpoint_is_skipped(etth1, tmp_path, deterministic):
    reference = DLinearTrainer(etth1, small_config(), tmp_path).train_until(3)
    newest = checkpoint_paths(tmp_path)[0][1]
    assert newest.name == "epoch_000003.pt"
    newest.write_bytes(newest.read_bytes()[: newest.stat().st_size // 2])

    resumed_epochs = []
    with pytest.warns(RuntimeWarning, match="skipping unloadable checkpoint"):
        again = DLinearTrainer(etth1, small_config(), tmp_path).train_until(
            3, on_epoch=lambda epoch, metrics: resumed_epochs.append(epoch))
    assert resumed_epochs == [3]  # resumed from epoch 2 and redid only epoch 3
    assert reproducible(again) == reproducible(reference)


def test_garbage_only_checkpoints_start_from_scratch(etth1, tmp_path):
    (tmp_path / "epoch_000001.pt").write_bytes(b"not a checkpoint")
    with pytest.warns(RuntimeWarning, match="skipping unloadable checkpoint"):
        metrics = DLinearTrainer(etth1, small_config(), tmp_path).train_until(1)
    assert metrics["epoch"] == 1


def test_resuming_a_different_config_is_refused(etth1, tmp_path):
    DLinearTrainer(etth1, small_config(), tmp_path).train_until(1)
    with pytest.raises(ValueError, match="different run"):
        DLinearTrainer(etth1, small_config(lr=0.01), tmp_path).train_until(2)


class ScriptedScores(DLinearTrainer):
    """Val/test scores from a script, so the selection rule is tested on a known sequence."""

    def __init__(self, *args, val_mse, test_mse):
        super().__init__(*args)
        self.scores = {"val": list(val_mse), "test": list(test_mse)}

    def evaluate(self, series):
        split = "val" if series is self.task.val else "test"
        mse = self.scores[split][self.epoch]
        return {"mse": mse, "mae": mse / 10}


def test_test_metric_is_taken_at_the_best_validation_epoch(etth1, tmp_path):
    trainer = ScriptedScores(etth1, small_config(max_windows_per_epoch=32), tmp_path,
                             val_mse=[3.0, 1.0, 2.0, math.nan, 0.5], test_mse=[10.0, 20.0, 30.0, 40.0, 50.0])
    epochs = []
    trainer.train_until(5, on_epoch=lambda epoch, metrics: epochs.append(metrics))
    assert [m["best_val_mse"] for m in epochs] == [3.0, 1.0, 1.0, 1.0, 0.5]
    assert [m["test_mse_at_best_val"] for m in epochs] == [10.0, 20.0, 20.0, 20.0, 50.0]
    assert [m["test_mae_at_best_val"] for m in epochs] == [1.0, 2.0, 2.0, 2.0, 5.0]
    assert [m["test_mse_last"] for m in epochs] == [10.0, 20.0, 30.0, 40.0, 50.0]


def test_best_val_bookkeeping_matches_the_per_epoch_scores(etth1, tmp_path):
    # A large learning rate makes val MSE move around, so the best epoch is not simply the last.
    epochs = []
    DLinearTrainer(etth1, small_config(lr=0.05), tmp_path).train_until(
        4, on_epoch=lambda epoch, metrics: epochs.append(metrics))
    for seen in range(1, len(epochs) + 1):
        best = min(epochs[:seen], key=lambda m: m["val_mse"])
        assert epochs[seen - 1]["best_val_mse"] == best["val_mse"]
        assert epochs[seen - 1]["test_mse_at_best_val"] == best["test_mse_last"]
        assert epochs[seen - 1]["test_mae_at_best_val"] == best["test_mae_last"]


def test_val_metrics_match_a_direct_computation(etth1, tmp_path):
    trainer = DLinearTrainer(etth1, small_config(), tmp_path)
    trainer.train_until(1)
    windows = np.lib.stride_tricks.sliding_window_view(etth1.val, CONTEXT + HORIZON, axis=0)  # (N, C, width)
    windows = windows.reshape(-1, CONTEXT + HORIZON)
    with torch.no_grad():
        predicted = trainer.model(torch.tensor(windows[:, :CONTEXT], dtype=torch.float32)).double().numpy()
    error = predicted - windows[:, CONTEXT:]
    scores = trainer.evaluate(etth1.val)
    assert scores["n_windows"] == etth1.n_val_windows
    assert scores["mse"] == pytest.approx(np.mean(error ** 2), rel=1e-9)
    assert scores["mae"] == pytest.approx(np.mean(np.abs(error)), rel=1e-9)
    assert trainer.model.training  # evaluation put the model back in train mode
