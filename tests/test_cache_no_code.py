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
    from launcher.methods.registry import method_class
    from tasks.timeseries import load_forecast_task

    params = {name: p.default for name, p in method_class("auto_arima").params.items()}
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


# ----------------------------------------------------------------------------- remote-code FM stand-in

PLANTED_CODE = 'import pathlib\npathlib.Path({marker!r}).touch()\n'


@pytest.fixture(scope="module")
def small_genomics_task(tmp_path_factory):
    """GUE prom_core_tata (70 bp, 2 classes) in its own layout, generated: 64 train, 16 dev, 16 test rows."""
    import pandas as pd

    from tasks.genomics import load_genomics_task

    root = tmp_path_factory.mktemp("genomics")
    folder = root / "GUE/prom/prom_core_tata"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for split, n in (("train", 64), ("dev", 16), ("test", 16)):
        sequences = ["".join(rng.choice(list("ACGT"), 70)) for _ in range(n)]
        pd.DataFrame({"sequence": sequences, "label": [i % 2 for i in range(n)]}).to_csv(folder / f"{split}.csv",
                                                                                          index=False)
    return load_genomics_task("prom_core_tata", data_root=root)


def _finetune_hyenadna(task, cache, trial_dir, **overrides):
    import torch

    from launcher.methods import get_method
    from launcher.methods.registry import method_class

    torch.set_num_threads(1)
    params = {**{k: p.default for k, p in method_class("finetune").params.items()}, "adapter": "hyenadna",
              "stand_in": "tiny", "epochs": 1, "warmup_epochs": 0, "batch_size": 16, "max_batches_per_epoch": 2,
              **overrides}
    method = get_method("finetune")
    method.cache_dir, method.distributed = cache, None
    return method.run_segment(task, params, trial_dir, 1, lambda step, metrics: None)


@pytest.mark.parametrize("user_trusts_remote_code", [False, True])
def test_stand_in_never_runs_python_files_from_the_cache(small_genomics_task, tmp_path, user_trusts_remote_code):
    from launcher.methods.fm_common import stand_in_folder

    cache = tmp_path / "cache"
    folder = stand_in_folder("hyenadna", small_genomics_task, cache)      # as the first trial of a sweep writes it
    marker = tmp_path / "pwned"
    # Someone with write access to the cache rewrites the stand-in's code files; they still work, but
    # importing either one leaves a marker.
    for name in ("modeling_tinydna.py", "configuration_tinydna.py"):
        path = folder / name
        assert path.is_file()
        path.write_text(PLANTED_CODE.format(marker=str(marker)) + path.read_text())

    # `trust_remote_code: true` in a sweep is for checkpoint folders the user has read, never for the
    # stand-in the launcher itself writes into the cache.
    try:
        result = _finetune_hyenadna(small_genomics_task, cache, tmp_path / "trial",
                                    trust_remote_code=user_trusts_remote_code)
    finally:
        assert not marker.exists(), "a Python file planted in the stand-in's cache folder was executed"
    assert result.info["adapter"] == "hyenadna" and result.info["stand_in"] is True
    assert 0.0 <= result.metrics["test_score"] <= 1.0
    assert any("random-init stand-in" in note for note in result.notes)


def test_remote_code_checkpoint_runs_only_when_the_sweep_trusts_it(small_genomics_task, tmp_path):
    """The kept path: a user's remote-code checkpoint is refused unless the sweep says trust_remote_code."""
    from models.fm import tiny

    folder = tiny.write_tiny_checkpoint("hyenadna", tmp_path / "hyena", num_labels=2)
    (folder / "README.txt").unlink()          # a user's checkpoint folder, not the stand-in
    marker = tmp_path / "imported"
    path = folder / "modeling_tinydna.py"
    path.write_text(PLANTED_CODE.format(marker=str(marker)) + path.read_text())
    with pytest.raises(PermissionError, match="trust_remote_code"):
        _finetune_hyenadna(small_genomics_task, tmp_path / "cache", tmp_path / "untrusted", stand_in="none",
                           checkpoint=str(folder))
    assert not marker.exists()
    result = _finetune_hyenadna(small_genomics_task, tmp_path / "cache", tmp_path / "trusted", stand_in="none",
                                checkpoint=str(folder), trust_remote_code=True)
    assert result.info["stand_in"] is False and 0.0 <= result.metrics["test_score"] <= 1.0
