"""ASHA decisions checked against the rule itself, never against the code's own output.

Two independent references:
* `reference_decision`: the rule as stated (nanpercentile of what the rung saw before this arrival);
* `RayBracket`: a re-statement of Ray Tune's `_Bracket.on_result` (one bracket, stopping-based, fed every
  epoch, milestones from Ray's own log formula) -- the G11(a)/G13 "Ray parity" check.
"""
from __future__ import annotations

import json
import math
import random

import numpy as np
import pytest

from launcher.engine.asha import COMPLETE, CONTINUE, DASHA_PRESET, STOP, Asha, AshaConfig


def reference_decision(earlier: list[float], value: float, eta: int, mode: str) -> str:
    sign = 1.0 if mode == "max" else -1.0
    if not math.isfinite(value):
        return STOP
    finite = [sign * v for v in earlier if math.isfinite(v)]
    if not finite:
        return CONTINUE
    return STOP if sign * value < np.nanpercentile(finite, (1 - 1 / eta) * 100) else CONTINUE


class RayBracket:
    """Ray's single bracket: milestones grace*rf^k, k < int(log(max_t/grace)/log(rf) + 1); stop at max_t."""

    def __init__(self, grace: int, max_t: int, rf: int, mode: str):
        n_milestones = int(np.log(max_t / grace) / np.log(rf) + 1)
        self.milestones = [grace * rf**k for k in reversed(range(n_milestones))]  # descending
        self.recorded: dict[int, dict[str, float]] = {m: {} for m in self.milestones}
        self.max_t, self.rf, self.sign = max_t, rf, (1.0 if mode == "max" else -1.0)

    def on_result(self, trial: str, iteration: int, value: float) -> str:
        if iteration >= self.max_t:
            return "STOP"
        reward = self.sign * value
        for milestone in self.milestones:
            if iteration < milestone or trial in self.recorded[milestone]:
                continue
            earlier = list(self.recorded[milestone].values())
            cutoff = np.nanpercentile(earlier, (1 - 1 / self.rf) * 100) if earlier else None
            self.recorded[milestone][trial] = reward
            return "STOP" if cutoff is not None and reward < cutoff else "CONTINUE"
        return "CONTINUE"


def random_run(seed: int, config: AshaConfig, n_trials: int = 40, workers: int = 5, ties: bool = False):
    """Asynchronous arrivals: yields (trial, epoch, value) in the order trials reach their rungs."""
    rng = random.Random(seed)
    rungs = config.rungs()
    curves = {f"t{i}": (rng.uniform(0, 1), rng.uniform(0.05, 1.0)) for i in range(n_trials)}

    def value(trial: str, epoch: int) -> float:
        asymptote, rate = curves[trial]
        v = asymptote * (1 - math.exp(-rate * epoch)) + rng.gauss(0, 0.05)
        return round(v, 1) if ties else v

    waiting, running = list(curves), {}  # running: trial -> index of the rung it trains towards
    asha = Asha(config)
    while waiting or running:
        while waiting and len(running) < workers:
            running[waiting.pop(0)] = 0
        trial = rng.choice(sorted(running))
        epoch = rungs[running[trial]]
        v = value(trial, epoch)
        yield trial, epoch, v
        if asha.report(trial, epoch, v) == CONTINUE:
            running[trial] += 1
        else:
            del running[trial]


@pytest.mark.parametrize("mode", ["min", "max"])
@pytest.mark.parametrize("eta,grace,max_epochs", [(2, 1, 20), (3, 1, 27), (3, 2, 30), (4, 1, 64)])
@pytest.mark.parametrize("ties", [False, True])
def test_decisions_match_the_rule_and_ray(mode, eta, grace, max_epochs, ties):
    config = AshaConfig(eta=eta, grace=grace, max_epochs=max_epochs, mode=mode)
    for seed in range(3):
        asha, ray = Asha(config), RayBracket(grace, max_epochs, eta, mode)
        seen: dict[int, list[float]] = {}
        last_epoch: dict[str, int] = {}
        for trial, epoch, value in random_run(seed, config, ties=ties):
            got = asha.report(trial, epoch, value)
            expected = COMPLETE if epoch == max_epochs else reference_decision(seen.get(epoch, []), value, eta, mode)
            seen.setdefault(epoch, []).append(value)
            # Ray is stopping-based and sees every epoch; between milestones it must say CONTINUE
            for e in range(last_epoch.get(trial, 0) + 1, epoch):
                assert ray.on_result(trial, e, value) == "CONTINUE"
            last_epoch[trial] = epoch
            ray_says = ray.on_result(trial, epoch, value)
            assert got == expected, (seed, trial, epoch)
            assert (got == STOP or got == COMPLETE) == (ray_says == "STOP"), (seed, trial, epoch)


def test_dasha_preset_rungs():
    assert DASHA_PRESET.asha_config().rungs() == (1, 2, 4, 8, 16, 20)
    assert (DASHA_PRESET.trials, DASHA_PRESET.mode, DASHA_PRESET.search_seed) == (120, "max", True)
    assert AshaConfig(eta=3, grace=1, max_epochs=27).rungs() == (1, 3, 9, 27)
    assert AshaConfig(eta=2, grace=1, max_epochs=1).rungs() == (1,)
    with pytest.raises(ValueError, match="mode"):
        AshaConfig(mode="maximize")


def test_ray_docstring_example():
    # Ray's _Bracket docstring: rewards 2, 4 pass; cutoff 3.0; reward 1 stops
    asha = Asha(AshaConfig(eta=2, grace=1, max_epochs=10, mode="max"))
    assert asha.report("a", 1, 2.0) == CONTINUE  # first arrival always continues
    assert asha.report("b", 1, 4.0) == CONTINUE
    assert asha.cutoff(1) == 3.0
    assert asha.report("c", 1, 1.0) == STOP
    assert asha.cutoff(1) == 2.0


def test_first_arrival_continues_even_if_terrible():
    asha = Asha(AshaConfig(eta=2, max_epochs=4, mode="min"))
    assert asha.report("a", 1, 1e9) == CONTINUE
    assert asha.report("a", 2, 1e9) == CONTINUE
    assert asha.report("a", 4, 1e9) == COMPLETE
    assert asha.next_epoch("a") is None


def test_ties_at_the_cutoff_continue():
    asha = Asha(AshaConfig(eta=2, max_epochs=8, mode="max"))
    for trial in "abcd":
        assert asha.report(trial, 1, 0.5) == CONTINUE  # every cutoff is 0.5, and 0.5 is not < 0.5
    min_asha = Asha(AshaConfig(eta=2, max_epochs=8, mode="min"))
    min_asha.report("a", 1, 0.5)
    min_asha.report("b", 1, 0.3)  # median 0.4
    assert min_asha.report("c", 1, 0.4) == CONTINUE
    assert min_asha.report("d", 1, 0.45) == STOP  # earlier 0.5, 0.3, 0.4 -> median 0.4


def test_eta_3_uses_the_two_thirds_percentile():
    asha = Asha(AshaConfig(eta=3, grace=1, max_epochs=9, mode="max"))
    asha.report("a", 1, 10.0)
    asha.report("b", 1, 20.0)  # cutoff now 10 + 2/3 * 10 = 16.67
    assert asha.cutoff(1) == pytest.approx(50 / 3)
    assert asha.report("c", 1, 16.0) == STOP
    # earlier [10, 16, 20]: position 2/3 * 2 = 1.33 -> 16 + 0.33 * (20 - 16) = 17.33
    assert asha.cutoff(1) == pytest.approx(52 / 3)
    assert asha.report("d", 1, 17.3) == STOP
    assert asha.report("e", 1, 17.4) == CONTINUE
    assert asha.next_epoch("e") == 3 and asha.next_epoch("d") is None


def test_nan_and_inf_are_failures_kept_out_of_the_cutoff():
    asha = Asha(AshaConfig(eta=2, max_epochs=8, mode="max"))
    assert asha.report("crash", 1, float("nan")) == STOP
    assert asha.report("a", 1, 0.2) == CONTINUE  # the NaN sets no cutoff: still the first valid arrival
    assert asha.report("inf", 1, float("inf")) == STOP  # +inf is not "the best ever" here
    assert asha.cutoff(1) == 0.2
    assert asha.report("b", 1, 0.1) == STOP
    assert asha.occupancy()[1] == 4
    assert asha.highest_rung("crash") is None and asha.highest_rung("a") == 1
    assert asha.fidelity_loss("crash") == asha.fidelity_loss("never-seen") == len(asha.rungs)
    # a crash on the way to rung 2 keeps the trial's rung-1 standing
    loss_before = asha.fidelity_loss("a")
    assert asha.report("a", 2, float("nan")) == STOP
    assert asha.highest_rung("a") == 1 and asha.fidelity_loss("a") == loss_before


def test_report_checks_the_rung_sequence():
    asha = Asha(AshaConfig(eta=2, max_epochs=8))
    with pytest.raises(ValueError, match="next rung is 1"):
        asha.report("a", 2, 0.0)
    asha.report("a", 1, 0.0)
    asha.report("b", 1, 1.0)  # min mode: 1.0 > cutoff 0.0 -> stop
    with pytest.raises(ValueError, match="already ended"):
        asha.report("b", 2, 0.0)
    with pytest.raises(ValueError, match="not a rung"):
        asha.cutoff(3)
    with pytest.raises(TypeError, match="must be a str"):
        asha.report(7, 1, 0.0)


@pytest.mark.parametrize("mode", ["min", "max"])
def test_fidelity_loss_orders_by_rung_then_rank(mode):
    config = AshaConfig(eta=2, grace=1, max_epochs=20, mode=mode)
    asha, rungs = Asha(config), config.rungs()
    info: dict[str, tuple[int, float]] = {}  # trial -> (index of the last rung it reported at, value there)
    for trial, epoch, value in random_run(7, config, n_trials=60, ties=True):
        asha.report(trial, epoch, value)
        info[trial] = (rungs.index(epoch), value)
    sign = 1.0 if mode == "max" else -1.0
    trials = sorted(info)
    assert {idx for idx, _ in info.values()} == set(range(len(rungs)))  # every band is exercised
    for a in trials:
        loss_a = asha.fidelity_loss(a)
        assert len(rungs) - 1 - info[a][0] <= loss_a < len(rungs) - info[a][0]
        for b in trials:
            (rung_a, value_a), (rung_b, value_b) = info[a], info[b]
            loss_b = asha.fidelity_loss(b)
            if rung_a > rung_b:
                assert loss_a < loss_b
            elif rung_a == rung_b and sign * value_a > sign * value_b:
                assert loss_a < loss_b
            elif rung_a == rung_b and value_a == value_b:
                assert loss_a == loss_b
    assert min(asha.fidelity_loss(t) for t in trials) == 0.0  # the best completed trial


def test_occupancy_counts_arrivals_per_rung():
    asha = Asha(AshaConfig(eta=2, max_epochs=4, mode="max"))
    for trial, value in [("a", 1.0), ("b", 2.0), ("c", 0.0)]:
        asha.report(trial, 1, value)
    asha.report("b", 2, 2.0)
    assert asha.occupancy() == {1: 3, 2: 1, 4: 0}


def test_state_round_trip_mid_sequence_gives_identical_decisions():
    config = AshaConfig(eta=2, grace=1, max_epochs=20, mode="max")
    reports = list(random_run(3, config, n_trials=50))
    reports.insert(10, ("crash", 1, float("nan")))
    half = len(reports) // 2
    original = Asha(config)
    for trial, epoch, value in reports[:half]:
        original.report(trial, epoch, value)
    state = json.loads(json.dumps(original.to_state(), allow_nan=False))  # strict JSON: NaN -> null
    restored = Asha.from_state(config, state)
    assert restored.to_state() == original.to_state()
    for trial, epoch, value in reports[half:]:
        assert restored.report(trial, epoch, value) == original.report(trial, epoch, value)
        assert restored.fidelity_loss(trial) == original.fidelity_loss(trial)
    assert restored.occupancy() == original.occupancy()
    with pytest.raises(ValueError, match="written with"):
        Asha.from_state(AshaConfig(eta=3, max_epochs=20, mode="max"), state)


@pytest.mark.parametrize("mode", ["min", "max"])
@pytest.mark.parametrize("seed", range(6))
def test_fidelity_loss_by_bisection_and_the_kept_best_equal_the_definition(mode, seed):
    """The rank is kept by bisection and the study keeps its best as trials end (O(1) per event); both
    must equal the definition computed from scratch: quantile = valid values strictly better / valid
    values, best = min fidelity loss then trial id. Values are drawn from a small set, so ties, NaN
    and trials at every rung occur."""
    rng = random.Random(seed)
    asha = Asha(AshaConfig(eta=2, grace=1, max_epochs=8, mode=mode))
    live = [f"t{i:02d}" for i in range(40)]
    ended: list[str] = []
    best_kept: tuple | None = None
    while live:
        trial = rng.choice(live)
        value = rng.choice([0.1, 0.2, 0.2, 0.3, 0.5, math.nan]) if rng.random() < 0.9 else math.inf
        decision = asha.report(trial, asha.next_epoch(trial), value)
        if decision == CONTINUE:
            continue
        live.remove(trial)
        ended.append(trial)
        key = (*asha.fidelity_key(trial), trial)
        best_kept = key if best_kept is None or key < best_kept else best_kept
        for other in ended:           # the definition, from the recorded values
            epoch = asha.highest_rung(other)
            if epoch is None:
                assert asha.fidelity_loss(other) == len(asha.rungs)
                continue
            sign = 1.0 if mode == "max" else -1.0
            valid = [sign * v for v in asha._recorded[epoch].values() if not math.isnan(v)]
            own = sign * asha._recorded[epoch][other]
            expected = (len(asha.rungs) - 1 - asha.rungs.index(epoch)) + sum(v > own for v in valid) / len(valid)
            assert asha.fidelity_loss(other) == expected
        assert best_kept[-1] == min(ended, key=lambda t: (asha.fidelity_loss(t), t))


@pytest.mark.parametrize("seed", range(20))
def test_the_sorted_percentile_is_bit_identical_to_numpy(seed):
    """The cutoff is kept in O(1) from the sorted rung; a decision replayed from the journal must be
    the one taken live, so the value must equal np.nanpercentile's to the last bit (ties, NaN-free
    values of any magnitude and sign, every eta)."""
    from launcher.engine.asha import sorted_percentile

    rng = random.Random(seed)
    for _ in range(200):
        n = rng.randint(1, 60)
        pool = [rng.uniform(-1e3, 1e3) for _ in range(4)] + [rng.gauss(0, 1e-6) for _ in range(4)]
        values = [rng.choice(pool) if rng.random() < 0.5 else rng.uniform(-5, 5) for _ in range(n)]
        for eta in (2, 3, 4, 5, 7):
            q = (1 - 1 / eta) * 100
            expected = float(np.nanpercentile(values + [math.nan] * rng.randint(0, 3), q))
            assert sorted_percentile(sorted(values), q) == expected


@pytest.mark.parametrize("protocol", ["clean", "reference"])
def test_the_study_picks_by_rung_then_value_or_by_rays_last_report_under_the_reference_protocol(protocol):
    """A trial stopped at the first rung with the best value of all, and one that went to the top rung
    with a worse value: the default pick is the one trained longest (highest rung, then rank there);
    DASHA's `protocol: reference` picks as the reference's Ray Tune does, the best last-reported value."""
    from launcher.engine.study import Study, StudyPlan
    from launcher.spec.space import parse_space

    config = AshaConfig(eta=2, grace=1, max_epochs=4, mode="max")
    plan = StudyPlan(name="t/dasha", slug="t__dasha", task="t", dataset="t", horizon=0, context=0, method="dasha",
                     arm="tuned", fixed_params={"protocol": protocol}, space=parse_space({"lr": {"float": [0.0, 1.0]}}),
                     optimizer="RandomSearch", trials=3, seeds=(0,), asha=config, epochs=None, epoch_budget=None,
                     objective="val_score", mode="max")
    study = Study(plan, num_workers=1)
    first, lucky, steady = study.ask(), study.ask(), study.ask()
    assert study.segment_done(first, 1, {"val_score": 0.50}, "val_score")[0] == "continue"
    assert study.segment_done(lucky, 1, {"val_score": 0.40}, "val_score")[0] == "stop"      # below the cutoff
    study.segment_done(steady, 1, {"val_score": 0.60}, "val_score")
    study.segment_done(steady, 2, {"val_score": 0.30}, "val_score")
    study.segment_done(steady, 4, {"val_score": 0.35}, "val_score")
    assert steady.status == "complete"
    # lucky's last report, 0.40, beats steady's last, 0.35; steady reached the top rung
    assert study.best_trial() is (lucky if protocol == "reference" else steady)
