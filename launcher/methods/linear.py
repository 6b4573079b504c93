"""Linear / NLinear forecasters trained by the shared epoch loop, on one rank or many (DDP, DeepSpeed)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from launcher.methods.base import EpochMethod, MethodResult, Report


class LinearMethod(EpochMethod):
    name = "linear"

    def run_segment(self, task, params: dict[str, Any], trial_dir: Path, until_epoch: int,
                    report: Report) -> MethodResult:
        from launcher.methods.forecast_recipe import forecasting_recipe
        from launcher.training.epoch_loop import run_segment
        from models.linear import LinearForecaster

        recipe = forecasting_recipe(
            task, lambda: LinearForecaster(task.context, task.horizon, params["normalize_last"], params["dropout"]),
            lr=params["lr"], weight_decay=params["weight_decay"], batch_size=params["batch_size"],
            seed=params["seed"], max_epochs=params["epochs"], max_windows_per_epoch=params["max_windows_per_epoch"],
            optimizer="adam", schedule=params["schedule"], identity={"params": dict(sorted(params.items()))})
        metrics = run_segment(recipe, self.distributed, Path(trial_dir) / "checkpoints", until_epoch, report)
        # Headline test numbers: at the epoch with the best validation MSE (never chosen on test).
        metrics["test_mse"], metrics["test_mae"] = metrics["test_mse_at_best_val"], metrics["test_mae_at_best_val"]
        return MethodResult(metrics=metrics, n_parameters=int(metrics.pop("n_parameters")))
