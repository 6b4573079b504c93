"""launcher: tune supervised baselines and foundation models under one budget, compare them.

The Python API (`launcher.api`, imported on first use so that `import launcher` stays cheap: no torch,
MLflow or nevergrad until a function runs):

    launcher.sweep(spec, out=None, dry_run=False, overrides=None) -> Path    # a YAML path or a dict
    launcher.resume(dir, retry_failed=False) -> Path
    launcher.status(dir) -> dict
    launcher.report(dirs, references=(), baseline=None, plots=True, metric=None) -> str  # writes report.*
    launcher.results(dir) -> pandas.DataFrame                                # report.csv's numbers, tidy
    launcher.SpecError, launcher.SweepPaused

`launcher.report` is also the name of the report package (launcher/report/), and Python binds a
subpackage to its parent's attribute when it is imported. So the package is made callable: calling it
calls `launcher.api.report`, while `launcher.report.write_report` and `from launcher.report import ...`
keep working as before.
"""
from __future__ import annotations

import sys
import types

from launcher.errors import SpecError

__all__ = ["SpecError", "SweepPaused", "report", "results", "resume", "status", "sweep"]
_API = ("SweepPaused", "load_spec", "results", "resume", "status", "sweep")


class _CallableReport(types.ModuleType):
    """The `launcher.report` package, callable as the API's `report` function."""

    def __call__(self, dirs, **options) -> str:
        """`launcher.api.report`: the comparison table (Markdown) of sweep folders; writes report.md/.csv/.html.
        Keyword options as `launcher.api.report` takes them (references, baseline, plots, metric)."""
        from launcher.api import report

        return report(dirs, **options)


class _Launcher(types.ModuleType):
    def __setattr__(self, name: str, value) -> None:
        # the import system binds `launcher.report` here when the package is imported, by whoever imports it
        if name == "report" and type(value) is types.ModuleType and value.__name__ == "launcher.report":
            value.__class__ = _CallableReport
        super().__setattr__(name, value)


def __getattr__(name: str):
    if name in _API:
        from launcher import api

        return getattr(api, name)
    if name == "report":
        import importlib

        return importlib.import_module("launcher.report")
    raise AttributeError(f"module 'launcher' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


sys.modules[__name__].__class__ = _Launcher
