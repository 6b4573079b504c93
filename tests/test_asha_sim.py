"""The expected-epochs estimate behind `--dry-run`'s expected GPU-hours: the real ASHA scheduler run over
synthetic curves (launcher/engine/asha_sim.py). Bounds are worked out by hand, never by the simulator."""
from __future__ import annotations

import math

import pytest

from launcher.engine.asha import DASHA_PRESET, AshaConfig
from launcher.engine.asha_sim import expected_epochs, simulate_asha


def synchronous_halving_epochs(trials: int, eta: int, grace: int, max_epochs: int) -> int:
    """What synchronous successive halving spends: rung by rung, 1/eta of the trials go on (rounded up), each
    trained from the last rung to the next. ASHA's asynchronous rule promotes against the values seen so
    far, so it can spend a little less or more; this is the reference it is compared with."""
    rungs, r = [], grace
    while r < max_epochs:
        rungs.append(r)
        r *= eta
    rungs.append(max_epochs)
    total, alive, done = 0, trials, 0
    for rung in rungs:
        total += alive * (rung - done)
        done, alive = rung, math.ceil(alive / eta)
    return total


def test_the_lower_bound_helper_by_hand():
    # 8 trials, eta 2, rungs 1, 2, 4: 8 x 1 + 4 x 1 + 2 x 2 = 16
    assert synchronous_halving_epochs(8, 2, 1, 4) == 16
    # the DASHA preset: 120 + 60 + 30 x 2 + 15 x 4 + 8 x 8 + 4 x 4 = 380
    assert synchronous_halving_epochs(120, 2, 1, 20) == 380


@pytest.mark.parametrize("workers", [1, 8, 64])
def test_asha_spends_between_one_rung_each_and_full_training(workers):
    config = DASHA_PRESET.asha_config()
    for seed in range(3):
        run = simulate_asha(config, 120, workers, seed=seed, jitter=0.2)
        assert 120 * 1 <= run.epochs <= 120 * 20
        assert all(1 <= t <= 20 for t in run.trained_to)            # every trial got its first rung
        assert sum(t == 20 for t in run.trained_to) >= 1              # and somebody finished


def test_the_dasha_preset_costs_about_what_synchronous_halving_does():
    epochs = expected_epochs(DASHA_PRESET.asha_config(), 120, 8)
    reference = synchronous_halving_epochs(120, 2, 1, 20)
    assert 0.8 * reference <= epochs <= 1.4 * reference, (epochs, reference)
    assert epochs < 0.25 * 120 * 20        # and a fraction of training every trial to the end


def test_an_epoch_budget_caps_the_simulated_spend():
    config = AshaConfig(eta=2, grace=1, max_epochs=20, mode="min")
    free = simulate_asha(config, 60, 4, seed=1).epochs
    capped = simulate_asha(config, 60, 4, seed=1, epoch_budget=100).epochs
    assert capped <= 100 < free


def test_the_estimate_does_not_depend_on_the_metric_direction():
    assert expected_epochs(AshaConfig(2, 1, 20, "min"), 40, 4) == expected_epochs(AshaConfig(2, 1, 20, "max"), 40, 4)
