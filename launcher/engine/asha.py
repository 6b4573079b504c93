"""Asynchronous successive halving (ASHA): rungs and the promotion rule. Pure: no I/O, no clock, no
randomness, so replaying the same `report` calls in the same order rebuilds the same decisions.

Promotion-based: a trial trains up to a rung's epoch, checkpoints and exits; the controller then asks
`report(trial, epoch, value)` whether it continues to the next rung. The decision is Ray Tune's ASHA rule
(`ray-project/ray: python/ray/tune/schedulers/async_hyperband.py`, `_Bracket.on_result` / `cutoff`,
one bracket), so with the same arrival order at each rung it takes the same decisions as Ray's
stopping-based scheduler:

* values are sign-flipped so that bigger is better (Ray's `metric_op`: +1 for "max", -1 for "min");
* the cutoff is `np.nanpercentile(earlier, (1 - 1/eta) * 100)` over the values recorded at this rung
  BEFORE this trial arrives (Ray computes the cutoff, then records the value);
* the trial stops iff `signed(value) < cutoff`; the first arrival has no cutoff and always continues;
* ties continue: a value equal to the cutoff passes. So if everybody reports the same saturated
  value (say accuracy 1.0) everybody passes -- ties halve nothing, as in Ray;
* a trial that reaches `max_epochs` is "complete" (Ray: stopped at `max_t`).

Deviations from Ray, on purpose:
* a non-finite value (NaN, +-inf) is a failure: the trial stops, and the value is kept out of the
  cutoff (recorded as NaN, which `nanpercentile` skips -- as Ray skips NaN). Ray would let a NaN
  continue (`nan < cutoff` is False) and would count +inf as the best value ever seen;
* the cutoff excludes the arriving trial's own value. That is Ray's rule; a cutoff that included it
  would be more lenient (earlier [0, 10], new 4, eta 2: Ray's median 5 stops it, the median of
  [0, 10, 4] = 4 would not). With two values the two rules agree.

Rungs are `grace * eta**k` below `max_epochs`, then `max_epochs` as the final stop: (1, 2, 4, 8, 16, 20)
for the DASHA preset. Ray's milestones at or beyond `max_t` never decide anything, so they match.
"""
from __future__ import annotations

import bisect
import math
from dataclasses import asdict, dataclass

CONTINUE = "continue"
STOP = "stop"
COMPLETE = "complete"
STATE_VERSION = 1


@dataclass(frozen=True)
class AshaConfig:
    eta: int = 2  # reduction factor: about 1/eta of the arrivals at a rung go on to the next one
    grace: int = 1  # epochs before the first decision
    max_epochs: int = 20
    mode: str = "min"  # "min" or "max": whether a smaller or a bigger metric value is better

    def __post_init__(self) -> None:
        for field_name in ("eta", "grace", "max_epochs"):
            value = getattr(self, field_name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValueError(f"asha {field_name} must be an int, got {value!r}")
        if self.eta < 2:
            raise ValueError(f"asha eta must be >= 2, got {self.eta}")
        if self.grace < 1:
            raise ValueError(f"asha grace must be >= 1, got {self.grace}")
        if self.max_epochs < self.grace:
            raise ValueError(f"asha max_epochs ({self.max_epochs}) must be >= grace ({self.grace})")
        if self.mode not in ("min", "max"):
            raise ValueError(f"asha mode must be 'min' or 'max', got {self.mode!r}")

    def rungs(self) -> tuple[int, ...]:
        """Decision epochs, ascending; the last one is `max_epochs` (where trials complete)."""
        rungs, epoch = [], self.grace
        while epoch < self.max_epochs:  # integer arithmetic: no log() rounding as in Ray's MAX_RUNGS
            rungs.append(epoch)
            epoch *= self.eta
        rungs.append(self.max_epochs)
        return tuple(rungs)


@dataclass(frozen=True)
class AshaPreset:
    """A named sweep recipe the config layer can expand (`scheduler: {preset: dasha}`)."""

    trials: int
    eta: int
    grace: int
    max_epochs: int
    mode: str
    metric: str
    search_seed: bool  # the training seed is itself a searched hyperparameter

    def asha_config(self) -> AshaConfig:
        return AshaConfig(eta=self.eta, grace=self.grace, max_epochs=self.max_epochs, mode=self.mode)


# Xu et al. (ICLR 2025), `ritvikgupta199/DASHA: src/main_dasha.py`: Ray ASHAScheduler(reduction_factor=2,
# max_t=20) with grace_period=1, brackets=1, num_samples=120; each epoch reports the best-so-far
# validation score; random_seed ~ randint(0, 500) is in the search space. See docs/reference-protocol.md#asha.
DASHA_PRESET = AshaPreset(
    trials=120, eta=2, grace=1, max_epochs=20, mode="max",
    metric="best-so-far validation score", search_seed=True,
)
PRESETS: dict[str, AshaPreset] = {"dasha": DASHA_PRESET}


def sorted_percentile(ranked: list[float], q: float) -> float:
    """`np.nanpercentile(values, q)` (method "linear") of values already sorted, without NaN, in O(1):
    numpy's own arithmetic step by step (virtual index (n-1)*q/100, its floor, and numpy's two-sided
    lerp), so the result is bit-identical and journalled decisions replay exactly
    (tests/test_asha.py checks it against numpy)."""
    n = len(ranked)
    virtual = (n - 1) * (q / 100)
    if virtual >= n - 1:
        return float(ranked[-1])
    below = math.floor(virtual)
    low, high = ranked[below], ranked[below + 1]
    gamma = virtual - below
    diff = high - low
    return float(high - diff * (1 - gamma)) if gamma >= 0.5 else float(low + diff * gamma)


class Asha:
    """The rung records of one sweep and the decisions taken from them."""

    def __init__(self, config: AshaConfig):
        self.config = config
        self.rungs = config.rungs()
        # rung epoch -> {trial_id: value}, in arrival order; failures are stored as NaN
        self._recorded: dict[int, dict[str, float]] = {epoch: {} for epoch in self.rungs}
        # trial_id -> (last rung epoch it reported at, the decision taken there)
        self._last: dict[str, tuple[int, str]] = {}
        # rung epoch -> the valid values there, signed (bigger is better) and sorted: a rank is a bisection
        self._ranked: dict[int, list[float]] = {epoch: [] for epoch in self.rungs}

    # -- the rule -------------------------------------------------------------------------------

    def _signed(self, value: float) -> float:
        """Bigger is better after this, whatever the mode (Ray's metric_op)."""
        return value if self.config.mode == "max" else -value

    def _signed_cutoff(self, epoch: int) -> float | None:
        ranked = self._ranked[epoch]
        if not ranked:
            return None  # nothing to compare with yet (or only failures): the arrival passes
        return sorted_percentile(ranked, (1 - 1 / self.config.eta) * 100)

    def cutoff(self, epoch: int) -> float | None:
        """The value the next arrival at `epoch` must match or beat, in the metric's own units."""
        signed = self._signed_cutoff(self._check_rung(epoch))
        return None if signed is None else self._signed(signed)

    def report(self, trial_id: str, epoch: int, value: float) -> str:
        """Record `value` for `trial_id` at rung `epoch` and return "continue", "stop" or "complete".

        `epoch` must be the trial's `next_epoch`. A crash while training towards a rung is reported as
        `report(trial, next_epoch(trial), float("nan"))`.
        """
        if not isinstance(trial_id, str):  # ids become JSON keys in to_state: ints would come back as str
            raise TypeError(f"trial_id must be a str, got {trial_id!r}")
        expected = self.next_epoch(trial_id)
        if expected is None:
            raise ValueError(f"trial {trial_id!r} already ended ({self._last[trial_id][1]}); it has no next rung")
        if epoch != expected:
            raise ValueError(f"trial {trial_id!r} reported at epoch {epoch}, but its next rung is {expected}")
        value = float(value)
        if not math.isfinite(value):
            decision, value = STOP, math.nan
        elif epoch == self.config.max_epochs:
            decision = COMPLETE
        else:
            cutoff = self._signed_cutoff(epoch)  # computed before recording: earlier arrivals only
            decision = STOP if cutoff is not None and self._signed(value) < cutoff else CONTINUE
        self._record(trial_id, epoch, value)
        self._last[trial_id] = (epoch, decision)
        return decision

    def _record(self, trial_id: str, epoch: int, value: float) -> None:
        self._recorded[epoch][trial_id] = value
        if not math.isnan(value):
            bisect.insort(self._ranked[epoch], self._signed(value))

    # -- queries --------------------------------------------------------------------------------

    def _check_rung(self, epoch: int) -> int:
        if epoch not in self._recorded:
            raise ValueError(f"epoch {epoch} is not a rung; rungs are {self.rungs}")
        return epoch

    def next_epoch(self, trial_id: str) -> int | None:
        """The epoch the trial should train to next; None once it stopped or completed."""
        if trial_id not in self._last:
            return self.rungs[0]
        epoch, decision = self._last[trial_id]
        return self.rungs[self.rungs.index(epoch) + 1] if decision == CONTINUE else None

    def decision(self, trial_id: str) -> str | None:
        """The decision taken at the trial's last report (None before its first)."""
        return self._last[trial_id][1] if trial_id in self._last else None

    def highest_rung(self, trial_id: str) -> int | None:
        """The highest rung epoch at which the trial recorded a valid (finite) value."""
        for epoch in reversed(self.rungs):
            if not math.isnan(self._recorded[epoch].get(trial_id, math.nan)):
                return epoch
        return None

    def fidelity_loss(self, trial_id: str) -> float:
        """The single loss Nevergrad is told when the trial ends (smaller is better).

        Band first, rank second: `(n_rungs - 1 - rung_index) + quantile`, where quantile = (number of
        valid values strictly better than the trial's at its highest rung) / (number of valid values
        there, itself included), in [0, 1). So a trial that reached a higher rung always gets a lower
        loss, and raw values measured at different epochs are never compared. Tied values share the
        same (best) quantile. Trials that never recorded a valid value -- failed, or unknown -- get
        n_rungs. The quantile uses the values recorded so far, so the caller computes it once, when the
        trial ends, and journals the number it told.
        """
        n_rungs = len(self.rungs)
        epoch = self.highest_rung(trial_id)
        if epoch is None:
            return float(n_rungs)
        own = self._signed(self._recorded[epoch][trial_id])
        ranked = self._ranked[epoch]
        quantile = (len(ranked) - bisect.bisect_right(ranked, own)) / len(ranked)    # strictly better / valid
        return (n_rungs - 1 - self.rungs.index(epoch)) + quantile

    def last_report_key(self, trial_id: str) -> tuple[int, float]:
        """Orders trials by the value of their LAST report, whatever its rung (Ray Tune's best-trial rule,
        `get_best_result(metric)` with its default scope "last"): (0, minus its signed value), (1, 0) when
        that report was a failure."""
        epoch = self._last[trial_id][0]
        value = self._recorded[epoch][trial_id]
        return (1, 0.0) if math.isnan(value) else (0, -self._signed(value))

    def fidelity_key(self, trial_id: str) -> tuple[int, float]:
        """Orders trials as `fidelity_loss` does, and never changes once the trial ended: (rungs below the
        top one its highest valid rung leaves, minus its signed value there). A higher rung wins, then a
        better value (the quantile is strictly monotone in the value at one rung)."""
        epoch = self.highest_rung(trial_id)
        if epoch is None:
            return (len(self.rungs), 0.0)
        return (len(self.rungs) - 1 - self.rungs.index(epoch), -self._signed(self._recorded[epoch][trial_id]))

    def occupancy(self) -> dict[int, int]:
        """Rung epoch -> number of trials that reported there (failures included)."""
        return {epoch: len(recorded) for epoch, recorded in self._recorded.items()}

    # -- journal --------------------------------------------------------------------------------

    def to_state(self) -> dict:
        """JSON-able snapshot (NaN written as null) from which `from_state` rebuilds this object."""
        return {
            "version": STATE_VERSION,
            "config": asdict(self.config),
            "recorded": {
                str(epoch): [[trial, None if math.isnan(v) else v] for trial, v in recorded.items()]
                for epoch, recorded in self._recorded.items()
            },
            "last": {trial: [epoch, decision] for trial, (epoch, decision) in self._last.items()},
        }

    @classmethod
    def from_state(cls, config: AshaConfig, state: dict) -> "Asha":
        if state.get("version") != STATE_VERSION:
            raise ValueError(f"asha state version {state.get('version')!r}, expected {STATE_VERSION}")
        if state.get("config") != asdict(config):
            # the rule changed between runs: old decisions would not replay under the new one
            raise ValueError(f"asha state was written with {state.get('config')}, not {asdict(config)}")
        asha = cls(config)
        for epoch_key, pairs in state["recorded"].items():
            epoch = asha._check_rung(int(epoch_key))
            recorded = {trial: math.nan if value is None else float(value) for trial, value in pairs}
            asha._recorded[epoch] = recorded
            # sorted once (what `_record`'s insort builds one value at a time, in O(n) per value)
            asha._ranked[epoch] = sorted(asha._signed(v) for v in recorded.values() if not math.isnan(v))
        for trial, (epoch, decision) in state["last"].items():
            if decision not in (CONTINUE, STOP, COMPLETE):
                raise ValueError(f"asha state: unknown decision {decision!r} for trial {trial!r}")
            asha._last[trial] = (asha._check_rung(int(epoch)), decision)
        return asha
