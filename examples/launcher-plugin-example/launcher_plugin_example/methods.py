"""`drift`: the random walk with drift, a one-shot forecasting baseline.

For each channel of a context window x[0..L-1] the forecast h steps ahead (h = 1..H) is

    x[L-1] + damping * h * (x[L-1] - x[0]) / (L - 1)

i.e. the last value plus the average step over the window, extrapolated (damping 0 is the naive
forecast). It is scored like every built-in forecasting method: `tasks.timeseries.evaluate_forecaster`
over every stride-1 window of the test slice, each channel a sample, MSE and MAE in z-scored units.

This module imports only the launcher's light declaration modules; numpy and the task library are
imported inside `run`, so listing methods and validating sweep files stays instant.
"""
from __future__ import annotations

from typing import Any

from launcher.methods import Method, MethodResult, Param


def drift_forecast(contexts, horizon: int, damping: float = 1.0):
    """(N, L) contexts -> (N, horizon) drift forecasts (numpy arrays)."""
    import numpy as np

    contexts = np.asarray(contexts, dtype=np.float64)
    last = contexts[:, -1:]
    slope = (contexts[:, -1:] - contexts[:, :1]) / max(contexts.shape[1] - 1, 1)
    steps = np.arange(1, horizon + 1, dtype=np.float64)[None, :]
    return last + damping * slope * steps


class DriftMethod(Method):
    """Random walk with drift: last value + h * damping * (last - first) / (context - 1)."""

    name = "drift"                      # the name sweep files use: `methods: {drift: {damping: 0.5}}`
    kind = "baseline"                   # the report's label (launcher.methods.base.KINDS)
    domains = ("forecasting",)
    params = {
        "damping": Param("float", 1.0, "scale of the drift term (0: the naive forecast, 1: the classic drift)",
                         minimum=0.0, maximum=1.0),
    }
    deterministic = True                # no randomness: the launcher runs it once, whatever the seeds

    def run(self, task, params: dict[str, Any], report) -> MethodResult:
        from tasks.timeseries import evaluate_forecaster

        damping = float(params["damping"])
        scores = evaluate_forecaster(lambda x: drift_forecast(x, task.horizon, damping), task.test,
                                     task.context, task.horizon)
        return MethodResult(metrics={"test_mse": scores["mse"], "test_mae": scores["mae"],
                                     "test_windows": float(scores["n_windows"])},
                            n_parameters=0, info={"damping": damping})
