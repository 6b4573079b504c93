"""Public entry points of the spec: read a sweep file (`load_sweep`), a sweep folder's record
(`read_record`, `load_recorded_sweep`) and write one (`spec_to_dict`)."""
from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any, Mapping

import yaml

from launcher.errors import SpecError
from launcher.spec.sweep import SweepSpec
from launcher.spec.validation import Validator, check_root
from launcher.spec.yaml_nodes import apply_overrides, compose


def load_sweep(path: str | Path, *, overrides: Mapping[str, Any] | None = None) -> SweepSpec:
    """Read, validate and resolve one sweep file. Raises `SpecError` on any problem."""
    shown = str(path)
    source = Path(path).expanduser()
    try:
        text = source.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecError("sweep file not found", file=shown,
                        hint=f"Looked for {source.resolve()}.") from None
    except IsADirectoryError:
        raise SpecError("is a folder, expected a sweep YAML file", file=shown) from None
    except UnicodeDecodeError as e:
        raise SpecError(f"not UTF-8 text ({e.reason} at byte {e.start})", file=shown) from None
    except OSError as e:
        raise SpecError(f"cannot read the file: {e.strerror or e}", file=shown) from None

    root = compose(text, shown)
    check_root(root)
    loader = Validator(shown, source.resolve())
    if overrides:
        apply_overrides(root, overrides)
    return loader.sweep(root)


def spec_to_dict(spec: SweepSpec) -> dict:
    """A JSON-able dict of the resolved spec, shaped like `dataclasses.asdict(spec)`.

    Paths become absolute strings, tuples lists; defaults are filled. So:
    `tasks: [{dataset, horizons, context, path}]`, `methods: [{name, params, space}]` (file order;
    `space` null for methods that are not tuned), `executor: {backend, workers, timeout_min}`,
    `tracking: {uri}` (as given: null means the default SQLite file in `out`, see
    `launcher.tracking.sweep_uri`), `report: {baseline}`, `search: {preset, optimizer, trials,
    epoch_budget, random_control, max_failure_rate, seed, scheduler: {type, eta, grace,
    max_epochs}}` (the preset already applied). A forecasting task's own-data keys (date_column,
    target_channels, split_ratios, split_dates, freq), a task's `loader` and a method row's `method` (when it
    is not the row's name) appear only when set.
    """
    record = _jsonable(asdict(spec))
    # keys newer than the first records only where they say something: an older sweep folder's record
    # stays the same, so `resume` after an upgrade does not see "a different sweep"
    for task in record["tasks"]:
        for key in OPTIONAL_TASK_FIELDS:
            if task.get(key) is None:
                task.pop(key, None)
    for method in record["methods"]:
        if method.get("method") == method["name"]:
            method.pop("method")
    return record


OPTIONAL_TASK_FIELDS = ("date_column", "target_channels", "split_ratios", "split_dates", "freq", "loader")


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value


def read_record(folder: str | Path) -> dict:
    """The resolved spec a sweep folder recorded (`sweep.json`), or one clear error."""
    recorded = Path(folder) / "sweep.json"
    if not recorded.exists():
        raise SpecError(f"{folder} is not a sweep folder (no sweep.json)",
                        hint="pass the output folder of `launcher sweep`")
    return json.loads(recorded.read_text())


def record_as_sweep_file(record: Mapping[str, Any], out: str | Path) -> dict:
    """A recorded spec (`spec_to_dict`) as the mapping of an ordinary sweep file that loads back to it."""
    methods = {}
    for method in record["methods"]:
        entry = dict(method["params"])
        if method.get("method", method["name"]) != method["name"]:
            entry["method"] = method["method"]
        for reserved in ("space", "distributed", "resources"):
            if method.get(reserved) is not None:
                entry[reserved] = method[reserved]
        methods[method["name"]] = entry
    tasks = []
    for task in record["tasks"]:
        # Only the keys of the task's domain (a genomics task has no horizons); the domain follows the name.
        keep = ("dataset", "horizons", "context", "path", "date_column", "target_channels", "freq") \
            if task.get("domain", "forecasting") == "forecasting" else ("dataset", "path", "max_train", "val_fraction")
        if task.get("loader"):
            keep = ("horizons", "context") if task.get("domain", "forecasting") == "forecasting" \
                else ("max_train", "val_fraction")
            tasks.append({"task": task["loader"], **{k: task[k] for k in keep if task.get(k) is not None}})
            continue
        entry = {k: task[k] for k in keep if task.get(k) is not None}
        if task.get("split_ratios") is not None:
            entry["split"] = {"ratios": task["split_ratios"]}
        elif task.get("split_dates") is not None:
            entry["split"] = {"dates": task["split_dates"]}
        tasks.append(entry)
    mapping = {"name": record["name"], "description": record.get("description", ""), "out": str(out),
               "data_root": record.get("data_root"), "seeds": record["seeds"], "tasks": tasks,
               "methods": methods, "executor": {k: v for k, v in record["executor"].items() if v is not None},
               "tracking": record["tracking"], "report": record["report"]}
    if "search" in record:
        mapping["search"] = {k: v for k, v in record["search"].items() if k != "preset"}
    return mapping


def load_recorded_sweep(folder: str | Path, *, overrides: Mapping[str, Any] | None = None) -> SweepSpec:
    """The sweep recorded in `folder/sweep.json`, validated again, for `launcher resume DIR`.

    The record is written back as an ordinary sweep file (`sweep.resolved.yaml`, absolute paths,
    defaults filled) and loaded through `load_sweep`, so a hand-edited record gets the same checks
    and file:line errors as any sweep file.
    """
    folder = Path(folder)
    mapping = record_as_sweep_file(read_record(folder), folder.resolve())
    path = folder / "sweep.resolved.yaml"
    path.write_text("# written by `launcher resume` from sweep.json; edit the original sweep file instead\n"
                    + yaml.safe_dump(mapping, sort_keys=False))
    return load_sweep(path, overrides=overrides)
