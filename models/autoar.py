"""Auto-AR: the tuned linear auto-regression of the paper (Xu et al., ICLR 2025), paper-era variant.

Algorithm (authors' code at commit 7a177b6, `autoar.py --new_metric --kpss`):

1. d = the smallest order <= max_diff for which KPSS (trend-stationary null) has p > alpha on every
   channel of the d-times differenced train+val data (max_diff if none passes).
2. Lag candidates p = context - d - delta for delta in `deltas`.
3. For each p, ONE AR(p) + intercept shared by all channels, by OLS on every length-(p+1) window of every
   channel of the differenced data.
4. Each p is scored by BIC, ln(MSE) + (p+1) ln(N) / N, where MSE is of recursive `horizon`-step
   forecasts, integrated back d times, over every (context + horizon) window of the undifferenced
   train+val data (all channels; N = number of predicted values). The lowest score wins.

How this implementation stays fast and small:

- OLS from Gram matrices. The windows of width p_max + 1 hold, as sub-columns, every regression row
  of every smaller p except each channel's first p_max - p rows, which are added explicitly. So one
  Gram matrix of those windows gives exact normal equations for all candidates. It is computed by a
  sliding recursion (`window_gram`) in O(C T p + p^2) time and O(p^2 + C p) extra memory; the
  (rows x p) lag matrix is never formed. (A streamed BLAS pass, X'X over chunks of rows, gives the
  same matrix but is ~50x slower at Traffic's shape: 57 s against 1 s.)
- Forecasts as an affine map. Differencing, the recursion and integration are all linear, so the
  `horizon`-step forecast is A' x + b in the last p + d input levels x. A and b are found once per
  (p, d, horizon) by pushing the zero vector and the unit vectors through the recursion; forecasting
  any number of windows is then one matrix product.
- Scoring without forecasting. For an affine forecast, the squared error summed over all windows is a
  quadratic form in the Gram matrix of the windows (inputs and targets). That Gram matrix is computed
  once per fit by a sliding recursion (`window_gram`), so the BIC pass costs O(C T (p + horizon))
  instead of one (windows x p) @ (p x horizon) product per candidate.
"""
from __future__ import annotations

import time
import warnings
from typing import Sequence

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view


# ----------------------------------------------------------------------------------------- differencing
def kpss_pvalue(x: np.ndarray) -> float:
    """p-value of the KPSS test (regression='ct', automatic lag count) on a 1-D series."""
    from statsmodels.tools.sm_exceptions import InterpolationWarning
    from statsmodels.tsa.stattools import kpss

    if np.ptp(x) == 0:
        return 1.0  # a constant series is stationary; KPSS would divide 0 by 0
    with warnings.catch_warnings():
        # p-values beyond the table's [0.01, 0.1] range are clipped, which is all we need.
        warnings.simplefilter("ignore", InterpolationWarning)
        warnings.simplefilter("ignore", FutureWarning)  # return-type change announced by statsmodels 0.15
        result = kpss(x, regression="ct", nlags="auto")
    return float(result.pvalue if hasattr(result, "pvalue") else result[1])


def choose_differencing_order(series: np.ndarray, max_diff: int = 2, alpha: float = 0.05) -> int:
    """Smallest d <= max_diff whose d-th differences pass KPSS (p > alpha) on every channel; else max_diff."""
    for d in range(max_diff + 1):
        differenced = np.diff(series, n=d, axis=0)
        if all(kpss_pvalue(differenced[:, c]) > alpha for c in range(series.shape[1])):
            return d
    return max_diff


# ------------------------------------------------------------------------------------ window Gram
def window_gram(series: np.ndarray, width: int) -> tuple[np.ndarray, np.ndarray, int]:
    """Gram matrix, column sums and count of all stride-1 length-`width` windows of all channels.

    Exact, without forming the windows: shifting every window by one row changes entry (i, j) only by
    the rows that enter and leave, so G[i+1, j+1] = G[i, j] - sum_c s[i] s[j] + sum_c s[W+i] s[W+j]
    (W windows per channel). Only the first row needs lagged products over the whole series.
    Cost O(C T width + width^2) time and O(width^2 + C width) extra memory.
    """
    n_rows, n_channels = series.shape
    n_windows = n_rows - width + 1
    if n_windows < 1:
        raise ValueError(f"{n_rows} rows hold no window of width {width}")
    first_row = np.zeros(width)
    for channel in range(n_channels):
        column = np.ascontiguousarray(series[:, channel])
        first_row += np.correlate(column, column[:n_windows], mode="valid")
    heads, tails = series[: width - 1], series[n_windows: n_windows + width - 1]
    shift = tails @ tails.T - heads @ heads.T  # change of G[i, j] when all windows move one row on
    gram = np.empty((width, width))
    gram[0] = first_row
    for i in range(width - 1):
        gram[i + 1, i + 1:] = gram[i, i:-1] + shift[i, i:]
    upper = np.triu(gram)
    gram = upper + np.triu(upper, 1).T

    sums = np.empty(width)
    sums[0] = series[:n_windows].sum()
    sums[1:] = sums[0] + np.cumsum(tails.sum(axis=1) - heads.sum(axis=1))
    return gram, sums, n_channels * n_windows


# --------------------------------------------------------------------------------------- pooled OLS
def _solve_normal_equations(xtx: np.ndarray, xty: np.ndarray) -> np.ndarray:
    import scipy.linalg

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", scipy.linalg.LinAlgWarning)
            return scipy.linalg.solve(xtx, xty, assume_a="pos")  # Cholesky
    except (np.linalg.LinAlgError, scipy.linalg.LinAlgWarning):
        # Singular or nearly so (e.g. an exact trend, constant differences): the minimum-norm
        # least-squares solution is still an exact fit wherever one exists.
        return np.linalg.lstsq(xtx, xty, rcond=None)[0]


def fit_pooled_ar(differenced: np.ndarray, lags: Sequence[int]) -> dict[int, tuple[np.ndarray, float]]:
    """OLS AR(p) + intercept shared by all channels of `differenced` (T, C), for every p in `lags`.

    Returns p -> (coef, intercept) with coef[k - 1] the weight of lag k, as in statsmodels' AutoReg.
    """
    p_max = max(lags)
    if differenced.shape[0] <= p_max:
        raise ValueError(f"{differenced.shape[0]} rows cannot fit an AR({p_max}); need more than {p_max}")
    # Window columns run from lag p_max (oldest) to lag 0 (the regression target).
    gram, sums, n_rows = window_gram(differenced, p_max + 1)
    fits = {}
    for p in lags:
        columns = slice(p_max - p, p_max + 1)
        sub_gram, sub_sums, n = gram[columns, columns].copy(), sums[columns].copy(), n_rows
        if p < p_max:
            # Each channel's rows with target index t in [p, p_max) are not windows of width p_max + 1.
            edge = sliding_window_view(differenced[:p_max], p + 1, axis=0).reshape(-1, p + 1)
            sub_gram += edge.T @ edge
            sub_sums += edge.sum(axis=0)
            n += len(edge)
        xtx = np.empty((p + 1, p + 1))
        xtx[:p, :p] = sub_gram[:p, :p]
        xtx[:p, p] = xtx[p, :p] = sub_sums[:p]
        xtx[p, p] = n
        xty = np.append(sub_gram[:p, p], sub_sums[p])
        beta = _solve_normal_equations(xtx, xty)
        fits[p] = (beta[:p][::-1].copy(), float(beta[p]))
    return fits


# ------------------------------------------------------------------------- windowed squared error
def affine_forecast_mse(gram: np.ndarray, sums: np.ndarray, count: int, weights: np.ndarray,
                        offset: np.ndarray) -> float:
    """Mean squared error of forecasts x @ weights + offset against targets y, for windows [x, y].

    `gram`, `sums`, `count` describe the windows (inputs then targets, as from `window_gram`); the
    error e = x A + b - y has sum of squares tr(A'GxxA) - 2 tr(A'Gxy) + tr(Gyy) + 2 b'(A'sx - sy) + n b'b.
    """
    n_inputs, horizon = weights.shape
    x, y = slice(0, n_inputs), slice(n_inputs, n_inputs + horizon)
    squared = (np.einsum("ij,ij->", gram[x, x] @ weights, weights)
               - 2.0 * np.einsum("ij,ij->", gram[x, y], weights)
               + np.trace(gram[y, y])
               + 2.0 * offset @ (weights.T @ sums[x] - sums[y])
               + count * offset @ offset)
    # Rounding can push an exactly-zero error slightly below zero.
    return max(float(squared), 0.0) / (count * horizon)


# -------------------------------------------------------------------------------------- forecasting
def _integrate(last_levels: np.ndarray, differences: np.ndarray, d: int) -> np.ndarray:
    """Turn predicted d-th differences into levels, given the last d observed levels (M, d)."""
    predicted = differences
    for order in range(d, 0, -1):
        # The last observed (order-1)-th difference anchors the cumulative sum of the order-th ones.
        anchor = np.diff(last_levels, n=order - 1, axis=1)[:, -1]
        predicted = anchor[:, None] + np.cumsum(predicted, axis=1)
    return predicted


def recursive_forecast(levels: np.ndarray, coef: np.ndarray, intercept: float, d: int, horizon: int) -> np.ndarray:
    """Iterated one-step AR forecasts on d-th differences, integrated back to levels.

    levels: (M, >= p + d) inputs, oldest first; returns (M, horizon) levels.
    """
    p = len(coef)
    levels = np.asarray(levels, dtype=np.float64)[:, -(p + d):]
    buffer = np.empty((len(levels), p + horizon))
    buffer[:, :p] = np.diff(levels, n=d, axis=1)
    weights = np.asarray(coef, dtype=np.float64)[::-1]  # oldest lag first, like the buffer
    for step in range(horizon):
        buffer[:, p + step] = buffer[:, step: p + step] @ weights + intercept
    return _integrate(levels[:, p:], buffer[:, p:], d)


def affine_forecast_map(coef: np.ndarray, intercept: float, d: int, horizon: int) -> tuple[np.ndarray, np.ndarray]:
    """(A, b) with recursive_forecast(x) == x @ A + b for inputs x = the last p + d levels (oldest first)."""
    n_inputs = len(coef) + d
    basis = np.vstack([np.zeros(n_inputs), np.eye(n_inputs)])
    pushed = recursive_forecast(basis, coef, intercept, d, horizon)
    offset = pushed[0]
    return pushed[1:] - offset, offset


def reference_train_val(train: np.ndarray, val_with_context: np.ndarray) -> np.ndarray:
    """The fitting series of the authors' code: train rows, then the val slice WITH its context prefix.

    The last `context` training rows therefore appear twice, with a jump where the copies meet. Our
    default fits on the clean contiguous train+val (`ForecastTask.train_val()`); this helper exists only
    to reproduce the reference numbers and measure the difference.
    """
    return np.concatenate([train, val_with_context], axis=0)


# ---------------------------------------------------------------------------------------------- model
class AutoAR:
    def __init__(self, context: int = 512, deltas: Sequence[int] = (0, 2, 4, 8, 16), lags: Sequence[int] | None = None,
                 max_diff: int = 2, kpss_alpha: float = 0.05, d: int | None = None):
        self.context = int(context)
        self.deltas = tuple(int(x) for x in deltas)
        self.lags = None if lags is None else tuple(int(x) for x in lags)
        self.max_diff = int(max_diff)
        self.kpss_alpha = float(kpss_alpha)
        self.d = d  # fixed differencing order; None chooses it by KPSS
        self._maps: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def candidate_lags(self, d: int) -> list[int]:
        longest = self.context - d
        lags = self.lags if self.lags is not None else [longest - delta for delta in self.deltas]
        bad = [p for p in lags if not 1 <= p <= longest]
        if bad:
            raise ValueError(f"lags {bad} impossible: each must be in [1, context - d] = [1, {longest}]")
        return sorted(set(lags))

    def fit(self, train_val: np.ndarray, horizon: int) -> "AutoAR":
        """Choose d and p on `train_val` (T, C), z-scored, contiguous; keep the best AR model."""
        started = time.perf_counter()
        series = np.asarray(train_val, dtype=np.float64)
        if series.ndim == 1:
            series = series[:, None]
        if not np.isfinite(series).all():
            raise ValueError("train_val contains NaN or inf; clean the data first")
        if len(series) < self.context + horizon:
            raise ValueError(f"{len(series)} rows give no (context {self.context} + horizon {horizon}) window")
        self.horizon_ = int(horizon)
        self.d_ = self.d if self.d is not None else choose_differencing_order(series, self.max_diff, self.kpss_alpha)
        candidates = self.candidate_lags(self.d_)
        fits = fit_pooled_ar(np.diff(series, n=self.d_, axis=0), candidates)

        self.mse_by_lag_ = self._in_sample_mse(series, fits)
        n_values = series.shape[1] * (len(series) - self.context - self.horizon_ + 1) * self.horizon_
        # A perfect in-sample fit (MSE 0, e.g. an exact trend) would give ln 0; floor it at the tiniest float.
        self.scores_ = {p: float(np.log(max(mse, np.finfo(float).tiny)) + (p + 1) * np.log(n_values) / n_values)
                        for p, mse in self.mse_by_lag_.items()}
        best = min(candidates, key=lambda p: self.scores_[p])  # ascending, so a tie keeps the smaller model
        self._set_model(best, *fits[best])
        self.fit_seconds = time.perf_counter() - started
        return self

    def _in_sample_mse(self, series: np.ndarray, fits: dict[int, tuple[np.ndarray, float]]) -> dict[int, float]:
        """MSE of each candidate's recursive forecasts over every (context + horizon) window of `series`.

        Forecasts are affine in the last p + d inputs, so one Gram matrix of the windows' last
        q_max + horizon columns gives every candidate's exact MSE (same value as `evaluate_forecaster`).
        """
        q_max = max(fits) + self.d_
        gram, sums, count = window_gram(series[self.context - q_max:], q_max + self.horizon_)
        mse = {}
        for p, (coef, intercept) in fits.items():
            weights, offset = affine_forecast_map(coef, intercept, self.d_, self.horizon_)
            columns = np.r_[q_max - p - self.d_: q_max + self.horizon_]
            mse[p] = affine_forecast_mse(gram[np.ix_(columns, columns)], sums[columns], count, weights, offset)
        return mse

    def _set_model(self, p: int, coef: np.ndarray, intercept: float) -> None:
        self.p_, self.coef_, self.intercept_ = p, coef, intercept
        self._maps = {}

    @property
    def n_parameters(self) -> int:
        return self.p_ + 1

    def forecast_map(self, horizon: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(A, b), cached: forecasts = contexts[:, -(p + d):] @ A + b."""
        horizon = self.horizon_ if horizon is None else int(horizon)
        if horizon not in self._maps:
            self._maps[horizon] = affine_forecast_map(self.coef_, self.intercept_, self.d_, horizon)
        return self._maps[horizon]

    def forecast(self, contexts: np.ndarray, horizon: int | None = None) -> np.ndarray:
        """(N, L) levels with L >= p + d -> (N, horizon) levels (the fitted horizon by default)."""
        contexts = np.asarray(contexts, dtype=np.float64)
        n_inputs = self.p_ + self.d_
        if contexts.ndim != 2 or contexts.shape[1] < n_inputs:
            raise ValueError(f"contexts must be (N, L) with L >= p + d = {n_inputs}, got {contexts.shape}")
        weights, offset = self.forecast_map(horizon)
        return contexts[:, -n_inputs:] @ weights + offset
