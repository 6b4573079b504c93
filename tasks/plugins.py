"""Tasks of one's own, from code: a loader function marked with `task_source`, named in a sweep row by
import path (`- task: my_pkg.data:my_task`) or registered by an installed package under the entry-point
group `launcher.tasks` (then `- dataset: my_task` works like a built-in name).

    from tasks.plugins import task_source
    from tasks.timeseries import ForecastTask

    @task_source(domain="forecasting", horizons=(24,), context=96)
    def my_sales(*, horizon, context, data_root=None, seed=0, **options) -> ForecastTask:
        ...

The loader returns the same task objects the built-in loaders do (`tasks.timeseries.ForecastTask`,
`tasks.classification.ClassificationTask`), so every method, metric and report works on it unchanged.
Forecasting loaders get `horizon` and `context`; classification loaders get `seed` and `data_root`.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Callable

ENTRY_POINT_GROUP = "launcher.tasks"
DOMAINS = ("forecasting", "genomics", "satellite")


class TaskPluginError(ValueError):
    """A task reference that cannot be used: bad import path, not a task source, bad declaration."""


@dataclass(frozen=True)
class TaskSource:
    """A task loader and what a sweep must know before calling it."""
    name: str                          # the task's name in studies, MLflow and the report
    domain: str                        # forecasting | genomics | satellite
    load: Callable[..., Any]           # load(**keywords) -> ForecastTask | ClassificationTask
    horizons: tuple[int, ...] = ()     # forecasting: horizons run when the sweep row gives none
    context: int = 0                   # forecasting: context when the sweep row gives none
    origin: str = ""                   # the module that defined it (listed by `launcher tasks`)

    def __call__(self, **keywords: Any) -> Any:
        return self.load(**keywords)


def task_source(*, domain: str, name: str | None = None, horizons=(96,), context: int = 96):
    """Mark a loader function as a task (see the module docstring)."""
    if domain not in DOMAINS:
        raise ValueError(f"task_source domain {domain!r} is not one of {', '.join(DOMAINS)}")

    def mark(fn: Callable[..., Any]) -> TaskSource:
        return TaskSource(name=name or fn.__name__, domain=domain, load=fn,
                          horizons=tuple(int(h) for h in horizons) if domain == "forecasting" else (),
                          context=int(context) if domain == "forecasting" else 0,
                          origin=getattr(fn, "__module__", ""))
    return mark


def check_task_source(obj: Any, ref: str) -> TaskSource:
    if not isinstance(obj, TaskSource):
        what = f"the class {obj.__qualname__}" if isinstance(obj, type) else f"a {type(obj).__name__}"
        raise TaskPluginError(f"task {ref!r} is {what}, not a task source: decorate its loader function with "
                              f"@tasks.plugins.task_source(domain=...)")
    if not isinstance(obj.name, str) or not obj.name or "/" in obj.name or obj.name != obj.name.strip():
        raise TaskPluginError(f"task {ref!r}: its name {obj.name!r} must be a non-empty word without '/'")
    if obj.domain not in DOMAINS:
        raise TaskPluginError(f"task {ref!r}: domain {obj.domain!r} is not one of {', '.join(DOMAINS)}")
    if obj.domain == "forecasting" and (not obj.horizons or obj.context < 1):
        raise TaskPluginError(f"task {ref!r}: a forecasting task declares horizons and a context >= 1")
    return obj


def load_task_source(ref: str) -> TaskSource:
    """The task source an import path `package.module:name` or a plugin's registered name points at."""
    if ":" not in ref:
        plugins = plugin_tasks()
        if ref in plugins:
            return plugins[ref]
        raise TaskPluginError(f"unknown task {ref!r}: not an import path 'package.module:name' and no installed "
                              f"plugin registers it")
    module_name, _, attr = ref.partition(":")
    if not module_name or not attr:
        raise TaskPluginError(f"task {ref!r}: expected an import path 'package.module:name'")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as e:
        raise TaskPluginError(f"task {ref!r}: module {e.name!r} is not importable (install the package, or put "
                              f"its folder on PYTHONPATH)") from None
    except Exception as e:
        raise TaskPluginError(f"task {ref!r}: importing {module_name} raised {type(e).__name__}: {e}") from None
    found: Any = module
    for part in attr.split("."):
        if not hasattr(found, part):
            raise TaskPluginError(f"task {ref!r}: {module_name} has no attribute {attr!r}")
        found = getattr(found, part)
    return check_task_source(found, ref)


@lru_cache(maxsize=None)
def _plugin_tasks() -> tuple[tuple[str, TaskSource], ...]:
    from importlib.metadata import entry_points

    found: dict[str, TaskSource] = {}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        where = f"entry point {ep.name!r} ({ep.value}) of {ep.dist.name if ep.dist else 'an installed package'}"
        try:
            obj = ep.load()
        except Exception as e:
            raise TaskPluginError(f"task {where} raised {type(e).__name__} on import: {e}") from None
        source = check_task_source(obj, where)
        if source.name in found:
            raise TaskPluginError(f"task {where} declares name {source.name!r}, which another plugin task uses")
        found[source.name] = source
    return tuple(found.items())


def plugin_tasks() -> dict[str, TaskSource]:
    """Name -> task source of the tasks installed packages register (entry points `launcher.tasks`)."""
    return dict(_plugin_tasks())
