"""The paper's convolutional backbones for genomics and satellite tasks, and their per-domain defaults.

One place answers "which network, how wide, with which LR schedule and which DASH search settings"
for a (domain, task, arch) triple, so that `backbone` (the plain WRN / UNet rows) and `dasha`
(the same network with a searched kernel pattern) cannot drift apart.

Defaults are those of docs/reference-protocol.md#defaults (the DASHA code's task_configs):
- genomics: WRN-1D, m = 128 (or UNet-1D, base 64); batch 128; K {3,5,7,9,11}, D {1,3,5,7}; grad_scale 100.
- satellite: WRN-22-8 searched at WRN-22-1 (forestnet: WRN-16-4 searched at WRN-16-1), or the full UNet
  searched on UNet_small; batch 16 (8 for forestnet, BigEarthNet-10%); K {3,5,7,9}; D {1,3,7,15} for
  so2sat / bigearthnet / eurosat, else {1,3,5,7}; grad_scale per task; label smoothing 0.1 and
  flip/rot90 augmentation on single-label tasks.
- LR schedules: the reference's `weight_sched_hpo` / `weight_sched_train`, with its milestones written
  as FRACTIONS of the stage's epoch budget so that a CPU budget of a few epochs keeps the shape (HPO
  stage: the retrain milestones / 5 over max_t = 20, UNet-1D / 10; final retrain: 30/60/90/120/160 of
  200 for 1-D, 60/120/160 of 200 for 2-D). Step x0.2 by the reference's rule `epoch > m` on the 0-based
  index of the epoch about to run (schedule `reference_step`: at the full budget the first decay is
  felt in the 8th HPO epoch and the 32nd retrain epoch). UNet-2D trains with AdamW on the reference's
  linear warm-up from lr 0 (its first epoch runs at lr 0) and linear decay to 0 at 85 (HPO) / 105
  (retrain) (schedule `reference_warmup_linear`). Both are the default for every protocol: they are
  the reference's schedule, not a use of test data. (Before, steps fell one epoch early and the
  UNet-2D warm-up started at lr/6 followed by a cosine.)
- The reference retrains UNet-2D for 100 epochs, the others for 200: the final retrain's length is
  the sweep's `search.final_epochs` (sweeps/satellite.yaml); a UNet-2D sweep should set it to 100.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from torch import nn

ARCHES = ("wrn", "unet")

# docs/reference-protocol.md#grad-scale: grad_scale per satellite task (default 100); the coffee scenes stand in for brick-kiln.
SATELLITE_GRAD_SCALE = {"m-so2sat": 500, "m-brick-kiln": 500, "m-pv4ger": 500, "brazilian_coffee_scenes": 500,
                        "eurosat": 1000, "canadian_cropland": 1000, "fmow": 1000}
WIDE_DILATION_TASKS = ("m-so2sat", "m-bigearthnet", "eurosat", "bigearthnet")
SMALL_BATCH_TASKS = ("m-forestnet", "bigearthnet")

# (step milestones as fractions of the stage's epochs) per backbone, for the HPO and the final stage.
HPO_MILESTONES = {"wrn1d": (6 / 20, 12 / 20, 18 / 20), "unet1d": (3 / 20, 6 / 20, 9 / 20, 12 / 20, 16 / 20),
                  "wrn2d": (12 / 20,)}
FINAL_MILESTONES = {"wrn1d": (30 / 200, 60 / 200, 90 / 200, 120 / 200, 160 / 200),
                    "unet1d": (30 / 200, 60 / 200, 90 / 200, 120 / 200, 160 / 200),
                    "wrn2d": (60 / 200, 120 / 200, 160 / 200)}
# UNet-2D: (warm-up epochs, decay horizon) per 20 HPO epochs / per 100 retrain epochs.
UNET2D_SCHEDULE = {"hpo": (5 / 20, 85 / 20), "final": (5 / 100, 105 / 100)}


@dataclass(frozen=True)
class BackboneChoice:
    """The resolved network of one trial: which backbone, how wide, and how it is trained."""

    kind: str                  # wrn1d | unet1d | wrn2d | unet2d
    width: int                 # WRN-1D m, UNet base width, WRN-2D widen factor
    depth: int | None          # WRN-2D only
    search_width: int | None   # the (narrower) width the DASH supernet is trained at; None: UNet_small
    batch_size: int
    optimizer: str             # sgd (Nesterov) | adamw
    label_smoothing: float
    augment: bool              # flips + rot90 (satellite, single-label)

    def describe(self) -> str:
        if self.kind == "wrn2d":
            return f"WRN-{self.depth}-{self.width}"
        return {"wrn1d": f"WRN-1D (m={self.width})", "unet1d": f"UNet-1D (base {self.width})",
                "unet2d": f"UNet-2D (base {self.width})"}[self.kind]


def _default(value, fallback):
    return fallback if value is None else value


def resolve_backbone(domain: str, task_name: str, params: dict[str, Any], multi_label: bool = False) -> BackboneChoice:
    """The backbone of a trial from its params (None = the paper's default for this domain/task)."""
    if domain not in ("genomics", "satellite"):
        raise ValueError(f"the conv backbones handle genomics and satellite tasks, not {domain!r}")
    arch = _default(params.get("arch"), "wrn")
    if arch not in ARCHES:
        raise ValueError(f"arch must be one of {ARCHES}, got {arch!r}")
    if domain == "genomics":
        kind = "wrn1d" if arch == "wrn" else "unet1d"
        width = _default(params.get("width"), 128 if kind == "wrn1d" else 64)
        # The reference searches the 1-D backbones at their retrain width.
        return BackboneChoice(kind, width, None, _default(params.get("search_width"), width),
                              _default(params.get("batch_size"), 128), "sgd", 0.0, False)
    forestnet = task_name == "m-forestnet"
    single = not multi_label
    batch = _default(params.get("batch_size"), 8 if task_name in SMALL_BATCH_TASKS else 16)
    if arch == "wrn":
        return BackboneChoice("wrn2d", _default(params.get("width"), 4 if forestnet else 8),
                              _default(params.get("depth"), 16 if forestnet else 22),
                              _default(params.get("search_width"), 1), batch, "sgd",
                              0.1 if single else 0.0, single)
    return BackboneChoice("unet2d", _default(params.get("width"), 64), None, params.get("search_width"), batch,
                          "adamw", 0.1 if single else 0.0, single)


def build_backbone(choice: BackboneChoice, input_shape: Sequence[int], n_classes: int, *, dropout: float = 0.0,
                   pattern: Sequence[tuple[int, int]] | None = None, for_search: bool = False) -> nn.Module:
    """The network (B, *input_shape) -> (B, n_classes); `for_search` builds the supernet's (narrow) base."""
    channels = int(input_shape[0])
    width = choice.search_width if for_search else choice.width
    if choice.kind == "wrn1d":
        from models.wrn1d import WRN1D

        return WRN1D(channels, n_classes, width=width, dropout=dropout, pattern=pattern)
    if choice.kind == "unet1d":
        from models.unet1d import UNet1D

        return UNet1D(channels, n_classes, base_width=width, dropout=dropout, pattern=pattern)
    if choice.kind == "wrn2d":
        from models.wrn2d import WRN2D

        return WRN2D(channels, n_classes, depth=choice.depth, widen_factor=width, dropout=dropout, pattern=pattern)
    from models.unet2d import UNET2D_SMALL, UNet2D

    if width is None:          # the reference searches on UNet_small
        widths = UNET2D_SMALL
    else:                      # the reference UNet is base 64: 64..1024 down, 512..64 up
        widths = {"encoder_widths": (width, 2 * width, 4 * width, 8 * width, 16 * width),
                  "decoder_widths": (8 * width, 4 * width, 2 * width, width)}
    return UNet2D(channels, n_classes, dropout=dropout, pattern=pattern, **widths)


def lr_schedule(choice: BackboneChoice, epochs: int, final: bool) -> dict[str, Any]:
    """TrainingRecipe keywords (schedule, milestones, warmup_epochs, max_epochs) for a stage of `epochs`.

    Milestones are the reference's m (the LR drops from the 0-based epoch index m + 1 on)."""
    epochs = max(int(epochs), 1)
    if choice.kind == "unet2d":
        warm, horizon = UNET2D_SCHEDULE["final" if final else "hpo"]
        return {"schedule": "reference_warmup_linear", "milestones": (), "warmup_epochs": max(1, round(warm * epochs)),
                "max_epochs": max(epochs, round(horizon * epochs))}
    fractions = (FINAL_MILESTONES if final else HPO_MILESTONES)[choice.kind]
    milestones = tuple(sorted({max(1, round(f * epochs)) for f in fractions}))
    return {"schedule": "reference_step", "milestones": milestones, "warmup_epochs": 0, "max_epochs": epochs}


@dataclass(frozen=True)
class SearchDefaults:
    kernel_sizes: tuple[int, ...]
    dilations: tuple[int, ...]
    lr: float
    arch_lr: float
    weight_decay: float
    optimizer: str
    epochs: int
    milestones: tuple[int, ...]
    grad_scale: float


def search_defaults(choice: BackboneChoice, task_name: str) -> SearchDefaults:
    """DASH search settings of docs/reference-protocol.md (grad-scale, defaults) for this backbone and task."""
    if choice.kind in ("wrn1d", "unet1d"):
        return SearchDefaults((3, 5, 7, 9, 11), (1, 3, 5, 7), 0.1, 0.05, 5e-4, "sgd", 100, (30, 60, 80), 100.0)
    dilations = (1, 3, 7, 15) if task_name in WIDE_DILATION_TASKS else (1, 3, 5, 7)
    grad_scale = float(SATELLITE_GRAD_SCALE.get(task_name, 100))
    if choice.kind == "wrn2d":
        return SearchDefaults((3, 5, 7, 9), dilations, 0.1, 0.05, 5e-4, "sgd", 100, (30, 60, 80), grad_scale)
    return SearchDefaults((3, 5, 7, 9), dilations, 2e-4, 1e-4, 0.05, "adamw", 60, (), grad_scale)
