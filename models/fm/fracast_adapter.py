"""Fracast-0 through the FM adapter interface, as a zero-shot forecaster.

Forward contract: x (B, context) univariate rows -> (B, horizon) median forecasts, or x (B, context,
C) -> (B, horizon, C); float32 tensors in the input's units. The package's forecast path is numpy
under `torch.inference_mode`, so there is nothing to fine-tune: `trainable_groups` refuses every
mode and `n_parameters().trainable` is 0.

`folder=None` uses the weights bundled in the `fracast` wheel (no network). A folder must hold the
release layout of `ztxtech/fracast-0`: config.json plus model.int8.safetensors and w8_manifest.json
(weights="w8", the default) or model.safetensors (weights="fp32"). The functions of
`models.fm.fracast` stay as they are (the launcher's fracast method uses them); this adapter wraps
`FracastForecaster`.
"""
from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from .base import FMAdapter, FMUnavailableError, Forecasting, TaskHeadSpec
from .checkpoint import hf_checkpoint_problems
from .fracast import PRETRAINING_NOTE, PUBLIC_MODEL_ID, FracastForecaster

WEIGHT_FILES = {"w8": ("model.int8.safetensors", "w8_manifest.json"), "fp32": ("model.safetensors",)}


class FracastAdapter(FMAdapter):
    """Zero-shot Fracast-0 (85k parameters); forward: (B, context[, C]) -> (B, horizon[, C]) medians."""

    name = "fracast"
    public_model_id = PUBLIC_MODEL_ID
    head_specs = (Forecasting,)
    notes = (PRETRAINING_NOTE,)

    def __init__(self, spec: Forecasting, folder: Path | None, forecaster: FracastForecaster):
        super().__init__(spec, folder)
        self.forecaster = forecaster
        # Registered as submodules so n_parameters() sees the weights; frozen: the model is zero-shot.
        self.core = forecaster.model.core
        self.quantile_head = forecaster.model.head
        for param in self.parameters():
            param.requires_grad_(False)

    @classmethod
    def from_pretrained(cls, folder: str | Path | None, task_head_spec: TaskHeadSpec, **options: Any) -> "FracastAdapter":
        """`folder=None`: the weights bundled in the wheel; otherwise a release folder (see the module doc)."""
        if folder is not None:
            return super().from_pretrained(folder, task_head_spec, **options)
        if not isinstance(task_head_spec, Forecasting):
            raise TypeError(f"adapter 'fracast' builds Forecasting heads, got {type(task_head_spec).__name__}")
        cls.check_dependencies()
        options.pop("allow_download", None)
        options.pop("model_id", None)
        return cls._load(None, task_head_spec, **options)

    @classmethod
    def check_dependencies(cls) -> None:
        try:
            importlib.import_module("fracast")
        except ImportError as exc:
            raise FMUnavailableError("the Fracast adapter needs the 'fracast' package: pip install fracast "
                                     "(its wheel ships the weights)") from exc

    @classmethod
    def checkpoint_problems(cls, folder: Path, options: dict[str, Any]) -> list[str]:
        weights = options.get("weights", "w8")
        if weights not in WEIGHT_FILES:
            raise ValueError(f"weights must be one of {sorted(WEIGHT_FILES)}, got {weights!r}")
        return hf_checkpoint_problems(folder, WEIGHT_FILES[weights], weights=False)

    @classmethod
    def _load(cls, folder: Path | None, spec: Forecasting, *, weights: str = "w8", batch_size: int = 8,
              device: str = "cpu") -> "FracastAdapter":
        # Small batches: the package's cost per series grows with the batch on CPU (see models.fm.fracast).
        forecaster = FracastForecaster(spec.horizon, model_dir=folder, weights=weights, batch_size=batch_size,
                                       device=device)
        return cls(spec, folder, forecaster)

    @property
    def backbone(self) -> nn.Module:
        return self.core

    @property
    def head(self) -> nn.Module:
        return self.quantile_head

    def trainable_groups(self, mode: str, **lora: Any) -> list[dict[str, Any]]:
        raise ValueError("fracast is a zero-shot forecaster: its package exposes no differentiable forward, "
                         "so there is nothing to fine-tune")

    @torch.no_grad()
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        context = self.spec.context
        if x.ndim not in (2, 3) or x.shape[1] != context:
            raise ValueError(f"fracast takes (B, {context}) or (B, {context}, C) inputs, got {tuple(x.shape)}")
        values = x.detach().to("cpu", torch.float64).numpy()
        if x.ndim == 2:
            return torch.from_numpy(self.forecaster.forecast(values)).float().to(x.device)
        batch, _, channels = values.shape
        rows = np.ascontiguousarray(values.transpose(0, 2, 1).reshape(batch * channels, context))
        out = self.forecaster.forecast(rows).reshape(batch, channels, -1).transpose(0, 2, 1)
        return torch.from_numpy(np.ascontiguousarray(out)).float().to(x.device)
