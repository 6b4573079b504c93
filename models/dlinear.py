"""DLinear (Zeng et al., AAAI 2023, "Are Transformers Effective for Time Series Forecasting?").

Model, as in the authors' code (cure-lab/LTSF-Linear, models/DLinear.py, individual=False):

- trend = moving average of the context with kernel `moving_avg` (25 in the paper), stride 1; both ends
  are padded with (kernel - 1) // 2 copies of the first / last value so the trend has the context's length.
- seasonal = context - trend.
- forecast = Linear_seasonal(seasonal) + Linear_trend(trend), each Linear(context -> horizon), shared by
  all channels (channel-independent). Weights start at 1/context (a plain average); biases keep
  torch's default init, as in the reference.

Training (the reference's Exp_Main): Adam, MSE loss on z-scored data; every channel of every stride-1
training window is a sample. One batch is `batch_size` windows with all their channels, as the
reference's loader yields (batch, length, channels) tensors. After every epoch the model is scored on the
val and test slices; the reported test metric is the one at the epoch with the lowest val MSE.

Not reproduced from the reference: its lr halving every epoch (lradj='type1') and early stopping
(patience 3), both of which belong to the caller's epoch budget; its unused `Linear_Decoder`; and its
drop_last=True on the training (and test) loaders.
"""
from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from models.training import (
    capture_rng_state,
    gather_channel_windows,
    load_newest_checkpoint,
    module_forecaster,
    restore_rng_state,
    save_checkpoint,
)
from tasks.timeseries import ForecastTask, evaluate_forecaster


# ------------------------------------------------------------------------------------------- model
class SeriesDecomposition(nn.Module):
    """Split (B, L) series into (seasonal, trend), trend being a replicate-padded moving average."""

    def __init__(self, kernel_size: int):
        super().__init__()
        # An even kernel would make the padded average one step shorter than the input.
        if kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(f"moving_avg kernel must be a positive odd integer, got {kernel_size}")
        self.kernel_size = kernel_size

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        half = (self.kernel_size - 1) // 2
        padded = F.pad(x[:, None, :], (half, half), mode="replicate")  # repeat x[0] and x[-1] `half` times
        trend = F.avg_pool1d(padded, kernel_size=self.kernel_size, stride=1)[:, 0, :]
        return x - trend, trend


class DLinear(nn.Module):
    """(B, context) -> (B, horizon); one channel per row."""

    def __init__(self, context: int, horizon: int, moving_avg: int = 25):
        super().__init__()
        self.decomposition = SeriesDecomposition(moving_avg)
        self.seasonal = nn.Linear(context, horizon)
        self.trend = nn.Linear(context, horizon)
        with torch.no_grad():
            self.seasonal.weight.fill_(1.0 / context)
            self.trend.weight.fill_(1.0 / context)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        seasonal, trend = self.decomposition(x)
        return self.seasonal(seasonal) + self.trend(trend)


# ------------------------------------------------------------------------------------------- training
@dataclass
class DLinearConfig:
    lr: float = 1e-3
    weight_decay: float = 0.0
    batch_size: int = 32                        # windows per batch, each with all of its channels
    moving_avg: int = 25
    seed: int = 0
    max_windows_per_epoch: int | None = None    # a fresh random subset each epoch, for CPU budgets; None = all


class DLinearTrainer:
    """Trains DLinear on a ForecastTask epoch by epoch, checkpointing so that it can stop and resume exactly."""

    def __init__(self, task: ForecastTask, config: DLinearConfig, checkpoint_dir: Path):
        if config.batch_size < 1 or (config.max_windows_per_epoch is not None and config.max_windows_per_epoch < 1):
            raise ValueError(f"batch_size and max_windows_per_epoch must be >= 1, got {config}")
        self.task, self.config = task, config
        self.checkpoint_dir = Path(checkpoint_dir)
        self.window = task.context + task.horizon
        self.n_train_windows = len(task.train) - self.window + 1
        if self.n_train_windows < 1:
            raise ValueError(f"{task.name}: {len(task.train)} training rows hold no window of {self.window} rows")
        self.train_series = torch.as_tensor(task.train, dtype=torch.float32)

        # Seed the init without touching the caller's global RNG; the data order has its own generator.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(config.seed)
            self.model = DLinear(task.context, task.horizon, config.moving_avg)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
        self.data_order = torch.Generator().manual_seed(config.seed)

        self.epoch = 0                      # epochs completed
        self.best_val_mse = math.inf
        self.test_at_best_val = {"mse": math.nan, "mae": math.nan}
        self.last_metrics: dict = {}
        self.resume_checked = False

    @property
    def n_parameters(self) -> int:
        return sum(p.numel() for p in self.model.parameters())

    def evaluate(self, series) -> dict:
        """MSE/MAE over every stride-1 window of a val or test slice (context-prefixed)."""
        return evaluate_forecaster(module_forecaster(self.model), series, self.task.context, self.task.horizon)

    def train_one_epoch(self) -> float:
        """One pass over the (possibly subsampled) training windows; returns the mean training MSE."""
        self.model.train()
        context = self.task.context
        order = torch.randperm(self.n_train_windows, generator=self.data_order)
        if self.config.max_windows_per_epoch is not None:
            order = order[: self.config.max_windows_per_epoch]
        total_loss, n_samples = 0.0, 0
        for starts in order.split(self.config.batch_size):
            windows = gather_channel_windows(self.train_series, starts, self.window)
            loss = F.mse_loss(self.model(windows[:, :context]), windows[:, context:])
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            total_loss += loss.item() * len(windows)
            n_samples += len(windows)
        return total_loss / n_samples

    def train_until(self, target_epoch: int,
                    on_epoch: Callable[[int, dict], None] | None = None) -> dict:
        """Resume from the newest loadable checkpoint (first call only), train to `target_epoch`, return the
        last epoch's metrics ({} if no epoch has run). on_epoch(epoch, metrics) follows each epoch's checkpoint."""
        if not self.resume_checked:
            self.resume_checked = True
            self.restore()
        while self.epoch < target_epoch:
            started = time.perf_counter()
            train_loss = self.train_one_epoch()
            val, test = self.evaluate(self.task.val), self.evaluate(self.task.test)
            self.epoch += 1
            # Model selection uses validation only; the test score rides along from the chosen epoch.
            # (A NaN val MSE compares False, so a diverged epoch is never selected.)
            if val["mse"] < self.best_val_mse:
                self.best_val_mse = val["mse"]
                self.test_at_best_val = {"mse": test["mse"], "mae": test["mae"]}
            self.last_metrics = {
                "epoch": self.epoch,
                "train_loss": train_loss,
                "val_mse": val["mse"], "val_mae": val["mae"],
                "best_val_mse": self.best_val_mse,
                "test_mse_at_best_val": self.test_at_best_val["mse"],
                "test_mae_at_best_val": self.test_at_best_val["mae"],
                "test_mse_last": test["mse"], "test_mae_last": test["mae"],
                "epoch_seconds": time.perf_counter() - started,  # wall clock: the one non-reproducible entry
            }
            self.save()
            if on_epoch is not None:
                on_epoch(self.epoch, dict(self.last_metrics))
        return dict(self.last_metrics)

    # --------------------------------------------------------------------------------------- checkpoints
    def run_identity(self) -> dict:
        """What a checkpoint must match to be resumed by this trainer."""
        task = self.task
        return {"task": task.name, "context": task.context, "horizon": task.horizon,
                "n_channels": task.n_channels, "n_train": len(task.train), "config": asdict(self.config)}

    def save(self) -> None:
        state = {
            "run": self.run_identity(),
            "epoch": self.epoch,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "best_val_mse": self.best_val_mse,
            "test_at_best_val": self.test_at_best_val,
            "last_metrics": self.last_metrics,
            "rng": capture_rng_state(self.data_order),
        }
        save_checkpoint(state, self.checkpoint_dir, self.epoch)

    def restore(self) -> None:
        state = load_newest_checkpoint(self.checkpoint_dir)
        if state is None:
            return
        if state["run"] != self.run_identity():
            # Resuming someone else's run would silently mix two experiments.
            raise ValueError(f"{self.checkpoint_dir} holds a checkpoint of a different run: "
                             f"{state['run']} != {self.run_identity()}")
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.epoch = state["epoch"]
        self.best_val_mse = state["best_val_mse"]
        self.test_at_best_val = state["test_at_best_val"]
        self.last_metrics = state["last_metrics"]
        restore_rng_state(state["rng"], self.data_order)
