"""Search-space spec <-> nevergrad parametrization.

YAML, one key per searched parameter, its value a one-key mapping naming the domain:

    lr:         {log: [1.0e-5, 1.0e-1]}   # log-uniform float, bounds > 0
    dropout:    {float: [0.0, 0.5]}       # uniform float
    kernel:     {int: [5, 49]}            # uniform integer, both bounds included
    seed:       {int: [0, 1000000]}
    batch_size: {choice: [16, 32, 64]}    # one of the listed values, returned as written

Bounds may be numbers or numeric strings: YAML 1.1 (PyYAML) reads `1e-5` (no dot) as the string
"1e-5", and the config layer accepts that spelling for floats too.

Nevergrad is imported lazily so that parsing and validating a sweep file stays cheap.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any, Mapping

from launcher.errors import did_you_mean

KINDS = ("log", "float", "int", "choice")
EXAMPLES = {"log": "{log: [1.0e-5, 1.0e-1]}", "float": "{float: [0.0, 0.5]}",
            "int": "{int: [5, 49]}", "choice": "{choice: [16, 32, 64]}"}

# TwoPointsDE (TwoPointsDE_LHS below is it with a Latin-hypercube first population), because nevergrad's own guidance for ML hyperparameters (docs/optimization.rst,
# "Optimizing machine learning hyperparameters") is "use Choice for discrete variables, use TwoPointsDE
# with num_workers equal to the number of workers available", and its rules of thumb call TwoPointsDE
# "excellent in many cases, including very high num_workers". It also only compares losses (a child
# replaces its parent if better), so it is invariant to the monotone, rank-like fidelity loss
# this project tells after ASHA. Not the others:
# * NGOpt/NgIohTuned, the docs' "good default" wizards, pick a sub-optimizer from budget, workers and
#   variable types, so the algorithm changes under the user's feet; and with nevergrad 1.0.12 on numpy
#   >= 2.4, NGOpt with budget 120 and num_workers 8 picks CMandAS2, whose MetaModel step crashes
#   (`float(model.predict(...))` -> TypeError; nevergrad issue #1612 was the deprecation warning).
#   Model-based steps also read loss magnitudes, which our fidelity loss does not carry.
# * PortfolioDiscreteOnePlusOne ("possibly a good choice for hyperparameter choice" in the docs) is a
#   (1+1) family meant to be paired with TransitionChoice and few workers; OnePlusOne is advised for
#   num_workers < 8; CMA wants ~1000 x dimension evaluations -- all wrong for 20-120 parallel trials.
#
# TwoPointsDE_LHS, not plain TwoPointsDE: the same DE with twopoints crossover and its standard
# population (max(30, workers)), but the first population is a Latin hypercube instead of independent
# draws, so the ~30 initial trials cover every axis evenly. benchmarks/hpo_peers.py (real DLinear
# ETTh1-96 and WRN-1D prom_300_tata learning curves, 4 async workers, ASHA eta 2 grace 1, budget
# 20 x max_epochs) measured it ahead of Optuna TPE + Hyperband and never behind RandomSearch + ASHA:
# median epochs to reach RandomSearch + ASHA's final best, DLinear 72 vs TPE+Hyperband 78 at 20 seeds
# (100 vs 126 at 50 seeds), WRN 298 vs never (230 vs never at 50 seeds); its median simple regret at
# 25/50/100 % of the budget was never worse than RandomSearch + ASHA's on either landscape.
# Registered in nevergrad's registry under this name by _registry() (lazily, with nevergrad).
DEFAULT_OPTIMIZER = "TwoPointsDE_LHS"


class SpaceError(ValueError):
    """A bad search-space entry or optimizer name; the message names the parameter. The config layer
    prefixes file:line."""


def _did_you_mean(word: str, candidates) -> str:
    hint = did_you_mean(word, candidates)
    return f" {hint}" if hint else ""


@dataclass(frozen=True)
class Domain:
    name: str
    kind: str  # one of KINDS
    low: float | int | None = None  # log/float/int only
    high: float | int | None = None
    values: tuple = ()  # choice only, in the order written

    def to_raw(self) -> dict:
        """The YAML/JSON form `parse_domain` reads back."""
        if self.kind == "choice":
            return {"choice": list(self.values)}
        return {self.kind: [self.low, self.high]}


def _bound(name: str, kind: str, raw: Any) -> float:
    if isinstance(raw, bool):  # YAML reads yes/no/true/false as booleans: never a number here
        raise SpaceError(f"parameter {name!r}: {kind} bound {raw!r} is a boolean, expected a number")
    if isinstance(raw, str):
        try:
            raw = float(raw)
        except ValueError:
            raise SpaceError(f"parameter {name!r}: {kind} bound {raw!r} is not a number") from None
    if not isinstance(raw, (int, float)):
        raise SpaceError(f"parameter {name!r}: {kind} bound {raw!r} is not a number")
    if not math.isfinite(raw):
        raise SpaceError(f"parameter {name!r}: {kind} bound {raw!r} is not finite")
    return raw


def _choice_key(name: str, value: Any) -> str:
    """Canonical JSON text: how choices are told apart (1, 1.0 and True stay distinct) and stored."""
    try:
        return json.dumps(value, sort_keys=True, allow_nan=False)
    except (TypeError, ValueError):
        raise SpaceError(f"parameter {name!r}: choice value {value!r} must be a finite number, string, "
                         "boolean, null, or a list/mapping of those") from None


def parse_domain(name: str, raw: Any) -> Domain:
    if not isinstance(name, str) or not name:
        raise SpaceError(f"search space parameter names must be non-empty strings, got {name!r}")
    usage = f"write e.g. {name}: {EXAMPLES['log']}; domains: {', '.join(KINDS)}"
    if not isinstance(raw, Mapping) or len(raw) != 1:
        shown = ", ".join(repr(k) for k in raw) if isinstance(raw, Mapping) and raw else repr(raw)
        raise SpaceError(f"parameter {name!r}: expected exactly one domain key, got {shown}; {usage}")
    ((kind, arg),) = raw.items()
    if kind not in KINDS:
        raise SpaceError(f"parameter {name!r}: unknown domain {kind!r}.{_did_you_mean(str(kind), KINDS)} "
                         f"Domains: {', '.join(KINDS)}")
    if kind == "choice":
        if not isinstance(arg, (list, tuple)) or not arg:
            raise SpaceError(f"parameter {name!r}: choice needs a non-empty list of values, got {arg!r}")
        seen: set[str] = set()
        for value in arg:
            key = _choice_key(name, value)
            if key in seen:
                raise SpaceError(f"parameter {name!r}: choice lists {value!r} more than once")
            seen.add(key)
        return Domain(name, "choice", values=tuple(arg))
    if not isinstance(arg, (list, tuple)) or len(arg) != 2:
        raise SpaceError(f"parameter {name!r}: {kind} needs [lower, upper], got {arg!r}; "
                         f"write e.g. {name}: {EXAMPLES[kind]}")
    low, high = (_bound(name, kind, b) for b in arg)
    if kind == "int":
        for bound in (low, high):
            if bound != int(bound):
                raise SpaceError(f"parameter {name!r}: int bound {bound!r} is not a whole number")
        low, high = int(low), int(high)
    else:
        low, high = float(low), float(high)
    if kind == "log" and low <= 0:
        raise SpaceError(f"parameter {name!r}: log bounds must be > 0, got lower bound {low!r} "
                         "(use float for a range that includes 0)")
    if low >= high:
        raise SpaceError(f"parameter {name!r}: lower bound {low!r} must be < upper bound {high!r}")
    return Domain(name, kind, low=low, high=high)


def parse_space(raw: Any) -> "SearchSpace":
    """A mapping of parameter name -> domain (the YAML `space:` section) -> SearchSpace."""
    if not isinstance(raw, Mapping) or not raw:
        raise SpaceError(f"search space must be a non-empty mapping of parameter -> domain, got {raw!r}")
    return SearchSpace(tuple(parse_domain(name, domain) for name, domain in raw.items()))


@dataclass(frozen=True)
class SearchSpace:
    domains: tuple[Domain, ...]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(d.name for d in self.domains)

    def to_dict(self) -> dict:
        """JSON-able; `parse_space(space.to_dict()) == space`."""
        return {d.name: d.to_raw() for d in self.domains}

    def to_nevergrad(self):
        """An `ng.p.Dict`: a candidate's `.value` is a dict name -> value (not `.kwargs`)."""
        import nevergrad as ng

        params = {}
        for d in self.domains:
            if d.kind == "log":
                params[d.name] = ng.p.Log(lower=d.low, upper=d.high)
            elif d.kind == "float":
                params[d.name] = ng.p.Scalar(lower=d.low, upper=d.high)
            elif d.kind == "int":
                # nevergrad rounds a uniform float to the nearest integer, so with bounds [low, high] the
                # end points would get half the probability of the others; widening by 0.5 on each side
                # makes every integer equally likely (its Int layer clamps the result back into range).
                params[d.name] = ng.p.Scalar(lower=d.low - 0.5, upper=d.high + 0.5).set_integer_casting()
            else:
                # plain Choice (softmax over weights), as nevergrad's docs advise with TwoPointsDE
                params[d.name] = ng.p.Choice(list(d.values))
        return ng.p.Dict(**params)

    def sample_to_params(self, value: Mapping[str, Any]) -> dict:
        """A candidate's `.value` (or a journaled one) -> plain Python types, checked against the space."""
        if set(value) != set(self.names):
            missing, extra = sorted(set(self.names) - set(value)), sorted(set(value) - set(self.names))
            raise SpaceError(f"sample does not match the search space: missing {missing}, unexpected {extra}")
        params = {}
        for d in self.domains:
            v = value[d.name]
            if d.kind == "choice":
                keys = [_choice_key(d.name, c) for c in d.values]
                key = _choice_key(d.name, v)
                if key not in keys:
                    raise SpaceError(f"parameter {d.name!r}: {v!r} is not one of {list(d.values)}")
                params[d.name] = d.values[keys.index(key)]  # the value as written in the spec
                continue
            number = float(v)
            if d.kind == "int":
                if number != round(number):
                    raise SpaceError(f"parameter {d.name!r}: {v!r} is not a whole number")
                number = int(round(number))
            slack = 1e-9 * (abs(d.high) + abs(d.low))  # float round trips (exp(log(x))) may overshoot an ulp
            if not d.low - slack <= number <= d.high + slack:
                raise SpaceError(f"parameter {d.name!r}: {v!r} is outside [{d.low}, {d.high}]")
            params[d.name] = number
        return params


def _registry():
    """nevergrad's optimizer registry, with this project's named variants (DEFAULT_OPTIMIZER) added.

    Registering happens here, at the first use of nevergrad, not at import of this module (importing
    nevergrad there would make parsing a sweep file slow); it is idempotent."""
    import nevergrad as ng

    registry = ng.optimizers.registry
    if "TwoPointsDE_LHS" not in registry:
        ng.families.DifferentialEvolution(crossover="twopoints", initialization="LHS").set_name(
            "TwoPointsDE_LHS", register=True)
    return registry


def optimizer_names() -> list[str]:
    return sorted(_registry())


def make_optimizer(name: str, space: SearchSpace, budget: int, num_workers: int, seed: int):
    """A nevergrad optimizer over `space`, its random state seeded so that asks are reproducible."""
    import numpy as np

    registry = _registry()
    if name not in registry:
        raise SpaceError(f"unknown optimizer {name!r}.{_did_you_mean(name, registry)} "
                         f"See launcher.spec.space.optimizer_names() for all {len(registry)}.")
    for label, number in (("budget", budget), ("num_workers", num_workers)):
        if isinstance(number, bool) or not isinstance(number, int) or number < 1:
            raise SpaceError(f"optimizer {name!r}: {label} must be an int >= 1, got {number!r}")
    if num_workers > 1 and getattr(registry[name], "no_parallelization", False):
        raise SpaceError(f"optimizer {name!r} cannot run trials in parallel (num_workers={num_workers}); "
                         f"pick another, e.g. {DEFAULT_OPTIMIZER!r}")
    parametrization = space.to_nevergrad()
    # every random draw of the optimizer and of the parametrization comes from this state
    parametrization.random_state = np.random.RandomState(seed)
    try:
        return registry[name](parametrization=parametrization, budget=budget, num_workers=num_workers)
    except ImportError as error:  # e.g. optimizers wrapping ax, bayes_opt, ...
        raise SpaceError(f"optimizer {name!r} needs a package that is not installed: {error}") from None
