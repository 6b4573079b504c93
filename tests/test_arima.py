import math

import numpy as np
import pytest

from models.arima import MAX_AUTO_SEASON, AutoARIMAForecaster, resolve_season_length
from models.naive import naive_forecast
from tasks.timeseries import evaluate_forecaster


def ar1(phi: float, n: int, rng: np.random.Generator, scale: float = 1.0, mean: float = 0.0) -> np.ndarray:
    x = np.zeros(n)
    noise = rng.standard_normal(n) * scale
    for t in range(1, n):
        x[t] = phi * x[t - 1] + noise[t]
    return x + mean


@pytest.fixture(scope="module")
def ar1_fit():
    x = ar1(0.8, 1600, np.random.default_rng(0))
    return x, AutoARIMAForecaster().fit(x[:1200, None])


def test_beats_naive_on_ar1_and_one_step_forecast_is_phi_x(ar1_fit):
    x, model = ar1_fit
    test = x[1200:, None]
    arima = evaluate_forecaster(lambda c: model.forecast(c, 8), test, 64, 8, window_stride=4)
    naive = evaluate_forecaster(lambda c: naive_forecast(c, 8), test, 64, 8, window_stride=4)
    assert arima["mse"] < 0.8 * naive["mse"]

    contexts = np.lib.stride_tricks.sliding_window_view(x[1200:], 64)[::10]
    one_step = model.forecast_channel(0, contexts, 1)[:, 0]
    np.testing.assert_allclose(one_step, 0.8 * contexts[:, -1], atol=0.2)
    assert np.abs(one_step - 0.8 * contexts[:, -1]).mean() < 0.06
    assert model.n_parameters >= 1 and model.orders()[0][0][1] == 0  # stationary: d = 0


def test_forecast_maps_rows_to_channels_like_evaluate_forecaster():
    # Two channels with opposite dynamics and scales: a slow positive AR around +3, and a fast
    # oscillating one around -2. A model applied to the wrong channel's rows would be far off.
    rng = np.random.default_rng(1)
    series = np.stack([ar1(0.95, 900, rng, 0.3, 3.0), ar1(-0.7, 900, rng, 2.0, -2.0)], axis=1)
    model = AutoARIMAForecaster().fit(series[:600])
    test, context, horizon = series[600:], 48, 6

    # Small batches: the rows reach the forecaster in several blocks, each of whole windows.
    whole = evaluate_forecaster(lambda c: model.forecast(c, horizon), test, context, horizon,
                                window_stride=3, max_batch_values=2_000)
    per_channel = [evaluate_forecaster(lambda c, ch=ch: model.forecast_channel(ch, c, horizon),
                                       test[:, [ch]], context, horizon, window_stride=3) for ch in range(2)]
    weights = [s["n_values"] for s in per_channel]
    assert whole["n_values"] == sum(weights)
    for metric in ("mse", "mae"):
        combined = sum(s[metric] * w for s, w in zip(per_channel, weights)) / sum(weights)
        assert math.isclose(whole[metric], combined, rel_tol=1e-12)

    swapped = AutoARIMAForecaster()
    swapped.models_ = model.models_[::-1]
    wrong = evaluate_forecaster(lambda c: swapped.forecast(c, horizon), test, context, horizon, window_stride=3)
    assert wrong["mse"] > 3 * whole["mse"]


@pytest.mark.parametrize("case", ["mean", "drift", "d2", "seasonal"])
def test_batched_mean_forecast_equals_statsforecast_forward(case):
    rng = np.random.default_rng(3)
    t = np.arange(400)
    x, kwargs, season = {
        "mean": (ar1(0.6, 400, rng) + 5.0, {}, 1),                                         # intercept
        "drift": (0.05 * t + 0.3 * np.cumsum(rng.standard_normal(400)) + ar1(0.5, 400, rng), {"d": 1}, 1),
        "d2": (0.01 * np.cumsum(np.cumsum(rng.standard_normal(400))), {"d": 2}, 1),        # no coefficients
        "seasonal": (3 * np.sin(2 * np.pi * t / 4) + ar1(0.5, 400, rng), {}, 4),
    }[case]
    model = AutoARIMAForecaster(season_length=season, **kwargs).fit(x[:300, None])
    if case == "drift":
        assert "drift" in model.models_[0].model_["coef"]
    if case == "seasonal":
        assert model.orders()[0][2] == 4
    contexts = np.lib.stride_tricks.sliding_window_view(x[250:], 64)[::7]
    contexts = np.vstack([contexts, np.full((1, 64), 1.5)])  # a constant context is repeated
    expected = np.stack([model.models_[0].forward(y=c, h=30)["mean"] for c in contexts])
    np.testing.assert_allclose(model.forecast_channel(0, contexts, 30), expected, rtol=1e-10, atol=1e-12)
    assert model.library_fallbacks_ == 0


def test_forecast_rejects_rows_that_are_not_whole_windows(ar1_fit):
    _, model = ar1_fit
    two = AutoARIMAForecaster()
    two.models_ = [model.models_[0]] * 2
    with pytest.raises(ValueError, match="window-major"):
        two.forecast(np.zeros((3, 32)), 4)
    with pytest.raises(RuntimeError, match="not fitted"):
        AutoARIMAForecaster().forecast(np.zeros((2, 32)), 4)


def test_resolve_season_length():
    assert resolve_season_length(7, 144) == (7, None)
    assert resolve_season_length(None, 24) == (24, None)
    assert resolve_season_length(None, 5) == (5, None)
    season, note = resolve_season_length(None, 96)
    assert season == 1 and "cap" in note and str(MAX_AUTO_SEASON) in note
    with pytest.raises(ValueError):
        resolve_season_length(0, 24)


def test_method_runs_on_embedded_etth1_with_stride_and_fit_rows():
    from launcher.methods import get_method
    from launcher.methods.registry import method_class
    from tasks.timeseries import load_forecast_task

    assert method_class("auto_arima").kind == "baseline" and method_class("auto_arima").deterministic
    params = {name: p.default for name, p in method_class("auto_arima").params.items()}
    params.update(eval_stride=700, max_fit_rows=256)
    task = load_forecast_task("ETTh1", 24)
    lines = []
    result = get_method("auto_arima").run(task, params, lambda step, m: lines.append((step, m)))

    m = result.metrics
    assert np.isfinite(m["test_mse"]) and np.isfinite(m["test_mae"]) and m["test_mse"] > 0
    assert m["test_windows"] == len(range(0, task.n_test_windows, 700)) and m["fit_rows"] == 256
    assert [step for step, _ in lines] == list(range(task.n_channels))
    assert result.n_parameters > 0 and result.info["season_length"] == 1
    assert len(result.info["orders"].split(";")) == task.n_channels
    assert any("every 700th test window" in note for note in result.notes)
    assert any("last 256 of the" in note for note in result.notes)


def test_method_shares_the_horizon_independent_fit_across_trials(tmp_path):
    from launcher.methods import get_method
    from launcher.methods.registry import method_class
    from tasks.timeseries import load_forecast_task

    params = {name: p.default for name, p in method_class("auto_arima").params.items()}
    params.update(eval_stride=700, max_fit_rows=256)
    def quiet(step, m):
        return None

    def run(horizon, cache_dir):
        method = get_method("auto_arima")
        method.cache_dir = cache_dir
        return method.run(load_forecast_task("ETTh1", horizon), params, quiet)

    uncached = run(48, None)
    first = run(24, tmp_path)                     # fits and saves
    second = run(48, tmp_path)                    # another horizon, same train+val rows: loads
    assert first.metrics["fit_cached"] == 0.0 and second.metrics["fit_cached"] == 1.0
    assert len(list(tmp_path.glob("auto_arima-*.npz"))) == 1
    # the loaded fit forecasts exactly like a fresh one
    assert second.metrics["test_mse"] == uncached.metrics["test_mse"]
    assert second.info["orders"] == uncached.info["orders"]


def _same(a, b) -> bool:
    """Equal values of equal types, recursively (NaN equals NaN): what a saved fit must give back."""
    if isinstance(a, dict):
        return type(b) is dict and list(a) == list(b) and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (tuple, list)):
        return type(a) is type(b) and len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, np.ndarray):
        return type(b) is np.ndarray and a.dtype == b.dtype and np.array_equal(a, b, equal_nan=True)
    both_nan = isinstance(a, float) and math.isnan(a) and math.isnan(b)
    return type(a) is type(b) and (a == b or both_nan)


def test_saved_fit_is_data_only_and_forecasts_exactly_like_the_fresh_fit(tmp_path):
    rng = np.random.default_rng(3)
    series = np.stack([ar1(0.7, 400, rng), np.cumsum(rng.standard_normal(400)), ar1(0.5, 400, rng, mean=5.0)], 1)
    fresh = AutoARIMAForecaster(season_length=4).fit(series[:300])
    path = fresh.save(tmp_path / "fit.npz")
    with np.load(path, allow_pickle=False) as data:      # plain arrays only: no pickled objects inside
        assert all(data[name].dtype != object for name in data.files)
    loaded = AutoARIMAForecaster.load(path)

    windows = np.lib.stride_tricks.sliding_window_view(series[250:], 96, axis=0)[::5]   # (W, C, 96)
    contexts = windows.reshape(-1, 96)
    assert np.array_equal(loaded.forecast(contexts, 24), fresh.forecast(contexts, 24))
    assert loaded.orders() == fresh.orders() and loaded.aicc() == fresh.aicc()
    assert loaded.n_parameters == fresh.n_parameters
    assert loaded.fit_seconds_ == fresh.fit_seconds_ and loaded.convergence_warnings_ == fresh.convergence_warnings_
    for new, old in zip(loaded.models_, fresh.models_):
        assert _same(new.model_, old.model_)
        # statsforecast's own forward on the rebuilt model, not only our batched mean
        assert np.array_equal(new.forward(y=contexts[0], h=24)["mean"], old.forward(y=contexts[0], h=24)["mean"])


def test_loading_refuses_pickles_and_anything_but_a_saved_fit(tmp_path, ar1_fit):
    from models.arima import UnreadableFitError

    _, fit = ar1_fit
    marker = tmp_path / "ran"
    pickled = tmp_path / "pickle.npz"
    pickled.write_bytes(b"\x80\x04cposix\nsystem\n(Vtouch " + str(marker).encode() + b"\ntR.")
    objects = tmp_path / "objects.npz"
    np.savez(objects, __meta__=np.array([{"format": "x"}], dtype=object))   # pickled inside the npz
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"\x00not a saved fit")
    other = tmp_path / "other.npz"
    np.savez(other, __meta__=np.frombuffer(b'{"format": "something else"}', dtype=np.uint8))
    bare = tmp_path / "bare.npz"
    np.save(bare.with_suffix(""), np.arange(3))
    bare.with_suffix(".npy").rename(bare)
    for path in (pickled, objects, garbage, other, bare, tmp_path / "missing.npz"):
        with pytest.raises(UnreadableFitError):
            AutoARIMAForecaster.load(path)
    assert not marker.exists()
    assert AutoARIMAForecaster.load(fit.save(tmp_path / "ok.npz")).orders() == fit.orders()
