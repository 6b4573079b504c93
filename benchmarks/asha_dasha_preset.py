"""Simulate the DASHA preset (120 trials, eta 2, grace 1, max 20 epochs, mode max) on synthetic learning
curves and check goal G13: rung occupancy ~120/60/30/15/8 at epochs 1/2/4/8/16 (within +-15 %) and
total epochs trained ~390 (target <= 400) instead of 2400 for training every trial to the end.

Each trial has a random asymptote and rate; its reported metric is the best-so-far of a noisy saturating
curve (as DASHA reports best-so-far validation score). 8 workers, 1 time unit per epoch; a worker that
frees up resumes a promoted trial right away (the decision is instant), otherwise starts a new one.
With equal epoch costs every trial reaches rung e at (its start + e), so the arrival order at every rung
is the start order and the decisions do not depend on --workers; --jitter J gives each trial an epoch
cost drawn from U(1-J, 1+J), which reorders arrivals as uneven models do on a real cluster.

Verdicts (last line): per rung, |mean occupancy - ideal| / ideal <= 15 %; mean total epochs <= 400.
Also printed: the epochs synchronous successive halving would train over the same rungs (the lower bound).

    .venv/bin/python benchmarks/asha_dasha_preset.py [--seeds 5] [--workers 8] [--jitter 0.0]
    .venv/bin/python benchmarks/asha_dasha_preset.py --quick      # 2 seeds
"""
from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _verdict import print_verdicts, verdict

from launcher.engine.asha import DASHA_PRESET
from launcher.engine.asha_sim import simulate_asha

TARGET_OCCUPANCY = {1: 120, 2: 60, 4: 30, 8: 15, 16: 7.5}  # ideal successive halving, docs/reference-protocol.md#asha
OCCUPANCY_BAND = 0.15
EPOCH_TARGET = 400


def synchronous_halving_epochs(trials: int, rungs: tuple[int, ...], eta: int) -> int:
    """Epochs synchronous successive halving trains over the same rungs: every trial to the first
    rung, then the best floor(n / eta) of each rung on to the next (waiting for the whole rung). The
    lower bound of asynchronous ASHA, which promotes before a rung is full."""
    epochs, alive, previous = 0, trials, 0
    for rung in rungs:
        epochs += alive * (rung - previous)
        previous, alive = rung, max(1, alive // eta)
    return epochs


def simulate(seed: int, workers: int, jitter: float = 0.0) -> dict:
    preset = DASHA_PRESET
    config = preset.asha_config()
    run = simulate_asha(config, preset.trials, workers, seed=seed, jitter=jitter)
    curves, trained_to, asha = run.curves, run.trained_to, run.asha
    best_true = max(range(preset.trials), key=lambda t: curves[t][-1])  # best if all were trained fully
    completed = [t for t in range(preset.trials) if trained_to[t] == config.max_epochs]
    best_found = max(completed, key=lambda t: curves[t][-1])
    loss_order = sorted(range(preset.trials), key=lambda t: asha.fidelity_loss(f"t{t}"))
    return {
        "occupancy": asha.occupancy(),
        "epochs": run.epochs,
        "makespan": round(run.makespan),
        "best_reached_max": trained_to[best_true] == config.max_epochs,
        "regret": curves[best_true][-1] - curves[best_found][-1],
        "nevergrad_best_is_asha_best": loss_order[0] == best_found,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=None, help="default 5 (--quick: 2)")
    parser.add_argument("--quick", action="store_true", help="2 seeds (CI: checks that it runs)")
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--jitter", type=float, default=0.0, help="epoch cost ~ U(1-J, 1+J) per trial")
    args = parser.parse_args()
    args.seeds = args.seeds or (2 if args.quick else 5)
    preset = DASHA_PRESET
    rungs = preset.asha_config().rungs()
    full = preset.trials * preset.max_epochs
    print(f"DASHA preset: {preset.trials} trials, eta {preset.eta}, grace {preset.grace}, "
          f"max {preset.max_epochs} epochs, rungs {rungs}, {args.workers} workers, jitter {args.jitter}")
    print("seed  " + "  ".join(f"@{e:<3}" for e in rungs) + "  epochs  makespan  best->max  regret")
    results = []
    for seed in range(args.seeds):
        r = simulate(seed, args.workers, args.jitter)
        results.append(r)
        print(f"{seed:<5} " + "  ".join(f"{r['occupancy'][e]:<4}" for e in rungs)
              + f"  {r['epochs']:<6}  {r['makespan']:<8}  {'yes' if r['best_reached_max'] else 'no':<9}"
              + f"  {r['regret']:.4f}")
    verdicts = []
    print("\nmean occupancy vs ideal successive halving (+-15 %):")
    for epoch in rungs:
        mean = statistics.mean(r["occupancy"][epoch] for r in results)
        target = TARGET_OCCUPANCY.get(epoch)
        if target is None:
            print(f"  epoch {epoch:>2}: {mean:6.1f}  (complete; no target)")
            continue
        within = abs(mean - target) <= OCCUPANCY_BAND * target
        print(f"  epoch {epoch:>2}: {mean:6.1f}  target {target:6.1f}  {'ok' if within else 'OUT OF BAND'}")
        verdicts.append(verdict(f"rung{epoch}_occupancy_deviation", 100 * abs(mean - target) / target, "<=",
                                100 * OCCUPANCY_BAND, unit="%", fmt=".1f"))
    mean_epochs = statistics.mean(r["epochs"] for r in results)
    verdicts.append(verdict("total_epochs_mean", mean_epochs, "<=", EPOCH_TARGET, fmt=".1f"))
    print(f"total epochs: mean {mean_epochs:.1f} (min {min(r['epochs'] for r in results)}, "
          f"max {max(r['epochs'] for r in results)}) vs {full} for full training "
          f"= {full / mean_epochs:.1f}x cheaper; target <= {EPOCH_TARGET}: "
          f"{'ok' if mean_epochs <= EPOCH_TARGET else 'MISSED'}")
    sync = synchronous_halving_epochs(preset.trials, rungs, preset.eta)
    print(f"synchronous successive halving over the same rungs (the lower bound): {sync} epochs; "
          f"asynchronous ASHA spends {mean_epochs / sync:.2f}x that, for no waiting at rung barriers")
    hits = sum(r["best_reached_max"] for r in results)
    print(f"best-asymptote trial reached {preset.max_epochs} epochs in {hits}/{len(results)} seeds; "
          f"mean regret of the best completed trial {statistics.mean(r['regret'] for r in results):.4f}")
    agree = sum(r["nevergrad_best_is_asha_best"] for r in results)
    print(f"lowest fidelity_loss == best completed trial in {agree}/{len(results)} seeds")
    print_verdicts(verdicts)
    return 0


if __name__ == "__main__":
    sys.exit(main())
