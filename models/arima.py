"""Auto-ARIMA, the paper's forecasting baseline: one statsforecast AutoARIMA per channel.

Protocol of the authors' `arima.py`: for each channel, `AutoARIMA()` (statsforecast defaults, so
non-seasonal, stepwise search by AICc, exact-likelihood fits) is fitted once on the train+val rows;
then every test context is passed to the fitted model's `forward(y=context, h=H)`, which keeps the
chosen orders and coefficients and only runs the state-space filter over that context before
forecasting H steps. The model is never refitted on test data. Here the filtering is the
library's and the H-step point forecast is computed for a whole batch of contexts at once (equal to
`forward`'s mean, which also runs a slow per-step variance loop; see `forecast_channel`).

Rows and channels: `tasks.timeseries.evaluate_forecaster` hands a forecaster a batch of
(window, channel) samples flattened window-major with the channel innermost, i.e. row r is channel
r % C. `AutoARIMAForecaster.forecast` relies on that layout (tests/test_arima.py checks it against a
per-channel evaluation); `forecast_channel` forecasts contexts known to belong to one channel.

Saved fits (`save` / `load`) are data only: one `.npz` holding the arrays of every channel's fitted
model dict plus a JSON description of its structure, read back with `allow_pickle=False`. Loading
rebuilds each `AutoARIMA` from its constructor arguments and that dict, so nothing in the file can
run code; a file that does not have exactly this form is refused (`UnreadableFitError`).
"""
from __future__ import annotations

import json
import os
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

# Largest season that `resolve_season_length` takes from a dataset's registry entry. The Kalman
# state of a seasonal ARIMA has dimension max(p + m*P, q + m*Q + 1), and every candidate of the
# stepwise search is an exact-likelihood fit over the whole training series: at m = 24 on ETTh1 a
# fit already takes 45-150 s per channel on only 1,024 rows (2 busy cores) and a forward pass
# 30-45 ms, against 1-4 s and ~2 ms non-seasonal. ETTm's m = 96 and weather's m = 144 would be
# another order of magnitude. A season above the cap is dropped (non-seasonal fit), not truncated
# to the cap: a period of 24 on weekly or 15-minute data would be no season at all.
MAX_AUTO_SEASON = 24

# The `format` field of a saved fit; a file with another value is refused.
SAVED_FIT_FORMAT = "launcher.auto_arima_fit/1"


class UnreadableFitError(ValueError):
    """A saved fit that `AutoARIMAForecaster.load` refuses: not an npz of this format, or not data only."""


def resolve_season_length(requested: int | None, dataset_season: int,
                          cap: int = MAX_AUTO_SEASON) -> tuple[int, str | None]:
    """(season_length, note): `requested` as given, else the dataset's season if it is <= `cap`, else 1."""
    if requested is not None:
        if int(requested) < 1:
            raise ValueError(f"season_length must be >= 1, got {requested}")
        return int(requested), None
    if dataset_season <= cap:
        return int(dataset_season), None
    return 1, (f"the dataset's season of {dataset_season} steps is above the cap of {cap} for seasonal "
               f"Auto-ARIMA (fit time grows with the season): fitted non-seasonal (season_length=1)")


class AutoARIMAForecaster:
    """One statsforecast AutoARIMA per channel, fitted once, applied to new contexts with `forward`.

    `fit(train_val)` takes a (T, C) array. Extra keyword arguments go to every
    `statsforecast.models.AutoARIMA` (defaults: the library's, as in the paper).
    """

    def __init__(self, season_length: int = 1, *, fast_mean: bool = True, **autoarima_kwargs: Any):
        if int(season_length) < 1:
            raise ValueError(f"season_length must be >= 1, got {season_length}")
        self.season_length = int(season_length)
        self.fast_mean = bool(fast_mean)
        self.autoarima_kwargs = dict(autoarima_kwargs)
        self.models_: list[Any] = []
        self.fit_seconds_: list[float] = []
        self.convergence_warnings_: list[int] = []
        self.library_fallbacks_ = 0

    # --- saving and loading the fit (data only) ------------------------------------------------

    def save(self, path: str | Path) -> Path:
        """Write the fit to `path` (an .npz of arrays and one JSON text; no pickle), atomically."""
        import statsforecast

        self._check_fitted()
        arrays: dict[str, np.ndarray] = {}
        meta = {
            "format": SAVED_FIT_FORMAT, "statsforecast": statsforecast.__version__,
            "season_length": self.season_length, "fast_mean": self.fast_mean,
            "autoarima_kwargs": _encode(self.autoarima_kwargs, arrays),
            "fit_seconds": [float(s) for s in self.fit_seconds_],
            "convergence_warnings": [int(w) for w in self.convergence_warnings_],
            "models": [_encode(model.model_, arrays) for model in self.models_],
        }
        arrays["__meta__"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
        with open(tmp, "wb") as handle:
            np.savez(handle, **arrays)
        os.replace(tmp, path)           # atomic: a parallel reader never sees half a file
        return path

    @classmethod
    def load(cls, path: str | Path) -> AutoARIMAForecaster:
        """The fit saved by `save`; raises UnreadableFitError for any other file (never unpickles)."""
        import statsforecast
        from statsforecast.models import AutoARIMA

        try:
            data = np.load(Path(path), allow_pickle=False)
            if not isinstance(data, np.lib.npyio.NpzFile):
                raise UnreadableFitError(f"{path} is a bare array, not a saved fit")
            with data:
                arrays = {name: data[name] for name in data.files}
            meta = json.loads(bytes(arrays.pop("__meta__")).decode())
        except UnreadableFitError:
            raise
        except Exception as err:  # noqa: BLE001 -- any unreadable file (numpy refuses pickled data with ValueError)
            raise UnreadableFitError(f"{path} is not a saved fit ({type(err).__name__}: {err})") from None
        if not isinstance(meta, dict) or meta.get("format") != SAVED_FIT_FORMAT:
            raise UnreadableFitError(f"{path} is not a saved fit of format {SAVED_FIT_FORMAT}")
        if meta.get("statsforecast") != statsforecast.__version__:
            raise UnreadableFitError(f"{path} was fitted with statsforecast {meta.get('statsforecast')}, "
                                     f"this is {statsforecast.__version__}")
        try:
            kwargs = _decode(meta["autoarima_kwargs"], arrays)
            forecaster = cls(meta["season_length"], fast_mean=meta["fast_mean"], **kwargs)
            for encoded in meta["models"]:
                model = AutoARIMA(season_length=forecaster.season_length, **forecaster.autoarima_kwargs)
                model.model_ = _decode(encoded, arrays)
                forecaster.models_.append(model)
            forecaster.fit_seconds_ = [float(s) for s in meta["fit_seconds"]]
            forecaster.convergence_warnings_ = [int(w) for w in meta["convergence_warnings"]]
        except Exception as err:  # noqa: BLE001 -- well-formed npz and JSON, but not the structure save() writes
            raise UnreadableFitError(f"{path} is not a saved fit ({type(err).__name__}: {err})") from None
        if not forecaster.models_ or len(forecaster.fit_seconds_) != forecaster.n_channels or \
                len(forecaster.convergence_warnings_) != forecaster.n_channels:
            raise UnreadableFitError(f"{path} is not a saved fit (inconsistent channel counts)")
        return forecaster

    @property
    def n_channels(self) -> int:
        return len(self.models_)

    def _check_fitted(self) -> None:
        if not self.models_:
            raise RuntimeError("AutoARIMAForecaster is not fitted; call fit(train_val) first")

    def fit(self, train_val: np.ndarray) -> AutoARIMAForecaster:
        from statsforecast.models import AutoARIMA

        series = np.asarray(train_val, dtype=np.float64)
        if series.ndim == 1:
            series = series[:, None]
        if series.ndim != 2 or len(series) < 2:
            raise ValueError(f"train_val must be (T, C) with T >= 2, got shape {series.shape}")
        if not np.isfinite(series).all():
            raise ValueError("train_val contains NaN or infinite values")
        self.models_, self.fit_seconds_, self.convergence_warnings_ = [], [], []
        for channel in range(series.shape[1]):
            started = time.perf_counter()
            model = AutoARIMA(season_length=self.season_length, **self.autoarima_kwargs)
            # The stepwise search warns once per candidate whose optimizer stopped early ("possible
            # convergence problem"); that is routine on long series, so it is counted, not printed.
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                model.fit(np.ascontiguousarray(series[:, channel]))
            convergence = [w for w in caught if "convergence" in str(w.message)]
            for w in caught:
                if w not in convergence:
                    warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
            self.fit_seconds_.append(time.perf_counter() - started)
            self.convergence_warnings_.append(len(convergence))
            self.models_.append(model)
        return self

    def forecast_channel(self, channel: int, contexts: np.ndarray, horizon: int) -> np.ndarray:
        """Forecasts (N, horizon) for contexts (N, L) that all belong to `channel`.

        Equal to `model.forward(y=context, h=horizon)["mean"]` row by row (the first row of every
        call is checked against it), but the H-step mean is computed for all rows at once:
        statsforecast's `forward` also runs an O(H r^2) pure-Python variance loop per context, which
        is ~90% of its time at H = 720 and is not needed for point forecasts.
        """
        self._check_fitted()
        contexts = np.asarray(contexts, dtype=np.float64)
        if contexts.ndim == 1:
            contexts = contexts[None, :]
        horizon = int(horizon)
        model = self.models_[channel]
        if len(contexts) == 0:
            return np.empty((0, horizon))
        if not self.fast_mean:
            return self._library_forecasts(model, contexts, horizon)
        fast = _mean_forecasts(model, contexts, horizon)
        if fast is not None:
            reference = model.forward(y=np.ascontiguousarray(contexts[0]), h=horizon)["mean"]
            if np.allclose(fast[0], reference, rtol=1e-7, atol=1e-9):
                return fast
        self.library_fallbacks_ += 1
        warnings.warn(f"channel {channel}: the batched mean forecast is unavailable for this model or "
                      f"disagrees with statsforecast's forward; using forward row by row", RuntimeWarning)
        return self._library_forecasts(model, contexts, horizon)

    @staticmethod
    def _library_forecasts(model: Any, contexts: np.ndarray, horizon: int) -> np.ndarray:
        out = np.empty((len(contexts), horizon), dtype=np.float64)
        for i, context in enumerate(contexts):
            out[i] = model.forward(y=np.ascontiguousarray(context), h=horizon)["mean"]
        return out

    def forecast(self, contexts: np.ndarray, horizon: int) -> np.ndarray:
        """Forecasts (N, horizon) for evaluate_forecaster's rows: row r belongs to channel r % C."""
        self._check_fitted()
        contexts = np.asarray(contexts, dtype=np.float64)
        n_channels = self.n_channels
        if contexts.ndim != 2 or len(contexts) % n_channels:
            raise ValueError(f"expected (windows x {n_channels} channels, context) rows, window-major with "
                             f"the channel innermost; got shape {contexts.shape}")
        out = np.empty((len(contexts), int(horizon)), dtype=np.float64)
        for channel in range(n_channels):
            out[channel::n_channels] = self.forecast_channel(channel, contexts[channel::n_channels], horizon)
        return out

    # --- what was fitted -------------------------------------------------------------------------

    def orders(self) -> list[tuple[tuple[int, int, int], tuple[int, int, int], int]]:
        """Per channel ((p, d, q), (P, D, Q), m) of the chosen model."""
        self._check_fitted()
        result = []
        for model in self.models_:
            p, q, P, Q, m, d, D = (int(v) for v in model.model_["arma"])
            result.append(((p, d, q), (P, D, Q), m))
        return result

    def orders_text(self, max_channels: int = 32) -> str:
        """'ARIMA(p,d,q)' (plus '(P,D,Q)[m]' when seasonal) per channel, ';'-joined, for logs."""
        parts = []
        for (p, d, q), (P, D, Q), m in self.orders()[:max_channels]:
            seasonal = f"({P},{D},{Q})[{m}]" if m > 1 and (P or D or Q) else ""
            parts.append(f"({p},{d},{q}){seasonal}")
        more = self.n_channels - max_channels
        return ";".join(parts) + (f";... (+{more} channels)" if more > 0 else "")

    def aicc(self) -> list[float]:
        self._check_fitted()
        return [float(model.model_["aicc"]) for model in self.models_]

    @property
    def n_parameters(self) -> int:
        """Estimated coefficients over all channels: AR, MA, seasonal AR/MA, mean or drift."""
        self._check_fitted()
        return int(sum(len(model.model_["coef"]) for model in self.models_))


def _encode(value: Any, arrays: dict[str, np.ndarray]) -> Any:
    """JSON for `value` (a fitted model dict and what it holds); numpy values go to `arrays` by name.

    Tagged objects keep what JSON would lose: {"array": name} and {"scalar": name} (numpy arrays and
    scalars, dtype and shape kept), {"tuple": [...]}, {"dict": [[key, value], ...]} (key order kept). Anything else
    (objects, callables) raises TypeError: a saved fit is data only.
    """
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (np.ndarray, np.generic)):
        array = np.asarray(value)
        if array.dtype.hasobject:
            raise TypeError("object arrays cannot be saved as data")
        name = f"a{len(arrays)}"
        arrays[name] = array
        return {"scalar" if isinstance(value, np.generic) else "array": name}
    if isinstance(value, (int, float)):
        return value
    if isinstance(value, tuple):
        return {"tuple": [_encode(v, arrays) for v in value]}
    if isinstance(value, list):
        return [_encode(v, arrays) for v in value]
    if isinstance(value, dict):
        if not all(isinstance(k, str) for k in value):
            raise TypeError("only dicts with string keys can be saved")
        return {"dict": [[k, _encode(v, arrays)] for k, v in value.items()]}
    raise TypeError(f"a {type(value).__name__} cannot be saved as data")


def _decode(value: Any, arrays: dict[str, np.ndarray]) -> Any:
    """Inverse of `_encode`."""
    if value is None or isinstance(value, (bool, str, int, float)):
        return value
    if isinstance(value, list):
        return [_decode(v, arrays) for v in value]
    if isinstance(value, dict) and len(value) == 1:
        (tag, content), = value.items()
        if tag == "array":
            return arrays[content]
        if tag == "scalar":
            return arrays[content][()]
        if tag == "tuple":
            return tuple(_decode(v, arrays) for v in content)
        if tag == "dict":
            return {str(k): _decode(v, arrays) for k, v in content}
    raise ValueError(f"unexpected value in a saved fit: {str(value)[:80]}")


def _mean_forecasts(model: Any, contexts: np.ndarray, horizon: int) -> np.ndarray | None:
    """The mean of statsforecast's `forward(y=context, h)` for many contexts of one fitted model.

    Each context is filtered by the library (`forward_arima`, as `AutoARIMA.forward` does); then the
    filtered states advance together, a <- T a, forecast = Z a, plus the regression mean (intercept,
    or drift continuing from the context's length), as in `forecast_arima` / `predict_arima`. A
    constant context is repeated, also as there. Returns None for models this does not mirror
    (exogenous regressors, Box-Cox), which the caller then forecasts with `forward`.
    """
    from statsforecast.arima import forward_arima

    fitted = model.model_
    if fitted.get("lambda") is not None or (fitted.get("xreg") is not None and "drift" not in fitted["coef"]):
        return None
    filtered = []
    for context in contexts:
        with np.errstate(invalid="ignore"):
            filtered.append(forward_arima(fitted, y=np.ascontiguousarray(context), method=model.method))
    first = filtered[0]
    arma_terms = int(sum(first["arma"][:4]))
    regression = list(first["coef"].items())[arma_terms:]
    if any(name not in ("intercept", "drift") for name, _ in regression):
        return None
    transition, loading = first["model"]["T"], first["model"]["Z"]
    states = np.stack([f["model"]["a"] for f in filtered], axis=1)  # (state dim, N)
    out = np.empty((len(contexts), horizon), dtype=np.float64)
    for step in range(horizon):
        states = transition @ states
        out[:, step] = loading @ states
    steps_ahead = contexts.shape[1] + np.arange(1, horizon + 1, dtype=np.float64)
    for name, value in regression:
        out += float(value) if name == "intercept" else float(value) * steps_ahead
    constant = (contexts == contexts[:, :1]).all(axis=1)
    out[constant] = contexts[constant, :1]
    return out
