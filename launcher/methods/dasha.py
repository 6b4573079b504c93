"""`dasha`: DASH kernel search, then the `backbone` recipe on the searched network (Xu et al. 2025, docs/reference-protocol.md).

Pipeline per (task, search config), as in the reference's main_dasha.py:
  1. DASH search (models.dash.search_pattern): every searchable conv of a narrow copy of the backbone
     (WRN-1D at its width, WRN-22-1, UNet_small) becomes a mixture over K x D; weights and architecture
     parameters are trained together on the TRAINING loss (SGD-Nesterov, lr / arch-lr, step x0.2 at
     30/60/80 % of the epochs; AdamW for UNet-2D), each epoch on `search_fraction` of the batches
     (quick_search = 0.2), alpha gradients rescaled by grad_scale and pushed against large receptive
     fields, global grad norm clipped to 1. Pattern = argmax alpha per layer.
  2. HPO: ASHA over seed, log-lr, dropout, log-weight-decay, momentum (the sweep's `preset: dasha`),
     each trial training the full-width backbone with that pattern (BackboneMethod.run_segment).
  3. Final retrain from the best trial's initial weights for each replicate seed (the controller's
     final stage; see backbone.py), reporting the validation-selected and the last epoch's test score.

The search runs ONCE per (task data, search config): the first trial to need it takes an exclusive
lock (fcntl.flock on `<cache>/dash/<key>.lock`), searches and writes `<key>.json` atomically; trials
that arrive meanwhile block on the lock and then read the file instead of searching again. The record
holds the pattern, the search's wall time and every search setting. Each trial also keeps the pattern
it used in `<trial_dir>/dash_pattern.json`, so its later ASHA segments and a final retrain started from
it (`init_from`) rebuild exactly the same network. The trial that ran the search reports
`search_seconds` (its job time, and so the report's cost, already includes it); the others report
`search_cached` = 1.

Departures from the reference: the search sees only the training split (the validation split is held
out from it too); every (task, config) is searched once and shared, where the reference searches in
every run; search settings a CPU budget reduces (`search_epochs`, `search_batches_per_epoch`,
`search_width`) are recorded and reported with the result.

Protocols (param `protocol`; README "DASHA protocols"). Shared by both, because they are the
reference's and use no test data: random sampling of the ASHA space (`preset: dasha`); the LR
schedules of task_configs.py to the epoch (step x0.2 by `epoch > m`, i.e. felt from the 0-based epoch
index m + 1; UNet-2D linear warm-up whose first epoch runs at lr 0, then linear decay), in the search
(models/dash.py) and in every trial (conv_backbones.lr_schedule).
- `clean` (default): the task's literature metric (genomics: MCC, F1 or accuracy per task) is the
  tuning objective and the reported score; checkpoints are chosen on validation; test selects nothing.
- `reference`: the authors' code where it differs and can be reproduced here.
  * every genomics task is tuned and scored with MCC (their `get_metric`), F1 and accuracy beside it;
  * the final retrain ALSO keeps the test score at the best-TEST epoch (their `network_weights.pt`
    is saved on the "val" loader, which is the test loader), reported as `test_score_testselected_leaky`
    (and `test_{mcc,f1,accuracy}_testselected_leaky`) next to the validation-selected `test_score`
    of the SAME run, so the size of the test-selection effect is measured, not guessed. LEAKY;
  * `final_train_val: true` (LEAKY) also retrains on train + validation, their 100 % of train; the
    validation-selected `test_score` is then chosen on data the model trained on (labelled).
  * the best HPO trial is Ray's (`get_best_result("val_score")`: the trial with the best
    last-reported validation score, whatever rung it stopped at; `clean` takes the highest rung
    reached, then the best there: launcher/engine/study.py).
  * satellite tasks train (search and trials) with the reference's augmentation: flips and
    RandomRotation(90) at any angle, BigEarthNet augmented too, EuroSAT without vertical flips
    (`clean`: flips + rot90 on single-label tasks, none on BigEarthNet).
  Not reproduced, in either protocol: its
  UNet-2D retrain of 100 epochs is the sweep's `search.final_epochs`, not the method's.
"""
from __future__ import annotations

import fcntl
import hashlib
import json
import time
from pathlib import Path
from typing import Any, Callable

from launcher.methods.backbone import BackboneMethod, is_final_trial
from launcher.methods.params import CONV_BACKBONE_PARAMS, DASH_SEARCH_PARAMS, DASHA_PROTOCOL_PARAMS
from launcher.training.files import write_json_atomic

PATTERN_FILE = "dash_pattern.json"
# bump when the search itself changes, so old cached patterns are not reused
# (2: the search LR steps by the reference's `epoch > m`; UNet-2D warm-up from lr 0)
SEARCH_VERSION = 2

LEAKY_NOTE = ("LEAKY (protocol reference): test_*_testselected_leaky is the test score at the best-TEST epoch of the "
              "final retrain, as the DASHA code selects it; test_score is the validation-selected one of the same run")


class ReferenceTaskView:
    """A classification task as the DASHA reference protocol sees it; every other attribute is the task's.

    metric: MCC for every single-label genomics task (the reference's get_metric), else the task's own;
    select_on_test: True for a final retrain (read by classification_recipe: LEAKY, labelled);
    x_train / y_train: train + validation when `train_val` (final retrain only; LEAKY, labelled).
    """

    def __init__(self, task, *, final: bool, train_val: bool):
        import numpy as np

        self.base = task
        mcc = task.domain == "genomics" and not bool(getattr(task, "multi_label", False))
        self.metric = "mcc" if mcc else task.metric
        self.select_on_test = bool(final)
        notes = list(getattr(task, "notes", []) or [])
        if mcc and task.metric != "mcc":
            notes.append(f"protocol reference: tuned and scored with MCC (the DASHA code's metric), "
                         f"not the literature's {task.metric}")
        if final:
            notes.append(LEAKY_NOTE)
        if final and train_val:
            self.x_train = np.concatenate([task.x_train, task.x_val])
            self.y_train = np.concatenate([task.y_train, task.y_val])
            notes.append("LEAKY (protocol reference, final_train_val): the final retrain trained on train + validation "
                         "(the reference's 100 % of train); its validation-selected test_score is chosen in-sample")
        self.notes = notes
        if task.domain == "satellite":    # the reference's flips + any-angle rotation, multi-label tasks too
            import functools

            from tasks.satellite import reference_flips_rotation

            self.reference_augment = functools.partial(reference_flips_rotation, vertical=task.name != "eurosat")
            notes.append("protocol reference: trained with the DASHA code's augmentation (flips, rotation by any "
                         "angle in [-90, 90] degrees" + ("; no vertical flip on EuroSAT" if task.name == "eurosat"
                                                         else "") + ")")

    def __getattr__(self, name: str):
        return getattr(self.base, name)


def base_task(task):
    """The task under a ReferenceTaskView (the DASH search always sees the task's own training split)."""
    return task.base if isinstance(task, ReferenceTaskView) else task


def _augmentation(task, choice):
    """What the search trains with, in its cache key: the reference's augmentation (`protocol: reference`
    on satellite tasks), flips + rot90 (single-label satellite tasks), or none (False)."""
    if getattr(task, "reference_augment", None) is not None:
        return "reference:flips+rotation" + ("" if task.name != "eurosat" else ":no-vertical")
    return choice.augment


def search_settings(task, params: dict[str, Any], choice) -> dict[str, Any]:
    """Every setting the pattern depends on, defaults resolved (docs/reference-protocol.md#grad-scale, #defaults)."""
    from launcher.methods.conv_backbones import search_defaults

    base = search_defaults(choice, task.name)
    epochs = params["search_epochs"] if params.get("search_epochs") is not None else base.epochs
    # The reference's milestones are at 30/60/80 of 100 epochs: keep their place in a shorter search.
    milestones = sorted({max(1, round(m * epochs / base.epochs)) for m in base.milestones})
    pick = lambda key, fallback: fallback if params.get(key) is None else params[key]  # noqa: E731
    return {
        "backbone": choice.kind, "search_width": choice.search_width, "depth": choice.depth,
        "kernel_sizes": list(pick("kernel_sizes", base.kernel_sizes)),
        "dilations": list(pick("dilations", base.dilations)),
        "lr": float(pick("search_lr", base.lr)), "arch_lr": float(pick("search_arch_lr", base.arch_lr)),
        "weight_decay": base.weight_decay, "optimizer": base.optimizer, "epochs": int(epochs),
        "milestones": milestones, "warmup_epochs": max(1, round(5 * epochs / base.epochs)),
        "grad_scale": float(pick("grad_scale", base.grad_scale)), "data_fraction": float(params["search_fraction"]),
        "batches_per_epoch": params.get("search_batches_per_epoch"), "batch_size": choice.batch_size,
        "label_smoothing": choice.label_smoothing, "augment": _augmentation(task, choice),
        "seed": int(params["search_seed"]),
        "version": SEARCH_VERSION,
    }


def data_fingerprint(task) -> str:
    """Identifies the training split cheaply: its labels in full, its shape and a sample of its inputs."""
    import numpy as np

    digest = hashlib.sha256()
    digest.update(f"{task.domain}/{task.name}/{task.x_train.shape}/{task.n_classes}".encode())
    digest.update(np.ascontiguousarray(task.y_train).tobytes())
    step = max(1, len(task.x_train) // 64)
    digest.update(np.ascontiguousarray(task.x_train[::step]).tobytes())
    return digest.hexdigest()[:16]


def search_key(task, settings: dict[str, Any]) -> str:
    text = json.dumps({"task": task.name, "data": data_fingerprint(task), **settings}, sort_keys=True)
    return f"{task.name}-{settings['backbone']}-{hashlib.sha256(text.encode()).hexdigest()[:16]}"


def cached_search(cache_root: Path, key: str, compute: Callable[[], dict]) -> tuple[dict, bool]:
    """(record, computed_here): read `<cache_root>/dash/<key>.json`, or compute it under an exclusive lock.

    Concurrent callers (other trials, other processes) block on the lock while one computes; they then
    find the file and read it. A crash while computing leaves no file, so the next caller computes.
    """
    folder = Path(cache_root) / "dash"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{key}.json"
    if path.exists():
        return json.loads(path.read_text()), False
    with open(folder / f"{key}.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            if path.exists():                      # another trial searched while we waited
                return json.loads(path.read_text()), False
            record = compute()
            write_json_atomic(path, record)
            return record, True
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def run_search(task, choice, settings: dict[str, Any], log: Callable[[str], None] | None = None) -> dict:
    """Train the supernet on the training split and return the cache record (pattern, time, settings)."""
    import torch
    import torch.nn.functional as F

    from launcher.methods.conv_backbones import build_backbone
    from models.dash import search_pattern

    x = torch.as_tensor(task.x_train, dtype=torch.float32)
    y = torch.as_tensor(task.y_train)
    multi_label = bool(getattr(task, "multi_label", False))
    augment = getattr(task, "reference_augment", None)
    if augment is None and settings["augment"]:
        from tasks.satellite import random_flips_rot90

        augment = random_flips_rot90
    batch_size, n = settings["batch_size"], len(y)
    n_batches = -(-n // batch_size)
    per_epoch = int(settings["data_fraction"] * n_batches) + 1 if settings["data_fraction"] < 1 else n_batches
    if settings["batches_per_epoch"] is not None:
        per_epoch = min(per_epoch, settings["batches_per_epoch"])

    class EpochBatches:
        """The first `per_epoch` batches of a seeded permutation, gathered lazily (satellite tensors are big)."""

        def __init__(self, epoch: int):
            seed = settings["seed"] * 100003 + epoch
            self.order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
            self.augment_rng = torch.Generator().manual_seed(seed + 1)

        def __len__(self) -> int:
            return min(per_epoch, n_batches)

        def __iter__(self):
            for indices in self.order.split(batch_size)[: len(self)]:
                inputs = x[indices] if augment is None else augment(x[indices], self.augment_rng)
                yield inputs, y[indices]

    def loss_fn(logits, labels):
        if multi_label:
            return F.binary_cross_entropy_with_logits(logits, labels.float())
        return F.cross_entropy(logits, labels.long(), label_smoothing=settings["label_smoothing"])

    losses: list[float] = []
    started = time.perf_counter()
    pattern = search_pattern(
        lambda: build_backbone(choice, task.input_shape, task.n_classes, for_search=True), EpochBatches, loss_fn,
        kernel_sizes=settings["kernel_sizes"], dilations=settings["dilations"], epochs=settings["epochs"],
        lr=settings["lr"], arch_lr=settings["arch_lr"], weight_decay=settings["weight_decay"],
        optimizer=settings["optimizer"], milestones=settings["milestones"], warmup_epochs=settings["warmup_epochs"],
        grad_scale=settings["grad_scale"], data_fraction=1.0,     # EpochBatches already holds the fraction
        seed=settings["seed"], device="cuda" if torch.cuda.is_available() else "cpu",
        on_epoch=lambda epoch, loss: losses.append(loss))
    seconds = time.perf_counter() - started
    if log is not None:
        log(f"DASH search on {task.name}: {seconds:.1f} s, pattern {pattern}")
    return {"pattern": [list(map(int, p)) for p in pattern], "search_seconds": seconds,
            "settings": settings, "task": task.name, "n_train": n, "batches_per_epoch": len(EpochBatches(0)),
            "epoch_losses": losses, "created": time.time()}


class DashaMethod(BackboneMethod):
    name = "dasha"
    params = {**CONV_BACKBONE_PARAMS, **DASH_SEARCH_PARAMS, **DASHA_PROTOCOL_PARAMS}

    def run_segment(self, task, params: dict[str, Any], trial_dir: Path, until_epoch: int, report):
        protocol = params.get("protocol", "clean")
        if params.get("final_train_val") and protocol != "reference":
            raise ValueError("final_train_val: true needs protocol: reference (it is the reference's leaky retrain)")
        if protocol == "reference" and getattr(task, "domain", None) in ("genomics", "satellite"):
            task = ReferenceTaskView(task, final=is_final_trial(params), train_val=bool(params.get("final_train_val")))
        result = super().run_segment(task, params, trial_dir, until_epoch, report)
        result.info["protocol"] = protocol
        result.info["score_metric"] = task.metric
        return result

    @classmethod
    def study_overhead_epochs(cls, params: dict[str, Any], domain: str) -> float:
        """The DASH search: `search_epochs` (default 100; UNet-2D 60) on `search_fraction` of the batches,
        counted as backbone epochs (a supernet epoch costs more: this is a lower estimate, labelled so)."""
        epochs = params.get("search_epochs")
        if epochs is None:
            epochs = 60 if params.get("arch") == "unet" and domain == "satellite" else 100
        return float(epochs) * float(params.get("search_fraction", 0.2))

    def kernel_pattern(self, task, params: dict[str, Any], choice, trial_dir: Path):
        task = base_task(task)
        own = Path(trial_dir) / PATTERN_FILE
        computed_here = False
        if own.exists():                          # a later ASHA segment (or a requeue) of this trial
            record = json.loads(own.read_text())
            computed_here = bool(record.get("computed_here"))
        elif params.get("init_from") and (Path(params["init_from"]) / PATTERN_FILE).exists():
            record = json.loads((Path(params["init_from"]) / PATTERN_FILE).read_text())   # final retrain
            record["computed_here"] = False
            write_json_atomic(own, record)
        else:
            settings = search_settings(task, params, choice)
            key = search_key(task, settings)
            cache_root = self.cache_dir if self.cache_dir is not None else Path(trial_dir) / "cache"
            record, computed_here = cached_search(cache_root, key, lambda: run_search(task, choice, settings))
            record = {**record, "key": key, "computed_here": computed_here}
            write_json_atomic(own, record)
        pattern = [tuple(p) for p in record["pattern"]]
        settings = record["settings"]
        info = {"dash_pattern": " ".join(f"{k}/{d}" for k, d in pattern), "dash_search_seconds": record["search_seconds"],
                "dash_search": settings, "dash_search_key": record.get("key")}
        extra = {"search_cached": float(not computed_here)}
        if computed_here:
            extra["search_seconds"] = float(record["search_seconds"])
        notes = []
        base_epochs = 60 if settings["optimizer"] == "adamw" else 100
        if settings["epochs"] < base_epochs or settings["batches_per_epoch"] is not None:
            notes.append(f"reduced DASH search: {settings['epochs']} epochs x {record.get('batches_per_epoch')} batches "
                         f"(paper: {base_epochs} epochs x {settings['data_fraction']:.0%} of the batches)")
        return pattern, info, extra, notes
