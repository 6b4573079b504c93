"""Checks a `Node` tree (from `launcher.spec.yaml_nodes`) against the sweep schema and builds the
typed `SweepSpec` (`launcher.spec.sweep` holds the schema, its docs and the dataclasses).

`Validator` walks the tree section by section; every problem raises `SpecError` with the node's
file, line and key path and, where it helps, a hint. Datasets are looked up through
`launcher.spec.sweep.known_datasets` at call time (tests monkeypatch it there); a method row's params
come from its class (`launcher.methods.registry`). The scalar readers (string, integer, path, ...) live
in `launcher.spec.types.SpecReader`; the `search` section and method spaces in
`launcher.spec.search.SearchReader`; `Validator` inherits both.
"""
from __future__ import annotations

import re
import unicodedata
from pathlib import Path
from typing import Any

from launcher.errors import did_you_mean
from launcher.spec import sweep as config
from launcher.spec.search import SearchReader
from launcher.spec.stores import StoreReader
from launcher.spec.sweep import (
    BACKENDS,
    CLASSIFICATION_ONLY_TASK_KEYS,
    DISTRIBUTED_KEYS,
    EXECUTOR_KEYS,
    FORECAST_ONLY_TASK_KEYS,
    METHOD_RESERVED_KEYS,
    MIN_CONTEXT,
    REPORT_KEYS,
    SLURM_INT_KEYS,
    SLURM_KEYS,
    SLURM_LIST_KEYS,
    SPACE_KEY,
    SPLIT_KEYS,
    STRATEGIES,
    TASK_KEYS,
    TOP_KEYS,
    USER_DATA_TASK_KEYS,
    ExecutorSpec,
    MethodSpec,
    ReportSpec,
    SweepSpec,
    TaskSpec,
)
from launcher.spec.types import MAX_COUNT, MAX_INT, MAX_PATH, MAX_SEED
from launcher.spec.types import join_hints as _hint
from launcher.spec.yaml_nodes import Node, describe, short

_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
MAX_NAME = 100   # characters of the sweep name (the MLflow experiment, the run and folder names)


def _known_methods() -> list[str]:
    from launcher.methods.registry import PluginError, builtin_methods, method_names

    try:
        return method_names()
    except PluginError:   # a plugin that does not load: the row naming a registered method reports it (method_class)
        return sorted(builtin_methods())


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
            if (tnode := self.present(entries, "task")) is not None:
                ref = self.string(tnode, f"{key}.task", "a loader's import path such as my_pkg.data:my_task")
                task = self.plugin_task(entries, item, key, tnode, ref, datasets)
            else:
                task = None
            dnode = self.require(entries, item, key, "dataset") if task is None else None
            dataset = self.string(dnode, f"{key}.dataset", "a dataset name") if task is None else task.dataset
            if task is None and dataset not in datasets and self.present(entries, "path") is None:
                task = self.registered_plugin_task(entries, item, key, dnode, dataset, datasets)
            if task is not None:
                if task in seen:
                    raise item.error(key, f"the same task is listed twice (first as tasks[{seen[task]}])",
                                     "Remove one.")
                seen[task] = i
                out.append(task)
                continue
            if dataset not in datasets and not others:
                others = dict(config.known_classification_tasks())
            if dataset not in datasets and dataset not in others and self.present(entries, "path") is None:
                known = sorted([*datasets, *others])
                raise dnode.error(f"{key}.dataset", f"unknown dataset {dataset!r}",
                                  _hint(did_you_mean(dataset, known),
                                        f"Known datasets: {', '.join(known)}. For a forecasting CSV of your own, "
                                        f"give its `path`."))
            if dataset not in datasets and dataset in others:
                out.append(self.classification_task(entries, item, key, dataset, others[dataset], seen, i))
                continue
            task = self.forecast_task(entries, item, key, dataset, datasets.get(dataset))
            if task in seen:
                raise item.error(key, f"the same task is listed twice (first as tasks[{seen[task]}])",
                                 "Remove one, or merge their horizons.")
            seen[task] = i
            out.append(task)
        return tuple(out)

    def plugin_task(self, entries: dict, item: Node, key: str, node: Node, ref: str, datasets) -> TaskSpec:
        """A task of one's own from code: `- task: my_pkg.data:my_task` (tasks.plugins.task_source)."""
        from tasks.plugins import TaskPluginError, load_task_source

        try:
            source = load_task_source(ref)
        except TaskPluginError as e:
            raise node.error(f"{key}.task", str(e), "A task row names a built-in dataset, a file of your own "
                             "(`dataset` + `path`), or a loader: `task: my_pkg.data:my_task`.") from None
        if (n := self.present(entries, "dataset")) is not None:
            raise n.error(f"{key}.dataset", f"a `task` row takes its name from the loader ({source.name!r})",
                          "Remove `dataset`.")
        return self._task_from_source(entries, item, key, node, source, datasets, ref)

    def registered_plugin_task(self, entries: dict, item: Node, key: str, node: Node, dataset: str,
                               datasets) -> TaskSpec | None:
        """`- dataset: my_task` where an installed package registers my_task (entry points `launcher.tasks`)."""
        from tasks.plugins import TaskPluginError, plugin_tasks

        try:
            plugins = plugin_tasks()
        except TaskPluginError as e:
            raise node.error(f"{key}.dataset", str(e), "Fix or uninstall that plugin package.") from None
        if dataset not in plugins:
            return None
        return self._task_from_source(entries, item, key, node, plugins[dataset], datasets, dataset)

    def _task_from_source(self, entries: dict, item: Node, key: str, node: Node, source, datasets,
                          ref: str) -> TaskSpec:
        if source.name in datasets or source.name in config.known_classification_tasks():
            raise node.error(key, f"task {ref!r} is named {source.name!r}, like a built-in task",
                             "Give the task_source another name (name=...).")
        allowed = ("task", "dataset", "horizons", "context") if source.domain == "forecasting" \
            else ("task", "dataset", "max_train", "val_fraction")
        for wrong, (wkey, _) in entries.items():
            if wrong not in allowed:
                raise wkey.error(f"{key}.{wrong}", f"does not apply to the {source.domain} task {source.name} "
                                                   f"from code (its loader reads its own data)",
                                 f"Remove it; keys here: {', '.join(allowed)}.")
        if source.domain != "forecasting":
            max_train = val_fraction = None
            if (n := self.present(entries, "max_train")) is not None:
                max_train = self.integer(n, f"{key}.max_train", minimum=2)
            if (n := self.present(entries, "val_fraction")) is not None:
                val_fraction = self.number(n, f"{key}.val_fraction", minimum=0.01, maximum=0.9)
            return TaskSpec(dataset=source.name, horizons=(), context=0, domain=source.domain,
                            max_train=max_train, val_fraction=val_fraction, loader=ref)
        horizons, context = tuple(source.horizons), int(source.context)
        if (n := self.present(entries, "horizons")) is not None:
            horizons = self.int_list(n, f"{key}.horizons", minimum=1, ceiling=MAX_COUNT, distinct=True,
                                     example="[96, 192]")
        if (n := self.present(entries, "context")) is not None:
            context = self.integer(n, f"{key}.context", minimum=MIN_CONTEXT, ceiling=MAX_COUNT)
        return TaskSpec(dataset=source.name, horizons=horizons, context=context, loader=ref)

    def task_path(self, node: Node, key: str, domain: str, *, folder_ok: bool) -> Path:
        """A task's `path`: relative to the sweep file's folder, else (relative paths only) found in
        data_root/ or data_root/<domain>/, then in $LAUNCHER_DATA_ROOT and its <domain>/ folder."""
        import os

        path = self.path(node, key, self.yaml_dir)
        raw = node.value if isinstance(node.value, str) else node.text
        tried = [path]
        if not path.exists() and raw and not node.from_command_line and not Path(str(raw)).expanduser().is_absolute():
            roots = [r for r in (getattr(self, "data_root", None), os.environ.get("LAUNCHER_DATA_ROOT")) if r]
            for root in map(Path, roots):
                for candidate in (root / str(raw), root / domain / str(raw)):
                    tried.append(candidate.resolve())
                    if candidate.exists():
                        path = candidate.resolve()
                        break
                if path.exists():
                    break
        if not path.exists():
            where = "" if len(tried) == 1 else " (also looked for " + ", ".join(map(str, tried[1:])) + ")"
            if not folder_ok:
                raise node.error(key, f"file not found: {tried[0]}{where}",
                                 "Relative paths resolve against the sweep file's folder, then data_root/ and "
                                 f"data_root/{domain}/.")
            raise node.error(key, f"{tried[0]} does not exist{where}", "Point it at the task's file or folder.")
        if not folder_ok and path.is_dir():
            raise node.error(key, f"expected a file, but {path} is a folder", "Point it at the CSV file.")
        return path

    def forecast_task(self, entries: dict, item: Node, key: str, dataset: str, info: Any) -> TaskSpec:
        """A forecasting row: a built-in dataset (`info` from known_datasets) or, with `path`, a CSV of the
        user's own (`info` None). With a user file or any USER_DATA_TASK_KEYS, the file is read here."""
        for wrong in CLASSIFICATION_ONLY_TASK_KEYS:
            if (n := self.present(entries, wrong)) is not None:
                raise n.error(f"{key}.{wrong}", f"applies to genomics and satellite tasks, not to the "
                                                f"forecasting dataset {dataset}", "Remove it.")
        if (n := self.present(entries, "horizons")) is not None:
            horizons = self.int_list(n, f"{key}.horizons", minimum=1, ceiling=MAX_COUNT,
                                     distinct=True, example="[96, 192]")
        elif info is not None:
            horizons = tuple(int(h) for h in info.horizons)
        else:
            raise item.error(f"{key}.horizons", f"is required for {dataset}, a dataset of your own",
                             "Add e.g. `horizons: [24, 48]`: the numbers of steps ahead to forecast.")
        context = None
        if (n := self.present(entries, "context")) is not None:
            context = self.integer(n, f"{key}.context", minimum=MIN_CONTEXT, ceiling=MAX_COUNT)
        path = None
        if (n := self.present(entries, "path")) is not None:
            path = self.task_path(n, f"{key}.path", "forecasting", folder_ok=False)
        extra: dict[str, Any] = {}
        if (n := self.present(entries, "date_column")) is not None:
            extra["date_column"] = self.string(n, f"{key}.date_column", "a column name of the file's header")
        if (n := self.present(entries, "target_channels")) is not None:
            extra["target_channels"] = self.name_list(n, f"{key}.target_channels")
            if extra.get("date_column") in extra["target_channels"]:
                raise n.error(f"{key}.target_channels", f"{extra['date_column']!r} is the date column",
                              "Remove it from target_channels.")
        if (n := self.present(entries, "split")) is not None:
            extra.update(self.task_split(n, f"{key}.split"))
        if (n := self.present(entries, "freq")) is not None:
            extra["freq"] = self.integer(n, f"{key}.freq", minimum=1, ceiling=MAX_COUNT)
        if info is None or any(self.present(entries, k) is not None for k in USER_DATA_TASK_KEYS):
            context = self.read_forecast_file(entries, item, key, dataset, info, path, horizons, context, extra)
        elif context is None:
            context = int(info.context)
        return TaskSpec(dataset=dataset, horizons=horizons, context=context, path=path, **extra)

    def name_list(self, node: Node, key: str) -> tuple[str, ...]:
        if not isinstance(node.value, list) or not node.value:
            raise node.error(key, f"expected a non-empty list of column names, got {describe(node)}",
                             "Write e.g. `target_channels: [OT]`.")
        names = tuple(self.string(v, f"{key}[{j}]", "a column name") for j, v in enumerate(node.value))
        for j, name in enumerate(names):
            if name in names[:j]:
                raise node.value[j].error(f"{key}[{j}]", f"{name!r} is listed twice", "Remove one.")
        return names

    def task_split(self, node: Node, key: str) -> dict:
        """`split: {ratios: [train, val, test]}` or `split: {dates: [val_start, test_start]}`."""
        import datetime

        example = "Write `split: {ratios: [0.7, 0.1, 0.2]}` or `split: {dates: [2021-01-01, 2021-07-01]}`."
        entries = self.mapping(node, key, SPLIT_KEYS, "ratios or dates")
        if len(entries) != 1:
            raise node.error(key, "expected exactly one of `ratios` and `dates`", example)
        (name, (_, value)), = entries.items()
        if not isinstance(value.value, list) or len(value.value) != (3 if name == "ratios" else 2):
            raise value.error(f"{key}.{name}", f"expected a list of {3 if name == 'ratios' else 2} "
                                               f"{'numbers' if name == 'ratios' else 'dates'}, got {describe(value)}",
                              example)
        if name == "ratios":
            ratios = tuple(self.number(v, f"{key}.ratios[{j}]", minimum=0.0, maximum=1.0)
                           for j, v in enumerate(value.value))
            if abs(sum(ratios) - 1.0) > 1e-6:
                raise value.error(f"{key}.ratios", f"train, val and test ratios {list(ratios)} sum to "
                                                   f"{sum(ratios):g}, not 1", "Write e.g. `ratios: [0.7, 0.1, 0.2]`.")
            for j, r in enumerate(ratios):
                if r <= 0:
                    raise value.value[j].error(f"{key}.ratios[{j}]", f"the {('train', 'val', 'test')[j]} "
                                               f"share must be above 0", "Write e.g. `ratios: [0.7, 0.1, 0.2]`.")
            return {"split_ratios": ratios}
        dates = []
        for j, v in enumerate(value.value):
            text = self.string(v, f"{key}.dates[{j}]", "an ISO date such as 2021-01-01")
            try:
                dates.append(datetime.datetime.fromisoformat(text))
            except ValueError:
                raise v.error(f"{key}.dates[{j}]", f"{text!r} is not an ISO date",
                              "Write e.g. 2021-01-01 or 2021-01-01T12:00.") from None
        if not dates[0] < dates[1]:
            raise value.error(f"{key}.dates", f"the val start {value.value[0].text or dates[0]} is not before the "
                                              f"test start {value.value[1].text or dates[1]}",
                              "List them in order: `dates: [val_start, test_start]`.")
        return {"split_dates": tuple(d.isoformat(sep=" ") if d.time() != datetime.time() else d.date().isoformat()
                                     for d in dates)}

    def read_forecast_file(self, entries: dict, item: Node, key: str, dataset: str, info: Any, path: Path | None,
                           horizons: tuple[int, ...], context: int | None, extra: dict) -> int:
        """Read a forecasting task's file as the trials will (same cleaning and checks), so a wrong column,
        split or size names this row; returns the context (given, or the default that fits)."""
        from tasks.timeseries import (
            DEFAULT_USER_CONTEXT,
            DatasetFormatError,
            DatasetNotFoundError,
            TaskSizeError,
            check_task_fits,
            find_dataset_file,
            load_series,
            read_header,
            task_split_sizes,
            user_series,
        )

        path_node = self.present(entries, "path") or item
        try:
            file = path if path is not None else find_dataset_file(dataset, getattr(self, "data_root", None))
        except DatasetNotFoundError as err:
            raise item.error(key, str(err).splitlines()[0], "Set data_root, or give the task's `path`.") from None
        try:
            header = read_header(file)
        except DatasetFormatError as err:
            raise path_node.error(f"{key}.path", str(err)) from None
        if (column := extra.get("date_column")) is not None and column not in header:
            raise entries["date_column"][1].error(f"{key}.date_column", f"no column {column!r} in the header of "
                                                  f"{file} (columns: {', '.join(header[:20])})",
                                                  "Use one of the header's names.")
        for j, name in enumerate(extra.get("target_channels") or ()):
            if name not in header:
                raise entries["target_channels"][1].value[j].error(
                    f"{key}.target_channels[{j}]", f"no column {name!r} in the header of {file} "
                    f"(columns: {', '.join(header[:20])})", _hint(did_you_mean(name, header),
                                                                   "Use names from the header."))
        split = TaskSpec(dataset, (), 0, **{k: v for k, v in extra.items() if k.startswith("split_")}).split()
        channels = extra.get("target_channels")
        try:
            if info is None or "date_column" in extra:
                series = user_series(file, date_column=extra.get("date_column"), target_channels=channels)
            else:
                series = load_series(file, target_channels=None if channels is None else list(channels))
        except DatasetFormatError as err:
            raise path_node.error(f"{key}.path", f"{err}") from None
        try:
            sizes = task_split_sizes(dataset, file, series, split)
        except DatasetFormatError as err:
            raise entries["split"][1].error(f"{key}.split", f"{err}") from None
        if context is None:
            context = int(info.context) if info is not None else min(DEFAULT_USER_CONTEXT, sizes[0])
            if context < MIN_CONTEXT:
                raise item.error(f"{key}.context", f"{file} leaves {sizes[0]} training rows, fewer than the "
                                                   f"shortest context ({MIN_CONTEXT})",
                                 "Use a longer file, or a larger train share in `split`.")
        try:
            check_task_fits(dataset, file, len(series.values), context, horizons,
                            sizes=sizes if split is not None or info is None else None, split=split)
        except TaskSizeError as err:
            where = self.present(entries, "context") or self.present(entries, "horizons") or item
            raise where.error(key, err.detail, err.hint) from None
        return context

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

    def classification_task(self, entries: dict, item: Node, key: str, dataset: str, domain: str,
                            seen: dict, index: int) -> TaskSpec:
        for wrong in FORECAST_ONLY_TASK_KEYS:
            if (n := self.present(entries, wrong)) is not None:
                raise n.error(f"{key}.{wrong}", f"applies to forecasting datasets, not to the {domain} task {dataset}",
                              "Remove it.")
        path = max_train = val_fraction = None
        if (n := self.present(entries, "path")) is not None:
            path = self.task_path(n, f"{key}.path", domain, folder_ok=True)
            if domain == "genomics":
                self.genomics_table_has_task(n, f"{key}.path", dataset, path)
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

    @staticmethod
    def genomics_table_has_task(node: Node, key: str, dataset: str, path: Path) -> None:
        """A genomics `path` at one table of many tasks (the revised NT benchmark layout) must hold the task."""
        from tasks.classification import DatasetError
        from tasks.genomics_formats import is_table_file, table_task_names

        if not is_table_file(path):
            return
        try:
            names = table_task_names(path)
        except DatasetError as err:
            raise node.error(key, str(err)) from None
        if names is not None and dataset not in names:
            raise node.error(key, f"no row of {path} has task {dataset!r} (its `task` column holds: "
                                  f"{', '.join(names[:20])}{' ...' if len(names) > 20 else ''})",
                             _hint(did_you_mean(dataset, names), "The dataset name picks the table's rows."))

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
            if not _NAME_RE.fullmatch(name) or len(name) > MAX_NAME:
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
            out.append(MethodSpec(name=name, params=params, space=space, distributed=distributed,
                                  resources=resources, method=ref))
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
