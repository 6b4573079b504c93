"""Checks a `Node` tree (from `launcher.spec.yaml_nodes`) against the sweep schema and builds the
typed `SweepSpec` (`launcher.spec.sweep` holds the schema, its docs and the dataclasses).

`Validator` walks the tree section by section; every problem raises `SpecError` with the node's
file, line and key path and, where it helps, a hint. Datasets are looked up through
`launcher.spec.sweep.known_datasets` at call time (tests monkeypatch it there); method params come
from `launcher.methods.params.METHOD_PARAMS`. The scalar readers (string, integer, path, ...) live
in `launcher.spec.types.SpecReader`; the `search` section and method spaces in
`launcher.spec.search.SearchReader`; `Validator` inherits both.
"""
from __future__ import annotations

import re
import unicodedata
from typing import Any, Mapping

from launcher.spec import sweep as config
from launcher.spec.search import SearchReader, tuned_methods
from launcher.spec.stores import StoreReader
from launcher.spec.sweep import (
    BACKENDS,
    CLASSIFICATION_ONLY_TASK_KEYS,
    DISTRIBUTED_KEYS,
    EXECUTOR_KEYS,
    FORECAST_ONLY_TASK_KEYS,
    MIN_CONTEXT,
    REPORT_KEYS,
    SLURM_INT_KEYS,
    SLURM_KEYS,
    SLURM_LIST_KEYS,
    SPACE_KEY,
    STRATEGIES,
    TASK_KEYS,
    TOP_KEYS,
    ExecutorSpec,
    MethodSpec,
    ReportSpec,
    SweepSpec,
    TaskSpec,
)
from launcher.spec.types import MAX_COUNT, MAX_INT, MAX_PATH, MAX_SEED
from launcher.spec.types import join_hints as _hint
from launcher.spec.yaml_nodes import Node, describe, did_you_mean, short

_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
MAX_NAME = 100   # characters of the sweep name (the MLflow experiment, the run and folder names)


def _method_params() -> Mapping[str, Mapping[str, Any]]:
    from launcher.methods.params import METHOD_PARAMS

    return METHOD_PARAMS


def check_root(root: Node) -> None:
    """The top level of a sweep file must be a mapping (checked before any override is applied)."""
    if not isinstance(root.value, dict):
        raise root.error(None, f"the top level must be a mapping of keys ({', '.join(TOP_KEYS)}), "
                               f"got {describe(root)}")


class Validator(SearchReader, StoreReader):
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
        if not _NAME_RE.fullmatch(name):
            raise node.error("name", f"{short(name)} is not a valid sweep name; use only ASCII letters, "
                                     f"digits and _ . -, starting with a letter or digit (it names the "
                                     f"MLflow experiment and the output folder)",
                             f"Try `name: {_sanitized_name(name)}`.")
        return name

    def tasks(self, node: Node) -> tuple[TaskSpec, ...]:
        if not isinstance(node.value, list):
            raise node.error("tasks", f"expected a list of tasks, got {describe(node)}",
                             "Write e.g. `tasks: [{dataset: ETTh1, horizons: [96]}]`, or one "
                             "`- dataset: ...` line per task.")
        if not node.value:
            raise node.error("tasks", "must name at least one task", "Add e.g. `- dataset: ETTh1`.")
        datasets = config.known_datasets()  # looked up at call time: tests patch it
        others: dict[str, str] = {}
        out: list[TaskSpec] = []
        seen: dict[TaskSpec, int] = {}
        for i, item in enumerate(node.value):
            key = f"tasks[{i}]"
            if item.value is None or not isinstance(item.value, dict):
                raise item.error(key, f"expected a mapping with at least `dataset`, got "
                                      f"{describe(item)}", "Write e.g. `- dataset: ETTh1`.")
            entries = self.mapping(item, key, TASK_KEYS, "a task")
            dnode = self.require(entries, item, key, "dataset")
            dataset = self.string(dnode, f"{key}.dataset", "a dataset name")
            if dataset not in datasets and not others:
                others = dict(config.known_classification_tasks())
            if dataset not in datasets and dataset not in others:
                known = sorted([*datasets, *others])
                raise dnode.error(f"{key}.dataset", f"unknown dataset {dataset!r}",
                                  _hint(did_you_mean(dataset, known),
                                        f"Known datasets: {', '.join(known)}."))
            if dataset not in datasets:
                out.append(self.classification_task(entries, item, key, dataset, others[dataset], seen, i))
                continue
            for wrong in CLASSIFICATION_ONLY_TASK_KEYS:
                if (n := self.present(entries, wrong)) is not None:
                    raise n.error(f"{key}.{wrong}", f"applies to genomics and satellite tasks, not to the "
                                                    f"forecasting dataset {dataset}", "Remove it.")
            info = datasets[dataset]
            horizons = tuple(int(h) for h in info.horizons)
            if (n := self.present(entries, "horizons")) is not None:
                horizons = self.int_list(n, f"{key}.horizons", minimum=1, ceiling=MAX_COUNT,
                                         distinct=True, example="[96, 192]")
            context = int(info.context)
            if (n := self.present(entries, "context")) is not None:
                context = self.integer(n, f"{key}.context", minimum=MIN_CONTEXT, ceiling=MAX_COUNT)
            path = None
            if (n := self.present(entries, "path")) is not None:
                path = self.existing(n, f"{key}.path", self.path(n, f"{key}.path", self.yaml_dir),
                                     folder=False)
            task = TaskSpec(dataset=dataset, horizons=horizons, context=context, path=path)
            if task in seen:
                raise item.error(key, f"the same task is listed twice (first as tasks[{seen[task]}])",
                                 "Remove one, or merge their horizons.")
            seen[task] = i
            out.append(task)
        return tuple(out)

    def lags_fit_contexts(self, tasks_node: Node, methods_node: Node, tasks: tuple[TaskSpec, ...],
                          methods: tuple[MethodSpec, ...]) -> None:
        """What a forecasting method looks back over must fit in each task's context:
        seasonal_naive's period, and Auto-AR's lags p (given, or p = context - d - delta for every
        differencing order d up to max_diff)."""
        datasets = config.known_datasets()
        for method in methods:
            if method.name not in ("seasonal_naive", "autoar"):
                continue
            given = methods_node.value[method.name][1].value or {}
            for i, task in enumerate(tasks):
                if task.domain != "forecasting":
                    continue
                entry = tasks_node.value[i].value.get("context")
                context_node = entry[1] if entry is not None and entry[1].value is not None else None
                if method.name == "seasonal_naive":
                    period = method.params.get("period")
                    if period is None:
                        period = getattr(datasets.get(task.dataset), "season", None)
                        if period is None or period <= task.context:
                            continue
                        where = context_node or tasks_node.value[i]
                        raise where.error(f"tasks[{i}].context", f"{task.context} is shorter than the "
                                          f"season of {task.dataset} ({period} steps), which seasonal_naive "
                                          f"repeats", f"Use a context >= {period}, or set "
                                                      f"methods.seasonal_naive.period.")
                    if period > task.context:
                        raise given["period"][1].error(
                            "methods.seasonal_naive.period", f"{period} is longer than the context "
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
                    raise given[key][1].value[bad].error(f"methods.autoar.{key}[{bad}]", message, fix)
                where = context_node or tasks_node.value[i]
                raise where.error(f"tasks[{i}].context", f"autoar's default {message}",
                                  _hint(fix, "Or set methods.autoar.lags."))

    def methods_fit_tasks(self, node: Node, tasks: tuple[TaskSpec, ...], methods: tuple[MethodSpec, ...]) -> None:
        """Every method must apply to at least one listed task (autoar has nothing to do on genomics)."""
        from launcher.methods.params import method_domains

        domains = {t.domain for t in tasks}
        for method in methods:
            if not domains & set(method_domains(method.name)):
                key_node = next(k for name, (k, _) in node.value.items() if name == method.name)
                raise key_node.error(f"methods.{method.name}",
                                     f"applies to {' and '.join(method_domains(method.name))} tasks, and this sweep "
                                     f"has only {' and '.join(sorted(domains))} tasks",
                                     "Remove the method, or add a task of its domain.")

    def classification_task(self, entries: dict, item: Node, key: str, dataset: str, domain: str,
                            seen: dict, index: int) -> TaskSpec:
        for wrong in FORECAST_ONLY_TASK_KEYS:
            if (n := self.present(entries, wrong)) is not None:
                raise n.error(f"{key}.{wrong}", f"applies to forecasting datasets, not to the {domain} task {dataset}",
                              "Remove it.")
        path = max_train = val_fraction = None
        if (n := self.present(entries, "path")) is not None:
            path = self.path(n, f"{key}.path", self.yaml_dir)
            if not path.exists():
                raise n.error(f"{key}.path", f"{path} does not exist", "Point it at the task's file or folder.")
        if (n := self.present(entries, "max_train")) is not None:
            max_train = self.integer(n, f"{key}.max_train", minimum=2)
        if (n := self.present(entries, "val_fraction")) is not None:
            val_fraction = self.number(n, f"{key}.val_fraction", minimum=0.01, maximum=0.9)
        task = TaskSpec(dataset=dataset, horizons=(), context=0, path=path, domain=domain,
                        max_train=max_train, val_fraction=val_fraction)
        if task in seen:
            raise item.error(key, f"the same task is listed twice (first as tasks[{seen[task]}])", "Remove one.")
        seen[task] = index
        return task

    def methods(self, node: Node) -> tuple[MethodSpec, ...]:
        table = _method_params()
        known = sorted(table)
        example = "Write e.g. `methods: {naive: {}, autoar: {max_diff: 2}}`."
        if not isinstance(node.value, dict):
            raise node.error("methods", f"expected a mapping of method name -> params, "
                                        f"got {describe(node)}", _hint(example,
                                                                        f"Known methods: {', '.join(known)}."))
        if not node.value:
            raise node.error("methods", "must name at least one method", example)
        out = []
        for name, (key_node, value) in node.value.items():
            key = f"methods.{name}"
            if name not in table:
                raise key_node.error(key, f"unknown method {name!r}",
                                     _hint(did_you_mean(name, known),
                                           f"Known methods: {', '.join(known)}."))
            declared = table[name]
            if value.value is not None and not isinstance(value.value, dict):
                raise value.error(key, f"expected a mapping of params (or nothing), "
                                       f"got {describe(value)}",
                                  f"Write e.g. `{name}: {{}}`." if not declared else
                                  f"Valid params: {', '.join(declared)}.")
            given = value.value or {}
            for pname, (pkey, _) in given.items():
                if pname not in declared and pname not in (SPACE_KEY, "distributed", "resources"):
                    if not declared:
                        raise pkey.error(f"{key}.{pname}", "unknown key",
                                         f"Method {name} takes no params; write `{name}: {{}}`.")
                    tuned = name in tuned_methods()
                    raise pkey.error(f"{key}.{pname}", "unknown key",
                                     _hint(did_you_mean(pname, [*declared, *[SPACE_KEY] * tuned]),
                                           f"Valid params of {name}: {', '.join(declared)}"
                                           f"{f' (and `{SPACE_KEY}`)' if tuned else ''}."))
            space = self.method_space(name, key, given, declared)
            params = {}
            for pname, param in declared.items():
                if space and pname in space:
                    continue
                if pname in given:
                    params[pname] = self.param(given[pname][1], f"{key}.{pname}", pname, param)
                else:
                    params[pname] = _copy_default(param.default)
            distributed = resources = None
            if "distributed" in given:
                distributed = self.distributed(given["distributed"][1], f"{key}.distributed")
            if "resources" in given:
                resources = self.slurm_resources(given["resources"][1], f"{key}.resources")
            out.append(MethodSpec(name=name, params=params, space=space, distributed=distributed,
                                  resources=resources))
        return tuple(out)

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
            raise ValueError(f"METHOD_PARAMS: unknown kind {p.kind!r} for {key}")
        if p.choices is not None and v not in p.choices:
            options = ", ".join(map(str, p.choices))
            suggestion = did_you_mean(v, [str(c) for c in p.choices]) if isinstance(v, str) else None
            raise node.error(key, f"{v!r} is not one of: {options}", _hint(suggestion, about))
        return v

    def executor(self, top: dict) -> ExecutorSpec:
        entry = top.get("executor")
        if entry is None:
            return ExecutorSpec()
        entries = self.mapping(entry[1], "executor", EXECUTOR_KEYS, "backend, workers, timeout_min, slurm")
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
        return ExecutorSpec(**kwargs)

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


_KIND_TEXT = {"int": "an integer", "float": "a number", "str": "a string", "bool": "true or false",
              "int_list": "a list of integers", "path": "a path"}



def _copy_default(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return list(value)
    if isinstance(value, dict):
        return dict(value)
    return value
