"""Nothing the launcher reads back from a sweep's cache folder may run code.

Whoever can write `<out>/cache/` (a shared project folder, a copied sweep) must not be able to make the
next run execute anything: the Auto-ARIMA fit cache is read as data only (npz with
allow_pickle=False, JSON), and the `stand_in: tiny` remote-code DNA stand-in takes its Python classes
from the installed package, never from the files in its cache folder. Each test plants files that
would create a marker file if they were executed or unpickled, runs the real method, and checks the
marker never appears.
"""
from __future__ import annotations

import hashlib
import pickle
import shlex

import numpy as np
import pytest


class _RunsShellCommand:
    """Unpickling this runs `touch <marker>` (what a planted cache file could do)."""

    def __init__(self, marker):
        self.command = f"touch {shlex.quote(str(marker))}"

    def __reduce__(self):
        import os
        return os.system, (self.command,)


# ----------------------------------------------------------------------------- Auto-ARIMA fit cache

ARIMA_PARAMS = {"eval_stride": 700, "max_fit_rows": 256}


def _arima_run(cache_dir, horizon=24):
    from launcher.methods import get_method
    from launcher.methods.params import METHOD_PARAMS
    from tasks.timeseries import load_forecast_task

    params = {name: p.default for name, p in METHOD_PARAMS["auto_arima"].items()}
    params.update(ARIMA_PARAMS)
    method = get_method("auto_arima")
    method.cache_dir = cache_dir
    return method.run(load_forecast_task("ETTh1", horizon), params, lambda step, metrics: None)


def _arima_cache_key(horizon=24) -> str:
    """The cache key of the fit (train+val rows and season), as every version of the method computes it."""
    from tasks.timeseries import load_forecast_task

    series = load_forecast_task("ETTh1", horizon).train_val()[-ARIMA_PARAMS["max_fit_rows"]:]
    return hashlib.sha256(series.tobytes() + str((series.shape, 1)).encode()).hexdigest()[:20]


@pytest.mark.parametrize("planted_at_new_name", ["pickle", "garbage", "object_npz"])
def test_auto_arima_never_loads_a_planted_pickle(tmp_path, planted_at_new_name):
    cache = tmp_path / "cache"
    cache.mkdir()
    marker = tmp_path / "pwned"
    evil = pickle.dumps(_RunsShellCommand(marker))
    key = _arima_cache_key()
    # Every name the pickle-based cache could read, and the name of the data-only cache.
    (cache / f"auto_arima-{key}.pkl").write_bytes(evil)
    new_name = cache / f"auto_arima-{key}.npz"
    if planted_at_new_name == "pickle":
        new_name.write_bytes(evil)
    elif planted_at_new_name == "garbage":
        new_name.write_bytes(b"PK\x03\x04 this is not a zip file" + bytes(range(256)))
    else:   # a real npz whose entry is a pickled object array
        with open(new_name, "wb") as handle:
            np.savez(handle, __meta__=np.array([_RunsShellCommand(marker)], dtype=object))
    assert not marker.exists()       # planting did not run it

    try:
        first = _arima_run(cache)
    finally:        # checked even when the run crashed on what the planted file turned into
        assert not marker.exists(), "a planted cache file ran a shell command"
    assert first.metrics["fit_cached"] == 0.0 and np.isfinite(first.metrics["test_mse"])
    assert any(f"ignored auto_arima-{key}.pkl" in note and "never loaded" in note for note in first.notes)
    assert any("ignored the cached fit" in note and new_name.name in note for note in first.notes)

    # The refit replaced the planted file with a data-only fit, which the next trial loads.
    with np.load(new_name, allow_pickle=False) as data:
        assert "__meta__" in data.files
    second = _arima_run(cache, horizon=48)
    assert second.metrics["fit_cached"] == 1.0
    assert second.info["orders"] == first.info["orders"]
    assert not marker.exists()
