"""Recipes that train a classifier on a ClassificationTask (genomics, satellite) with the shared epoch loop.

The task's arrays stay in memory as tensors; a batch is an index gather. Evaluation returns logits and
labels per rank; the loop gathers them and the task scores them with its own metric (MCC, F1, accuracy,
average precision), so the reported `score` is exactly the literature metric of that task.

Metric names in the epoch metrics: `val_score` / `test_score_last` / `test_score_at_best_val` hold the
task's metric (higher is better), next to `*_accuracy`, `*_mcc`, `*_f1` (single-label tasks, whatever their
own metric) and `*_loss`; `best_val_score` is the objective.

Test-set selection (LEAKY, the DASHA reference's final retrain only): a task that carries
`select_on_test = True` (launcher/methods/dasha.py's reference view), or `select_on_test=True` here,
makes the loop also keep the test scores at the best-TEST epoch; `headline_metrics` names them
`test_<m>_testselected_leaky`. Nothing else changes: `test_score` stays the validation-selected one.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from launcher.training.epoch_loop import TrainingRecipe

Augment = Callable[[torch.Tensor, torch.Generator], torch.Tensor]


def classification_recipe(task, build_model: Callable[[], nn.Module], *, lr: float, weight_decay: float,
                          batch_size: int, seed: int, max_epochs: int, optimizer: str = "sgd",
                          momentum: float = 0.9, schedule: str = "constant", warmup_epochs: int = 0,
                          milestones: tuple[int, ...] = (),
                          max_batches_per_epoch: int | None = None, augment: Augment | None = None,
                          label_smoothing: float = 0.0, identity: dict | None = None,
                          trainable=None, eval_batch_size: int = 256,
                          select_on_test: bool | None = None) -> TrainingRecipe:
    """select_on_test: None = the task's `select_on_test` attribute (absent: False)."""
    if select_on_test is None:
        select_on_test = bool(getattr(task, "select_on_test", False))
    arrays = {"train": (task.x_train, task.y_train), "val": (task.x_val, task.y_val), "test": (task.x_test, task.y_test)}
    tensors = {k: (torch.as_tensor(x, dtype=torch.float32), torch.as_tensor(y)) for k, (x, y) in arrays.items()}
    multi_label = bool(getattr(task, "multi_label", False))

    def loss_of(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        if multi_label:
            return F.binary_cross_entropy_with_logits(logits, labels.float())
        return F.cross_entropy(logits, labels.long(), label_smoothing=label_smoothing)

    def train_batch(indices: torch.Tensor, generator: torch.Generator):
        x, y = tensors["train"]
        inputs = x[indices]
        if augment is not None:
            inputs = augment(inputs, generator)
        return inputs, y[indices]

    def loss(model: nn.Module, batch) -> torch.Tensor:
        inputs, labels = batch
        device = next(model.parameters()).device
        return loss_of(model(inputs.to(device)), labels.to(device))

    def eval_batch(split: str, indices: torch.Tensor):
        x, y = tensors[split]
        return x[indices], y[indices]

    def eval_step(model: nn.Module, batch) -> dict[str, np.ndarray]:
        inputs, labels = batch
        device = next(model.parameters()).device
        return {"logits": model(inputs.to(device)).float().cpu().numpy(), "labels": labels.numpy()}

    def score(outputs: dict[str, np.ndarray]) -> dict[str, float]:
        scored = task.score(outputs["labels"], outputs["logits"])
        extra = {k: scored[k] for k in ("mcc", "f1") if k in scored}   # every single-label task: MCC and F1 too
        return {"score": scored[task.metric], "accuracy": scored["accuracy"], "loss": scored["loss"], **extra}

    return TrainingRecipe(
        build_model=build_model, n_train=len(task.y_train), train_batch=train_batch, loss=loss,
        eval_sizes={"val": len(task.y_val), "test": len(task.y_test)}, eval_batch=eval_batch,
        eval_step=eval_step, score=score, objective="score", mode="max", lr=lr, weight_decay=weight_decay,
        optimizer=optimizer, momentum=momentum, schedule=schedule, warmup_epochs=warmup_epochs,
        milestones=tuple(milestones), max_epochs=max_epochs, batch_size=batch_size, max_batches_per_epoch=max_batches_per_epoch, seed=seed,
        trainable=trainable, eval_batch_size=eval_batch_size, test_selection=select_on_test,
        identity={"task": task.name, "n_train": len(task.y_train), "metric": task.metric, **(identity or {})})


def headline_metrics(metrics: dict) -> dict:
    """Adds the report's names: test_score (at the best validation epoch) and test_score_last, labelled apart."""
    out = dict(metrics)
    out["test_score"] = metrics["test_score_at_best_val"]
    out["test_accuracy"] = metrics["test_accuracy_at_best_val"]
    for name in ("mcc", "f1"):       # at the same validation-selected epoch as test_score
        if f"test_{name}_at_best_val" in metrics:
            out[f"test_{name}"] = metrics[f"test_{name}_at_best_val"]
    for name in ("score", "accuracy", "mcc", "f1"):   # LEAKY: at the best-TEST epoch (reference protocol only)
        if f"test_{name}_at_best_test" in metrics:
            out[f"test_{name}_testselected_leaky"] = metrics[f"test_{name}_at_best_test"]
    return out
