"""The training loop every epoch-based method shares: one segment of a trial, on one or many ranks.

A method describes WHAT to train as a `TrainingRecipe` (pure torch: how to build the model, cut a batch,
compute the loss and score a split); `run_segment` does the rest, top to bottom:

  1. join the ranks (DDP or DeepSpeed over nccl/gloo, or a single process);
  2. build the model under the recipe's seed, wrap it (DDP / DeepSpeed ZeRO), build optimizer + LR scheduler;
  3. restore the newest checkpoint that loads on every rank (model, optimizer, scheduler, epoch,
     best-so-far, per-rank RNG states) -- promotion to the next ASHA rung and a requeue after preemption
     both come through here;
  4. for each epoch up to `until_epoch`: a data order that depends only on (seed, epoch), split across
     ranks; train; score val and test on every rank's share and gather; keep the test score at the best
     validation epoch (selection never looks at test); checkpoint; rank 0 appends one outbox line.

Validation decides everything (best epoch, ASHA); the test score at the last epoch rides along, labelled.
Only a recipe with `test_selection=True` (the DASHA reference protocol's final retrain, labelled leaky)
also keeps the test score at the best TEST epoch, next to the validation-selected one of the same run.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from launcher.training.checkpoints import (
    CheckpointMismatch,
    capture_rng,
    restore_newest,
    restore_rng,
    save_torch_atomic,
    seed_everything,
    use_deterministic_algorithms,
    write_checkpoint,
)
from launcher.training.ranks import DistributedSpec, Ranks, gather_objects, setup_ranks, teardown_ranks

Batch = Any


@dataclass
class TrainingRecipe:
    """What to train, without saying how to distribute or checkpoint it."""

    build_model: Callable[[], nn.Module]                        # called with the torch RNG seeded by `seed`
    n_train: int                                                # training examples, addressed 0..n_train-1
    train_batch: Callable[[torch.Tensor, torch.Generator], Batch]   # example indices -> batch (augmentation may use the generator)
    loss: Callable[[nn.Module, Batch], torch.Tensor]
    eval_sizes: dict[str, int]                                  # {"val": n, "test": n}
    eval_batch: Callable[[str, torch.Tensor], Batch]            # (split, indices) -> batch
    eval_step: Callable[[nn.Module, Batch], dict[str, np.ndarray]]  # arrays concatenated over batches and ranks
    score: Callable[[dict[str, np.ndarray]], dict[str, float]]  # e.g. {"mse": .., "mae": ..}
    objective: str                                              # a score key, judged on val, e.g. "mse"
    mode: str                                                   # "min" or "max"
    lr: float
    weight_decay: float = 0.0
    optimizer: str = "adamw"                                    # adamw | adam | sgd
    momentum: float = 0.9                                       # sgd only
    # constant | cosine (over max_epochs) | warmup_cosine | step | reference_step | reference_warmup_linear
    schedule: str = "constant"
    warmup_epochs: int = 0
    # step: LR x `gamma` from epoch index m on (after m epochs); reference_step: from epoch index m + 1
    # on (the DASHA code's `epoch > m`, i.e. after m + 1 epochs)
    milestones: tuple[int, ...] = ()
    gamma: float = 0.2
    max_epochs: int = 1                                         # the schedule's length; a segment may stop earlier
    batch_size: int = 32                                        # per rank
    max_batches_per_epoch: int | None = None                    # CPU budgets; None = the whole training set
    seed: int = 0
    trainable: Callable[[nn.Module], list[nn.Parameter]] | None = None   # default: every parameter
    eval_batch_size: int = 256
    identity: dict = field(default_factory=dict)                # what a checkpoint must match to be resumed
    # LEAKY, off by default: also keep the test scores at the best-TEST epoch (test_<m>_at_best_test), as the
    # DASHA reference's retrain does; the validation-selected test_<m>_at_best_val are kept as always
    test_selection: bool = False


SCHEDULES = ("constant", "cosine", "warmup_cosine", "step", "reference_step", "reference_warmup_linear")


def _optimizer(recipe: TrainingRecipe, params: list[nn.Parameter]) -> torch.optim.Optimizer:
    if recipe.optimizer == "sgd":
        # Nesterov whenever there is momentum, as the DASHA reference code does.
        return torch.optim.SGD(params, lr=recipe.lr, momentum=recipe.momentum, weight_decay=recipe.weight_decay,
                               nesterov=recipe.momentum > 0)
    if recipe.optimizer == "adam":
        return torch.optim.Adam(params, lr=recipe.lr, weight_decay=recipe.weight_decay)
    if recipe.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=recipe.lr, weight_decay=recipe.weight_decay)
    raise ValueError(f"unknown optimizer {recipe.optimizer!r}; expected adamw, adam or sgd")


def _lr_factor(recipe: TrainingRecipe) -> Callable[[int], float]:
    """LR multiplier for the epoch about to run, `epoch` = its 0-based index (LambdaLR steps once per epoch).

    reference_step and reference_warmup_linear are the DASHA code's `weight_sched_*` (task_configs.py),
    which LambdaLR also calls with the 0-based index of the epoch about to run:
    - reference_step: gamma ** #{m : epoch > m}, so the first decay is felt in epoch index m + 1;
    - reference_warmup_linear: epoch / warmup during the warm-up (the FIRST epoch runs at lr 0), then
      (max_epochs - epoch) / (max_epochs - warmup), floored at 0 (max_epochs = the reference's `decay`).
    """
    total, warm = max(recipe.max_epochs, 1), max(recipe.warmup_epochs, 0)

    def factor(epoch: int) -> float:
        if recipe.schedule == "constant":
            return 1.0
        if recipe.schedule == "step":
            return recipe.gamma ** sum(epoch >= m for m in recipe.milestones)
        if recipe.schedule == "reference_step":
            return recipe.gamma ** sum(epoch > m for m in recipe.milestones)
        if recipe.schedule == "reference_warmup_linear":
            if epoch < warm:
                return epoch / warm
            return max((total - epoch) / max(total - warm, 1), 0.0)
        if epoch < warm:
            return (epoch + 1) / (warm + 1)
        progress = (epoch - warm) / max(total - warm, 1)
        return 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0)))

    if recipe.schedule not in SCHEDULES:
        raise ValueError(f"unknown schedule {recipe.schedule!r}; expected one of {', '.join(SCHEDULES)}")
    return factor


def _deepspeed_config(recipe: TrainingRecipe, ranks: Ranks, stage: int) -> dict:
    return {
        "train_micro_batch_size_per_gpu": recipe.batch_size,
        "gradient_accumulation_steps": 1,
        "train_batch_size": recipe.batch_size * ranks.world_size,
        "zero_optimization": {"stage": stage},
        # Our optimizer is a plain torch one (no JIT-built fused Adam on CPU); ZeRO shards its state.
        "zero_allow_untested_optimizer": True,
        "steps_per_print": 10**9,
        "wall_clock_breakdown": False,
    }


class _Segment:
    """State of one segment run; methods in the order they happen."""

    def __init__(self, recipe: TrainingRecipe, distributed: DistributedSpec, checkpoint_root: Path):
        self.recipe, self.distributed, self.root = recipe, distributed, checkpoint_root
        self.ranks = setup_ranks(distributed.strategy)
        use_deterministic_algorithms()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(recipe.seed)
            model = recipe.build_model().to(self.ranks.device)
        self.n_parameters = sum(p.numel() for p in model.parameters())
        params = recipe.trainable(model) if recipe.trainable else [p for p in model.parameters() if p.requires_grad]
        self.n_trainable = sum(p.numel() for p in params)
        optimizer = _optimizer(recipe, params)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _lr_factor(recipe))
        self.engine = None
        if distributed.strategy == "deepspeed":
            import deepspeed

            self.engine, optimizer, _, _ = deepspeed.initialize(
                model=model, optimizer=optimizer, model_parameters=params,
                config=_deepspeed_config(recipe, self.ranks, distributed.zero_stage))
            self.model = self.engine
        elif distributed.strategy == "ddp" and self.ranks.distributed:
            device_ids = [self.ranks.device.index] if self.ranks.device.type == "cuda" else None
            self.model = nn.parallel.DistributedDataParallel(model, device_ids=device_ids)
        else:
            self.model = model
        self.module, self.optimizer = model, optimizer
        # Augmentation randomness: one generator per rank, saved with the checkpoint.
        self.augment = torch.Generator().manual_seed(recipe.seed * 1009 + self.ranks.rank)
        self.epoch, self.best, self.test_at_best, self.last = 0, None, {}, {}
        self.best_test, self.test_at_best_test = None, {}     # only with recipe.test_selection (leaky)

    # ------------------------------------------------------------------------------------ checkpoints
    def _loop_state(self) -> dict:
        return {"identity": self.recipe.identity, "epoch": self.epoch, "best": self.best,
                "test_at_best": self.test_at_best, "last": self.last, "scheduler": self.scheduler.state_dict(),
                "best_test": self.best_test, "test_at_best_test": self.test_at_best_test}

    def save(self) -> None:
        def write(folder: Path) -> None:
            rank = self.ranks.rank
            save_torch_atomic(capture_rng({"augment": self.augment}), folder / f"rng_rank{rank}.pt")
            if self.engine is not None:     # every rank writes its own ZeRO shard
                self.engine.save_checkpoint(str(folder), tag="deepspeed", save_latest=False)
            if self.ranks.is_main:
                state = self._loop_state()
                if self.engine is None:
                    state["model"] = self.module.state_dict()
                    state["optimizer"] = self.optimizer.state_dict()
                save_torch_atomic(state, folder / "state.pt")

        write_checkpoint(self.ranks, self.root, self.epoch, write)

    def restore(self) -> int | None:
        def load(folder: Path) -> dict:
            state = torch.load(folder / "state.pt", map_location="cpu", weights_only=True)
            if state["identity"] != self.recipe.identity:
                raise CheckpointMismatch(f"{folder} holds a checkpoint of a different run: {state['identity']} != {self.recipe.identity}")
            rng = torch.load(folder / f"rng_rank{self.ranks.rank}.pt", map_location="cpu", weights_only=True)
            if self.engine is not None:
                path, _ = self.engine.load_checkpoint(str(folder), tag="deepspeed", load_lr_scheduler_states=False)
                if path is None:
                    raise FileNotFoundError(f"DeepSpeed found no checkpoint in {folder}")
            else:
                self.module.load_state_dict(state["model"])
                self.optimizer.load_state_dict(state["optimizer"])
            return {"state": state, "rng": rng}

        restored = restore_newest(self.ranks, self.root, load)
        if restored is None:
            return None
        _, loaded = restored
        state = loaded["state"]
        self.scheduler.load_state_dict(state["scheduler"])
        self.epoch, self.best, self.test_at_best, self.last = state["epoch"], state["best"], state["test_at_best"], state["last"]
        self.best_test, self.test_at_best_test = state.get("best_test"), state.get("test_at_best_test") or {}
        restore_rng(loaded["rng"], {"augment": self.augment})
        return self.epoch

    # ------------------------------------------------------------------------------------ one epoch
    def _my_share(self, order: torch.Tensor) -> torch.Tensor:
        """This rank's part of the epoch's order; every rank gets the same count (DDP needs equal steps)."""
        world = self.ranks.world_size
        if world > 1 and len(order) % world:
            order = torch.cat([order, order[: world - len(order) % world]])   # pad by wrapping, like DistributedSampler
        return order[self.ranks.rank::world]

    def train_epoch(self) -> float:
        recipe = self.recipe
        self.model.train()
        order = torch.randperm(recipe.n_train, generator=torch.Generator().manual_seed(recipe.seed * 100003 + self.epoch))
        batches = self._my_share(order).split(recipe.batch_size)
        if recipe.max_batches_per_epoch is not None:
            batches = batches[: recipe.max_batches_per_epoch]
        total, count = 0.0, 0
        for indices in batches:
            batch = recipe.train_batch(indices, self.augment)
            loss = recipe.loss(self.model, batch)
            if self.engine is not None:
                self.engine.backward(loss)
                self.engine.step()
            else:
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                self.optimizer.step()
            total, count = total + float(loss.detach()), count + 1
        self.scheduler.step()
        losses = gather_objects(self.ranks, (total, count))
        return sum(t for t, _ in losses) / max(sum(c for _, c in losses), 1)

    @torch.no_grad()
    def evaluate(self, split: str) -> dict[str, float]:
        recipe = self.recipe
        self.model.eval()
        indices = torch.arange(recipe.eval_sizes[split])[self.ranks.rank::self.ranks.world_size]
        parts: dict[str, list[np.ndarray]] = {}
        for chunk in indices.split(recipe.eval_batch_size):
            for key, value in recipe.eval_step(self.module, recipe.eval_batch(split, chunk)).items():
                parts.setdefault(key, []).append(np.asarray(value))
        mine = {k: np.concatenate(v) for k, v in parts.items()}
        gathered = [g for g in gather_objects(self.ranks, mine) if g]
        merged = {k: np.concatenate([g[k] for g in gathered]) for k in gathered[0]}
        return {k: float(v) for k, v in recipe.score(merged).items()}   # plain floats: checkpoints load weights_only

    def better(self, value: float) -> bool:
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return False
        if self.best is None:
            return True
        return value < self.best if self.recipe.mode == "min" else value > self.best

    def better_on_test(self, value: float) -> bool:
        """The reference's test-set checkpoint rule (leaky): a score EQUAL to the best so far also wins,
        as `compare_metrics(score) == retrain_val_score` saves the later of tied epochs."""
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return False
        if self.best_test is None:
            return True
        return value <= self.best_test if self.recipe.mode == "min" else value >= self.best_test


def run_segment(recipe: TrainingRecipe, distributed: DistributedSpec | None, checkpoint_root: Path, until_epoch: int,
                report: Callable[[int, dict], None] | None = None) -> dict:
    """Train from the newest checkpoint up to `until_epoch`; return the last epoch's metrics (rank 0's view).

    Metrics: train_loss, val_<m> and test_<m> for every score key, best_val_<objective>, and
    test_<m>_at_best_val / test_<m>_last, plus n_parameters and n_trainable; with recipe.test_selection
    (leaky) also test_<m>_at_best_test and best_test_<objective>.
    """
    segment = _Segment(recipe, distributed or DistributedSpec(), checkpoint_root)
    ranks = segment.ranks
    try:
        # A fresh run starts from seeded global RNGs (dropout etc.); a resumed one gets them back from its checkpoint.
        seed_everything(recipe.seed * 7919 + ranks.rank)
        restored = segment.restore()
        if restored is not None and ranks.is_main and report is not None and segment.last:
            report(segment.epoch, dict(segment.last))   # a job killed between checkpoint and report; the outbox drops repeats
        objective = recipe.objective
        while segment.epoch < until_epoch:
            started = time.perf_counter()
            train_loss = segment.train_epoch()
            val, test = segment.evaluate("val"), segment.evaluate("test")
            segment.epoch += 1
            if segment.better(val.get(objective)):
                segment.best, segment.test_at_best = val[objective], dict(test)
            leaky = {}
            if recipe.test_selection:        # the reference protocol's final retrain only, labelled leaky
                if segment.better_on_test(test.get(objective)):
                    segment.best_test, segment.test_at_best_test = test[objective], dict(test)
                leaky = {**{f"test_{k}_at_best_test": v for k, v in segment.test_at_best_test.items()},
                         f"best_test_{objective}": segment.best_test if segment.best_test is not None else math.nan}
            metrics = {"epoch": segment.epoch, "train_loss": train_loss,
                       "lr": segment.scheduler.get_last_lr()[0],
                       **{f"val_{k}": v for k, v in val.items()},
                       **{f"test_{k}_last": v for k, v in test.items()},
                       **{f"test_{k}_at_best_val": v for k, v in segment.test_at_best.items()},
                       f"best_val_{objective}": segment.best if segment.best is not None else math.nan,
                       **leaky, "epoch_seconds": time.perf_counter() - started}
            segment.last = metrics
            segment.save()
            if ranks.is_main and report is not None:
                report(segment.epoch, dict(metrics))
        final = dict(segment.last)
        final.update(n_parameters=segment.n_parameters, n_trainable=segment.n_trainable,
                     world_size=ranks.world_size, rank=ranks.rank)
        return final
    finally:
        teardown_ranks(ranks)


def final_weights(checkpoint_root: Path) -> dict[str, torch.Tensor]:
    """The model weights of the newest complete checkpoint (consolidating DeepSpeed ZeRO shards)."""
    from launcher.training.checkpoints import checkpoint_folders

    epoch, folder = checkpoint_folders(checkpoint_root)[0]
    if (folder / "deepspeed").is_dir():
        from deepspeed.utils.zero_to_fp32 import get_fp32_state_dict_from_zero_checkpoint

        return get_fp32_state_dict_from_zero_checkpoint(str(folder), tag="deepspeed")
    return torch.load(folder / "state.pt", map_location="cpu", weights_only=True)["model"]
