"""Forecasting methods: Auto-AR, naive baselines, and the zero-shot Fracast-0 FM.

Every method is scored the same way: `tasks.timeseries.evaluate_forecaster` over the stride-1
(context + horizon) windows of the test slice, every channel a sample, MSE and MAE in normalized
units. Only the forecasting function differs.
"""
from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from launcher.methods.base import Method, MethodResult, Report
from launcher.methods.params import Param

if TYPE_CHECKING:
    from tasks.timeseries import ForecastTask


def _test_metrics(forecast, task: ForecastTask, *, window_stride: int = 1) -> dict[str, float]:
    from tasks.timeseries import evaluate_forecaster

    scores = evaluate_forecaster(forecast, task.test, task.context, task.horizon, window_stride=window_stride)
    return {"test_mse": scores["mse"], "test_mae": scores["mae"], "test_windows": float(scores["n_windows"])}


class AutoARMethod(Method):
    name = "autoar"
    kind = "supervised"
    params = {
        "deltas": Param("int_list", [0, 2, 4, 8, 16], "lag candidates p = context - d - delta (paper, Oct 2024)", minimum=0),
        "lags": Param("int_list", None, "explicit lag candidates instead of deltas, e.g. [64, 96, 128, 192] (AutoAR main, Mar 2025)", minimum=1, nullable=True),
        "max_diff": Param("int", 2, "largest differencing order KPSS may choose", minimum=0, maximum=2),
        "kpss_alpha": Param("float", 0.05, "KPSS significance: a channel is stationary when p > alpha", minimum=0.0, maximum=1.0),
        "fit_series": Param("str", "clean", "clean: contiguous train+val rows; reference: the authors' train + (val with its "
                            "context prefix), which repeats the last context rows of train", choices=("clean", "reference")),
    }
    deterministic = True

    def run(self, task: ForecastTask, params: dict[str, Any], report: Report) -> MethodResult:
        from models.autoar import AutoAR, reference_train_val

        started = time.perf_counter()
        model = AutoAR(context=task.context, deltas=tuple(params["deltas"]), lags=params["lags"],
                       max_diff=params["max_diff"], kpss_alpha=params["kpss_alpha"])
        # "reference" reproduces the authors' fitting series exactly (their numbers to 1e-5);
        # "clean" drops the duplicated rows, which lowers test MSE by 0.2-2% on ETTh1.
        series = task.train_val() if params["fit_series"] == "clean" else reference_train_val(task.train, task.val)
        model.fit(series, task.horizon)
        fit_seconds = time.perf_counter() - started
        # The BIC score of each lag candidate, as a curve over the candidates (step = p).
        for p, score in sorted(model.scores_.items()):
            report(int(p), {"bic": float(score)})
        metrics = _test_metrics(model.forecast, task)
        metrics["fit_seconds"] = fit_seconds
        return MethodResult(metrics=metrics, n_parameters=int(model.n_parameters),
                            info={"chosen_d": int(model.d_), "chosen_p": int(model.p_)})


class NaiveMethod(Method):
    name = "naive"
    kind = "baseline"
    params = {}
    deterministic = True

    def run(self, task: ForecastTask, params: dict[str, Any], report: Report) -> MethodResult:
        from models.naive import naive_forecast

        return MethodResult(metrics=_test_metrics(lambda x: naive_forecast(x, task.horizon), task), n_parameters=0)


class SeasonalNaiveMethod(Method):
    name = "seasonal_naive"
    kind = "baseline"
    params = {
        "period": Param("int", None, "season length in steps; default: one day (hourly 24, 15-min 96, 10-min 144) or 52 weeks", minimum=1, nullable=True),
    }
    deterministic = True

    def run(self, task: ForecastTask, params: dict[str, Any], report: Report) -> MethodResult:
        from models.naive import seasonal_naive_forecast

        period = params["period"] or task.season   # the registry's season, or the task's `freq`
        metrics = _test_metrics(lambda x: seasonal_naive_forecast(x, task.horizon, period), task)
        return MethodResult(metrics=metrics, n_parameters=0, info={"period": int(period)})


class FracastMethod(Method):
    name = "fracast"
    kind = "zero-shot FM"
    params = {
        "weights": Param("str", "w8", "bundled checkpoint variant", choices=("w8", "fp32")),
        "model_dir": Param("path", None, "local folder with config.json + safetensors; default: the weights inside the fracast wheel", nullable=True),
        "eval_stride": Param("int", 1, "evaluate every k-th test window (1 = all, the paper protocol; larger values are labelled in the report)", minimum=1),
        "batch_size": Param("int", 16, "series per forward pass (small batches are faster on CPU)", minimum=1),
    }
    deterministic = True

    def run(self, task: ForecastTask, params: dict[str, Any], report: Report) -> MethodResult:
        from models.fm.fracast import PRETRAINING_NOTE, FracastForecaster

        model = FracastForecaster(task.horizon, model_dir=params["model_dir"], weights=params["weights"],
                                  batch_size=params["batch_size"])
        stride = int(params["eval_stride"])
        metrics = _test_metrics(model.forecast, task, window_stride=stride)
        notes = [PRETRAINING_NOTE]
        if stride > 1:
            notes.append(f"scored on every {stride}th test window only (its window count per task is "
                         f"the MLflow metric test_windows); the other methods use all windows")
        return MethodResult(metrics=metrics, n_parameters=model.n_parameters,
                            info={"eval_stride": stride}, notes=notes)
