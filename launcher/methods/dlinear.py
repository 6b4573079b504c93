"""DLinear as a multi-fidelity method on the shared epoch loop: one segment = train up to the rung's epoch,
checkpoint, exit.

Training follows the reference's Exp_Main (Adam, MSE on z-scored data, every channel of every stride-1
training window a sample, a batch = `batch_size` windows with all their channels); after every epoch the
model is scored on the val and test slices and the headline test score is the one at the epoch with the
lowest val MSE. Not reproduced from the reference: its lr halving every epoch (lradj='type1') and early
stopping (patience 3), both of which belong to the sweep's epoch budget (ASHA); its drop_last=True on the
training and test loaders. `max_windows_per_epoch` caps an epoch at ceil(max_windows / batch_size) batches
of a fresh random order (CPU budgets).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from launcher.methods.base import EpochMethod, MethodResult, Report
from launcher.methods.params import SEED_MAX, Param


class DLinearMethod(EpochMethod):
    name = "dlinear"
    kind = "supervised"
    params = {
        "lr": Param("float", 5e-3, "Adam learning rate", minimum=0.0),
        "weight_decay": Param("float", 0.0, "Adam weight decay", minimum=0.0),
        "batch_size": Param("int", 32, "windows per batch (each with all its channels)", minimum=1),
        "moving_avg": Param("int", 25, "moving-average kernel of the trend (odd)", minimum=1),
        "seed": Param("int", 0, "initialization and data-order seed", minimum=0, ceiling=SEED_MAX),
        "max_windows_per_epoch": Param("int", None, "subsample training windows per epoch (CPU budgets)", minimum=1, nullable=True),
    }
    default_space = {
        "lr": {"log": [1e-4, 1e-1]},
        "weight_decay": {"log": [1e-7, 1e-2]},
        "batch_size": {"choice": [16, 32, 64, 128]},
        "moving_avg": {"choice": [13, 25, 49, 97]},
    }
    objective = ("best_val_mse", "min")

    def run_segment(self, task, params: dict[str, Any], trial_dir: Path, until_epoch: int,
                    report: Report) -> MethodResult:
        from launcher.training.epoch_loop import run_segment

        metrics = run_segment(dlinear_recipe(task, params), self.distributed, Path(trial_dir) / "checkpoints",
                              until_epoch, report)
        # Headline test numbers: at the epoch with the best validation MSE (never chosen on test).
        metrics["test_mse"], metrics["test_mae"] = metrics["test_mse_at_best_val"], metrics["test_mae_at_best_val"]
        return MethodResult(metrics=metrics, n_parameters=int(metrics.pop("n_parameters")))


def dlinear_recipe(task, params: dict[str, Any]):
    """The shared loop's TrainingRecipe for DLinear on a ForecastTask with the method's resolved `params`."""
    from launcher.methods.forecast_recipe import forecasting_recipe
    from models.dlinear import DLinear, SeriesDecomposition

    SeriesDecomposition(params["moving_avg"])   # an even kernel fails here, before any rank or checkpoint is touched
    return forecasting_recipe(
        task, lambda: DLinear(task.context, task.horizon, params["moving_avg"]),
        lr=params["lr"], weight_decay=params["weight_decay"], batch_size=params["batch_size"], seed=params["seed"],
        max_epochs=1, schedule="constant",   # no LR schedule: max_epochs only sizes one, so any value will do
        max_windows_per_epoch=params["max_windows_per_epoch"], optimizer="adam",
        # the task name holds the horizon, not the context: a checkpoint of another context is another run
        identity={"context": task.context, "params": dict(sorted(params.items()))})
