"""Auto-AR: pooled OLS from window Gram matrices, lag and differencing choice, and the affine forecast map.

Every expectation comes from an independent computation (numpy lstsq, statsmodels, a plain Python
recursion, or the known parameters of a simulated process), never from numbers the code produced.
"""
import numpy as np
import pytest

from models.autoar import (
    AutoAR,
    _integrate,
    affine_forecast_map,
    affine_forecast_mse,
    choose_differencing_order,
    fit_pooled_ar,
    recursive_forecast,
    reference_train_val,
    window_gram,
)
from tasks.timeseries import evaluate_forecaster


def simulate_ar(coef, intercept, n_rows, n_channels, seed, burn_in=500):
    rng = np.random.default_rng(seed)
    p = len(coef)
    total = n_rows + burn_in
    series = np.zeros((total, n_channels))
    noise = rng.standard_normal((total, n_channels))
    for t in range(p, total):
        series[t] = intercept + sum(coef[k] * series[t - 1 - k] for k in range(p)) + noise[t]
    return series[burn_in:]


def explicit_lag_design(series, p):
    """Every regression row of every channel, written out: [x_{t-1}, ..., x_{t-p}, 1] -> x_t."""
    rows, targets = [], []
    for channel in series.T:
        for t in range(p, len(channel)):
            rows.append(np.append(channel[t - p:t][::-1], 1.0))
            targets.append(channel[t])
    return np.array(rows), np.array(targets)


def loop_forecast(levels, coef, intercept, d, horizon):
    """One series, step by step: difference d times, iterate the AR, integrate d times."""
    history = [list(np.asarray(levels, dtype=float))]
    for _ in range(d):
        history.append([b - a for a, b in zip(history[-1][:-1], history[-1][1:])])
    diffs = list(history[d])
    for _ in range(horizon):
        diffs.append(intercept + sum(c * diffs[-1 - k] for k, c in enumerate(coef)))
    future = diffs[len(history[d]):]
    for order in range(d - 1, -1, -1):
        last = history[order][-1]
        integrated = []
        for step in future:
            last = last + step
            integrated.append(last)
        future = integrated
    return np.array(future)


@pytest.mark.parametrize("n_rows, lags", [(120, [2, 5, 9]), (120, [9]), (1500, [40, 47, 64])])
def test_gram_ols_equals_lstsq_on_explicit_design(n_rows, lags):
    series = np.random.default_rng(0).standard_normal((n_rows, 3)).cumsum(axis=0) * 0.1
    fits = fit_pooled_ar(series, lags)
    assert sorted(fits) == sorted(lags)
    for p, (coef, intercept) in fits.items():
        design, target = explicit_lag_design(series, p)
        expected = np.linalg.lstsq(design, target, rcond=None)[0]
        np.testing.assert_allclose(coef, expected[:p], rtol=1e-8, atol=1e-10)
        assert intercept == pytest.approx(expected[p], rel=1e-8, abs=1e-10)


def test_recovers_known_ar3_coefficients():
    true_coef, true_intercept = [0.5, -0.3, 0.2], 0.1
    series = simulate_ar(true_coef, true_intercept, 20_000, 4, seed=1)
    model = AutoAR(context=16, lags=[3], d=0).fit(series, horizon=4)
    # Standard error of each coefficient is about 1/sqrt(80,000) = 0.0035.
    np.testing.assert_allclose(model.coef_, true_coef, atol=0.02)
    assert model.intercept_ == pytest.approx(true_intercept, abs=0.02)
    assert model.n_parameters == 4


def test_single_channel_matches_statsmodels_autoreg():
    from statsmodels.tsa.ar_model import AutoReg

    series = simulate_ar([0.6, -0.2], 0.3, 600, 1, seed=2)[:, 0]
    for p in (1, 4, 7):
        coef, intercept = fit_pooled_ar(series[:, None], [p])[p]
        params = AutoReg(series, lags=p, trend="c").fit().params  # [const, lag 1, ..., lag p]
        assert intercept == pytest.approx(params[0], rel=1e-8)
        np.testing.assert_allclose(coef, params[1:], rtol=1e-8)


@pytest.mark.parametrize("width", [1, 4, 13, 40])
def test_window_gram_equals_explicit_windows(width):
    series = np.random.default_rng(8).standard_normal((40, 3)) + 2.0
    windows = np.concatenate([np.lib.stride_tricks.sliding_window_view(series[:, c], width) for c in range(3)])
    gram, sums, count = window_gram(series, width)
    np.testing.assert_allclose(gram, windows.T @ windows, rtol=1e-12)
    np.testing.assert_allclose(sums, windows.sum(axis=0), rtol=1e-12)
    assert count == len(windows)


def test_affine_forecast_mse_equals_evaluated_mse():
    rng = np.random.default_rng(9)
    series = rng.standard_normal((60, 2)).cumsum(axis=0)
    weights, offset = rng.standard_normal((5, 4)) * 0.3, rng.standard_normal(4)
    expected = evaluate_forecaster(lambda x: x[:, -5:] @ weights + offset, series, 8, 4)["mse"]
    gram, sums, count = window_gram(series[8 - 5:], 5 + 4)
    assert affine_forecast_mse(gram, sums, count, weights, offset) == pytest.approx(expected, rel=1e-10)


@pytest.mark.parametrize("d", [0, 1, 2])
def test_affine_map_and_recursion_equal_a_step_by_step_loop(d):
    rng = np.random.default_rng(3)
    coef = rng.uniform(-0.3, 0.3, size=5)
    intercept, horizon = 0.05, 9
    contexts = rng.standard_normal((4, 12)).cumsum(axis=1)
    expected = np.array([loop_forecast(row, coef, intercept, d, horizon) for row in contexts])

    np.testing.assert_allclose(recursive_forecast(contexts, coef, intercept, d, horizon), expected, rtol=1e-10)
    weights, offset = affine_forecast_map(coef, intercept, d, horizon)
    np.testing.assert_allclose(contexts[:, -(5 + d):] @ weights + offset, expected, rtol=1e-9, atol=1e-12)

    model = AutoAR(context=12, lags=[5], d=d)
    model._set_model(5, coef, intercept)
    model.d_, model.horizon_ = d, horizon
    np.testing.assert_allclose(model.forecast(contexts), expected, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("d", [1, 2])
def test_integration_round_trip_recovers_levels(d):
    levels = np.random.default_rng(4).standard_normal((3, 30)).cumsum(axis=1)
    future_differences = np.diff(levels, n=d, axis=1)[:, -10:]
    rebuilt = _integrate(levels[:, 20 - d:20], future_differences, d)
    np.testing.assert_allclose(rebuilt, levels[:, 20:], rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("d", [1, 2])
def test_exact_linear_trend_is_forecast_exactly(d):
    t = np.arange(300.0)
    series = np.column_stack([0.5 + 0.01 * t, -1.0 - 0.02 * t])
    model = AutoAR(context=20, lags=[4], d=d).fit(series[:200], horizon=10)
    forecast = model.forecast(series[180:200].T)
    np.testing.assert_allclose(forecast, series[200:210].T, rtol=0, atol=1e-10)


def test_kpss_picks_d1_on_random_walk_and_d0_on_white_noise():
    noise = np.random.default_rng(5).standard_normal((3000, 3))
    assert choose_differencing_order(noise) == 0
    assert choose_differencing_order(noise.cumsum(axis=0)) == 1
    assert choose_differencing_order(noise.cumsum(axis=0).cumsum(axis=0), max_diff=1) == 1


def test_fit_chooses_d_by_kpss_and_p_by_bic():
    rng = np.random.default_rng(6)
    walk = simulate_ar([0.7], 0.0, 3000, 2, seed=6).cumsum(axis=0) * 0.05 + rng.normal(size=2)
    model = AutoAR(context=24, deltas=(0, 3, 10)).fit(walk, horizon=6)
    assert model.d_ == 1
    assert sorted(model.scores_) == [13, 20, 23]
    for p, score in model.scores_.items():
        single = AutoAR(context=24, lags=[p], d=1).fit(walk, horizon=6)
        metrics = evaluate_forecaster(single.forecast, walk, 24, 6)
        n = metrics["n_values"]
        assert score == pytest.approx(np.log(metrics["mse"]) + (p + 1) * np.log(n) / n, rel=1e-10)
    assert model.p_ == min(model.scores_, key=model.scores_.get)


def test_default_candidates_and_invalid_lags():
    assert AutoAR().candidate_lags(1) == [495, 503, 507, 509, 511]
    assert AutoAR().candidate_lags(0) == [496, 504, 508, 510, 512]
    with pytest.raises(ValueError, match="context - d"):
        AutoAR(context=512, lags=[512]).candidate_lags(1)


def test_forecast_needs_p_plus_d_inputs():
    series = simulate_ar([0.5], 0.0, 400, 2, seed=7)
    model = AutoAR(context=10, lags=[6], d=1).fit(series, horizon=3)
    assert model.forecast(series[:10].T).shape == (2, 3)
    with pytest.raises(ValueError, match="p \\+ d"):
        model.forecast(series[:6].T)


def test_reference_train_val_repeats_the_context_rows():
    train = np.arange(20.0).reshape(10, 2)
    val_with_context = np.arange(12.0, 28.0).reshape(8, 2)  # last 4 train rows, then 4 val rows
    combined = reference_train_val(train, val_with_context)
    assert combined.shape == (18, 2)
    np.testing.assert_array_equal(combined[10:14], train[6:])
