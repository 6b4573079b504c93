"""UNet-2D classifier (reference: ritvikgupta199/DASHA `src/networks/unet2d.py`, the milesial Pytorch-UNet
with transposed-conv upsampling and a pooled classification head), with searchable (kernel_size, dilation).

Layout for encoder widths (e0..e4) and decoder widths (u1..u4):
  inc     DoubleConv(C_in -> e0)
  down_i  MaxPool(2) + DoubleConv(e_{i-1} -> e_i), i = 1..4
  up_i    ConvTranspose(c -> c // 2, 2, stride 2) on the coarser map (c channels), pad to the skip's size,
          concat [skip, up], DoubleConv(c // 2 + skip -> u_i)
  head    1x1 conv (u4 -> 4 u4) -> BN -> ReLU -> 1x1 conv (-> n_classes) -> global average pooling
DoubleConv = (conv 'same', no bias -> BN -> ReLU) x 2; every conv defaults to 3x3, dilation 1.

Presets: UNET2D_SMALL = the reference's `UNet_small` (25/50 channels; DASHA searches on it, and the
default here) and UNET2D_FULL = its `UNet` (64..1024; DASHA retrains it).
Deviation: `dropout` (tuned by ASHA) is applied after each DoubleConv; the reference ignores the tuned
value, which dropout = 0 (the default) reproduces. Transposed convs and the 1x1 head convs are not
searchable (the reference only mixes plain Conv2d, and its head sits under a name with "pool").

Searchable convs, pattern order (18): inc.1, inc.2, down1.1, down1.2, ..., down4.2, up1.1, ..., up4.2.
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from models.dash import SearchableConv2d, check_pattern, pattern_entry

N_SEARCHABLE = 18
UNET2D_SMALL = {"encoder_widths": (25, 25, 25, 25, 50), "decoder_widths": (50, 50, 50, 25)}
UNET2D_FULL = {"encoder_widths": (64, 128, 256, 512, 1024), "decoder_widths": (512, 256, 128, 64)}


class DoubleConv2D(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, pattern: Sequence[tuple[int, int]], dropout: float):
        super().__init__()
        (k1, d1), (k2, d2) = pattern
        self.layers = nn.Sequential(
            SearchableConv2d(in_channels, out_channels, k1, d1, bias=False), nn.BatchNorm2d(out_channels),
            nn.ReLU(),
            SearchableConv2d(out_channels, out_channels, k2, d2, bias=False), nn.BatchNorm2d(out_channels),
            nn.ReLU(),
            nn.Dropout(dropout),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


class Up2D(nn.Module):
    def __init__(self, in_channels: int, skip_channels: int, out_channels: int,
                 pattern: Sequence[tuple[int, int]], dropout: float):
        super().__init__()
        self.up = nn.ConvTranspose2d(in_channels, in_channels // 2, kernel_size=2, stride=2)
        self.conv = DoubleConv2D(in_channels // 2 + skip_channels, out_channels, pattern, dropout)

    def forward(self, low: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        up = self.up(low)
        dy, dx = skip.shape[-2] - up.shape[-2], skip.shape[-1] - up.shape[-1]  # odd sizes lose a row to pooling
        up = F.pad(up, [dx // 2, dx - dx // 2, dy // 2, dy - dy // 2])
        return self.conv(torch.cat([skip, up], dim=1))


class UNet2D(nn.Module):
    """(B, C_in, H, W) -> (B, n_classes); H, W >= 16 (four halvings)."""

    def __init__(self, in_channels: int, n_classes: int, *,
                 encoder_widths: Sequence[int] = UNET2D_SMALL["encoder_widths"],
                 decoder_widths: Sequence[int] = UNET2D_SMALL["decoder_widths"], dropout: float = 0.0,
                 pattern: Sequence[tuple[int, int]] | None = None):
        super().__init__()
        if len(encoder_widths) != 5 or len(decoder_widths) != 4:
            raise ValueError("UNet2D needs 5 encoder widths and 4 decoder widths")
        check_pattern(pattern, N_SEARCHABLE, "UNet2D")
        entries = [pattern_entry(pattern, i, (3, 1)) for i in range(N_SEARCHABLE)]
        pairs = [entries[i:i + 2] for i in range(0, N_SEARCHABLE, 2)]
        e = list(encoder_widths)
        self.inc = DoubleConv2D(in_channels, e[0], pairs[0], dropout)
        self.downs = nn.ModuleList(DoubleConv2D(e[i], e[i + 1], pairs[1 + i], dropout) for i in range(4))
        ups, coarse = [], e[4]
        for i, out_channels in enumerate(decoder_widths):
            ups.append(Up2D(coarse, e[3 - i], out_channels, pairs[5 + i], dropout))
            coarse = out_channels
        self.ups = nn.ModuleList(ups)
        last = decoder_widths[-1]
        self.head = nn.Sequential(nn.Conv2d(last, 4 * last, 1), nn.BatchNorm2d(4 * last), nn.ReLU(),
                                  nn.Conv2d(4 * last, n_classes, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = [self.inc(x)]
        for down in self.downs:
            skips.append(down(F.max_pool2d(skips[-1], 2)))
        out = skips.pop()
        for up in self.ups:
            out = up(out, skips.pop())
        return self.head(out).mean(dim=(-2, -1))
