"""Sweep spec: every malformed file in tests/bad_specs fails with file:line, key path and message;
good files parse with defaults filled and paths resolved; command-line overrides are checked too.

Each bad spec states what it expects in its header comment:

    # what: <what is wrong>
    # expect-line: <1-based line of the offending key/value, empty when the error has no line>
    # expect-key: <key path in the message, empty when there is none (YAML syntax errors)>
    # expect-text: <a fragment the message must contain>   (may repeat)
"""
from __future__ import annotations

import json
import pickle
from pathlib import Path

import pytest

from launcher.errors import SpecError
from launcher.methods.registry import builtin_methods, method_class
from launcher.spec import sweep as config
from launcher.spec.load import load_sweep, record_as_sweep_file, spec_to_dict
from launcher.spec.sweep import (
    ExecutorSpec,
    MethodSpec,
    ReportSpec,
    SchedulerSpec,
    SearchSpec,
    SweepSpec,
    TaskSpec,
    TrackingSpec,
)
from launcher.tracking import sweep_uri
from tests.spec_fixtures import (  # noqa: F401 (fixtures)
    FAKE_DATASETS,
    HAVE_REAL_DATASETS,
    MINIMAL,
    _Info,
    datasets,
    layout,
    registry,
    write_spec,
)

BAD = Path(__file__).parent / "bad_specs"
BAD_SPECS = sorted(BAD.glob("*.yaml"))

def _expectations(path: Path) -> dict:
    exp: dict = {"text": []}
    for raw in path.read_text().splitlines():
        if not raw.startswith("#"):
            break
        body = raw.lstrip("#").strip()
        field, _, value = body.partition(":")
        value = value.strip()
        if field == "what":
            exp["what"] = value
        elif field == "expect-line":
            exp["line"] = int(value) if value else None
        elif field == "expect-key":
            exp["key"] = value or None
        elif field == "expect-text":
            exp["text"].append(value)
    missing = {"what", "line", "key"} - set(exp)
    assert not missing and exp["text"], f"{path.name}: header lacks {missing or 'expect-text'}"
    return exp


def test_there_are_enough_bad_specs():
    assert len(BAD_SPECS) >= 12


@pytest.mark.parametrize("path", BAD_SPECS, ids=[p.stem for p in BAD_SPECS])
def test_bad_spec(path, registry):
    exp = _expectations(path)
    with pytest.raises(SpecError) as info:
        load_sweep(str(path))
    err = info.value
    text = str(err)
    where = f"{path}:{exp['line']}: " if exp["line"] is not None else f"{path}: "
    assert text.startswith(where), f"{exp['what']}\n  got: {text}\n  want prefix: {where}"
    assert err.file == str(path) and err.line == exp["line"] and err.key == exp["key"], text
    if exp["key"]:
        assert text.startswith(f"{where}{exp['key']}: "), text
    for fragment in exp["text"]:
        assert fragment in text, f"{exp['what']}\n  got: {text}\n  want: {fragment}"
    assert "\n" not in text.split(". ")[0], "the first sentence is one line"


def test_data_root_error_names_the_resolved_folder():
    with pytest.raises(SpecError) as info:
        load_sweep(BAD / "data_root_missing.yaml")
    assert str((BAD / "no_such_data_folder").resolve()) in str(info.value)
    assert f"Relative paths resolve against the sweep file's folder ({BAD.resolve()})" in str(info.value)


# --------------------------------------------------------------------------------------------
# Good specs
# --------------------------------------------------------------------------------------------

FULL = """\
name: full.sweep-1
description: all keys
out: results/full
data_root: data
seeds: [3, 1, 2]
tasks:
  - dataset: ETTh2
    horizons: [192, 96]
    context: 336
    path: data/ETTh2.csv
  - dataset: ETTh1
methods:
  fracast: {model_dir: weights/fracast, weights: fp32}
  autoar: {max_diff: 1, kpss_alpha: 1e-2, lags: [64, 96]}
  naive: {}
executor: {backend: inline, workers: 3, timeout_min: 5}
tracking: {uri: "sqlite:///tracking/mlflow.db"}
report: {baseline: naive}
"""


def test_minimal_spec_fills_defaults(layout, registry):
    datasets = registry
    sweeps, work = layout
    spec = load_sweep(write_spec(sweeps, MINIMAL))
    assert spec.name == "minimal" and spec.description == ""
    assert spec.source == (sweeps / "sweep.yaml").resolve()
    assert spec.out == (work / "runs" / "minimal").resolve()  # default out: runs/<name> under the CWD
    assert spec.data_root is None
    assert spec.seeds == (0,)
    assert spec.tasks == (TaskSpec("ETTh1", tuple(datasets["ETTh1"].horizons), datasets["ETTh1"].context, None),)
    assert spec.methods == (MethodSpec("naive", {}),)
    assert spec.executor == ExecutorSpec("local", 2, 60)
    assert spec.tracking == TrackingSpec(None) and spec.report == ReportSpec(None)
    assert sweep_uri(spec) == f"sqlite:///{spec.out}/mlflow.db"
    assert not (work / "runs").exists(), "validating writes nothing"


def test_full_spec_resolves_paths_as_documented(layout):
    sweeps, work = layout
    spec = load_sweep(write_spec(sweeps, FULL))
    assert spec.name == "full.sweep-1" and spec.description == "all keys"
    assert spec.out == (work / "results" / "full").resolve()            # out: against the CWD
    assert spec.data_root == (sweeps / "data").resolve()                 # inputs: against the YAML folder
    assert spec.seeds == (3, 1, 2)
    assert spec.tasks[0] == TaskSpec("ETTh2", (192, 96), 336, (sweeps / "data" / "ETTh2.csv").resolve())
    assert spec.tasks[1].dataset == "ETTh1" and spec.tasks[1].path is None
    assert [m.name for m in spec.methods] == ["fracast", "autoar", "naive"]  # file order
    fracast, autoar, _ = spec.methods
    assert fracast.params == {"weights": "fp32", "model_dir": str((sweeps / "weights" / "fracast").resolve()),
                              "eval_stride": 1, "batch_size": 16}
    assert autoar.params == {"deltas": [0, 2, 4, 8, 16], "lags": [64, 96], "max_diff": 1, "kpss_alpha": 0.01,
                             "fit_series": "clean"}
    assert set(autoar.params) == set(method_class("autoar").params)
    assert spec.executor == ExecutorSpec("inline", 3, 5)
    assert spec.tracking.uri == f"sqlite:///{(work / 'tracking' / 'mlflow.db').resolve()}"
    assert sweep_uri(spec) == spec.tracking.uri
    assert spec.report.baseline == "naive"
    with pytest.raises(AttributeError):
        spec.name = "other"  # frozen


def test_defaults_are_copies(layout):
    sweeps, _ = layout
    spec = load_sweep(write_spec(sweeps, MINIMAL.replace("naive:", "autoar:")))
    spec.methods[0].params["deltas"].append(99)
    assert method_class("autoar").params["deltas"].default == [0, 2, 4, 8, 16]


@pytest.mark.parametrize("text, check", [
    ("name: 2024\n", lambda s: s.name == "2024"),                           # unquoted number as a name
    ("name: x\nexecutor:\ntracking:\nreport:\n", lambda s: s.executor == ExecutorSpec()),  # empty sections
    ("name: x\nmethods: {autoar: {kpss_alpha: 1}}\n", lambda s: s.methods[0].params["kpss_alpha"] == 1.0
     and isinstance(s.methods[0].params["kpss_alpha"], float)),              # int accepted for a float
    ("name: x\nmethods: {seasonal_naive: {period: null}}\n", lambda s: s.methods[0].params == {"period": None}),
    ("name: x\ntracking: {uri: 'http://mlflow.local:5000'}\n", lambda s: sweep_uri(s) == "http://mlflow.local:5000"),
    ("name: x\ntracking: {uri: mlruns}\n", lambda s: s.tracking.uri == str((Path.cwd() / "mlruns").resolve())),
    ("name: x\nout: /tmp/abs_out\n", lambda s: s.out == Path("/tmp/abs_out").resolve()),
])
def test_small_variations(layout, text, check):
    sweeps, _ = layout
    base = "tasks: [{dataset: ETTh1}]\n"
    if "methods" not in text:
        base += "methods: {naive: {}}\n"
    assert check(load_sweep(write_spec(sweeps, text + base)))


def test_fake_datasets_can_be_patched_in(layout, monkeypatch):
    sweeps, _ = layout
    monkeypatch.setattr(config, "known_datasets", lambda: {"toy": _Info(horizons=(3,), context=16)})
    monkeypatch.setattr(config, "known_classification_tasks", lambda: {})
    spec = load_sweep(write_spec(sweeps, MINIMAL.replace("ETTh1", "toy")))
    assert spec.tasks == (TaskSpec("toy", (3,), 16, None),)
    with pytest.raises(SpecError, match="unknown dataset 'ETTh1'. Did you mean 'toy'|Known datasets: toy"):
        load_sweep(write_spec(sweeps, MINIMAL))


@pytest.mark.skipif(not HAVE_REAL_DATASETS, reason="tasks.timeseries not there yet")
def test_real_dataset_registry_has_what_config_reads():
    real = config.known_datasets()
    assert "ETTh1" in real
    for info in real.values():
        assert all(isinstance(h, int) and h > 0 for h in info.horizons)
        assert isinstance(info.context, int) and info.context >= config.MIN_CONTEXT


def test_every_declared_param_default_validates(layout):
    """A declared default must itself pass the declared checks (guards params.py edits)."""
    sweeps, _ = layout
    methods = {name: {p: decl.default for p, decl in params.items() if decl.default is not None}
               for name, params in ((n, c.params) for n, c in builtin_methods().items())}
    text = MINIMAL.replace("methods:\n  naive:\n", "") + "methods: " + json.dumps(methods) + "\n"
    # a task of every domain, so that every method has something to apply to
    text = text.replace("  - dataset: ETTh1\n", "  - dataset: ETTh1\n  - dataset: prom_300_tata\n  - dataset: brazilian_coffee_scenes\n")
    spec = load_sweep(write_spec(sweeps, text))
    assert {m.name: m.params for m in spec.methods} == {
        name: {p: decl.default for p, decl in params.items()} for name, params in ((n, c.params) for n, c in builtin_methods().items())}


# --------------------------------------------------------------------------------------------
# Overrides (the CLI's --out, --backend, --workers, ...)
# --------------------------------------------------------------------------------------------

def test_overrides_apply(layout):
    sweeps, work = layout
    path = write_spec(sweeps, FULL)
    spec = load_sweep(path, overrides={
        "out": "elsewhere", "executor.backend": "local", "executor.workers": "4",
        "methods.autoar.max_diff": 2, "tasks.0.context": "128", "seeds": "[7]",
        "data_root": str(sweeps / "data"),
    })
    assert spec.out == (work / "elsewhere").resolve()
    assert spec.executor == ExecutorSpec("local", 4, 5)
    assert spec.methods[1].params["max_diff"] == 2
    assert spec.tasks[0].context == 128 and spec.seeds == (7,)


def test_overrides_fill_empty_sections(layout):
    sweeps, _ = layout
    spec = load_sweep(write_spec(sweeps, MINIMAL), overrides={"executor.backend": "inline",
                                                          "methods.naive": None,
                                                          "report.baseline": "naive"})
    assert spec.executor.backend == "inline" and spec.report.baseline == "naive"


def test_override_paths_resolve_against_cwd(layout):
    sweeps, work = layout
    (work / "mydata").mkdir()
    spec = load_sweep(write_spec(sweeps, MINIMAL), overrides={"data_root": "mydata"})
    assert spec.data_root == (work / "mydata").resolve()


@pytest.mark.parametrize("overrides, key, fragment", [
    ({"executor.backend": "slurmm"}, "executor.backend", "unknown backend 'slurmm'"),
    ({"executor.workers": "0"}, "executor.workers", "must be >= 1, got 0"),
    ({"executor.workers": True}, "executor.workers", "got true (a boolean)"),
    ({"executor.backnd": "inline"}, "executor.backnd", "Did you mean 'backend'?"),
    ({"methods.autoar.max_diff": "5"}, "methods.autoar.max_diff", "must be between 0 and 2, got 5"),
    ({"data_root": "nowhere"}, "data_root", "folder not found"),
    ({"name.x": 1}, "name.x", "cannot set a key inside 'minimal' (a string)"),
    ({"tasks.3.context": 64}, "tasks.3", "index 3 is out of range (the list has 1 item)"),
    ({"tasks.first.context": 64}, "tasks.first", "is a list; select an item by its index"),
    ({"executor..workers": 1}, "executor..workers", "not a key path"),
])
def test_overrides_are_validated(layout, overrides, key, fragment):
    sweeps, _ = layout
    text = MINIMAL.replace("naive:", "naive:\n  autoar:")
    with pytest.raises(SpecError) as info:
        load_sweep(write_spec(sweeps, text), overrides=overrides)
    msg = str(info.value)
    assert msg.startswith(f"command line: {key}: "), msg
    assert fragment in msg, msg
    assert info.value.line is None


# --------------------------------------------------------------------------------------------
# Files, records, the error type
# --------------------------------------------------------------------------------------------

def test_missing_file(tmp_path):
    path = tmp_path / "nope.yaml"
    with pytest.raises(SpecError) as info:
        load_sweep(path)
    assert str(info.value).startswith(f"{path}: sweep file not found")


def test_folder_instead_of_file(tmp_path):
    with pytest.raises(SpecError, match="is a folder"):
        load_sweep(tmp_path)


def test_spec_to_dict_is_json_shaped_like_the_dataclasses(layout):
    sweeps, work = layout
    spec = load_sweep(write_spec(sweeps, FULL))
    record = spec_to_dict(spec)
    assert json.loads(json.dumps(record)) == record
    assert list(record) == ["name", "description", "source", "out", "data_root", "seeds", "tasks",
                            "methods", "executor", "tracking", "report", "search"]
    assert record["source"] == str(spec.source) and record["out"] == str(spec.out)
    assert record["tasks"][0] == {"dataset": "ETTh2", "horizons": [192, 96], "context": 336,
                                  "path": str(spec.tasks[0].path), "domain": "forecasting",
                                  "max_train": None, "val_fraction": None}
    assert [m["name"] for m in record["methods"]] == ["fracast", "autoar", "naive"]
    assert record["methods"][1]["params"]["kpss_alpha"] == 0.01
    assert record["methods"][1]["space"] is None  # autoar is not tuned
    assert record["executor"] == {"backend": "inline", "workers": 3, "timeout_min": 5, "slurm": None, "simulated": None}
    assert record["methods"][1]["distributed"] is None and record["methods"][1]["resources"] is None
    assert record["report"] == {"baseline": "naive"}
    # the same file gives the same record (the controller compares it with sweep.json on resume)
    assert spec_to_dict(load_sweep(sweeps / "sweep.yaml")) == record
    # tracking keeps the URI as given: null means "the default file in out"
    minimal = spec_to_dict(load_sweep(write_spec(sweeps, MINIMAL, "minimal.yaml")))
    assert minimal["tracking"] == {"uri": None}
    # written back as a sweep file (methods as a mapping), it loads to the same spec
    as_file = record_as_sweep_file(record, record["out"])
    again = load_sweep(write_spec(sweeps, json.dumps(as_file), "recorded.yaml"))  # JSON is YAML
    assert spec_to_dict(again) == {**record, "source": str(again.source)}


def test_spec_error_format_and_pickle():
    err = SpecError("unknown key", file="sweeps/x.yaml", line=12, key="methods.autoar.max_dif",
                    hint="Did you mean 'max_diff'?")
    assert str(err) == "sweeps/x.yaml:12: methods.autoar.max_dif: unknown key. Did you mean 'max_diff'?"
    assert str(SpecError("dataset file missing", hint="Run `launcher data ETTh1`.")) == \
        "dataset file missing. Run `launcher data ETTh1`."
    assert str(SpecError("bad", file="command line", key="out")) == "command line: out: bad"
    back = pickle.loads(pickle.dumps(err))
    assert str(back) == str(err) and back.line == 12 and back.key == "methods.autoar.max_dif"


def test_typed_specs_are_frozen():
    for cls in (TaskSpec, MethodSpec, ExecutorSpec, TrackingSpec, ReportSpec, SchedulerSpec,
                SearchSpec, SweepSpec):
        assert cls.__dataclass_params__.frozen


@pytest.mark.skipif(not HAVE_REAL_DATASETS, reason="needs the seasons of tasks.timeseries")
def test_context_shorter_than_the_default_season_of_seasonal_naive(write_sweep):
    path = write_sweep("name: s\ntasks:\n  - dataset: ETTm1\n    context: 64\nmethods:\n  seasonal_naive: {}\n")
    with pytest.raises(SpecError) as info:
        load_sweep(path)
    assert info.value.line == 4 and info.value.key == "tasks[0].context"
    assert "64 is shorter than the season of ETTm1 (96 steps)" in str(info.value)
    # the same context with a period that fits, and a longer context with the default, are fine
    load_sweep(write_sweep("name: s\ntasks:\n  - {dataset: ETTm1, context: 64}\nmethods:\n  seasonal_naive: {period: 64}\n"))
    load_sweep(write_sweep("name: s\ntasks:\n  - {dataset: ETTm1, context: 96}\nmethods:\n  seasonal_naive: {}\n"))


def test_autoar_lags_must_fit_the_context(write_sweep):
    spec = load_sweep(write_sweep("name: a\ntasks:\n  - {dataset: ETTh1, context: 64}\n"
                                  "methods:\n  autoar: {max_diff: 2, lags: [1, 62], deltas: [0]}\n"))
    assert spec.methods[0].params["lags"] == [1, 62]
    load_sweep(write_sweep("name: a\ntasks:\n  - {dataset: ETTh1, context: 19}\nmethods:\n  autoar: {}\n"))
    with pytest.raises(SpecError, match=r"sweep.yaml:5: methods.autoar.lags\[1\]: lag 63 does not fit"):
        load_sweep(write_sweep("name: a\ntasks:\n  - {dataset: ETTh1, context: 64}\n"
                               "methods:\n  autoar: {max_diff: 2, lags: [1, 63]}\n"))
    with pytest.raises(SpecError, match=r"sweep.yaml:3: tasks\[0\].context: autoar's default delta 16"):
        load_sweep(write_sweep("name: a\ntasks:\n  - {dataset: ETTh1, context: 18}\nmethods:\n  autoar: {}\n"))


@pytest.mark.parametrize("name, suggestion", [
    ("Ümlaut Étude", "Umlaut_Etude"), ("-dash first", "dash_first"), ("café au lait!", "cafe_au_lait"),
    ("x" * 300, "x" * 100)])
def test_invalid_names_get_a_valid_suggestion(write_sweep, name, suggestion):
    with pytest.raises(SpecError) as info:
        load_sweep(write_sweep(f"name: {json.dumps(name)}\ntasks: [{{dataset: ETTh1}}]\nmethods: {{naive: {{}}}}\n"))
    assert str(info.value).endswith(f"Try `name: {suggestion}`."), str(info.value)
    spec = load_sweep(write_sweep(f"name: {suggestion}\ntasks: [{{dataset: ETTh1}}]\nmethods: {{naive: {{}}}}\n"))
    assert spec.name == suggestion


def test_bounds_are_inclusive(write_sweep):
    spec = load_sweep(write_sweep(
        "name: b\nseeds: [2147483647]\ntasks:\n  - {dataset: ETTh1, horizons: [1000000], context: 1000000}\n"
        "methods: {dlinear: {seed: 2147483647}}\nexecutor: {workers: 1000000, timeout_min: 1000000}\n"
        "search: {trials: 1000000, seed: 2147483647}\n"))
    assert spec.seeds == (2147483647,) and spec.search.trials == 10**6 and spec.executor.timeout_min == 10**6
    with pytest.raises(SpecError, match=r"methods.dlinear.seed: must be <= 2147483647"):
        load_sweep(write_sweep("name: b\ntasks: [{dataset: ETTh1}]\nmethods: {dlinear: {seed: 2147483648}}\n"))


@pytest.mark.parametrize("uri, fragment", [
    ("http://host:port", "malformed URI"), ("http://[::1", "Invalid IPv6 URL"), ("https://:5000", "names no host"),
    ("http://host:70000", "Port out of range"), ("http://a b:5000", "space or control character"),
    ("http://host:5000/?x=1", "has a query"), ("file://elsewhere/mlruns", "malformed file URI"),
    ("file:relative", "malformed file URI"), ("http://host:0", "port 0")])
def test_malformed_tracking_uris(write_sweep, uri, fragment):
    def load(uri):
        return load_sweep(write_sweep(f"name: u\ntasks: [{{dataset: ETTh1}}]\nmethods: {{naive: {{}}}}\n"
                                      f"tracking: {{uri: '{uri}'}}\n"))

    with pytest.raises(SpecError) as info:
        load(uri)
    assert info.value.line == 4 and info.value.key == "tracking.uri" and fragment in str(info.value)
    for good in ("http://mlflow.example.org:5000", "https://mlflow.example.org/prefix", "http://[::1]:5000",
                 "file:///tmp/mlruns"):
        assert load(good).tracking.uri == good
