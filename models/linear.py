"""Linear (Zeng et al., AAAI 2023): one linear map from the context to the horizon, shared by all channels.

The simplest supervised forecaster of "Are Transformers Effective for Time Series Forecasting?"; here it
is also the smallest real model the distributed runtime trains (DDP, DeepSpeed, preemption tests).
Optional `normalize_last` subtracts the context's last value and adds it back (the paper's NLinear).
"""
from __future__ import annotations

import torch
from torch import nn


class LinearForecaster(nn.Module):
    """(B, context) -> (B, horizon), one channel per row."""

    def __init__(self, context: int, horizon: int, normalize_last: bool = False, dropout: float = 0.0):
        super().__init__()
        self.normalize_last = normalize_last
        self.dropout = nn.Dropout(dropout)
        self.proj = nn.Linear(context, horizon)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        last = x[:, -1:] if self.normalize_last else 0.0
        return self.proj(self.dropout(x - last)) + last
