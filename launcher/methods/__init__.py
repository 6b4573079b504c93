"""Methods bind `models/` to the trial runtime. Look one up by the name used in sweep files."""
from __future__ import annotations

from .base import EpochMethod, Method, MethodResult
from .params import METHOD_PARAMS, method_names


def get_method(name: str) -> Method | EpochMethod:
    # Imported here, not at module load: the CLI validates specs without paying for numpy/torch,
    # and a synthetic trial never imports them.
    if name == "synthetic":
        from .synthetic import SyntheticMethod

        return SyntheticMethod()
    if name == "dlinear":
        from .dlinear import DLinearMethod

        return DLinearMethod()
    if name == "linear":
        from .linear import LinearMethod

        return LinearMethod()
    if name == "backbone":
        from .backbone import BackboneMethod

        return BackboneMethod()
    if name == "dasha":
        from .dasha import DashaMethod

        return DashaMethod()
    if name == "finetune":
        from .finetune import FinetuneMethod

        return FinetuneMethod()
    if name == "zeroshot":
        from .zeroshot import ZeroShotMethod

        return ZeroShotMethod()
    if name == "auto_arima":
        from .arima import AutoARIMAMethod

        return AutoARIMAMethod()
    from .forecasting import AutoARMethod, FracastMethod, NaiveMethod, SeasonalNaiveMethod

    registry = {cls.name: cls for cls in (AutoARMethod, NaiveMethod, SeasonalNaiveMethod, FracastMethod)}
    if name not in registry:
        raise KeyError(f"unknown method {name!r}; known: {', '.join(sorted(registry))}")
    return registry[name]()


__all__ = ["EpochMethod", "Method", "MethodResult", "METHOD_PARAMS", "get_method", "method_names"]
