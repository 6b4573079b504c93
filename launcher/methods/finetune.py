"""`finetune`: fine-tune a foundation model (any `models.fm` adapter) on a task, with the shared epoch loop.

One method for the three domains: the adapter gets the head the task needs (forecasting, sequence or
image classification) and is trained by `forecasting_recipe` (MSE on channel-independent windows) or
`classification_recipe` (cross-entropy, the task's metric as the validation objective). AdamW with a
warm-up + cosine schedule over `epochs`; `train_layers` picks what trains: the head only, everything,
or LoRA matrices (peft) plus the head. Multi-fidelity: ASHA stops and resumes trials between epochs
through the loop's checkpoints; DDP / DeepSpeed ZeRO come from the sweep's `distributed:` block.

Final-stage retrains (`final_seed` / `init_from`, set by the controller after the search): the
retrain starts again from the pretrained checkpoint, with its new head (and LoRA matrices) drawn
under `final_seed`; `init_from` (the best search trial's folder) is only recorded. Saving each
trial's initial weights would copy the whole FM per trial, and the only randomly initialised part
is the head, which the replicate seed is meant to vary anyway. A retrain is one segment of
`search.final_epochs` epochs, and its warm-up + cosine schedule spans exactly those.
"""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from launcher.methods.base import EpochMethod, MethodResult, Report
from launcher.methods.fm_common import (
    FINETUNE_ADAPTERS,
    AdapterChecks,
    adapter_notes,
    load_fm,
    resolve_checkpoint,
    task_domain,
    with_adapter,
)
from launcher.methods.params import EPOCHS_MAX, SEED_MAX, Param


def _strided_eval(recipe, stride: int):
    """Score every `stride`-th val/test example only (CPU budgets; labelled in the notes)."""
    if stride == 1:
        return recipe
    inner = recipe.eval_batch
    sizes = {split: -(-n // stride) for split, n in recipe.eval_sizes.items()}
    return replace(recipe, eval_sizes=sizes, eval_batch=lambda split, indices: inner(split, indices * stride))


def _on_model_device(step):
    """forecasting_recipe hands CPU windows to the model; on a GPU they must follow the model's weights."""
    def moved(model, windows):
        return step(model, windows.to(next(model.parameters()).device))
    return moved


class FinetuneMethod(AdapterChecks, EpochMethod):
    name = "finetune"
    builtin_adapters = FINETUNE_ADAPTERS
    kind = "fine-tuned FM"
    domains = ("forecasting", "genomics", "satellite")
    params = {
        "adapter": Param("str", None, "FM adapter: a built-in name (models.fm.base.ADAPTERS), a plugin's, or "
                         "my_pkg.fm:MyAdapter; null: the domain's default, patchtst / nucleotide_transformer / vit",
                         nullable=True),
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
    }
    default_space = {
        "lr": {"log": [1e-5, 1e-2]},
        "weight_decay": {"log": [1e-6, 1e-1]},
        "warmup_epochs": {"choice": [0, 1, 2]},
        "train_layers": {"choice": ["head", "full", "lora"]},
    }
    objective = {"forecasting": ("best_val_mse", "min"), "genomics": ("best_val_score", "max"),
                 "satellite": ("best_val_score", "max")}
    strategies = ("none", "ddp", "deepspeed")

    def run_segment(self, task, params: dict[str, Any], trial_dir: Path, until_epoch: int,
                    report: Report) -> MethodResult:
        from launcher.training.epoch_loop import run_segment

        trial_dir = Path(trial_dir)
        params = with_adapter(params, task)
        folder, notes = resolve_checkpoint(params, task, self.cache_dir or trial_dir)
        final = params.get("final_seed") is not None or params.get("init_from") is not None
        seed = params["final_seed"] if params.get("final_seed") is not None else params["seed"]
        mode, rank = params["train_layers"], int(params["lora_rank"])
        built = {}

        def build_model():
            # Called by the loop under torch.manual_seed(seed): the new head and LoRA matrices depend on it.
            adapter = load_fm(params, task, folder)
            adapter.trainable_groups(mode, lora_rank=rank, lora_alpha=2 * rank)
            built["adapter"] = adapter
            return adapter

        recipe = self._recipe(task, build_model, params, seed, until_epoch if final else params["epochs"])
        stride = int(params["eval_stride"])
        recipe = _strided_eval(recipe, stride)
        metrics = run_segment(recipe, self.distributed, trial_dir / "checkpoints", until_epoch, report)
        if task_domain(task) == "forecasting":
            # Headline test numbers: at the epoch with the best validation MSE (never chosen on test).
            metrics["test_mse"], metrics["test_mae"] = metrics["test_mse_at_best_val"], metrics["test_mae_at_best_val"]
        else:
            from launcher.methods.classification_recipe import headline_metrics

            metrics = headline_metrics(metrics)
        adapter = built["adapter"]
        notes += adapter_notes(adapter)
        if stride > 1:
            notes.append(f"validation and test scored on every {stride}th example/window only")
        if final:
            notes.append("final retrain: fine-tuned again from the pretrained checkpoint with final_seed "
                         "(init_from recorded, not loaded)")
        info = {"adapter": params["adapter"], "checkpoint": str(folder) if folder else "bundled",
                "stand_in": bool(adapter.is_stand_in), "train_layers": mode, "seed_used": int(seed),
                "n_trainable": int(metrics["n_trainable"]), "init_from": params.get("init_from")}
        return MethodResult(metrics=metrics, n_parameters=int(metrics.pop("n_parameters")), info=info, notes=notes)

    @staticmethod
    def _recipe(task, build_model, params: dict[str, Any], seed: int, schedule_epochs: int):
        common = dict(lr=params["lr"], weight_decay=params["weight_decay"], batch_size=params["batch_size"],
                      seed=seed, max_epochs=schedule_epochs, optimizer="adamw", schedule="warmup_cosine",
                      identity={"params": dict(sorted(params.items()))})
        if task_domain(task) == "forecasting":
            from launcher.methods.forecast_recipe import forecasting_recipe

            recipe = forecasting_recipe(task, build_model, **common)
            return replace(recipe, warmup_epochs=params["warmup_epochs"],
                           max_batches_per_epoch=params["max_batches_per_epoch"],
                           loss=_on_model_device(recipe.loss), eval_step=_on_model_device(recipe.eval_step))
        from launcher.methods.classification_recipe import classification_recipe

        return classification_recipe(task, build_model, warmup_epochs=params["warmup_epochs"],
                                     max_batches_per_epoch=params["max_batches_per_epoch"], **common)
