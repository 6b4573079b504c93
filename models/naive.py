"""Naive forecasters: the floor any learned forecaster must beat.

Both take contexts (N, L) and return forecasts (N, horizon) as float64.
"""
from __future__ import annotations

import numpy as np


def _as_contexts(contexts: np.ndarray) -> np.ndarray:
    contexts = np.asarray(contexts, dtype=np.float64)
    if contexts.ndim != 2 or contexts.shape[1] == 0:
        raise ValueError(f"contexts must have shape (N, L) with L >= 1, got {contexts.shape}")
    return contexts


def naive_forecast(contexts: np.ndarray, horizon: int) -> np.ndarray:
    """Repeat the last observed value `horizon` times."""
    contexts = _as_contexts(contexts)
    return np.repeat(contexts[:, -1:], horizon, axis=1)


def seasonal_naive_forecast(contexts: np.ndarray, horizon: int, period: int) -> np.ndarray:
    """Repeat the last `period` observed values cyclically: step h predicts the value `period` steps earlier."""
    contexts = _as_contexts(contexts)
    if not 1 <= period <= contexts.shape[1]:
        raise ValueError(f"seasonal period {period} must be between 1 and the context length {contexts.shape[1]}")
    last_season = contexts[:, -period:]
    return last_season[:, np.arange(horizon) % period]
