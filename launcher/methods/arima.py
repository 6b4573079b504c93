"""Auto-ARIMA, the paper's baseline: statsforecast AutoARIMA per channel, fitted on train+val.

Scored like every forecasting method (`tasks.timeseries.evaluate_forecaster` over the test windows,
every channel a sample); each test context goes through the fitted model's `forward`, so the orders
and coefficients are those chosen on train+val and only the filter state follows the context.
"""
from __future__ import annotations

import hashlib
import time
from typing import Any

from launcher.methods.base import Method, MethodResult, Report
from launcher.methods.params import Param


class AutoARIMAMethod(Method):
    name = "auto_arima"
    kind = "baseline"
    params = {
        "season_length": Param("int", 1, "AutoARIMA season in steps; 1 = non-seasonal, the paper's AutoARIMA() default; null = the "
                               "dataset's season (ETTh 24, exchange 5) when it is <= 24, else non-seasonal (fit time grows "
                               "with the season: ETTm's 96 or weather's 144 are out of reach on CPU)", minimum=1, nullable=True),
        "eval_stride": Param("int", 1, "evaluate every k-th test window (1 = all, the paper protocol; larger values are labelled in the report)", minimum=1),
        "max_fit_rows": Param("int", None, "fit on the last N rows of train+val only (CPU budgets; labelled in the report); "
                              "default: all rows, as in the paper", minimum=64, nullable=True),
    }
    deterministic = True

    def run(self, task: Any, params: dict[str, Any], report: Report) -> MethodResult:
        from models.arima import resolve_season_length
        from tasks.timeseries import evaluate_forecaster

        notes: list[str] = []
        season, season_note = resolve_season_length(params["season_length"], task.season or 1)
        if season_note:
            notes.append(season_note)

        series = task.train_val()
        max_fit_rows = params["max_fit_rows"]
        if max_fit_rows is not None and max_fit_rows < len(series):
            series = series[-int(max_fit_rows):]
            notes.append(f"fitted on the last {len(series)} of the {len(task.train_val())} train+val rows "
                         f"(max_fit_rows, a CPU budget); the paper fits on all of them")

        model, cached = self._fitted(series, season, notes)
        # One line per channel (step = channel): how long its search took, the AICc of the chosen
        # model, and how many candidate fits stopped with a "possible convergence problem".
        for channel, (seconds, aicc, warned) in enumerate(zip(model.fit_seconds_, model.aicc(),
                                                                model.convergence_warnings_)):
            report(channel, {"fit_seconds": float(seconds), "aicc": aicc, "convergence_warnings": float(warned)})

        stride = int(params["eval_stride"])
        started = time.perf_counter()
        scores = evaluate_forecaster(lambda contexts: model.forecast(contexts, task.horizon), task.test,
                                     task.context, task.horizon, window_stride=stride)
        forecast_seconds = time.perf_counter() - started
        if stride > 1:
            notes.append(f"scored on every {stride}th test window only (its window count per task is "
                         f"the MLflow metric test_windows); the other methods use all windows")

        metrics = {
            "test_mse": scores["mse"], "test_mae": scores["mae"], "test_windows": float(scores["n_windows"]),
            "fit_seconds": float(sum(model.fit_seconds_)), "fit_rows": float(len(series)),
            "forecast_seconds": forecast_seconds,
            "forecast_ms_per_window": 1000.0 * forecast_seconds / scores["n_windows"],
            "convergence_warnings": float(sum(model.convergence_warnings_)),
            "fit_cached": float(cached),
        }
        info = {"season_length": season, "eval_stride": stride, "max_fit_rows": max_fit_rows,
                "orders": model.orders_text()}
        return MethodResult(metrics=metrics, n_parameters=model.n_parameters, info=info, notes=notes)

    def _fitted(self, series, season: int, notes: list[str]):
        """The per-channel fits, shared by the horizons of a dataset: the fit depends only on the
        train+val rows and the season, so the first trial fits and saves, the others load.

        The cache holds data only (`AutoARIMAForecaster.save`: npz + JSON, read with
        allow_pickle=False). Anything else found under a cache name, including the `.pkl` files
        earlier versions wrote, is never loaded: the trial fits again (and says so in a note), so a
        file planted in the cache folder cannot run code.
        """
        from models.arima import AutoARIMAForecaster, UnreadableFitError

        key = hashlib.sha256(series.tobytes() + str((series.shape, season)).encode()).hexdigest()[:20]
        path = self.cache_dir / f"auto_arima-{key}.npz" if self.cache_dir is not None else None
        if path is not None:
            legacy = path.with_suffix(".pkl")
            if legacy.exists():
                notes.append(f"ignored {legacy.name} in the cache: pickle files are never loaded (they can "
                             f"run code)")
            if path.exists():
                try:
                    return AutoARIMAForecaster.load(path), True
                except UnreadableFitError as err:
                    notes.append(f"ignored the cached fit: {err}; fitted again and replaced it")
        model = AutoARIMAForecaster(season_length=season).fit(series)
        if path is not None:
            model.save(path)            # atomic: a parallel trial never reads half a file
        return model, False
