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
from launcher.methods.fm_common import adapter_notes, load_fm, resolve_checkpoint, task_domain, with_adapter


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


class FinetuneMethod(EpochMethod):
    name = "finetune"

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
