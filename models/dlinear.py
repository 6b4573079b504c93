"""DLinear (Zeng et al., AAAI 2023, "Are Transformers Effective for Time Series Forecasting?").

Model, as in the authors' code (cure-lab/LTSF-Linear, models/DLinear.py, individual=False):

- trend = moving average of the context with kernel `moving_avg` (25 in the paper), stride 1; both ends
  are padded with (kernel - 1) // 2 copies of the first / last value so the trend has the context's length.
- seasonal = context - trend.
- forecast = Linear_seasonal(seasonal) + Linear_trend(trend), each Linear(context -> horizon), shared by
  all channels (channel-independent). Weights start at 1/context (a plain average); biases keep
  torch's default init, as in the reference.

Only the model lives here. Training (the reference's Exp_Main: Adam, MSE loss on z-scored data, every
channel of every stride-1 training window a sample, test scored at the best-validation epoch) is the
shared epoch loop's, driven by `launcher.methods.dlinear`.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


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
