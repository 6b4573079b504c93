"""Methods bind `models/` to the trial runtime: one file per method, one class per method, and the
class declares what it is (base.py `Declaration`). `registry.py` finds them: built-in, installed plugins
(entry points `launcher.methods`) and classes named by import path in a sweep row.

May import: launcher.training, launcher.errors, models, tasks (torch and models inside `run` only, so
validating a sweep stays cheap). Never: launcher.job, launcher.backends, launcher.engine, launcher.spec,
mlflow, nevergrad.
"""
from __future__ import annotations

from launcher.methods.base import Declaration, EpochMethod, Method, MethodResult, Report
from launcher.methods.params import Param
from launcher.methods.registry import PluginError, get_method, method_class, method_names

__all__ = ["Declaration", "EpochMethod", "Method", "MethodResult", "Param", "PluginError", "Report", "get_method",
           "method_class", "method_names"]
