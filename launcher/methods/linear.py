"""Linear / NLinear forecasters trained by the shared epoch loop, on one rank or many (DDP, DeepSpeed)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from launcher.methods.base import EpochMethod, MethodResult, Report
from launcher.methods.params import EPOCHS_MAX, SEED_MAX, Param


class LinearMethod(EpochMethod):
    name = "linear"
    kind = "supervised"
    params = {
        "lr": Param("float", 1e-3, "Adam learning rate", minimum=0.0),
        "weight_decay": Param("float", 0.0, "Adam weight decay", minimum=0.0),
        "batch_size": Param("int", 32, "windows per batch and rank (each with all its channels)", minimum=1),
        "seed": Param("int", 0, "initialization and data-order seed", minimum=0, ceiling=SEED_MAX),
        "epochs": Param("int", 10, "length of the LR schedule in epochs (ASHA may stop a trial earlier)", minimum=1, ceiling=EPOCHS_MAX),
        "schedule": Param("str", "constant", "LR schedule over `epochs`", choices=("constant", "cosine", "warmup_cosine")),
        "normalize_last": Param("bool", False, "subtract the context's last value first (NLinear)"),
        "dropout": Param("float", 0.0, "dropout on the context", minimum=0.0, maximum=0.9),
        "max_windows_per_epoch": Param("int", None, "subsample training windows per epoch (CPU budgets)", minimum=1, nullable=True),
    }
    default_space = {
        "lr": {"log": [1e-4, 1e-1]},
        "weight_decay": {"log": [1e-7, 1e-2]},
        "batch_size": {"choice": [16, 32, 64, 128]},
    }
    objective = ("best_val_mse", "min")
    strategies = ("none", "ddp", "deepspeed")

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
