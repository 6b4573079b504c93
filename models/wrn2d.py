"""WRN-d-w 2-D: pre-activation wide ResNet (Zagoruyko & Komodakis 2016) as in DASHA
(reference: ritvikgupta199/DASHA `src/networks/wide_resnet.py`), with searchable (kernel_size, dilation).

depth d = 6n + 4; stage widths [16, 16w, 32w, 64w]; strides 1, 2, 2.
  stem   conv (C_in -> 16)
  stages n basic blocks each:  BN -> ReLU -> conv1 -> Dropout -> BN -> ReLU -> conv2 (carries the stride)
         + shortcut (1x1 conv with the stride where shape changes, else identity)
  head   BN -> ReLU -> global average pooling -> Linear(64w, n_classes)
Convs default to 3x3, dilation 1, 'same' padding, with bias; conv weights Xavier-uniform (gain sqrt 2),
biases 0, as the reference initialises them. The final BatchNorm keeps the reference's momentum 0.9
(torch convention: running stats follow the last batch closely).

Searchable convs, pattern order (1 + 2 * 3n: 19 for WRN-22, 13 for WRN-16): stem, then per block in
stage order conv1, conv2. Shortcut 1x1 convs are not searchable.
Paper: search WRN-22-1 -> retrain WRN-22-8 (forestnet WRN-16-1 -> WRN-16-4); default here WRN-16-1.
"""
from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from models.dash import SearchableConv2d, check_pattern, pattern_entry


def n_searchable(depth: int) -> int:
    return 1 + 6 * ((depth - 4) // 6)


class WideBasic(nn.Module):
    def __init__(self, in_planes: int, planes: int, dropout: float, stride: int,
                 pattern: Sequence[tuple[int, int]]):
        super().__init__()
        (k1, d1), (k2, d2) = pattern
        self.bn1 = nn.BatchNorm2d(in_planes)
        self.conv1 = SearchableConv2d(in_planes, planes, k1, d1)
        self.dropout = nn.Dropout(dropout)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv2 = SearchableConv2d(planes, planes, k2, d2, stride)
        self.shortcut = (nn.Conv2d(in_planes, planes, 1, stride=stride) if stride != 1 or in_planes != planes
                         else nn.Identity())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.dropout(self.conv1(F.relu(self.bn1(x))))
        out = self.conv2(F.relu(self.bn2(out)))
        return out + self.shortcut(x)


class WRN2D(nn.Module):
    """(B, C_in, H, W) -> (B, n_classes)."""

    def __init__(self, in_channels: int, n_classes: int, *, depth: int = 16, widen_factor: int = 1,
                 dropout: float = 0.0, pattern: Sequence[tuple[int, int]] | None = None):
        super().__init__()
        if depth < 10 or (depth - 4) % 6:
            raise ValueError(f"WRN depth must be 6n + 4 with n >= 1, got {depth}")
        n = (depth - 4) // 6
        check_pattern(pattern, n_searchable(depth), f"WRN2D-{depth}")
        entries = [pattern_entry(pattern, i, (3, 1)) for i in range(n_searchable(depth))]
        widths = [16, 16 * widen_factor, 32 * widen_factor, 64 * widen_factor]
        self.stem = SearchableConv2d(in_channels, widths[0], *entries[0])
        blocks, in_planes, position = [], widths[0], 1
        for stage, stride in zip(range(3), (1, 2, 2)):
            for block in range(n):
                blocks.append(WideBasic(in_planes, widths[stage + 1], dropout, stride if block == 0 else 1,
                                        entries[position:position + 2]))
                in_planes, position = widths[stage + 1], position + 2
        self.blocks = nn.Sequential(*blocks)
        self.bn = nn.BatchNorm2d(widths[3], momentum=0.9)
        self.linear = nn.Linear(widths[3], n_classes)
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.xavier_uniform_(module.weight, gain=math.sqrt(2))
                nn.init.zeros_(module.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn(self.blocks(self.stem(x))))
        return self.linear(out.mean(dim=(-2, -1)))
