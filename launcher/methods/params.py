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
        "fit_series": Param("str", "clean", "clean: contiguous train+val rows; reference: the authors' train + (val with its "
                            "context prefix), which repeats the last context rows of train", choices=("clean", "reference")),
    },
    "naive": {},
    "seasonal_naive": {
        "period": Param("int", None, "season length in steps; default: one day (hourly 24, 15-min 96, 10-min 144) or 52 weeks", minimum=1, nullable=True),
    },
    "dlinear": {
        "lr": Param("float", 5e-3, "Adam learning rate", minimum=0.0),
        "weight_decay": Param("float", 0.0, "Adam weight decay", minimum=0.0),
        "batch_size": Param("int", 32, "windows per batch (each with all its channels)", minimum=1),
        "moving_avg": Param("int", 25, "moving-average kernel of the trend (odd)", minimum=1),
        "seed": Param("int", 0, "initialization and data-order seed", minimum=0),
        "max_windows_per_epoch": Param("int", None, "subsample training windows per epoch (CPU budgets)", minimum=1, nullable=True),
    },
    "linear": {
        "lr": Param("float", 1e-3, "Adam learning rate", minimum=0.0),
        "weight_decay": Param("float", 0.0, "Adam weight decay", minimum=0.0),
        "batch_size": Param("int", 32, "windows per batch and rank (each with all its channels)", minimum=1),
        "seed": Param("int", 0, "initialization and data-order seed", minimum=0),
        "epochs": Param("int", 10, "length of the LR schedule in epochs (ASHA may stop a trial earlier)", minimum=1),
        "schedule": Param("str", "constant", "LR schedule over `epochs`", choices=("constant", "cosine", "warmup_cosine")),
        "normalize_last": Param("bool", False, "subtract the context's last value first (NLinear)"),
        "dropout": Param("float", 0.0, "dropout on the context", minimum=0.0, maximum=0.9),
        "max_windows_per_epoch": Param("int", None, "subsample training windows per epoch (CPU budgets)", minimum=1, nullable=True),
    },
    "synthetic": {
        "x": Param("float", 0.5, "first coordinate of the configuration", minimum=0.0, maximum=1.0),
        "y": Param("float", 0.5, "second coordinate of the configuration", minimum=0.0, maximum=1.0),
        "seed": Param("int", 0, "noise seed", minimum=0),
        "seconds_per_epoch": Param("float", 0.0, "sleep per epoch, to simulate training time", minimum=0.0),
        "fail_above": Param("float", None, "raise when x is above this (to exercise the failure policy)", nullable=True),
    },
    "fracast": {
        "weights": Param("str", "w8", "bundled checkpoint variant", choices=("w8", "fp32")),
        "model_dir": Param("path", None, "local folder with config.json + safetensors; default: the weights inside the fracast wheel", nullable=True),
        "eval_stride": Param("int", 1, "evaluate every k-th test window (1 = all, the paper protocol; larger values are labelled in the report)", minimum=1),
        "batch_size": Param("int", 16, "series per forward pass (small batches are faster on CPU)", minimum=1),
    },
    "auto_arima": {
        "season_length": Param("int", 1, "AutoARIMA season in steps; 1 = non-seasonal, the paper's AutoARIMA() default; null = the "
                               "dataset's season (ETTh 24, exchange 5) when it is <= 24, else non-seasonal (fit time grows "
                               "with the season: ETTm's 96 or weather's 144 are out of reach on CPU)", minimum=1, nullable=True),
        "eval_stride": Param("int", 1, "evaluate every k-th test window (1 = all, the paper protocol; larger values are labelled in the report)", minimum=1),
        "max_fit_rows": Param("int", None, "fit on the last N rows of train+val only (CPU budgets; labelled in the report); "
                              "default: all rows, as in the paper", minimum=64, nullable=True),
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
    "auto_arima": "baseline",
    "dlinear": "supervised",
    "linear": "supervised",
    "synthetic": "benchmark",
}

# The task domains each method applies to; a sweep pairs a method only with tasks of its domains.
FORECASTING = ("forecasting",)
METHOD_DOMAINS: dict[str, tuple[str, ...]] = {
    "autoar": FORECASTING, "naive": FORECASTING, "seasonal_naive": FORECASTING, "fracast": FORECASTING,
    "auto_arima": FORECASTING, "dlinear": FORECASTING, "linear": FORECASTING,
    "synthetic": ("forecasting", "genomics", "satellite"),
}


def method_domains(name: str) -> tuple[str, ...]:
    return METHOD_DOMAINS.get(name, FORECASTING)


# A deterministic method gives the same result for every seed: the sweep runs it once and the
# report labels it "deterministic" instead of pretending to have seed replicates.
DETERMINISTIC: frozenset[str] = frozenset({"autoar", "naive", "seasonal_naive", "fracast", "auto_arima"})


# Methods trained in epochs: they run in segments (one per ASHA rung), checkpoint, and resume.
MULTI_FIDELITY: frozenset[str] = frozenset({"dlinear", "linear", "synthetic"})

# The validation objective each multi-fidelity method reports per epoch, and its direction.
OBJECTIVE: dict[str, tuple[str, str]] = {
    "dlinear": ("best_val_mse", "min"),
    "linear": ("best_val_mse", "min"),
    "synthetic": ("best_val_loss", "min"),
}

# Search spaces used when a sweep names a multi-fidelity method without its own `space`.
DEFAULT_SPACES: dict[str, dict[str, dict]] = {
    "dlinear": {
        "lr": {"log": [1e-4, 1e-1]},
        "weight_decay": {"log": [1e-7, 1e-2]},
        "batch_size": {"choice": [16, 32, 64, 128]},
        "moving_avg": {"choice": [13, 25, 49, 97]},
    },
    "linear": {
        "lr": {"log": [1e-4, 1e-1]},
        "weight_decay": {"log": [1e-7, 1e-2]},
        "batch_size": {"choice": [16, 32, 64, 128]},
    },
    "synthetic": {"x": {"float": [0.0, 1.0]}, "y": {"float": [0.0, 1.0]}},
}
