"""How many epochs ASHA trains, found by running the real scheduler (`engine.asha.Asha`) over synthetic
learning curves with asynchronous workers. Used by `--dry-run` for the expected GPU-hours and by
`benchmarks/asha_dasha_preset.py`.

Each trial has a random asymptote and rate; its reported metric is the best-so-far of a noisy
saturating curve (as DASHA reports the best validation score so far). W workers, one time unit per
epoch (times a per-trial factor drawn from U(1-jitter, 1+jitter)); a worker that frees up resumes a
promoted trial at once, otherwise starts a new one. The count depends on eta, grace, max_epochs, the
trials and (through the arrival order) the workers; the curves only decide who is promoted, and with
i.i.d. curves the mean over a few seeds is a stable estimate of what a real sweep spends.
"""
from __future__ import annotations

import heapq
import math
import random
import statistics
from dataclasses import dataclass, replace
from functools import lru_cache

from launcher.engine.asha import CONTINUE, Asha, AshaConfig


def synthetic_curves(rng: random.Random, n_trials: int, max_epochs: int) -> list[list[float]]:
    """Per trial, the best-so-far metric after epochs 1..max_epochs (index 0 = epoch 1); bigger is better."""
    curves = []
    for _ in range(n_trials):
        asymptote = rng.uniform(0.5, 0.95)
        rate = math.exp(rng.uniform(math.log(0.05), math.log(1.0)))  # slow and fast learners
        best, curve = -math.inf, []
        for epoch in range(1, max_epochs + 1):
            raw = asymptote * (1 - math.exp(-rate * epoch)) + rng.gauss(0, 0.02)
            best = max(best, raw)
            curve.append(best)
        curves.append(curve)
    return curves


@dataclass
class Simulation:
    asha: Asha
    curves: list[list[float]]
    trained_to: list[int]        # epochs each trial trained
    makespan: float

    @property
    def epochs(self) -> int:
        return sum(self.trained_to)


def simulate_asha(config: AshaConfig, trials: int, workers: int, seed: int = 0, jitter: float = 0.0,
                  epoch_budget: int | None = None) -> Simulation:
    """One asynchronous ASHA run of `trials` trials on `workers` workers (see the module docstring)."""
    config = replace(config, mode="max")          # the synthetic curves grow; only the ranking matters
    rng = random.Random(seed)
    curves = synthetic_curves(rng, trials, config.max_epochs)
    epoch_cost = [rng.uniform(1 - jitter, 1 + jitter) for _ in range(trials)]
    asha = Asha(config)
    events: list[tuple[float, int, int]] = []    # (time the segment ends, trial index, rung epoch reached)
    trained_to = [0] * trials
    spent = 0                                     # epochs started, for the optional epoch budget
    next_new, now = 0, 0.0

    def start_segment(trial: int, at: float) -> bool:
        nonlocal spent
        target = asha.next_epoch(f"t{trial}")
        if epoch_budget is not None and spent + target - trained_to[trial] > epoch_budget:
            return False
        spent += target - trained_to[trial]
        heapq.heappush(events, (at + (target - trained_to[trial]) * epoch_cost[trial], trial, target))
        return True

    for _ in range(min(workers, trials)):         # every worker starts a fresh trial
        if not start_segment(next_new, 0.0):
            break
        next_new += 1
    while events:
        now, trial, epoch = heapq.heappop(events)
        trained_to[trial] = epoch
        if asha.report(f"t{trial}", epoch, curves[trial][epoch - 1]) == CONTINUE:
            start_segment(trial, now)             # promoted: resume it from its checkpoint on this worker
        elif next_new < trials and start_segment(next_new, now):
            next_new += 1
    return Simulation(asha, curves, trained_to, now)


@lru_cache(maxsize=256)        # a sweep's studies mostly share one scheduler setting: simulate it once
def expected_epochs(config: AshaConfig, trials: int, workers: int, *, epoch_budget: int | None = None,
                    seeds: int = 8) -> float:
    """Mean epochs ASHA trains over `seeds` simulated runs (jitter 0.2: uneven models reorder arrivals)."""
    return statistics.fmean(simulate_asha(config, trials, workers, seed=s, jitter=0.2,
                                          epoch_budget=epoch_budget).epochs for s in range(seeds))
