"""WRN-1D: the DASHA 1-D "ResNet baseline" (Wang et al. 2017 as adapted in okrasolar/pytorch-timeseries;
reference: ritvikgupta199/DASHA `src/networks/wrn1d.py`), with searchable (kernel_size, dilation).

Layout: 3 residual blocks with output widths [m, 2m, 2m]; each block is 3 ConvBlocks
(causal conv -> Dropout -> BatchNorm -> ReLU) with default kernels (8, 5, 3) and dilation 1. A 1x1 conv +
BatchNorm shortcut exists only where the channel count changes (blocks 1 and 2); block 3 has NO skip
connection, as in the reference. The convs are causal: output step t sees inputs <= t (the reference pads
(k-1)d on both sides and chomps the tail; here the pad is on the left only, the same numbers).

Heads:
- "classification": mean over length -> Linear(2m, n_outputs); (B, C_in, L) -> (B, n_outputs).
- "forecast": per step Linear(2m -> n_outputs), then Linear(context_length -> horizon) along time;
  (B, C_in, context_length) -> (B, n_outputs, horizon). The reference uses n_outputs = 1 on univariate
  windows (channel-independent forecasting); squeeze dim 1 to get (B, horizon).

Searchable convs, pattern order (9): block1.conv1..3, block2.conv1..3, block3.conv1..3.
Paper widths: m = 128 (genomics), 64 (time series); the default here is small for laptops.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from models.dash import SearchableConv1d, check_pattern, pattern_entry

DEFAULT_KERNELS = (8, 5, 3)
N_SEARCHABLE = 9


class ConvBlock(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, dilation: int, dropout: float):
        super().__init__()
        self.conv = SearchableConv1d(in_channels, out_channels, kernel_size, dilation, causal=True)
        self.dropout = nn.Dropout(dropout)
        self.norm = nn.BatchNorm1d(out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.norm(self.dropout(self.conv(x))))


class ResidualBlock(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, dropout: float,
                 pattern: Sequence[tuple[int, int]], skip: bool):
        super().__init__()
        widths = [in_channels, out_channels, out_channels, out_channels]
        self.convs = nn.Sequential(*(ConvBlock(widths[i], widths[i + 1], *pattern[i], dropout) for i in range(3)))
        # Not searchable: a plain nn.Conv1d, as the reference never mixes its 1x1 channel matcher.
        self.shortcut = (nn.Sequential(nn.Conv1d(in_channels, out_channels, 1), nn.BatchNorm1d(out_channels))
                         if skip else None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.convs(x)
        return out if self.shortcut is None else out + self.shortcut(x)


class WRN1D(nn.Module):
    def __init__(self, in_channels: int, n_outputs: int, *, width: int = 16, dropout: float = 0.0,
                 head: str = "classification", context_length: int | None = None, horizon: int | None = None,
                 pattern: Sequence[tuple[int, int]] | None = None):
        super().__init__()
        if head not in ("classification", "forecast"):
            raise ValueError(f"head must be 'classification' or 'forecast', got {head!r}")
        if head == "forecast" and (context_length is None or horizon is None):
            raise ValueError("the forecast head needs context_length and horizon")
        check_pattern(pattern, N_SEARCHABLE, "WRN1D")
        entries = [pattern_entry(pattern, i, (DEFAULT_KERNELS[i % 3], 1)) for i in range(N_SEARCHABLE)]
        self.head = head
        self.blocks = nn.Sequential(
            ResidualBlock(in_channels, width, dropout, entries[0:3], skip=in_channels != width),
            ResidualBlock(width, 2 * width, dropout, entries[3:6], skip=True),
            # The reference's third block has no residual path even though its widths match.
            ResidualBlock(2 * width, 2 * width, dropout, entries[6:9], skip=False),
        )
        self.final = nn.Linear(2 * width, n_outputs)
        self.time_projection = nn.Linear(context_length, horizon) if head == "forecast" else None

    def per_step(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C_in, L) -> (B, n_outputs, L); in eval mode step t depends on inputs <= t only."""
        return self.final(self.blocks(x).transpose(1, 2)).transpose(1, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.head == "classification":
            return self.final(self.blocks(x).mean(dim=-1))
        return self.time_projection(self.per_step(x))              # (B, n_outputs, horizon)
