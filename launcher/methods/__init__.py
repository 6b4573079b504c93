"""Methods bind `models/` to the trial runtime. Look one up by the name used in sweep files."""
from __future__ import annotations

from launcher.methods.base import EpochMethod, Method, MethodResult
from launcher.methods.params import METHOD_PARAMS, method_names


def get_method(name: str) -> Method | EpochMethod:
    # Imported here, not at module load: the CLI validates specs without paying for numpy/torch,
    # and a synthetic trial never imports them.
    if name == "synthetic":
        from launcher.methods.synthetic import SyntheticMethod

        return SyntheticMethod()
    if name == "dlinear":
        from launcher.methods.dlinear import DLinearMethod

        return DLinearMethod()
    if name == "linear":
        from launcher.methods.linear import LinearMethod

        return LinearMethod()
    if name == "backbone":
        from launcher.methods.backbone import BackboneMethod

        return BackboneMethod()
    if name == "dasha":
        from launcher.methods.dasha import DashaMethod

        return DashaMethod()
    if name == "finetune":
        from launcher.methods.finetune import FinetuneMethod

        return FinetuneMethod()
    if name == "zeroshot":
        from launcher.methods.zeroshot import ZeroShotMethod

        return ZeroShotMethod()
    if name == "auto_arima":
        from launcher.methods.arima import AutoARIMAMethod

        return AutoARIMAMethod()
    from launcher.methods.forecasting import AutoARMethod, FracastMethod, NaiveMethod, SeasonalNaiveMethod

    registry = {cls.name: cls for cls in (AutoARMethod, NaiveMethod, SeasonalNaiveMethod, FracastMethod)}
    if name not in registry:
        raise KeyError(f"unknown method {name!r}; known: {', '.join(sorted(registry))}")
    return registry[name]()


__all__ = ["EpochMethod", "Method", "MethodResult", "METHOD_PARAMS", "get_method", "method_names"]
