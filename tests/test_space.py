"""Search space: validation messages, nevergrad sampling (bounds, types, spread, seeding), optimizers."""
from __future__ import annotations

import json
import math
import statistics

import pytest

from launcher.spec.space import (
    DEFAULT_OPTIMIZER,
    Domain,
    SearchSpace,
    SpaceError,
    make_optimizer,
    optimizer_names,
    parse_domain,
    parse_space,
)

SPACE_YAML_LIKE = {
    "lr": {"log": ["1e-5", 1e-1]},  # "1e-5": how PyYAML reads an unquoted 1e-5
    "dropout": {"float": [0.0, 0.5]},
    "kernel": {"int": [5, 49.0]},
    "seed": {"int": [0, 1000000]},
    "batch_size": {"choice": [16, 32, 64]},
    "act": {"choice": ["relu", "gelu"]},
}


@pytest.fixture(scope="module")
def space() -> SearchSpace:
    return parse_space(SPACE_YAML_LIKE)


@pytest.mark.parametrize("raw,message", [
    ({"log": [0, 1]}, "log bounds must be > 0, got lower bound 0.0"),
    ({"log": [-1e-3, 1]}, "log bounds must be > 0"),
    ({"float": [0.5, 0.5]}, "lower bound 0.5 must be < upper bound 0.5"),
    ({"int": [10, 2]}, "lower bound 10 must be < upper bound 2"),
    ({"int": [1.5, 4]}, "int bound 1.5 is not a whole number"),
    ({"int": [True, 4]}, "int bound True is a boolean"),
    ({"float": [0.0, False]}, "float bound False is a boolean"),
    ({"float": [0.0, float("inf")]}, "not finite"),
    ({"float": [0.0, "lots"]}, "'lots' is not a number"),
    ({"float": [0.0]}, "float needs [lower, upper]"),
    ({"choice": []}, "choice needs a non-empty list"),
    ({"choice": [16, 32, 16]}, "choice lists 16 more than once"),
    ({"choice": [0.1, float("nan")]}, "must be a finite number"),
    ({"logg": [1e-5, 1e-1]}, "unknown domain 'logg'. Did you mean 'log'?"),
    ({"Int": [1, 2]}, "Did you mean 'int'?"),
    ({"log": [1e-5, 1], "float": [0, 1]}, "expected exactly one domain key, got 'log', 'float'"),
    (0.1, "expected exactly one domain key, got 0.1"),
])
def test_bad_domains_name_the_parameter_and_the_problem(raw, message):
    with pytest.raises(SpaceError) as error:
        parse_domain("my_param", raw)
    assert "'my_param'" in str(error.value)
    assert message in str(error.value)


def test_good_domains_are_normalized():
    assert parse_domain("k", {"int": [1.0, "4.9e1"]}) == Domain("k", "int", low=1, high=49)
    assert isinstance(parse_domain("k", {"int": [1.0, 49]}).low, int)
    assert parse_domain("lr", {"log": ["1e-5", 1]}) == Domain("lr", "log", low=1e-5, high=1.0)
    # 1, 1.0 and True are different choices (json tells them apart), so no duplicate here
    assert parse_domain("c", {"choice": [1, 1.0, True, None]}).values == (1, 1.0, True, None)
    with pytest.raises(SpaceError, match="non-empty mapping"):
        parse_space({})


def test_to_dict_round_trips_through_json_and_parse(space):
    text = json.dumps(space.to_dict(), allow_nan=False)
    assert parse_space(json.loads(text)) == space
    assert space.names == tuple(SPACE_YAML_LIKE)


def asks(space, seed, n, name="RandomSearch", workers=1):
    optimizer = make_optimizer(name, space, budget=n, num_workers=workers, seed=seed)
    out = []
    for _ in range(n):
        candidate = optimizer.ask()
        out.append(space.sample_to_params(candidate.value))
        optimizer.tell(candidate, 0.0)
    return out


def test_random_asks_stay_in_bounds_with_python_types(space):
    samples = asks(space, seed=0, n=200)
    for params in samples:
        assert type(params["kernel"]) is int and 5 <= params["kernel"] <= 49
        assert type(params["seed"]) is int and 0 <= params["seed"] <= 1_000_000
        assert type(params["lr"]) is float and 1e-5 <= params["lr"] <= 1e-1
        assert type(params["dropout"]) is float and 0.0 <= params["dropout"] <= 0.5
        assert type(params["batch_size"]) is int and params["batch_size"] in (16, 32, 64)
        assert params["act"] in ("relu", "gelu")
    assert {p["batch_size"] for p in samples} == {16, 32, 64}
    # log-uniform: the median sits near the geometric mean 1e-3 (1e-4.4 .. 1e-2.6 is a loose band);
    # a uniform draw would put it near 0.05
    assert 10**-4.4 < statistics.median(p["lr"] for p in samples) < 10**-2.6
    log_lrs = [math.log10(p["lr"]) for p in samples]
    assert sum(-5 <= x < -4 for x in log_lrs) > 20 and sum(-2 <= x <= -1 for x in log_lrs) > 20
    assert 0.15 < statistics.median(p["dropout"] for p in samples) < 0.35


def test_int_end_points_are_as_likely_as_inner_values():
    small = parse_space({"k": {"int": [1, 3]}})
    counts = [0, 0, 0]
    for params in asks(small, seed=1, n=300):
        counts[params["k"] - 1] += 1
    assert all(60 < c < 140 for c in counts), counts  # 100 each if uniform; rounding [1, 3] gives 75/150/75


def test_same_seed_same_asks_different_seed_different(space):
    first = asks(space, seed=123, n=5, name=DEFAULT_OPTIMIZER)
    assert asks(space, seed=123, n=5, name=DEFAULT_OPTIMIZER) == first
    assert asks(space, seed=124, n=5, name=DEFAULT_OPTIMIZER) != first


@pytest.mark.parametrize("name", ["RandomSearch", DEFAULT_OPTIMIZER])
def test_parallel_ask_tell_out_of_order(space, name):
    optimizer = make_optimizer(name, space, budget=40, num_workers=4, seed=0)
    running = [optimizer.ask() for _ in range(4)]
    for step in range(36):
        done = running.pop(step % len(running))  # tells arrive out of ask order
        params = space.sample_to_params(done.value)
        optimizer.tell(done, (math.log10(params["lr"]) + 3) ** 2 + params["dropout"])
        running.append(optimizer.ask())
    for candidate in running:
        optimizer.tell(candidate, 1.0)
    # journal replay after a restart tells points this optimizer never asked
    replayed = optimizer.parametrization.spawn_child(new_value={**params, "kernel": 49, "lr": 1e-5})
    assert space.sample_to_params(replayed.value)["kernel"] == 49
    optimizer.tell(replayed, 0.5)
    best = space.sample_to_params(optimizer.provide_recommendation().value)
    assert set(best) == set(space.names)


def test_unknown_optimizer_suggests_the_close_name(space):
    with pytest.raises(SpaceError, match=r"unknown optimizer 'RandomSerch'\. Did you mean 'RandomSearch'"):
        make_optimizer("RandomSerch", space, budget=10, num_workers=1, seed=0)
    with pytest.raises(SpaceError, match="Did you mean 'TwoPointsDE'"):
        make_optimizer("twopointsde", space, budget=10, num_workers=1, seed=0)
    with pytest.raises(SpaceError, match="cannot run trials in parallel"):
        make_optimizer("Powell", space, budget=10, num_workers=4, seed=0)
    names = optimizer_names()
    assert DEFAULT_OPTIMIZER in names and "RandomSearch" in names


def test_default_is_two_points_de_with_a_latin_hypercube_first_population(space):
    """DEFAULT_OPTIMIZER is registered in nevergrad under its name, once, as TwoPointsDE + LHS init."""
    import nevergrad as ng

    from launcher.spec import space as space_module

    assert DEFAULT_OPTIMIZER == "TwoPointsDE_LHS" and DEFAULT_OPTIMIZER in optimizer_names()
    registered = ng.optimizers.registry[DEFAULT_OPTIMIZER]
    assert space_module._registry()[DEFAULT_OPTIMIZER] is registered  # idempotent: not registered again
    # the configured family's settings: TwoPointsDE's, but for the initialization of the first population
    assert registered._config == {**ng.optimizers.TwoPointsDE._config, "initialization": "LHS"}
    optimizer = make_optimizer(DEFAULT_OPTIMIZER, space, budget=60, num_workers=4, seed=0)
    assert optimizer.name == DEFAULT_OPTIMIZER
    # the first population is a Latin hypercube: its lr draws fall one per stratum of log10(lr) in [-5, -1]
    pop = optimizer.llambda
    strata = sorted(int((math.log10(space.sample_to_params(optimizer.ask().value)["lr"]) + 5) / 4 * pop)
                    for _ in range(pop))
    assert strata == list(range(pop))


def test_sample_to_params_rejects_values_outside_the_space(space):
    good = asks(space, seed=0, n=1)[0]
    with pytest.raises(SpaceError, match="missing \\['seed'\\]"):
        space.sample_to_params({k: v for k, v in good.items() if k != "seed"})
    with pytest.raises(SpaceError, match="'kernel': 50 is outside"):
        space.sample_to_params({**good, "kernel": 50})
    with pytest.raises(SpaceError, match="'batch_size': 48 is not one of"):
        space.sample_to_params({**good, "batch_size": 48})
