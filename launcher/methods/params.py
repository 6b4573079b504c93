"""Declared parameters of every method, so a sweep file can be checked before anything runs.

Each method lists the keys it accepts under `methods: {<name>: {...}}` in a sweep YAML, with the
expected kind and default. `launcher.config` validates against this table; the method code reads
the resolved values. Kept free of heavy imports (no torch, no models) so validation is instant.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Param:
    kind: str  # "int", "float", "str", "bool", "int_list", "path"
    default: Any
    help: str
    choices: tuple | None = None
    minimum: float | None = None
    maximum: float | None = None
    nullable: bool = False


METHOD_PARAMS: dict[str, dict[str, Param]] = {
    "autoar": {
        "deltas": Param("int_list", [0, 2, 4, 8, 16], "lag candidates p = context - d - delta (paper, Oct 2024)", minimum=0),
        "lags": Param("int_list", None, "explicit lag candidates instead of deltas, e.g. [64, 96, 128, 192] (AutoAR main, Mar 2025)", minimum=1, nullable=True),
        "max_diff": Param("int", 2, "largest differencing order KPSS may choose", minimum=0, maximum=2),
        "kpss_alpha": Param("float", 0.05, "KPSS significance: a channel is stationary when p > alpha", minimum=0.0, maximum=1.0),
    },
    "naive": {},
    "seasonal_naive": {
        "period": Param("int", None, "season length in steps; default: one day (hourly 24, 15-min 96, 10-min 144) or 52 weeks", minimum=1, nullable=True),
    },
    "fracast": {
        "weights": Param("str", "w8", "bundled checkpoint variant", choices=("w8", "fp32")),
        "model_dir": Param("path", None, "local folder with config.json + safetensors; default: the weights inside the fracast wheel", nullable=True),
        "eval_stride": Param("int", 1, "evaluate every k-th test window (1 = all, the paper protocol; larger values are labelled in the report)", minimum=1),
        "batch_size": Param("int", 16, "series per forward pass (small batches are faster on CPU)", minimum=1),
    },
}


def method_names() -> list[str]:
    return sorted(METHOD_PARAMS)


# What each method is, for the report's labels ("supervised", "baseline", "zero-shot FM").
METHOD_KIND: dict[str, str] = {
    "autoar": "supervised",
    "naive": "baseline",
    "seasonal_naive": "baseline",
    "fracast": "zero-shot FM",
}

# A deterministic method gives the same result for every seed: the sweep runs it once and the
# report labels it "deterministic" instead of pretending to have seed replicates.
DETERMINISTIC: frozenset[str] = frozenset({"autoar", "naive", "seasonal_naive", "fracast"})
