"""Checks a `Node` tree (from `launcher.spec.yaml_nodes`) against the sweep schema and builds the
typed `SweepSpec` (`launcher.spec.sweep` holds the schema, its docs and the dataclasses).

`Validator` walks the tree section by section; every problem raises `SpecError` with the node's
file, line and key path and, where it helps, a hint. Datasets are looked up through
`launcher.spec.sweep.known_datasets` at call time (tests monkeypatch it there); a method row's params
come from its class (`launcher.methods.registry`). The scalar readers (string, integer, path, ...) live
in `launcher.spec.types.SpecReader`; the `tasks` section in `launcher.spec.tasks.TaskReader`, the
`methods` section in `launcher.spec.methods.MethodReader`, the `search` section and method spaces in
`launcher.spec.search.SearchReader`, `out` and `tracking` in `launcher.spec.stores.StoreReader`;
`Validator` inherits them all.
"""
from __future__ import annotations

import json
import re
import unicodedata
from typing import Any

from launcher.errors import did_you_mean
from launcher.spec import sweep as config
from launcher.spec.methods import MAX_NAME, NAME_RE, MethodReader
from launcher.spec.search import SearchReader
from launcher.spec.stores import StoreReader
from launcher.spec.sweep import (
    BACKENDS,
    EXECUTOR_KEYS,
    REPORT_KEYS,
    SIMULATED_KEYS,
    SLURM_INT_KEYS,
    SLURM_KEYS,
    SLURM_LIST_KEYS,
    TOP_KEYS,
    ExecutorSpec,
    MethodSpec,
    ReportSpec,
    SweepSpec,
    TaskSpec,
)
from launcher.spec.tasks import TaskReader
from launcher.spec.types import MAX_COUNT, MAX_SEED
from launcher.spec.types import join_hints as _hint
from launcher.spec.yaml_nodes import Node, describe, short


def check_root(root: Node) -> None:
    """The top level of a sweep file must be a mapping (checked before any override is applied)."""
    if not isinstance(root.value, dict):
        raise root.error(None, f"the top level must be a mapping of keys ({', '.join(TOP_KEYS)}), "
                               f"got {describe(root)}")


class Validator(TaskReader, MethodReader, SearchReader, StoreReader):
    """The sweep's sections; the readers are inherited (SpecReader, and SearchReader for
    `search` and method spaces)."""

    # -- sections -------------------------------------------------------------------------

    def sweep(self, root: Node) -> SweepSpec:
        top = self.mapping(root, "", TOP_KEYS, "the sweep")
        for required in ("name", "tasks", "methods"):
            self.require(top, root, "", required)

        name = self.name(top["name"][1])
        description = ""
        if (n := self.present(top, "description")) is not None:
            description = self.string(n, "description")

        if (n := self.present(top, "out")) is not None:
            out = self.path(n, "out", self.cwd)
            self.writable_folder(n, "out", out)
        else:
            out = (self.cwd / "runs" / name).resolve()
            self.writable_folder(top["name"][1], "name", out)

        data_root = None
        if (n := self.present(top, "data_root")) is not None:
            data_root = self.existing(n, "data_root", self.path(n, "data_root", self.yaml_dir),
                                      folder=True)
        self.data_root = data_root   # where a task's relative `path` is also looked for

        seeds: tuple[int, ...] = (0,)
        if (n := self.present(top, "seeds")) is not None:
            seeds = self.int_list(n, "seeds", minimum=0, ceiling=MAX_SEED, distinct=True,
                                  example="[0, 1, 2]")

        tasks = self.tasks(top["tasks"][1])
        methods = self.methods(top["methods"][1])
        self.methods_fit_tasks(top["methods"][1], tasks, methods)
        self.lags_fit_contexts(top["tasks"][1], top["methods"][1], tasks, methods)
        executor = self.executor(top)
        tracking = self.tracking(top)
        report = self.report(top, methods)
        search = self.search(top)
        return SweepSpec(name=name, description=description, source=self.source, out=out,
                         data_root=data_root, seeds=seeds, tasks=tasks, methods=methods,
                         executor=executor, tracking=tracking, report=report, search=search)

    def name(self, node: Node) -> str:
        name = self.string(node, "name", "a sweep name such as timeseries")
        if len(name) > MAX_NAME:
            raise node.error("name", f"is {len(name)} characters long; at most {MAX_NAME} are allowed "
                                     f"(it names the MLflow experiment and the output folder)",
                             f"Try `name: {_sanitized_name(name)}`.")
        if not NAME_RE.fullmatch(name):
            raise node.error("name", f"{short(name)} is not a valid sweep name; use only ASCII letters, "
                                     f"digits and _ . -, starting with a letter or digit (it names the "
                                     f"MLflow experiment and the output folder)",
                             f"Try `name: {_sanitized_name(name)}`.")
        return name

    def lags_fit_contexts(self, tasks_node: Node, methods_node: Node, tasks: tuple[TaskSpec, ...],
                          methods: tuple[MethodSpec, ...]) -> None:
        """What a forecasting method looks back over must fit in each task's context:
        seasonal_naive's period, and Auto-AR's lags p (given, or p = context - d - delta for every
        differencing order d up to max_diff)."""
        datasets = config.known_datasets()
        for method in methods:
            if method.method not in ("seasonal_naive", "autoar"):
                continue
            given = methods_node.value[method.name][1].value or {}
            for i, task in enumerate(tasks):
                if task.domain != "forecasting":
                    continue
                entry = tasks_node.value[i].value.get("context")
                context_node = entry[1] if entry is not None and entry[1].value is not None else None
                if method.method == "seasonal_naive":
                    period = method.params.get("period")
                    if period is None:
                        period = task.freq or getattr(datasets.get(task.dataset), "season", None)
                        if period is None:
                            raise tasks_node.value[i].error(
                                f"tasks[{i}]", f"{method.name} repeats the season of {task.dataset}, a dataset of "
                                f"your own, and the task gives none", f"Set `freq:` on the task (steps per season, "
                                f"e.g. 24 for hourly data with a daily cycle), or methods.{method.name}.period.")
                        if period is None or period <= task.context:
                            continue
                        where = context_node or tasks_node.value[i]
                        raise where.error(f"tasks[{i}].context", f"{task.context} is shorter than the "
                                          f"season of {task.dataset} ({period} steps), which seasonal_naive "
                                          f"repeats", f"Use a context >= {period}, or set "
                                                      f"methods.{method.name}.period.")
                    if period > task.context:
                        raise given["period"][1].error(
                            f"methods.{method.name}.period", f"{period} is longer than the context "
                            f"({task.context}) of tasks[{i}] ({task.dataset})",
                            f"Use a period <= {task.context}, or a longer context.")
                    continue
                d = int(method.params.get("max_diff", 0))
                longest = task.context - d   # the longest lag p of a series differenced d times
                lags, key = method.params.get("lags"), "lags"
                if lags is None:
                    lags, key = [longest - delta for delta in method.params.get("deltas") or ()], "deltas"
                bad = next((j for j, p in enumerate(lags) if not 1 <= p <= longest), None)
                if bad is None:
                    continue
                what = (f"lag {lags[bad]}" if key == "lags" else
                        f"delta {method.params['deltas'][bad]} (p = context - d - delta = {lags[bad]})")
                message = (f"{what} does not fit the context ({task.context}) of tasks[{i}] "
                           f"({task.dataset}) differenced up to max_diff = {d} times: each p must be in "
                           f"[1, {task.context} - {d}] = [1, {longest}]")
                fix = (f"Use lags <= {longest}, a longer context, or a smaller max_diff." if key == "lags"
                       else f"Use deltas <= {longest - 1}, a longer context, or a smaller max_diff.")
                if key in given and isinstance(given[key][1].value, list):
                    raise given[key][1].value[bad].error(f"methods.{method.name}.{key}[{bad}]", message, fix)
                where = context_node or tasks_node.value[i]
                raise where.error(f"tasks[{i}].context", f"autoar's default {message}",
                                  _hint(fix, f"Or set methods.{method.name}.lags."))

    def methods_fit_tasks(self, node: Node, tasks: tuple[TaskSpec, ...], methods: tuple[MethodSpec, ...]) -> None:
        """Every method must apply to at least one listed task (autoar has nothing to do on genomics)."""
        from launcher.methods.registry import method_class

        domains = {t.domain for t in tasks}
        for method in methods:
            method_domains = method_class(method.method).domains
            if not domains & set(method_domains):
                key_node = next(k for name, (k, _) in node.value.items() if name == method.name)
                raise key_node.error(f"methods.{method.name}",
                                     f"applies to {' and '.join(method_domains)} tasks, and this sweep "
                                     f"has only {' and '.join(sorted(domains))} tasks",
                                     "Remove the method, or add a task of its domain.")

    def executor(self, top: dict) -> ExecutorSpec:
        entry = top.get("executor")
        if entry is None:
            return ExecutorSpec()
        entries = self.mapping(entry[1], "executor", EXECUTOR_KEYS, ", ".join(EXECUTOR_KEYS))
        kwargs: dict[str, Any] = {}
        if (n := self.present(entries, "backend")) is not None:
            backend = self.string(n, "executor.backend", "a backend name")
            if backend not in BACKENDS:
                raise n.error("executor.backend", f"unknown backend {backend!r}; expected one of: "
                                                  f"{', '.join(BACKENDS)}",
                              did_you_mean(backend, BACKENDS))
            kwargs["backend"] = backend
        if (n := self.present(entries, "workers")) is not None:
            kwargs["workers"] = self.integer(n, "executor.workers", minimum=1, ceiling=MAX_COUNT)
        if (n := self.present(entries, "timeout_min")) is not None:
            kwargs["timeout_min"] = self.integer(n, "executor.timeout_min", minimum=1, ceiling=MAX_COUNT)
        if (n := self.present(entries, "slurm")) is not None:
            kwargs["slurm"] = self.slurm_resources(n, "executor.slurm")
        if (n := self.present(entries, "simulated")) is not None:
            if kwargs.get("backend") != "simulated":
                raise n.error("executor.simulated", "applies only to `backend: simulated` (a fake cluster)",
                              "Remove it, or set `executor.backend: simulated`.")
            kwargs["simulated"] = self.simulation(n, "executor.simulated")
        return ExecutorSpec(**kwargs)

    def simulation(self, node: Node, key: str) -> dict:
        entries = self.mapping(node, key, SIMULATED_KEYS, ", ".join(SIMULATED_KEYS))
        out: dict[str, Any] = {}
        for name, (_, value) in entries.items():
            where = f"{key}.{name}"
            if name == "curves":
                path = self.existing(value, where, self.path(value, where, self.yaml_dir), folder=False)
                try:
                    table = json.loads(path.read_text())
                    ok = isinstance(table.get("grid"), dict) and isinstance(table.get("curves"), list) \
                        and table["curves"]
                except (OSError, ValueError, AttributeError):
                    ok = False
                if not ok:
                    raise value.error(where, f"{path} is not a learning-curve table",
                                      "Expected JSON with `grid` (param -> values) and a non-empty `curves` list, "
                                      "as benchmarks/data/dlinear_curves_etth1_96.json.")
                out[name] = str(path)
            elif name == "seed":
                out[name] = self.integer(value, where, minimum=0, ceiling=MAX_SEED)
            elif name in ("preemption", "node_failure", "out_of_memory"):
                out[name] = self.number(value, where, minimum=0.0, maximum=1.0)
            else:
                out[name] = self.number(value, where, minimum=0.0)
        if sum(out.get(k, 0.0) for k in ("preemption", "node_failure", "out_of_memory")) > 1.0:
            raise node.error(key, "the fault probabilities add up to more than 1")
        return out

    def slurm_resources(self, node: Node, key: str) -> dict:
        entries = self.mapping(node, key, SLURM_KEYS, ", ".join(SLURM_KEYS))
        out: dict[str, Any] = {}
        for name, (_, value) in entries.items():
            where = f"{key}.{name}"
            if name in SLURM_INT_KEYS:
                out[name] = self.integer(value, where, minimum=0 if name in ("gpus_per_node", "max_requeues") else 1)
            elif name in SLURM_LIST_KEYS:
                if not isinstance(value.value, list) or not all(isinstance(v.value, str) for v in value.value):
                    raise value.error(where, f"expected a list of strings, got {describe(value)}",
                                      f"Write e.g. `{name}: [\"--exclusive\"]`." if name == "sbatch_extra"
                                      else f"Write e.g. `{name}: [\"module load cuda\"]`.")
                out[name] = [self.string(v, f"{where}[{i}]") for i, v in enumerate(value.value)]
            else:
                out[name] = self.string(value, where)
        if out:
            from launcher.backends.slurm_resources import SlurmResources  # only for sweeps that name SLURM resources

            try:
                SlurmResources.from_dict(out)
            except ValueError as error:
                raise node.error(key, str(error), "See `executor.slurm` in the README.") from None
        return out

    def report(self, top: dict, methods: tuple[MethodSpec, ...]) -> ReportSpec:
        entry = top.get("report")
        if entry is None:
            return ReportSpec()
        entries = self.mapping(entry[1], "report", REPORT_KEYS, "baseline")
        n = self.present(entries, "baseline")
        if n is None:
            return ReportSpec()
        baseline = self.string(n, "report.baseline", "a method name")
        names = [m.name for m in methods]
        if baseline not in names:
            raise n.error("report.baseline", f"{baseline!r} is not one of this sweep's methods "
                                             f"({', '.join(names)})",
                          did_you_mean(baseline, names) or
                          f"Add {baseline} under methods:, or pick one of the methods above.")
        return ReportSpec(baseline=baseline)


def _sanitized_name(name: str) -> str:
    """`name` as a valid sweep name: accents dropped (é -> e), other characters outside
    [A-Za-z0-9_.-] replaced by _, starting with a letter or digit, at most MAX_NAME characters."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")
    if len(ascii_name) < len(name) // 2:     # mostly non-Latin: keep the characters' places
        ascii_name = name
    fixed = re.sub(r"[^A-Za-z0-9_.-]+", "_", ascii_name)
    fixed = re.sub(r"^[^A-Za-z0-9]+", "", fixed)[:MAX_NAME].rstrip("_.-")
    return fixed if re.search(r"[A-Za-z0-9]", fixed) else "my_sweep"
