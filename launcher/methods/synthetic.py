"""A synthetic learning-curve benchmark that behaves like a training job, without data.

Each configuration (x, y) in [0, 1]^2 has a learning curve
    val_loss(epoch) = asymptote(x, y) + (1 + y) * exp(-epoch * rate(x)) + noise
whose best point is near (0.3, 0.7); fast learners (large x) look good early and converge to
worse values, so early rungs are informative but imperfect, as in real sweeps. It checkpoints
and resumes like a real method, can sleep to simulate training time, and can fail on purpose,
which makes it the workhorse of the controller's tests and benchmarks.
"""
from __future__ import annotations

import json
import math
import os
import random
import time
from pathlib import Path
from typing import Any

from launcher.methods.base import EpochMethod, MethodResult, Report
from launcher.methods.params import SEED_MAX, Param


def curve(x: float, y: float, seed: int, epoch: int) -> float:
    asymptote = 0.1 + (x - 0.3) ** 2 + (y - 0.7) ** 2
    rate = 0.15 + 0.6 * x
    noise = random.Random(f"{seed}:{x!r}:{y!r}:{epoch}").gauss(0.0, 0.01)
    return asymptote + (1.0 + y) * math.exp(-epoch * rate) + noise


class SyntheticMethod(EpochMethod):
    name = "synthetic"
    kind = "benchmark"
    domains = ("forecasting", "genomics", "satellite")
    params = {
        "x": Param("float", 0.5, "first coordinate of the configuration", minimum=0.0, maximum=1.0),
        "y": Param("float", 0.5, "second coordinate of the configuration", minimum=0.0, maximum=1.0),
        "seed": Param("int", 0, "noise seed", minimum=0, ceiling=SEED_MAX),
        "seconds_per_epoch": Param("float", 0.0, "sleep per epoch, to simulate training time", minimum=0.0),
        "fail_above": Param("float", None, "raise when x is above this (to exercise the failure policy)", nullable=True),
    }
    default_space = {"x": {"float": [0.0, 1.0]}, "y": {"float": [0.0, 1.0]}}
    objective = ("best_val_loss", "min")
    needs_task = False

    def run_segment(self, task: Any, params: dict[str, Any], trial_dir: Path, until_epoch: int,
                    report: Report) -> MethodResult:
        x, y, seed = params["x"], params["y"], params["seed"]
        if params.get("fail_above") is not None and x > params["fail_above"]:
            raise RuntimeError(f"synthetic failure: x={x:.3f} > fail_above={params['fail_above']}")
        state_path = Path(trial_dir) / "checkpoint.json"
        state = json.loads(state_path.read_text()) if state_path.exists() else {"epoch": 0, "best": math.inf}
        while state["epoch"] < until_epoch:
            time.sleep(params["seconds_per_epoch"])
            state["epoch"] += 1
            value = curve(x, y, seed, state["epoch"])
            state["best"] = min(state["best"], value)
            tmp = state_path.with_suffix(".tmp")
            tmp.write_text(json.dumps(state))
            os.replace(tmp, state_path)
            report(state["epoch"], {"val_loss": value, "best_val_loss": state["best"]})
        metrics = {"epoch": float(state["epoch"]), "best_val_loss": state["best"],
                   "test_mse": state["best"] + 0.05, "test_mae": math.sqrt(state["best"] + 0.05)}
        return MethodResult(metrics=metrics, n_parameters=2)
