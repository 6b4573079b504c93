"""Forecasting FMs from transformers: PatchTST and PatchTSMixer (fine-tunable), Chronos (zero-shot).

Forward contract (all three): x (B, context) univariate rows -> (B, horizon), or x (B, context, C)
-> (B, horizon, C); values in the task's (z-scored) units, returned in the same units. The models
are used channel-independently: channels are folded into the batch, so a checkpoint pretrained on
7 channels serves any channel count, and every channel gets the same weights.

Loading a checkpoint for another context or horizon re-initialises what depends on them and says
so in `loading_info["mismatched"]`: the forecast head (its output is the horizon; its input is
d_model, or patches x d_model when the config has no patch pooling) and PatchTST's position table
(one row per patch; a "sincos" table is recomputed, not learned, and stays frozen). The
point-forecast (MSE) head is always used: a checkpoint trained with a distribution head gets a new
point head. PatchTSMixer mixes across patches with MLPs sized by the patch count, so a new context
re-initialises those mixers too: keep the checkpoint's context to keep its weights. Each window is scaled by the model's own scaler (`scaling` in config.json, "std" by
default), as these FMs were pretrained.
"""
from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn

from .base import FMAdapter, FMUnavailableError, Forecasting
from .checkpoint import read_config, summarize_loading_info


def _fold_channels(x: torch.Tensor, context: int) -> tuple[torch.Tensor, tuple[int, ...]]:
    """(B, L) or (B, L, C) -> (B*C, L, 1) and what `_unfold_channels` needs to undo it."""
    if x.ndim not in (2, 3) or x.shape[1] != context:
        raise ValueError(f"forecasting adapters take (B, {context}) or (B, {context}, C) inputs, got {tuple(x.shape)}")
    if x.ndim == 2:
        return x.unsqueeze(-1), (x.shape[0],)
    batch, length, channels = x.shape
    return x.permute(0, 2, 1).reshape(batch * channels, length, 1), (batch, channels)


def _unfold_channels(y: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
    """(B*C, H) -> (B, H) or (B, H, C)."""
    if len(shape) == 1:
        return y
    batch, channels = shape
    return y.reshape(batch, channels, -1).permute(0, 2, 1)


class _TransformersForecastAdapter(FMAdapter):
    """Shared loading for the transformers forecasting models whose backbone is `.model` and head `.head`."""

    head_specs = (Forecasting,)
    model_class_name: ClassVar[str] = ""
    context_key: ClassVar[str] = "context_length"

    def __init__(self, spec: Forecasting, folder: Path, model: nn.Module):
        super().__init__(spec, folder)
        self.model = model

    @classmethod
    def _load(cls, folder: Path, spec: Forecasting, **options: Any) -> "_TransformersForecastAdapter":
        if options:
            raise TypeError(f"unexpected options for {cls.name!r}: {sorted(options)}")
        import transformers

        model_class = getattr(transformers, cls.model_class_name)
        # Built through __init__ (not by setting attributes) so derived fields such as PatchTSMixer's
        # num_patches follow the new context length.
        settings = {key: value for key, value in read_config(folder).items() if key != "num_patches"}
        settings.update(context_length=spec.context, prediction_length=spec.horizon,
                        num_input_channels=1,   # channel-independent: channels are folded into the batch
                        loss="mse")             # point forecasts
        config = model_class.config_class.from_dict(settings)
        model, info = model_class.from_pretrained(folder, config=config, local_files_only=True,
                                                  ignore_mismatched_sizes=True, output_loading_info=True)
        adapter = cls(spec, folder, model)
        adapter.loading_info = summarize_loading_info(info)
        return adapter

    @property
    def backbone(self) -> nn.Module:
        return self.model.model

    @property
    def head(self) -> nn.Module:
        return self.model.head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        past, shape = _fold_channels(x.float(), self.spec.context)
        prediction = self.model(past_values=past).prediction_outputs   # (B*C, horizon, 1)
        return _unfold_channels(prediction[..., 0], shape)


class PatchTSTAdapter(_TransformersForecastAdapter):
    """PatchTST (Nie et al. 2023) via transformers' PatchTSTForPrediction."""

    name = "patchtst"
    public_model_id = "ibm-granite/granite-timeseries-patchtst"
    expected_model_types = ("patchtst",)
    model_class_name = "PatchTSTForPrediction"
    lora_target_modules = ("q_proj", "v_proj")


    def _fixed_parameters(self) -> list[nn.Parameter]:
        # A "sincos" position table is a fixed function of the patch index, never trained.
        if self.model.config.positional_encoding_type == "sincos":
            return [self.model.model.encoder.positional_encoder.position_enc]
        return []


class PatchTSMixerAdapter(_TransformersForecastAdapter):
    """PatchTSMixer (Ekambaram et al. 2023) via transformers' PatchTSMixerForPrediction (no attention: LoRA on the MLPs)."""

    name = "patchtsmixer"
    public_model_id = "ibm-granite/granite-timeseries-patchtsmixer"
    expected_model_types = ("patchtsmixer",)
    model_class_name = "PatchTSMixerForPrediction"
    lora_target_modules = ("fc1", "fc2")


class ChronosAdapter(FMAdapter):
    """Chronos (Ansari et al. 2024, T5 tokens over scaled values) as a zero-shot forecaster.

    Needs the `chronos-forecasting` package (import name `chronos`); forward returns the median of
    the model's forecast distribution. Zero-shot only: `trainable_groups` refuses every mode.
    """

    name = "chronos"
    public_model_id = "amazon/chronos-t5-small"
    head_specs = (Forecasting,)
    expected_model_types = ("t5",)

    def __init__(self, spec: Forecasting, folder: Path, pipeline: Any):
        super().__init__(spec, folder)
        self.pipeline = pipeline
        self.network = pipeline.model   # registered so n_parameters() counts it
        for param in self.network.parameters():
            param.requires_grad_(False)

    @classmethod
    def check_dependencies(cls) -> None:
        try:
            importlib.import_module("chronos")
        except ImportError as exc:
            raise FMUnavailableError("the Chronos adapter needs the 'chronos' package: "
                                     "pip install chronos-forecasting") from exc

    @classmethod
    def _load(cls, folder: Path, spec: Forecasting, **options: Any) -> "ChronosAdapter":
        from chronos import BaseChronosPipeline

        return cls(spec, folder, BaseChronosPipeline.from_pretrained(str(folder), device_map="cpu", **options))

    @property
    def backbone(self) -> nn.Module:
        return self.network

    @property
    def head(self) -> nn.Module:
        return nn.Identity()

    def trainable_groups(self, mode: str, **lora: Any) -> list[dict[str, Any]]:
        raise ValueError("the Chronos adapter is zero-shot only: fine-tuning Chronos is not wired in")

    @torch.no_grad()
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        past, shape = _fold_channels(x.float().cpu(), self.spec.context)
        quantiles, _ = self.pipeline.predict_quantiles(past[..., 0], prediction_length=self.spec.horizon,
                                                       quantile_levels=[0.5])
        return _unfold_channels(quantiles[..., 0].float(), shape)
