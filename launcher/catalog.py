"""What `launcher methods` and `launcher tasks` print: every method and task this installation can run,
built-in and from plugins, with what a sweep row needs to know (domains, parameters and defaults)."""
from __future__ import annotations

import json
from typing import Any


def _default(value: Any) -> str:
    return "null" if value is None else json.dumps(value)


def describe_methods(names: list[str] | None = None, *, verbose: bool = False) -> str:
    """One block per method: name, kind, domains, where it comes from, tuned or not, strategies, params."""
    from launcher.methods.registry import builtin_methods, method_class, plugin_methods

    builtin, plugins = builtin_methods(), plugin_methods()
    wanted = names or sorted({*builtin, *plugins})
    lines: list[str] = []
    for name in wanted:
        cls = method_class(name)
        origin = "built-in" if cls.name in builtin and builtin[cls.name] is cls else f"plugin {cls.__module__}"
        tuned = "tuned in epochs (ASHA)" if cls.multi_fidelity else "one-shot"
        flags = [cls.kind, "/".join(cls.domains), tuned]
        if cls.deterministic:
            flags.append("deterministic")
        if len(cls.strategies) > 1:
            flags.append("distributed: " + ", ".join(s for s in cls.strategies if s != "none"))
        lines.append(f"{cls.name}  ({'; '.join(flags)}; {origin})")
        doc = (cls.__doc__ or "").strip().splitlines()
        if doc and verbose:
            lines.append(f"    {doc[0]}")
        for pname, param in cls.params.items():
            searched = " [searched by default]" if pname in cls.default_space else ""
            choices = f" one of {', '.join(map(str, param.choices))};" if param.choices else ""
            help_text = f" {param.help}" if verbose or len(param.help) < 70 else f" {param.help[:67]}..."
            lines.append(f"    {pname}: {param.kind} = {_default(param.default)}{searched};{choices}{help_text}")
        if not cls.params:
            lines.append("    (no params)")
    lines.append("")
    lines.append("Use one in a sweep file as `methods: {<name>: {param: value}}`, or several variants of one "
                 "method as named rows: `methods: {wrn: {method: backbone, arch: wrn}}`; a class of your own "
                 "as `mine: {method: my_pkg.module:MyMethod}`.")
    return "\n".join(lines)


def describe_tasks(domain: str | None = None) -> str:
    """Task names by domain, with each domain's data layout note; plugin tasks marked."""
    from tasks.registry import DOMAINS, known_tasks, plugin_tasks

    known = known_tasks()
    plugins = plugin_tasks()
    lines: list[str] = []
    for d in DOMAINS:
        if domain and d != domain:
            continue
        names = sorted(n for n, dom in known.items() if dom == d)
        extra = sorted(n for n, source in plugins.items() if source.domain == d)
        lines.append(f"{d} ({len(names)} built-in{f', {len(extra)} from plugins' if extra else ''}):")
        for start in range(0, len(names), 6):
            lines.append("    " + ", ".join(names[start:start + 6]))
        for name in extra:
            lines.append(f"    {name}  (plugin {plugins[name].origin})")
    lines.append("")
    lines.append("Use one in a sweep file as `tasks: [{dataset: <name>}]`; your own CSV as "
                 "`- {dataset: my_sales, path: data/sales.csv}`; a loader of your own as "
                 "`- {task: my_pkg.data:my_task}`.")
    return "\n".join(lines)
