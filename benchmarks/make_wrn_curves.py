"""Builds benchmarks/data/wrn1d_curves_prom_300_tata.json: REAL WRN-1D learning curves on GUE prom_300_tata.

A second surrogate landscape for benchmarks/hpo_peers.py (another method and domain than the DLinear
ETTh1 curves): the `backbone` method (plain WRN-1D, launcher.methods.backbone.BackboneMethod, the shared
epoch loop, Nesterov SGD with the DASHA HPO step schedule x0.2 at 6/12/18 of 20 epochs) trained once per
point of a grid over the DASHA ASHA space (launcher.methods.params.ASHA_DASHA_SPACE):

  lr            5 cell-centred log points over [1e-5, 0.5]
  weight_decay  2 cell-centred log points over [5e-7, 5e-3]
  momentum      2 cell-centred points over [0.9, 1.0] (0.925, 0.975)
  dropout       the space's 3 choices (0.0, 0.05, 0.1)
  seed          NOT varied: every curve is trained with seed 0 (the surrogate ignores the searched seed)

= 60 configurations x 20 epochs. CPU budget (labelled in the file): width m = 8 (paper: 128), batch 64,
at most 8 batches per epoch (512 sequences, a fresh seeded draw each epoch) from a stratified seeded
subset of 1,024 of the 4,904 training sequences; validation = the full GUE dev split (613 sequences),
metric F1 (the task's own); test = a seeded subset of 128 test sequences (information only).
Each epoch records val_score, best_val_score (the HPO objective, higher is better),
test_score_at_best_val and train_loss. One process, torch 1 thread: about 20-25 minutes of one core.

The data is found as every task of the project finds it: --data-root, else $LAUNCHER_DATA_ROOT
(tasks.genomics.search_roots).

    taskset -c 1 .venv/bin/python benchmarks/make_wrn_curves.py [--data-root DIR] [--out FILE]
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import math
import platform
import sys
import tempfile
import time
from itertools import product
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TASK = "prom_300_tata"
OUT = ROOT / "benchmarks" / "data" / "wrn1d_curves_prom_300_tata.json"
EPOCHS, WIDTH, BATCH, MAX_BATCHES, MAX_TRAIN, TEST_SUBSET, SEED = 20, 8, 64, 8, 1024, 128, 0


def centred_grid(low: float, high: float, n: int, log: bool) -> list[float]:
    a, b = (math.log10(low), math.log10(high)) if log else (low, high)
    points = [a + (b - a) * (i + 0.5) / n for i in range(n)]
    return [float(f"{(10 ** p if log else p):.4g}") for p in points]


def grid() -> dict[str, list]:
    from launcher.methods.params import ASHA_DASHA_SPACE as S

    return {"lr": centred_grid(*S["lr"]["log"], 5, log=True),
            "weight_decay": centred_grid(*S["weight_decay"]["log"], 2, log=True),
            "momentum": centred_grid(*S["momentum"]["float"], 2, log=False),
            "dropout": list(S["dropout"]["choice"])}


def load_task(data_root: str | None):
    import numpy as np

    from tasks.genomics import load_genomics_task

    task = load_genomics_task(TASK, data_root=data_root, seed=SEED, max_train=MAX_TRAIN)
    pick = np.sort(np.random.RandomState(SEED).permutation(len(task.y_test))[:TEST_SUBSET])
    return dataclasses.replace(task, x_test=task.x_test[pick], y_test=task.y_test[pick])


def train_curve(task, lr: float, wd: float, momentum: float, dropout: float) -> dict:
    from launcher.methods.registry import method_class

    cls = method_class("backbone")
    params = {k: p.default for k, p in cls.params.items()}
    params.update(arch="wrn", width=WIDTH, batch_size=BATCH, max_batches_per_epoch=MAX_BATCHES, epochs=EPOCHS,
                  lr=lr, weight_decay=wd, momentum=momentum, dropout=dropout, seed=SEED)
    rows: list[dict] = []
    started, cpu = time.perf_counter(), time.process_time()
    with tempfile.TemporaryDirectory() as tmp:
        cls().run_segment(task, params, Path(tmp), EPOCHS, lambda epoch, m: rows.append(m))
    keys = ("val_score", "best_val_score", "test_score_at_best_val", "train_loss")
    return {"lr": lr, "weight_decay": wd, "momentum": momentum, "dropout": dropout,
            **{k: [round(float(r[k]), 5) for r in rows] for k in keys},
            "seconds": round(time.perf_counter() - started, 2), "cpu_seconds": round(time.process_time() - cpu, 2)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", default=None, help="default: $LAUNCHER_DATA_ROOT (tasks.genomics.search_roots)")
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--limit", type=int, default=None, help="first N configurations only (a smoke run)")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(1)
    task = load_task(args.data_root)
    g = grid()
    configs = list(product(g["lr"], g["weight_decay"], g["momentum"], g["dropout"]))[: args.limit]
    print(f"{len(configs)} configs x {EPOCHS} epochs on {TASK}: train {len(task.y_train)}, val {len(task.y_val)}, "
          f"test {len(task.y_test)}", file=sys.stderr)
    started, curves = time.perf_counter(), []
    for i, config in enumerate(configs, 1):
        curves.append(train_curve(task, *config))
        c = curves[-1]
        print(f"  {i}/{len(configs)} lr {c['lr']} wd {c['weight_decay']} mom {c['momentum']} drop {c['dropout']}: "
              f"best val F1 {c['best_val_score'][-1]:.4f}, {c['seconds']:.0f} s (total {time.perf_counter() - started:.0f} s)",
              file=sys.stderr)
    table = {"meta": {
        "task": f"GUE {TASK}", "method": "backbone (plain WRN-1D, launcher.methods.backbone.BackboneMethod)",
        "width": WIDTH, "batch_size": BATCH, "max_batches_per_epoch": MAX_BATCHES, "epochs": EPOCHS,
        "lr_schedule": "step x0.2 at epochs 6/12/18 (launcher.methods.conv_backbones.HPO_MILESTONES)",
        "optimizer": "SGD Nesterov", "seed": SEED,
        "seed_note": "every curve is trained with seed 0; the searched seed of the DASHA space has no effect here",
        "data": {"train": f"stratified seeded (seed {SEED}) subset of {MAX_TRAIN} of the train split "
                          "(tasks.genomics.load_genomics_task max_train)",
                 "val": f"the GUE dev split, all {len(task.y_val)} sequences",
                 "test": f"{TEST_SUBSET} test sequences (numpy RandomState({SEED}) permutation), information only",
                 "n_train": int(len(task.y_train)), "n_val": int(len(task.y_val)), "n_test": int(len(task.y_test))},
        "metric": f"best_val_score = best-so-far validation {task.metric.upper()} (higher is better)",
        "mode": "max", "torch_threads": 1, "processes": 1, "torch": torch.__version__, "python": platform.python_version(),
        "build_seconds": round(time.perf_counter() - started, 1),
        "cpu_seconds": round(sum(c["cpu_seconds"] for c in curves), 1),
        "built_by": "benchmarks/make_wrn_curves.py"},
        "grid": g, "curves": curves}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(table, indent=1))
    print(f"wrote {args.out} ({args.out.stat().st_size / 1024:.0f} KiB)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
