"""Declared parameters of every method, so a sweep file can be checked before anything runs.

Each method lists the keys it accepts under `methods: {<name>: {...}}` in a sweep YAML, with the
expected kind and default. `launcher.spec.sweep` validates against this table; the method code reads
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
    # int kinds without a maximum: the largest sane value (only its own error mentions it);
    # None: launcher.spec.types.MAX_INT
    ceiling: int | None = None


SEED_MAX = 2**31 - 1    # numpy, torch and Nevergrad take every seed up to here
EPOCHS_MAX = 10**6


# Conv backbones of genomics and satellite tasks (launcher/methods/backbone.py, dasha.py). A null default
# means "the paper's value for this domain and task" (docs/reference-protocol.md#defaults, launcher/methods/conv_backbones.py).
CONV_BACKBONE_PARAMS: dict[str, Param] = {
    "arch": Param("str", None, "wrn: WRN-1D (genomics) / WRN-2D (satellite); unet: UNet-1D / UNet-2D; default wrn",
                  choices=("wrn", "unet"), nullable=True),
    "width": Param("int", None, "WRN-1D m (default 128), WRN-2D widen factor (8; forestnet 4) or UNet base width (64)",
                   minimum=1, nullable=True),
    "depth": Param("int", None, "WRN-2D depth 6n+4 (default 22; forestnet 16)", minimum=10, nullable=True),
    "lr": Param("float", 0.1, "learning rate (SGD-Nesterov; AdamW for UNet-2D)", minimum=0.0),
    "weight_decay": Param("float", 5e-4, "weight decay", minimum=0.0),
    "momentum": Param("float", 0.9, "SGD momentum (Nesterov when > 0)", minimum=0.0, maximum=1.0),
    "dropout": Param("float", 0.0, "dropout inside the backbone", minimum=0.0, maximum=0.9),
    "seed": Param("int", 0, "initialization, data order, dropout and augmentation seed of an HPO trial", minimum=0, ceiling=SEED_MAX),
    "batch_size": Param("int", None, "batch per rank; default 128 (genomics), 16 (satellite; 8 forestnet, bigearthnet)",
                        minimum=1, nullable=True),
    "epochs": Param("int", 20, "length of the HPO trials' step LR schedule (ASHA max_t); a final retrain's "
                    "schedule spans its own epochs", minimum=1, ceiling=EPOCHS_MAX),
    "max_batches_per_epoch": Param("int", None, "cap on training batches per epoch (CPU budgets; labelled)",
                                   minimum=1, nullable=True),
    "final_seed": Param("int", None, "set by the controller for final retrain trials: the replicate seed",
                        minimum=0, ceiling=SEED_MAX, nullable=True),
    "init_from": Param("str", None, "set by the controller for final retrain trials: the best HPO trial's folder, "
                       "whose init_weights.pt the retrain starts from", nullable=True),
}
DASH_SEARCH_PARAMS: dict[str, Param] = {
    "kernel_sizes": Param("int_list", None, "DASH kernel sizes K; default {3..11} genomics, {3,5,7,9} satellite",
                          minimum=1, nullable=True),
    "dilations": Param("int_list", None, "DASH dilations D; default {1,3,5,7} ({1,3,7,15} so2sat, bigearthnet, eurosat)",
                       minimum=1, nullable=True),
    "search_epochs": Param("int", None, "DASH search epochs; default 100 (UNet-2D 60)", minimum=1, ceiling=EPOCHS_MAX, nullable=True),
    "search_fraction": Param("float", 0.2, "share of the training batches per search epoch (quick_search)",
                             minimum=0.0, maximum=1.0),
    "search_batches_per_epoch": Param("int", None, "cap on search batches per epoch (CPU budgets; labelled)",
                                      minimum=1, nullable=True),
    "search_width": Param("int", None, "width of the searched supernet; default: WRN-1D/UNet-1D their width, "
                          "WRN-2D widen 1, UNet-2D the reference's UNet_small", minimum=1, nullable=True),
    "search_lr": Param("float", None, "search weight lr; default 0.1 (UNet-2D AdamW 2e-4)", minimum=0.0, nullable=True),
    "search_arch_lr": Param("float", None, "search architecture lr; default 0.05 (UNet-2D 1e-4)", minimum=0.0,
                            nullable=True),
    "grad_scale": Param("float", None, "architecture-gradient scale; default 100 (satellite per task)", minimum=0.0,
                        nullable=True),
    "search_seed": Param("int", 0, "seed of the DASH search (shared by every trial of a study)", minimum=0, ceiling=SEED_MAX),
}


# Adapter names the FM methods accept (written out, not imported from models.fm: validation stays light).
FINETUNE_ADAPTERS = ("nucleotide_transformer", "dnabert2", "hyenadna", "caduceus", "patchtst", "patchtsmixer",
                     "vit", "satmae", "scalemae", "croma")
ZEROSHOT_ADAPTERS = ("fracast", "patchtst", "patchtsmixer", "chronos")

METHOD_PARAMS: dict[str, dict[str, Param]] = {
    "backbone": dict(CONV_BACKBONE_PARAMS),
    "dasha": {**CONV_BACKBONE_PARAMS, **DASH_SEARCH_PARAMS},
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
        "seed": Param("int", 0, "initialization and data-order seed", minimum=0, ceiling=SEED_MAX),
        "max_windows_per_epoch": Param("int", None, "subsample training windows per epoch (CPU budgets)", minimum=1, nullable=True),
    },
    "linear": {
        "lr": Param("float", 1e-3, "Adam learning rate", minimum=0.0),
        "weight_decay": Param("float", 0.0, "Adam weight decay", minimum=0.0),
        "batch_size": Param("int", 32, "windows per batch and rank (each with all its channels)", minimum=1),
        "seed": Param("int", 0, "initialization and data-order seed", minimum=0, ceiling=SEED_MAX),
        "epochs": Param("int", 10, "length of the LR schedule in epochs (ASHA may stop a trial earlier)", minimum=1, ceiling=EPOCHS_MAX),
        "schedule": Param("str", "constant", "LR schedule over `epochs`", choices=("constant", "cosine", "warmup_cosine")),
        "normalize_last": Param("bool", False, "subtract the context's last value first (NLinear)"),
        "dropout": Param("float", 0.0, "dropout on the context", minimum=0.0, maximum=0.9),
        "max_windows_per_epoch": Param("int", None, "subsample training windows per epoch (CPU budgets)", minimum=1, nullable=True),
    },
    "synthetic": {
        "x": Param("float", 0.5, "first coordinate of the configuration", minimum=0.0, maximum=1.0),
        "y": Param("float", 0.5, "second coordinate of the configuration", minimum=0.0, maximum=1.0),
        "seed": Param("int", 0, "noise seed", minimum=0, ceiling=SEED_MAX),
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
    "finetune": {
        "adapter": Param("str", None, "FM adapter (models.fm.base.ADAPTERS); null: the domain's default, patchtst / "
                         "nucleotide_transformer / vit", choices=FINETUNE_ADAPTERS, nullable=True),
        "checkpoint": Param("path", None, "local folder holding the pretrained checkpoint (README: 'Foundation models' "
                            "lists the public ids to fetch); null only with stand_in: tiny", nullable=True),
        "stand_in": Param("str", "none", "tiny: a random-init stand-in of the adapter's architecture, written on demand "
                          "into the sweep cache (offline CPU sweeps; labelled, never the pretrained FM)",
                          choices=("none", "tiny")),
        "train_layers": Param("str", "full", "what trains: head only, full model, or LoRA (peft) + head",
                              choices=("head", "full", "lora")),
        "lora_rank": Param("int", 8, "LoRA rank r (alpha = 2r) when train_layers is lora", minimum=1),
        "lr": Param("float", 1e-4, "AdamW learning rate (peak of the warm-up + cosine schedule)", minimum=0.0),
        "weight_decay": Param("float", 0.01, "AdamW weight decay", minimum=0.0),
        "warmup_epochs": Param("int", 1, "linear LR warm-up in epochs, then cosine decay over `epochs`", minimum=0, ceiling=EPOCHS_MAX),
        "epochs": Param("int", 10, "length of the LR schedule in epochs (ASHA may stop a trial earlier)", minimum=1, ceiling=EPOCHS_MAX),
        "batch_size": Param("int", 32, "examples (forecasting: windows, each with all its channels) per batch and rank",
                            minimum=1),
        "seed": Param("int", 0, "head/LoRA initialization and data-order seed", minimum=0, ceiling=SEED_MAX),
        "max_batches_per_epoch": Param("int", None, "train on at most this many batches per epoch (CPU budgets)",
                                       minimum=1, nullable=True),
        "eval_stride": Param("int", 1, "score every k-th val/test example or window (1 = all; larger values are "
                             "labelled in the report)", minimum=1),
        "final_seed": Param("int", None, "set by the controller for final retrain trials: the replicate seed "
                            "(replaces seed)", minimum=0, ceiling=SEED_MAX, nullable=True),
        "init_from": Param("str", None, "set by the controller for final retrain trials: the best HPO trial's folder "
                           "(recorded only: the retrain starts again from the pretrained checkpoint)", nullable=True),
        "allow_download": Param("bool", False, "fetch a missing checkpoint from the Hugging Face Hub into `checkpoint`"),
        "trust_remote_code": Param("bool", False, "let remote-code checkpoints (DNABERT-2, HyenaDNA, Caduceus) run the "
                                   "Python files inside their folder"),
    },
    "zeroshot": {
        "adapter": Param("str", "fracast", "forecasting FM adapter", choices=ZEROSHOT_ADAPTERS),
        "checkpoint": Param("path", None, "local checkpoint folder; null: fracast's weights bundled in its wheel",
                            nullable=True),
        "stand_in": Param("str", "none", "tiny: a random-init stand-in (tests the path offline; labelled)",
                          choices=("none", "tiny")),
        "eval_stride": Param("int", 1, "evaluate every k-th test window (1 = all, the paper protocol; larger values "
                             "are labelled in the report)", minimum=1),
        "batch_size": Param("int", 16, "series per forward pass", minimum=1),
        "allow_download": Param("bool", False, "fetch a missing checkpoint from the Hugging Face Hub into `checkpoint`"),
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
    "backbone": "supervised",
    "dasha": "supervised",
    "finetune": "fine-tuned FM",
    "zeroshot": "zero-shot FM",
}

# The task domains each method applies to; a sweep pairs a method only with tasks of its domains.
FORECASTING = ("forecasting",)
METHOD_DOMAINS: dict[str, tuple[str, ...]] = {
    "autoar": FORECASTING, "naive": FORECASTING, "seasonal_naive": FORECASTING, "fracast": FORECASTING,
    "auto_arima": FORECASTING, "dlinear": FORECASTING, "linear": FORECASTING,
    "synthetic": ("forecasting", "genomics", "satellite"),
    "backbone": ("genomics", "satellite"), "dasha": ("genomics", "satellite"),
    "finetune": ("forecasting", "genomics", "satellite"), "zeroshot": FORECASTING,
}


def method_domains(name: str) -> tuple[str, ...]:
    return METHOD_DOMAINS.get(name, FORECASTING)


# A deterministic method gives the same result for every seed: the sweep runs it once and the
# report labels it "deterministic" instead of pretending to have seed replicates.
DETERMINISTIC: frozenset[str] = frozenset({"autoar", "naive", "seasonal_naive", "fracast", "auto_arima", "zeroshot"})


# Methods trained in epochs: they run in segments (one per ASHA rung), checkpoint, and resume.
MULTI_FIDELITY: frozenset[str] = frozenset({"dlinear", "linear", "synthetic", "backbone", "dasha", "finetune"})

# The validation objective each multi-fidelity method reports per epoch, and its direction; a method
# whose objective depends on the task's domain maps domain -> (objective, direction). Read it through
# `method_objective`.
OBJECTIVE: dict[str, tuple[str, str] | dict[str, tuple[str, str]]] = {
    "dlinear": ("best_val_mse", "min"),
    "linear": ("best_val_mse", "min"),
    "synthetic": ("best_val_loss", "min"),
    "backbone": ("best_val_score", "max"),
    "dasha": ("best_val_score", "max"),
    # classification: the task's literature metric (MCC, F1, accuracy, AP), higher is better
    "finetune": {"forecasting": ("best_val_mse", "min"), "genomics": ("best_val_score", "max"),
                 "satellite": ("best_val_score", "max")},
}


def method_objective(name: str, domain: str) -> tuple[str | None, str]:
    """(objective metric, "min"/"max") of method `name` on a task of `domain`; (None, "min") when it has none."""
    entry = OBJECTIVE.get(name, (None, "min"))
    return entry.get(domain, (None, "min")) if isinstance(entry, dict) else entry


# The DASHA reference's ASHA space (docs/reference-protocol.md#asha): seed is a tuned "lottery", randint[0, 500).
ASHA_DASHA_SPACE: dict[str, dict] = {
    "seed": {"int": [0, 499]},
    "lr": {"log": [1e-5, 0.5]},
    "dropout": {"choice": [0.0, 0.05, 0.1]},
    "weight_decay": {"log": [5e-7, 5e-3]},
    "momentum": {"float": [0.9, 1.0]},
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
    "backbone": ASHA_DASHA_SPACE,
    "dasha": ASHA_DASHA_SPACE,
    "finetune": {
        "lr": {"log": [1e-5, 1e-2]},
        "weight_decay": {"log": [1e-6, 1e-1]},
        "warmup_epochs": {"choice": [0, 1, 2]},
        "train_layers": {"choice": ["head", "full", "lora"]},
    },
}
