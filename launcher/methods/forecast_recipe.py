"""Recipes that train channel-independent forecasters on a ForecastTask with the shared epoch loop.

Training examples are window starts in the training slice; a batch is `batch_size` windows with all their
channels, cut on the fly (memory holds one batch, not every window). Evaluation sums squared and absolute
errors per batch on each rank's share of the val/test windows, so gathering across ranks moves a few
numbers, not forecasts, and MSE/MAE are exactly those of `tasks.timeseries.evaluate_forecaster`.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from launcher.training.epoch_loop import TrainingRecipe


def gather_channel_windows(series: torch.Tensor, starts: torch.Tensor, width: int) -> torch.Tensor:
    """The `width`-row windows of `series` (T, C) starting at `starts` (B,), one row per channel: (B*C, width).

    Row b*C + c is channel c of the window at starts[b]: channel-independent models see each channel of
    each window as a separate univariate sample. Only this batch is copied, never the whole slice.
    """
    rows = starts[:, None] + torch.arange(width)  # (B, width) row indices
    windows = series[rows]                         # (B, width, C)
    return windows.transpose(1, 2).reshape(-1, width)


def forecasting_recipe(task, build_model: Callable[[], nn.Module], *, lr: float, weight_decay: float,
                       batch_size: int, seed: int, max_epochs: int, max_windows_per_epoch: int | None = None,
                       optimizer: str = "adam", schedule: str = "constant", identity: dict | None = None,
                       trainable=None) -> TrainingRecipe:
    context, horizon = task.context, task.horizon
    width = context + horizon
    series = {"train": torch.as_tensor(task.train, dtype=torch.float32),
              "val": torch.as_tensor(task.val, dtype=torch.float32),
              "test": torch.as_tensor(task.test, dtype=torch.float32)}
    n_windows = {k: len(v) - width + 1 for k, v in series.items()}
    if min(n_windows.values()) < 1:
        raise ValueError(f"{task.name}: a split is shorter than one window of {width} rows: {n_windows}")

    def train_batch(indices: torch.Tensor, generator: torch.Generator):
        return gather_channel_windows(series["train"], indices, width)

    def loss(model: nn.Module, windows: torch.Tensor) -> torch.Tensor:
        windows = windows.to(next(model.parameters()).device)   # batches are cut on the CPU; the model may be on a GPU
        return F.mse_loss(model(windows[:, :context]), windows[:, context:])

    def eval_batch(split: str, indices: torch.Tensor):
        return gather_channel_windows(series[split], indices, width)

    def eval_step(model: nn.Module, windows: torch.Tensor) -> dict[str, np.ndarray]:
        windows = windows.to(next(model.parameters()).device)
        error = (model(windows[:, :context]) - windows[:, context:]).double()
        return {"sums": np.array([[float((error ** 2).sum()), float(error.abs().sum()), error.numel()]])}

    def score(outputs: dict[str, np.ndarray]) -> dict[str, float]:
        squared, absolute, count = outputs["sums"].sum(axis=0)
        return {"mse": squared / count, "mae": absolute / count}

    batches = None if max_windows_per_epoch is None else max(1, -(-max_windows_per_epoch // batch_size))
    return TrainingRecipe(
        build_model=build_model, n_train=n_windows["train"], train_batch=train_batch, loss=loss,
        eval_sizes={"val": n_windows["val"], "test": n_windows["test"]}, eval_batch=eval_batch,
        eval_step=eval_step, score=score, objective="mse", mode="min", lr=lr, weight_decay=weight_decay,
        optimizer=optimizer, schedule=schedule, max_epochs=max_epochs, batch_size=batch_size,
        max_batches_per_epoch=batches, seed=seed, eval_batch_size=64, trainable=trainable,
        identity={"task": task.name, "n_train": len(task.train), "n_channels": task.n_channels, **(identity or {})})
