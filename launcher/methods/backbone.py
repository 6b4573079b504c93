"""`backbone`: the paper's plain Wide-ResNet / UNet rows (genomics, satellite), trained by the shared epoch loop.

A trial builds the backbone that `conv_backbones.resolve_backbone` picks for its domain and task
(WRN-1D m = 128 or UNet-1D for genomics; WRN-22-8 or UNet-2D for satellite), trains it with Nesterov
SGD (AdamW for UNet-2D) on a step LR schedule, cross-entropy (label smoothing 0.1, flips/rot90 for
single-label satellite tasks; multi-label BCE for BigEarthNet), and reports one outbox line per epoch.
`dasha` is this method plus a DASH kernel pattern (see dasha.py): both share `run_segment`.

Two stages, as in the DASHA reference (docs/reference-protocol.md#stages), driven by the controller:

- HPO trials (ASHA over seed, lr, dropout, weight decay, momentum) train on the train split and are
  judged on the validation split. Each saves its initial weights, right after the model is built and
  before any training, to `<trial_dir>/init_weights.pt` (atomically; resumed segments leave it alone).
- A final retrain trial gets `final_seed` (the replicate seed) and `init_from` (the best HPO trial's
  folder) from the controller: it builds the same network, loads `<init_from>/init_weights.pt` (the
  tuned "lottery ticket" of the reference) and trains in one segment with the tuned lr / momentum /
  weight decay / dropout, `final_seed` seeding the data order, dropout and augmentation. Its LR schedule
  spans the segment's epochs with the reference's retrain milestones.

Departures from the reference, on purpose:
- Selection is on VALIDATION only. The reference retrains on 100 % of train and picks its "best"
  checkpoint on the test set; here the final retrain keeps the validation split held out so that the
  checkpoint can be chosen on it. Reported: `test_score` = the test score at the best-validation epoch,
  and `test_score_last` = the last epoch's, both labelled; test never selects anything.
- The paper's `--baseline 1` rows train the backbone untuned (lr 0.1, wd 5e-4): those are this method's
  defaults, so `space: {}` reproduces them; by default the backbone is tuned exactly like DASHA so that
  the comparison isolates the search.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from launcher.methods.base import EpochMethod, MethodResult, Report
from launcher.methods.params import ASHA_DASHA_SPACE, CONV_BACKBONE_PARAMS

INIT_WEIGHTS = "init_weights.pt"


def is_final_trial(params: dict[str, Any]) -> bool:
    """Set by the controller's final stage: a retrain of the best HPO trial for one replicate seed."""
    return params.get("final_seed") is not None or params.get("init_from") is not None


def _is_main_rank() -> bool:
    import torch.distributed as dist

    return not (dist.is_available() and dist.is_initialized()) or dist.get_rank() == 0


def train_observations(task) -> int:
    """The training data a trial used, in the unit Figure 1 counts for its domain (launcher.report.figure1):
    images (satellite), nucleotides = sequences x length (genomics)."""
    n = len(task.y_train)
    return int(n * task.x_train.shape[-1]) if task.domain == "genomics" else int(n)


class BackboneMethod(EpochMethod):
    name = "backbone"
    kind = "supervised"
    domains = ("genomics", "satellite")
    params = dict(CONV_BACKBONE_PARAMS)
    default_space = ASHA_DASHA_SPACE
    objective = ("best_val_score", "max")
    strategies = ("none", "ddp", "deepspeed")

    # ------------------------------------------------------------------------ hook for dasha
    def kernel_pattern(self, task, params: dict[str, Any], choice, trial_dir: Path
                       ) -> tuple[list | None, dict[str, Any], dict[str, float], list[str]]:
        """(pattern, info, extra metrics, notes); the plain backbone keeps its default kernels."""
        return None, {}, {}, []

    # ------------------------------------------------------------------------ one segment
    def run_segment(self, task, params: dict[str, Any], trial_dir: Path, until_epoch: int,
                    report: Report) -> MethodResult:
        import torch

        from launcher.methods.classification_recipe import classification_recipe, headline_metrics
        from launcher.methods.conv_backbones import build_backbone, lr_schedule, resolve_backbone
        from launcher.training.checkpoints import save_torch_atomic
        from launcher.training.epoch_loop import run_segment

        trial_dir = Path(trial_dir)
        trial_dir.mkdir(parents=True, exist_ok=True)
        choice = resolve_backbone(task.domain, task.name, params, bool(getattr(task, "multi_label", False)))
        pattern, info, extra, notes = self.kernel_pattern(task, params, choice, trial_dir)
        final = is_final_trial(params)
        seed = params["final_seed"] if params.get("final_seed") is not None else params["seed"]
        source = Path(params["init_from"]) / INIT_WEIGHTS if params.get("init_from") else None
        if source is not None and not source.is_file():
            raise FileNotFoundError(f"init_from: {source} does not exist (the HPO trial saves it when it starts)")
        own_init = trial_dir / INIT_WEIGHTS

        def build():
            model = build_backbone(choice, task.input_shape, task.n_classes, dropout=params["dropout"], pattern=pattern)
            if source is not None:
                model.load_state_dict(torch.load(source, map_location="cpu", weights_only=True))
            if not own_init.exists() and _is_main_rank():
                save_torch_atomic(model.state_dict(), own_init)   # before any training step
            return model

        augment = getattr(task, "reference_augment", None)     # DASHA protocol: reference (launcher.methods.dasha)
        if augment is None and choice.augment:
            from tasks.satellite import random_flips_rot90

            augment = random_flips_rot90
        # A final retrain is one segment of `until_epoch` epochs: its schedule spans exactly those.
        schedule = lr_schedule(choice, until_epoch if final else params["epochs"], final)
        recipe = classification_recipe(
            task, build, lr=params["lr"], weight_decay=params["weight_decay"], batch_size=choice.batch_size,
            seed=seed, optimizer=choice.optimizer, momentum=params["momentum"],
            max_batches_per_epoch=params["max_batches_per_epoch"], augment=augment,
            label_smoothing=choice.label_smoothing, **schedule,
            identity={"method": self.name, "params": dict(sorted(params.items())), "pattern": pattern,
                      "backbone": choice.describe(), "schedule": {k: list(v) if isinstance(v, tuple) else v
                                                                  for k, v in schedule.items()}})
        metrics = run_segment(recipe, self.distributed, trial_dir / "checkpoints", until_epoch, report)
        n_parameters = int(metrics.pop("n_parameters"))
        metrics = headline_metrics(metrics)
        metrics.update(extra)

        info = {"backbone": choice.describe(), "batch_size": choice.batch_size, "optimizer": choice.optimizer,
                "lr_schedule": {k: list(v) if isinstance(v, tuple) else v for k, v in schedule.items()},
                "stage": "final" if final else "hpo", "recipe_seed": seed,
                "train_observations": train_observations(task), **info}
        notes = list(notes) + list(getattr(task, "notes", []) or [])
        if final:
            # One wording for every replicate seed (the seed is in info): the report lists each note once.
            start = f"the initial weights of HPO trial {source.parent.name}" if source else "a fresh init"
            notes.append(f"final retrain per seed from {start}; validation split kept held out for checkpoint selection")
            info["init_from"] = str(source.parent) if source else None
        if params["max_batches_per_epoch"] is not None:
            notes.append(f"reduced budget: at most {params['max_batches_per_epoch']} batches of {choice.batch_size} per epoch")
        return MethodResult(metrics=metrics, n_parameters=n_parameters, info=info, notes=notes)
