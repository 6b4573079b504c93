"""The `tasks:` section of a sweep file: built-in datasets, files of one's own (`path` + reading keys),
genomics tables, and tasks from code (`task: pkg.mod:loader`, tasks.plugins). Mixed into `Validator`
(launcher.spec.validation), whose readers (SpecReader) it uses."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from launcher.errors import did_you_mean
from launcher.spec import sweep as config
from launcher.spec.sweep import (
    CLASSIFICATION_ONLY_TASK_KEYS,
    FORECAST_ONLY_TASK_KEYS,
    MIN_CONTEXT,
    SPLIT_KEYS,
    TASK_KEYS,
    USER_DATA_TASK_KEYS,
    TaskSpec,
)
from launcher.spec.types import MAX_COUNT
from launcher.spec.types import join_hints as _hint
from launcher.spec.yaml_nodes import Node, describe


class TaskReader:
    """Task rows (see the module docstring)."""

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
