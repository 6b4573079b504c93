"""The `methods:` section of a sweep file: each row's class (a registered name or an import path,
launcher.methods.registry), its declared params, search space (SearchReader.method_space) and the
`distributed` strategies the class supports. Mixed into `Validator` (launcher.spec.validation)."""
from __future__ import annotations

import re
from typing import Any

from launcher.errors import did_you_mean
from launcher.spec.sweep import (
    DISTRIBUTED_KEYS,
    MAX_EPOCH_MINUTES,
    METHOD_RESERVED_KEYS,
    SPACE_KEY,
    STRATEGIES,
    MethodSpec,
)
from launcher.spec.types import MAX_COUNT, MAX_INT, MAX_PATH
from launcher.spec.types import join_hints as _hint
from launcher.spec.yaml_nodes import Node, describe, short

NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
MAX_NAME = 100   # characters of a sweep or method row name (MLflow experiment, run and folder names)


def _known_methods() -> list[str]:
    from launcher.methods.registry import PluginError, builtin_methods, method_names

    try:
        return method_names()
    except PluginError:   # a plugin that does not load: the row naming a registered method reports it (method_class)
        return sorted(builtin_methods())


class MethodReader:
    """Method rows (see the module docstring)."""

    def methods(self, node: Node) -> tuple[MethodSpec, ...]:
        example = "Write e.g. `methods: {naive: {}, autoar: {max_diff: 2}}`."
        if not isinstance(node.value, dict):
            raise node.error("methods", f"expected a mapping of method name -> params, "
                                        f"got {describe(node)}", _hint(example,
                                                                        f"Known methods: {', '.join(_known_methods())}."))
        if not node.value:
            raise node.error("methods", "must name at least one method", example)
        out = []
        for name, (key_node, value) in node.value.items():
            key = f"methods.{name}"
            if not NAME_RE.fullmatch(name) or len(name) > MAX_NAME:
                raise key_node.error(key, f"{short(name)} is not a valid method row name; use ASCII letters, "
                                          f"digits and _ . - (it names report columns, studies and folders)")
            if value.value is not None and not isinstance(value.value, dict):
                declared = self.method_class(name, key_node, key).params if name in _known_methods() else {}
                raise value.error(key, f"expected a mapping of params (or nothing), "
                                       f"got {describe(value)}",
                                  f"Write e.g. `{name}: {{}}`." if not declared else
                                  f"Valid params: {', '.join(declared)}.")
            given = value.value or {}
            ref, ref_node = name, key_node
            if "method" in given:
                ref_node = given["method"][1]
                ref = self.string(ref_node, f"{key}.method", "a method name such as backbone, or an import path "
                                                             "such as my_pkg.fm:MyMethod")
            cls = self.method_class(ref, ref_node, f"{key}.method" if ref_node is not key_node else key)
            declared = cls.params
            for pname, (pkey, _) in given.items():
                if pname not in declared and pname not in METHOD_RESERVED_KEYS:
                    if not declared:
                        raise pkey.error(f"{key}.{pname}", "unknown key",
                                         f"Method {cls.name} takes no params; write `{name}: {{}}`.")
                    tuned = cls.multi_fidelity
                    raise pkey.error(f"{key}.{pname}", "unknown key",
                                     _hint(did_you_mean(pname, [*declared, *[SPACE_KEY] * tuned]),
                                           f"Valid params of {cls.name}: {', '.join(declared)}"
                                           f"{f' (and `{SPACE_KEY}`)' if tuned else ''}."))
            space = self.method_space(cls, key, given, declared)
            params = {}
            for pname, param in declared.items():
                if space and pname in space:
                    continue
                if pname in given:
                    params[pname] = self.param(given[pname][1], f"{key}.{pname}", pname, param)
                else:
                    params[pname] = _copy_default(param.default)
            for pname, problem in cls.check_params(params).items():
                where = given[pname][1] if pname in given else (ref_node if ref_node is not key_node else key_node)
                raise where.error(f"{key}.{pname}", problem)
            distributed = resources = None
            if "distributed" in given:
                distributed = self.distributed(given["distributed"][1], f"{key}.distributed")
                self.strategy_supported(given["distributed"][1], f"{key}.distributed", cls, distributed)
            resources = {**cls.default_resources} or None
            if "resources" in given:
                resources = {**(resources or {}), **self.slurm_resources(given["resources"][1], f"{key}.resources")}
            epoch_minutes = None
            if (n := self.present(given, "epoch_minutes")) is not None:
                epoch_minutes = self.epoch_minutes(n, f"{key}.epoch_minutes", cls)
            out.append(MethodSpec(name=name, params=params, space=space, distributed=distributed,
                                  resources=resources, method=ref, epoch_minutes=epoch_minutes))
        return tuple(out)

    def method_class(self, ref: str, node: Node, key: str):
        """The method class a row names (registered name or import path), or a file:line error."""
        from launcher.methods.registry import PluginError, is_import_path, method_class

        try:
            return method_class(ref)
        except PluginError as e:
            if not is_import_path(ref) and str(e).startswith("method entry point"):   # an installed plugin's fault
                raise node.error(key, str(e), "Fix or uninstall that plugin package.") from None
            if is_import_path(ref) or "unknown method" not in str(e):
                raise node.error(key, str(e), "A method row names a registered method (`launcher methods` "
                                              "lists them) or a class: `method: my_pkg.module:MyMethod`.") from None
            known = _known_methods()
            raise node.error(key, f"unknown method {ref!r}",
                             _hint(did_you_mean(ref, known), f"Known methods: {', '.join(known)}; or name a "
                                   f"class by import path: `{ref}: {{method: my_pkg.module:MyMethod}}`.")) from None

    def epoch_minutes(self, node: Node, key: str, cls) -> float:
        """A row's planning figure for `--dry-run`: minutes per epoch (per run for a one-shot method), > 0."""
        unit = "epoch" if cls.multi_fidelity else "run (a one-shot method)"
        hint = (f"Minutes one {unit} of {cls.name} takes on the cluster, e.g. `epoch_minutes: 2.5`; it only "
                f"changes `--dry-run`'s expected GPU-hours (`--dry-run --calibrate` measures it on this machine).")
        value = self.number(node, key, hint=hint)
        if value <= 0:
            raise node.error(key, f"must be > 0, got {value:g}", hint)
        self.check_range(node, key, value, None, MAX_EPOCH_MINUTES, hint)
        return value

    def strategy_supported(self, node: Node, key: str, cls, distributed: dict) -> None:
        """A method runs on several ranks only when it says it can; else each rank would train the
        same trial on its own (a silent double run)."""
        wanted = distributed["strategy"] if distributed["strategy"] != "none" or distributed["ranks"] == 1 \
            else "ranks > 1"
        if distributed["strategy"] in cls.strategies and (distributed["ranks"] == 1 or len(cls.strategies) > 1):
            return
        supported = [s for s in cls.strategies if s != "none"]
        raise node.error(key, f"method {cls.name} does not support distributed training with {wanted}"
                              + (f"; it supports {', '.join(supported)}" if supported else
                                 " (it runs in one process)"),
                         "Remove `distributed`, or use a method that declares the strategy." if not supported
                         else f"Use `strategy: {supported[0]}`.")

    def param(self, node: Node, key: str, pname: str, p: Any) -> Any:
        about = f"About {pname}: {p.help}." if getattr(p, "help", None) else None
        if node.value is None:
            if p.nullable:
                return None
            raise node.error(key, f"must not be null; expected {_KIND_TEXT.get(p.kind, p.kind)}",
                             about)
        ceiling = getattr(p, "ceiling", None) or MAX_INT
        if p.kind == "int":
            v = self.integer(node, key, p.minimum, p.maximum, about, ceiling)
        elif p.kind == "float":
            v = self.number(node, key, p.minimum, p.maximum, about)
        elif p.kind == "str":
            v = self.string(node, key, hint=about, max_length=MAX_PATH)
        elif p.kind == "bool":
            v = self.boolean(node, key, about)
        elif p.kind == "int_list":
            items = self.int_list(node, key, p.minimum, p.maximum, hint=about, ceiling=ceiling)
            if p.choices is not None:
                for i, x in enumerate(items):
                    if x not in p.choices:
                        raise node.value[i].error(f"{key}[{i}]", f"{x} is not one of: "
                                                  f"{', '.join(map(str, p.choices))}", about)
            return list(items)
        elif p.kind == "path":
            return str(self.path(node, key, self.yaml_dir))
        else:  # a declaration error in params.py, not the user's
            raise ValueError(f"Param of unknown kind {p.kind!r} for {key}")
        if p.choices is not None and v not in p.choices:
            options = ", ".join(map(str, p.choices))
            suggestion = did_you_mean(v, [str(c) for c in p.choices]) if isinstance(v, str) else None
            raise node.error(key, f"{v!r} is not one of: {options}", _hint(suggestion, about))
        return v

    def distributed(self, node: Node, key: str) -> dict:
        entries = self.mapping(node, key, DISTRIBUTED_KEYS, "strategy, zero_stage, ranks")
        out: dict[str, Any] = {"strategy": "none", "zero_stage": 0, "ranks": 1}
        if (n := self.present(entries, "strategy")) is not None:
            strategy = self.string(n, f"{key}.strategy", "a strategy name")
            if strategy not in STRATEGIES:
                raise n.error(f"{key}.strategy", f"unknown strategy {strategy!r}; expected one of: {', '.join(STRATEGIES)}",
                              did_you_mean(strategy, STRATEGIES))
            out["strategy"] = strategy
        if (n := self.present(entries, "zero_stage")) is not None:
            out["zero_stage"] = self.integer(n, f"{key}.zero_stage", minimum=0, maximum=3)
        if (n := self.present(entries, "ranks")) is not None:
            out["ranks"] = self.integer(n, f"{key}.ranks", minimum=1, ceiling=MAX_COUNT)
        if out["zero_stage"] and out["strategy"] != "deepspeed":
            raise node.error(f"{key}.zero_stage", "ZeRO stages need strategy: deepspeed",
                             "Set `strategy: deepspeed`, or drop zero_stage.")
        return out


_KIND_TEXT = {"int": "an integer", "float": "a number", "str": "a string", "bool": "true or false",
              "int_list": "a list of integers", "path": "a path"}



def _copy_default(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return list(value)
    if isinstance(value, dict):
        return dict(value)
    return value
