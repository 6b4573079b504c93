"""Every method the launcher can run, found from the classes themselves.

Three sources, one rule (a class that subclasses `Method` or `EpochMethod` and declares a `name`):
  - built-in: the classes defined in `BUILTIN_MODULES`;
  - installed plugins: entry points of the group `launcher.methods` (`name = "my_pkg.fm:MyMethod"` in
    the plugin's pyproject `[project.entry-points."launcher.methods"]`);
  - a sweep row that names a class by import path: `methods: {mine: {method: my_pkg.fm:MyMethod}}`.

Method modules keep torch and models imports inside `run`/`run_segment`, so collecting the registry
(and so validating a sweep file) stays cheap. Problems come back as `PluginError` (a ValueError): the
spec layer turns them into a file:line message.
"""
from __future__ import annotations

import importlib
import inspect
from functools import lru_cache
from importlib.metadata import entry_points

from launcher.methods.base import DOMAINS, KINDS, STRATEGIES, EpochMethod, Method
from launcher.methods.params import Param

BUILTIN_MODULES = ("launcher.methods.forecasting", "launcher.methods.arima", "launcher.methods.dlinear",
                   "launcher.methods.linear", "launcher.methods.synthetic", "launcher.methods.backbone",
                   "launcher.methods.dasha", "launcher.methods.finetune", "launcher.methods.zeroshot")
ENTRY_POINT_GROUP = "launcher.methods"

MethodClass = type  # a subclass of Method or EpochMethod


class PluginError(ValueError):
    """A method/task/adapter reference that cannot be used: bad import path, wrong class, bad declaration."""


def is_import_path(ref: str) -> bool:
    """`my_pkg.module:Name` (a colon) names a class by import path; a bare word is a registered name."""
    return ":" in ref


def load_object(ref: str, what: str = "method"):
    """The object an import path `package.module:Name` points at (importing the module)."""
    module_name, _, attr = ref.partition(":")
    if not module_name or not attr:
        raise PluginError(f"{what} {ref!r}: expected an import path 'package.module:Name'")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as e:
        raise PluginError(f"{what} {ref!r}: module {e.name!r} is not importable "
                          f"(install the package, or put its folder on PYTHONPATH)") from None
    except Exception as e:  # the plugin's own module raised at import
        raise PluginError(f"{what} {ref!r}: importing {module_name} raised {type(e).__name__}: {e}") from None
    found = module
    for part in attr.split("."):
        if not hasattr(found, part):
            raise PluginError(f"{what} {ref!r}: {module_name} has no attribute {attr!r}")
        found = getattr(found, part)
    return found


def check_method_class(cls, ref: str) -> MethodClass:
    """The class itself, once its declaration holds up; else one PluginError saying what to fix."""
    if not (inspect.isclass(cls) and issubclass(cls, (Method, EpochMethod))):
        raise PluginError(f"method {ref!r} is {_describe(cls)}, not a subclass of launcher.methods.Method "
                          f"(one-shot) or launcher.methods.EpochMethod (trained in epochs)")
    if inspect.isabstract(cls):
        missing = ", ".join(sorted(getattr(cls, "__abstractmethods__", ())))
        raise PluginError(f"method {ref!r} ({cls.__name__}) does not implement {missing}")
    if not isinstance(cls.name, str) or not cls.name.isidentifier():
        raise PluginError(f"method {ref!r} ({cls.__name__}) must declare `name`, a Python identifier "
                          f"(got {cls.name!r})")
    if cls.kind not in KINDS:
        raise PluginError(f"method {ref!r}: kind {cls.kind!r} is not one of {', '.join(KINDS)}")
    unknown = [d for d in cls.domains if d not in DOMAINS]
    if not cls.domains or unknown:
        raise PluginError(f"method {ref!r}: domains {list(cls.domains)!r} must be a non-empty subset of "
                          f"{', '.join(DOMAINS)}")
    bad = [s for s in cls.strategies if s not in STRATEGIES]
    if bad or "none" not in cls.strategies:
        raise PluginError(f"method {ref!r}: strategies {list(cls.strategies)!r} must include 'none' and be "
                          f"among {', '.join(STRATEGIES)}")
    if not isinstance(cls.params, dict) or not all(isinstance(p, Param) for p in cls.params.values()):
        raise PluginError(f"method {ref!r}: `params` must map each key to launcher.methods.Param(...)")
    if cls.multi_fidelity and cls.objective is None:
        raise PluginError(f"method {ref!r}: an EpochMethod must declare `objective = (metric, 'min'|'max')`, "
                          f"the validation metric it reports each epoch")
    strays = set(cls.default_space) - set(cls.params)
    if strays:
        raise PluginError(f"method {ref!r}: default_space names undeclared params {sorted(strays)}")
    return cls


def _describe(obj) -> str:
    if inspect.isclass(obj):
        return f"the class {obj.__module__}.{obj.__qualname__}"
    return f"a {type(obj).__name__}"


@lru_cache(maxsize=None)
def builtin_methods() -> dict[str, MethodClass]:
    """Name -> class of the methods that ship with the launcher."""
    found: dict[str, MethodClass] = {}
    for module_name in BUILTIN_MODULES:
        module = importlib.import_module(module_name)
        for obj in vars(module).values():
            if inspect.isclass(obj) and obj.__module__ == module_name and issubclass(obj, (Method, EpochMethod)) \
                    and obj.name and not inspect.isabstract(obj):
                found[obj.name] = check_method_class(obj, f"{module_name}:{obj.__name__}")
    return found


@lru_cache(maxsize=None)
def plugin_methods() -> dict[str, MethodClass]:
    """Name -> class of the methods installed packages register under the `launcher.methods` entry points."""
    found: dict[str, MethodClass] = {}
    builtin = builtin_methods()
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        where = f"entry point {ep.name!r} ({ep.value}) of {ep.dist.name if ep.dist else 'an installed package'}"
        try:
            cls = ep.load()
        except Exception as e:
            raise PluginError(f"method {where} raised {type(e).__name__} on import: {e}") from None
        check_method_class(cls, where)
        if cls.name in builtin or cls.name in found:
            raise PluginError(f"method {where} declares name {cls.name!r}, which another method already uses; "
                              f"give it another name")
        found[cls.name] = cls
    return found


def all_methods() -> dict[str, MethodClass]:
    return {**builtin_methods(), **plugin_methods()}


def method_class(ref: str) -> MethodClass:
    """The class a sweep row's `method` names: a registered name or an import path."""
    if is_import_path(ref):
        return check_method_class(load_object(ref), ref)
    builtin = builtin_methods()
    # Loaded even for a built-in name: a plugin that reuses that name (or fails to load) is an error, not
    # silently shadowed.
    plugins = plugin_methods()
    if ref in builtin:
        return builtin[ref]
    if ref in plugins:
        return plugins[ref]
    raise PluginError(f"unknown method {ref!r}")


def method_names() -> list[str]:
    return sorted(all_methods())


def default_params(ref: str) -> dict:
    """Every declared param of a method at its default."""
    return {name: p.default for name, p in method_class(ref).params.items()}


def get_method(ref: str) -> Method | EpochMethod:
    """A fresh instance of the method a trial runs.

    A built-in name whose module is `launcher.methods.<name>` (synthetic, linear, dlinear, dasha, ...) is
    found by importing that one module: a trial job then neither imports every built-in method module nor
    scans the installed packages' entry points (~0.05-0.1 CPU-s of a short job). The same class as
    `method_class` returns; what it skips is the check that no plugin reuses a built-in name, which the
    sweep's validation (`method_class`) made before any trial was submitted."""
    cls = None if is_import_path(ref) else _builtin_in_own_module(ref)
    return (cls or method_class(ref))()


@lru_cache(maxsize=None)
def _builtin_in_own_module(name: str) -> MethodClass | None:
    """The built-in method `name` when `launcher.methods.<name>` is a built-in module that defines it; else None."""
    module_name = f"launcher.methods.{name}"
    if not name.isidentifier() or module_name not in BUILTIN_MODULES:
        return None
    module = importlib.import_module(module_name)
    for obj in vars(module).values():
        if inspect.isclass(obj) and obj.__module__ == module_name and issubclass(obj, (Method, EpochMethod)) \
                and obj.name == name and not inspect.isabstract(obj):
            return check_method_class(obj, f"{module_name}:{obj.__name__}")
    return None
