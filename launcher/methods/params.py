"""How a method declares its parameters (`Param`), and the parameter groups several methods share.

Each method class lists the keys it accepts under `methods: {<name>: {...}}` in a sweep YAML as
`params = {key: Param(...)}` (launcher/methods/base.py `Declaration`); `launcher.spec` validates a
sweep row against it and the method code reads the resolved values. Kept free of heavy imports (no
torch, no models) so validation is instant.
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

# `dasha` only: which evaluation protocol (launcher/methods/dasha.py, README "DASHA protocols").
DASHA_PROTOCOL_PARAMS: dict[str, Param] = {
    "protocol": Param("str", "clean", "clean: checkpoints and tuning on validation only, the task's literature "
                      "metric; reference: the authors' code where it differs - MCC for every genomics task (tuning "
                      "and report), and the final retrain ALSO records the test score at the best-TEST epoch "
                      "(test_*_testselected_leaky, LEAKY) next to the validation-selected one of the same run",
                      choices=("clean", "reference")),
    "final_train_val": Param("bool", False, "protocol reference only, LEAKY: the final retrain trains on train + "
                             "validation (the reference's 100 % of train); its validation score is then in-sample, "
                             "so only the test-selected and the last epoch's test scores mean anything"),
}


# The DASHA reference's ASHA space (docs/reference-protocol.md#asha): seed is a tuned "lottery", randint[0, 500).
ASHA_DASHA_SPACE: dict[str, dict] = {
    "seed": {"int": [0, 499]},
    "lr": {"log": [1e-5, 0.5]},
    "dropout": {"choice": [0.0, 0.05, 0.1]},
    "weight_decay": {"log": [5e-7, 5e-3]},
    "momentum": {"float": [0.9, 1.0]},
}
