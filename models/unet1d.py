"""UNet-1D classifier (reference: ritvikgupta199/DASHA `src/networks/unet1d.py`, itself the milesial
Pytorch-UNet layout in 1-D) with searchable (kernel_size, dilation).

Layout for base width b (the paper's b = 64 gives 64-128-256-512-512):
  inc   DoubleConv(C_in -> b)
  down1..down4  MaxPool(2) + DoubleConv: b -> 2b -> 4b -> 8b -> 8b
  up1..up4      linear upsampling x2 (align_corners), pad to the skip's length, concat [skip, up],
                DoubleConv: (16b -> 4b), (8b -> 2b), (4b -> b), (2b -> b)
  head  global average pooling over length -> Linear(b, n_classes)
DoubleConv = (conv 'same' -> BatchNorm -> ReLU) x 2; every conv defaults to k = 3, d = 1.

Deviation: `dropout` (tuned by ASHA) is applied after each DoubleConv; the reference UNet has no dropout
and ignores the tuned value, which dropout = 0 (the default) reproduces.

Searchable convs, pattern order (18): inc.1, inc.2, down1.1, down1.2, ..., down4.2, up1.1, up1.2, ...,
up4.2 (two per DoubleConv, in the order the data flows).
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from models.dash import SearchableConv1d, check_pattern, pattern_entry

N_SEARCHABLE = 18


class DoubleConv1D(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, pattern: Sequence[tuple[int, int]], dropout: float):
        super().__init__()
        (k1, d1), (k2, d2) = pattern
        self.layers = nn.Sequential(
            SearchableConv1d(in_channels, out_channels, k1, d1), nn.BatchNorm1d(out_channels), nn.ReLU(),
            SearchableConv1d(out_channels, out_channels, k2, d2), nn.BatchNorm1d(out_channels), nn.ReLU(),
            nn.Dropout(dropout),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


class Up1D(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, pattern: Sequence[tuple[int, int]], dropout: float):
        super().__init__()
        self.conv = DoubleConv1D(in_channels, out_channels, pattern, dropout)

    def forward(self, low: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        up = F.interpolate(low, scale_factor=2, mode="linear", align_corners=True)
        missing = skip.shape[-1] - up.shape[-1]      # odd lengths lose a step to max pooling
        up = F.pad(up, [missing // 2, missing - missing // 2])
        return self.conv(torch.cat([skip, up], dim=1))


class UNet1D(nn.Module):
    """(B, C_in, L) -> (B, n_classes); any L >= 16 (four halvings)."""

    def __init__(self, in_channels: int, n_classes: int, *, base_width: int = 16, dropout: float = 0.0,
                 pattern: Sequence[tuple[int, int]] | None = None):
        super().__init__()
        check_pattern(pattern, N_SEARCHABLE, "UNet1D")
        entries = [pattern_entry(pattern, i, (3, 1)) for i in range(N_SEARCHABLE)]
        pairs = [entries[i:i + 2] for i in range(0, N_SEARCHABLE, 2)]
        b = base_width
        self.inc = DoubleConv1D(in_channels, b, pairs[0], dropout)
        self.downs = nn.ModuleList(
            DoubleConv1D(c_in, c_out, pairs[1 + i], dropout)
            for i, (c_in, c_out) in enumerate([(b, 2 * b), (2 * b, 4 * b), (4 * b, 8 * b), (8 * b, 8 * b)]))
        self.ups = nn.ModuleList(
            Up1D(c_in, c_out, pairs[5 + i], dropout)
            for i, (c_in, c_out) in enumerate([(16 * b, 4 * b), (8 * b, 2 * b), (4 * b, b), (2 * b, b)]))
        self.fc = nn.Linear(b, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = [self.inc(x)]
        for down in self.downs:
            skips.append(down(F.max_pool1d(skips[-1], 2)))
        out = skips.pop()
        for up in self.ups:
            out = up(out, skips.pop())
        return self.fc(out.mean(dim=-1))
