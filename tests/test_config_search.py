"""Sweep spec, the `search:` section and per-method search spaces: presets, defaults, overrides,
domains checked against the declared params, and a cheap `launcher.spec.sweep` import."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from launcher.errors import SpecError
from launcher.methods.registry import builtin_methods, method_class
from launcher.spec.load import load_sweep, record_as_sweep_file, spec_to_dict
from launcher.spec.sweep import MethodSpec, SchedulerSpec, SearchSpec
from tests.spec_fixtures import MINIMAL, datasets, layout, registry, write_spec  # noqa: F401 (fixtures)

# --------------------------------------------------------------------------------------------
# search: and method spaces
# --------------------------------------------------------------------------------------------

TUNED = """\
name: tuned
tasks:
  - dataset: ETTh1
methods:
  naive: {}
  dlinear:
    batch_size: 64
    space:
      lr: {log: [1e-5, 1e-1]}
      moving_avg: {int: [5, 49]}
      weight_decay: {float: [0, 0.01]}
  synthetic: {space: {}}
search:
  preset: dasha
  optimizer: TwoPointsDE
  trials: 30
  epoch_budget: 400
  random_control: true
  max_failure_rate: 0.25
  seed: 7
  scheduler: {eta: 3, max_epochs: 27}
"""


def test_search_defaults(layout):
    sweeps, _ = layout
    spec = load_sweep(write_spec(sweeps, MINIMAL))
    assert spec.search == SearchSpec() and spec.search.scheduler == SchedulerSpec("asha", 2, 1, 20)
    assert (spec.search.preset, spec.search.trials, spec.search.epoch_budget) == (None, 20, None)
    assert (spec.search.random_control, spec.search.max_failure_rate, spec.search.seed) == (False, 0.5, 0)
    from launcher.spec.space import DEFAULT_OPTIMIZER

    assert spec.search.optimizer == DEFAULT_OPTIMIZER
    assert spec.search == load_sweep(write_spec(sweeps, MINIMAL + "search:\n", "empty.yaml")).search
    # the default's name validates as a written optimizer, like any name in nevergrad's registry
    named = load_sweep(write_spec(sweeps, MINIMAL + f"search: {{optimizer: {DEFAULT_OPTIMIZER}}}\n", "named.yaml"))
    assert named.search == spec.search


def test_preset_dasha_fills_defaults_and_explicit_keys_override(layout):
    sweeps, _ = layout
    spec = load_sweep(write_spec(sweeps, MINIMAL + "search: {preset: dasha}\n"))
    assert spec.search.preset == "dasha" and spec.search.trials == 120
    assert spec.search.optimizer == "RandomSearch"          # the reference's sampling
    assert spec.search.scheduler == SchedulerSpec("asha", eta=2, grace=1, max_epochs=20)
    text = MINIMAL + "search: {preset: dasha, trials: 12, scheduler: {grace: 3, type: none}}\n"
    spec = load_sweep(write_spec(sweeps, text, "override.yaml"))
    assert spec.search.preset == "dasha" and spec.search.trials == 12
    assert spec.search.scheduler == SchedulerSpec("none", eta=2, grace=3, max_epochs=20)
    spec = load_sweep(sweeps / "sweep.yaml", overrides={"search.scheduler.max_epochs": "40"})
    assert spec.search.trials == 120 and spec.search.scheduler.max_epochs == 40


def test_explicit_search_and_space(layout):
    sweeps, _ = layout
    spec = load_sweep(write_spec(sweeps, TUNED))
    naive, dlinear, synthetic = spec.methods
    assert naive == MethodSpec("naive", {}) and naive.space is None
    assert dlinear.space == {"lr": {"log": [1e-5, 0.1]}, "moving_avg": {"int": [5, 49]},
                             "weight_decay": {"float": [0, 0.01]}}
    assert isinstance(dlinear.space["lr"]["log"][0], float)  # YAML 1.1 reads 1e-5 as a string
    assert dlinear.params == {"batch_size": 64, "seed": 0, "max_windows_per_epoch": None}
    assert synthetic.space == {} and set(synthetic.params) == set(method_class("synthetic").params)
    assert spec.search == SearchSpec(preset="dasha", optimizer="TwoPointsDE", trials=30,
                                     epoch_budget=400, random_control=True, max_failure_rate=0.25,
                                     seed=7, scheduler=SchedulerSpec("asha", 3, 1, 27))


def test_default_space_for_tuned_methods(layout):
    sweeps, _ = layout
    spec = load_sweep(write_spec(sweeps, MINIMAL.replace("naive:", "dlinear:\n  synthetic: {space: null}")))
    dlinear, synthetic = spec.methods
    assert dlinear.space == method_class("dlinear").default_space and dlinear.space is not method_class("dlinear").default_space
    assert set(dlinear.params) == set(method_class("dlinear").params) - set(method_class("dlinear").default_space)
    assert synthetic.space == method_class("synthetic").default_space
    # a param fixed in the file leaves the default space (it is not searched)
    spec = load_sweep(write_spec(sweeps, MINIMAL.replace("naive:", "dlinear: {lr: 0.01}"), "fixed.yaml"))
    assert "lr" not in spec.methods[0].space and spec.methods[0].params["lr"] == 0.01
    assert set(spec.methods[0].space) == set(method_class("dlinear").default_space) - {"lr"}


def test_every_default_space_validates_as_a_written_space(layout):
    """Every default_space must pass the checks a user's `space` gets (guards edits of the method classes)."""
    sweeps, _ = layout
    assert all(c.multi_fidelity for c in builtin_methods().values() if c.default_space)
    methods = {name: {"space": c.default_space} for name, c in sorted(builtin_methods().items()) if c.multi_fidelity}
    text = MINIMAL.replace("methods:\n  naive:\n", "") + "methods: " + json.dumps(methods) + "\n"
    text = text.replace("  - dataset: ETTh1\n", "  - dataset: ETTh1\n  - dataset: prom_300_tata\n  - dataset: brazilian_coffee_scenes\n")
    spec = load_sweep(write_spec(sweeps, text))
    assert {m.name: m.space for m in spec.methods} == {n: m["space"] for n, m in methods.items()}


@pytest.mark.parametrize("method, key, fragment", [
    ("dlinear: {space: {batch_size: {float: [16, 64]}}}", "methods.dlinear.space.batch_size",
     "a float domain cannot search batch_size, a param of kind int"),
    ("dlinear: {space: {batch_size: {int: [0, 64]}}}", "methods.dlinear.space.batch_size",
     "in the searched domain: must be >= 1, got 0"),
    ("synthetic: {space: {x: {float: [0.5, 2]}}}", "methods.synthetic.space.x",
     "in the searched domain: must be between 0 and 1, got 2"),
    ("dlinear: {space: [lr]}", "methods.dlinear.space", "expected a mapping of param -> domain"),
    ("dlinear: {spaces: {}}", "methods.dlinear.spaces", "Did you mean 'space'?"),
    ("naive: {space: {}}", "methods.naive.space", "naive is not tuned"),
])
def test_space_checks_against_the_param(layout, method, key, fragment):
    sweeps, _ = layout
    with pytest.raises(SpecError) as info:
        load_sweep(write_spec(sweeps, MINIMAL.replace("naive:", method)))
    assert info.value.key == key and info.value.line == 5, str(info.value)
    assert fragment in str(info.value)


def test_search_and_space_overrides(layout):
    sweeps, _ = layout
    path = write_spec(sweeps, TUNED)
    spec = load_sweep(path, overrides={"search.trials": "5", "methods.dlinear.space.lr": "{log: [1e-4, 1e-2]}"})
    assert spec.search.trials == 5 and spec.methods[1].space["lr"] == {"log": [1e-4, 1e-2]}
    with pytest.raises(SpecError) as info:
        load_sweep(path, overrides={"methods.dlinear.space.lr": "{log: [0, 1]}"})
    assert str(info.value).startswith("command line: methods.dlinear.space.lr: "), str(info.value)
    with pytest.raises(SpecError) as info:
        load_sweep(path, overrides={"search.scheduler.max_epochs": 1})
    assert str(info.value).startswith("command line: search.scheduler.max_epochs: must be > grace (1)")


def test_scheduler_none_needs_no_rungs(layout):
    sweeps, _ = layout
    text = MINIMAL + "search: {scheduler: {type: none, max_epochs: 1}}\n"
    assert load_sweep(write_spec(sweeps, text)).search.scheduler == SchedulerSpec("none", 2, 1, 1)


def test_tuned_spec_to_dict_round_trips_as_json(layout):
    sweeps, _ = layout
    spec = load_sweep(write_spec(sweeps, TUNED))
    record = spec_to_dict(spec)
    assert json.loads(json.dumps(record)) == record
    assert record["search"] == {"preset": "dasha", "optimizer": "TwoPointsDE", "trials": 30,
                                "epoch_budget": 400, "random_control": True, "max_failure_rate": 0.25,
                                "seed": 7, "scheduler": {"type": "asha", "eta": 3, "grace": 1,
                                                         "max_epochs": 27}, "final_epochs": None}
    assert record["methods"][1]["space"]["lr"] == {"log": [1e-5, 0.1]}
    as_file = record_as_sweep_file(record, record["out"])
    again = load_sweep(write_spec(sweeps, json.dumps(as_file), "recorded.yaml"))
    # the preset's values are written out, so the reloaded spec needs no preset
    assert spec_to_dict(again) == {**record, "source": str(again.source), "search": {**record["search"], "preset": None}}


def test_config_import_and_plain_load_stay_cheap(tmp_path):
    """No Nevergrad for importing the config or loading a spec that names no optimizer."""
    path = write_spec(tmp_path, MINIMAL.replace("naive:", "dlinear:") + "search: {preset: dasha}\n")
    code = ("import sys; from launcher.spec import load, sweep as config; assert 'nevergrad' not in sys.modules; "
            "config.known_datasets = lambda: {'ETTh1': type('I', (), {'horizons': (96,), 'context': 96})}; "
            f"spec = load.load_sweep({str(path)!r}); assert spec.methods[0].space; "
            "assert 'nevergrad' not in sys.modules, 'nevergrad imported'")
    done = subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).parent.parent,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
