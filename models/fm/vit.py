"""Satellite FMs as transformers ViTs with any number of input bands, plus an image-classification head.

Forward contract: x (B, in_channels, H, W) float, already normalized by the task -> logits
(B, n_classes). H and W may differ from the checkpoint's image size: the position embeddings are
then interpolated (transformers' `interpolate_pos_encoding`), so a 224-px checkpoint serves 64-px
patches without re-initialising anything.

Band adaptation, when the checkpoint has S input bands and the task N != S (e.g. an RGB ViT on
13-band Sentinel-2), is chosen by `band_init`:
- "repeat" (default): the pretrained patch-embedding kernel of band c % S is copied to band c and
  every kernel is scaled by S / N, so an input whose N bands carry the same signal as the S
  pretrained ones gives the same embedding as before (the rule of timm's `adapt_input_conv`).
- "reinit": the patch-embedding kernel is freshly initialised (its bias is still loaded).
`band_adaptation` records which one happened.

SatMAE, Scale-MAE and CROMA are ViT encoders too, but their public weights use their own layouts
(timm-style fused qkv, grouped spectral patch embeddings, radar/optical pairs). These adapters load
them once converted to a transformers ViT folder (config.json with model_type "vit"); their
`public_model_id` names where the original weights are published.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from .base import FMAdapter, ImageClassification
from .checkpoint import FMCheckpointError, read_checkpoint_tensor, summarize_loading_info

BAND_INIT_MODES = ("repeat", "reinit")
PATCH_WEIGHT_KEYS = ("vit.embeddings.patch_embeddings.projection.weight",
                     "embeddings.patch_embeddings.projection.weight")


def repeat_band_weights(weight: torch.Tensor, n_bands: int) -> torch.Tensor:
    """(D, S, p, p) patch kernels -> (D, n_bands, p, p): band c takes kernel c % S, all scaled by S / n_bands."""
    source_bands = weight.shape[1]
    index = torch.arange(n_bands) % source_bands
    return weight[:, index] * (source_bands / n_bands)


class ViTAdapter(FMAdapter):
    """A transformers ViT encoder + classification head on the [CLS] token."""

    name = "vit"
    public_model_id = "google/vit-base-patch16-224-in21k"
    head_specs = (ImageClassification,)
    expected_model_types = ("vit",)
    # transformers >= 5 names the projections q_proj/v_proj, earlier versions query/value.
    lora_target_modules = ("q_proj", "v_proj", "query", "value")

    def __init__(self, spec: ImageClassification, folder: Path, model: nn.Module, band_adaptation: str):
        super().__init__(spec, folder)
        self.model = model
        self.band_adaptation = band_adaptation
        size = model.config.image_size
        self.image_size = tuple(size) if isinstance(size, (list, tuple)) else (size, size)

    @classmethod
    def _load(cls, folder: Path, spec: ImageClassification, *, band_init: str = "repeat",
              **options: Any) -> "ViTAdapter":
        if options:
            raise TypeError(f"unexpected options for {cls.name!r}: {sorted(options)}")
        if band_init not in BAND_INIT_MODES:
            raise ValueError(f"band_init must be one of {BAND_INIT_MODES}, got {band_init!r}")
        from transformers import ViTConfig, ViTForImageClassification

        config = ViTConfig.from_pretrained(folder, local_files_only=True)
        source_bands = int(config.num_channels)
        config.num_channels = spec.in_channels
        config.num_labels = spec.n_classes
        model, info = ViTForImageClassification.from_pretrained(
            folder, config=config, local_files_only=True, ignore_mismatched_sizes=True, output_loading_info=True)
        adaptation = f"checkpoint bands used as they are ({source_bands})"
        if source_bands != spec.in_channels and band_init == "repeat":
            source = read_checkpoint_tensor(folder, PATCH_WEIGHT_KEYS)
            if source is None:
                raise FMCheckpointError(folder, cls.public_model_id, [
                    f"the weights hold no patch-embedding kernel ({' or '.join(PATCH_WEIGHT_KEYS)})"], cls.fetch_note)
            with torch.no_grad():
                model.vit.embeddings.patch_embeddings.projection.weight.copy_(
                    repeat_band_weights(source.float(), spec.in_channels))
            adaptation = f"repeated {source_bands} -> {spec.in_channels} bands, scaled by {source_bands}/{spec.in_channels}"
        elif source_bands != spec.in_channels:
            adaptation = f"patch embedding re-initialised for {spec.in_channels} bands (checkpoint has {source_bands})"
        adapter = cls(spec, folder, model, adaptation)
        adapter.loading_info = summarize_loading_info(info)
        return adapter

    @property
    def backbone(self) -> nn.Module:
        return self.model.vit

    @property
    def head(self) -> nn.Module:
        return self.model.classifier

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1] != self.spec.in_channels:
            raise ValueError(f"{self.name} takes (B, {self.spec.in_channels}, H, W) images, got {tuple(x.shape)}")
        resized = tuple(x.shape[-2:]) != self.image_size
        return self.model(pixel_values=x.float(), interpolate_pos_encoding=resized).logits


class SatMAEAdapter(ViTAdapter):
    name = "satmae"
    public_model_id = "MVRL/satmae-vitlarge-fmow-pretrain-800"
    fetch_note = "SatMAE's published weights are timm-style; convert them to a transformers ViT folder first"


class ScaleMAEAdapter(ViTAdapter):
    name = "scalemae"
    public_model_id = "MVRL/scalemae-vitlarge-800"
    fetch_note = "Scale-MAE's published weights are timm-style; convert them to a transformers ViT folder first"


class CROMAAdapter(ViTAdapter):
    name = "croma"
    public_model_id = "antofuller/CROMA"
    fetch_note = "CROMA's published weights (CROMA_base.pt / CROMA_large.pt) must be converted to a transformers ViT folder first"
