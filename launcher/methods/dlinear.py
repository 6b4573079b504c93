"""DLinear as a multi-fidelity method: one segment = train up to the rung's epoch, checkpoint, exit."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from launcher.methods.base import EpochMethod, MethodResult, Report


class DLinearMethod(EpochMethod):
    name = "dlinear"

    def run_segment(self, task, params: dict[str, Any], trial_dir: Path, until_epoch: int,
                    report: Report) -> MethodResult:
        from models.dlinear import DLinearConfig, DLinearTrainer

        config = DLinearConfig(lr=params["lr"], weight_decay=params["weight_decay"],
                               batch_size=params["batch_size"], moving_avg=params["moving_avg"],
                               seed=params["seed"], max_windows_per_epoch=params["max_windows_per_epoch"])
        trainer = DLinearTrainer(task, config, Path(trial_dir) / "checkpoints")
        metrics = trainer.train_until(until_epoch, on_epoch=lambda epoch, m: report(epoch, m))
        # The headline test numbers are those at the epoch with the best validation MSE.
        final = dict(metrics)
        final["test_mse"] = metrics["test_mse_at_best_val"]
        final["test_mae"] = metrics["test_mae_at_best_val"]
        return MethodResult(metrics=final, n_parameters=trainer.n_parameters)
