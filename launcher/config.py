"""Sweep spec: one YAML file -> a typed, validated, frozen `SweepSpec`.

Nothing is submitted before the whole file validates. Every problem raises `SpecError` whose text
names the file, the 1-based line, the key path and what was expected, e.g.

    sweeps/timeseries.yaml:12: methods.autoar.max_dif: unknown key. Did you mean 'max_diff'? ...

The file is read with `yaml.compose` (so every value keeps its line) and walked node by node;
duplicate keys are an error (plain YAML silently keeps the last one).

Schema (defaults in brackets)
-----------------------------

    name: timeseries            # required; [A-Za-z0-9_.-]+ ; the MLflow experiment name
    description: "..."          # optional str [""]
    out: runs/timeseries        # optional [runs/<name>]; relative -> current working directory
    data_root: null             # optional folder; relative -> the YAML file's folder; must exist
    seeds: [0]                  # optional non-empty list of distinct non-negative ints [[0]]
    tasks:                      # required, non-empty list
      - dataset: ETTh1          # required; a key of tasks.timeseries.DATASETS
        horizons: [96, 192]     # optional [the dataset's .horizons]; positive distinct ints
        context: 512            # optional [the dataset's .context]; int >= 8
        path: null              # optional data file; relative -> the YAML file's folder; must exist
    methods:                    # required, non-empty mapping: method name -> params (or null / {})
      autoar: {max_diff: 2}     # params are declared in launcher/methods/params.py (METHOD_PARAMS)
      naive: {}                 #   and checked there: kind, range, choices; defaults are filled in
    executor:                   # optional mapping
      backend: local            # [local]; one of BACKENDS: inline, local
      workers: 2                # [2]; int >= 1
      timeout_min: 60           # [60]; int >= 1
    tracking:                   # optional mapping
      uri: null                 # [sqlite:///<out>/mlflow.db]; sqlite:///..., http(s)://..., file:...
                                #   or a plain path (made absolute against the working directory,
                                #   as is a relative sqlite:///file.db)
    report:                     # optional mapping
      baseline: naive           # optional; one of this sweep's methods

An optional key (or section) set to null is the same as leaving it out. Method params of kind
`path` resolve against the YAML file's folder (they need not exist); `float` params accept ints
and plain scalars such as `1e-3` (which YAML 1.1 reads as a string). String-valued keys accept an
unquoted number or date by its source text (`name: 2024` is the name "2024"); booleans and null
are never taken for strings (YAML reads yes/no/on/off as booleans).

Command-line overrides (`load_sweep(path, overrides={"executor.backend": "inline"})`) are dotted
key paths (list items by index: `tasks.0.context`) set in the raw mapping before validation, so
they are checked exactly like the file; their errors say "command line" instead of file:line.
A string override value is read as a YAML value ("4" -> 4, "[0, 1]" -> a list, "null" -> null);
relative paths given on the command line resolve against the working directory.
"""
from __future__ import annotations

import difflib
import math
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

import yaml

from .errors import SpecError

BACKENDS: tuple[str, ...] = ("inline", "local")
COMMAND_LINE = "command line"

TOP_KEYS = ("name", "description", "out", "data_root", "seeds", "tasks", "methods", "executor",
            "tracking", "report")
TASK_KEYS = ("dataset", "horizons", "context", "path")
EXECUTOR_KEYS = ("backend", "workers", "timeout_min")
TRACKING_KEYS = ("uri",)
REPORT_KEYS = ("baseline",)
URI_SCHEMES = ("sqlite", "http", "https", "file")
MIN_CONTEXT = 8

_NAME_RE = re.compile(r"[A-Za-z0-9_.-]+")
_SCHEME_RE = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*):")

_REQUIRED_HINTS = {
    "name": "Add e.g. `name: my_sweep` (it names the MLflow experiment and the output folder).",
    "tasks": "Add e.g. `tasks: [{dataset: ETTh1}]`.",
    "methods": "Add e.g. `methods: {naive: {}, autoar: {}}`.",
    "dataset": "Add e.g. `dataset: ETTh1`.",
}


# --------------------------------------------------------------------------------------------
# Typed result
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class TaskSpec:
    dataset: str
    horizons: tuple[int, ...]
    context: int
    path: Path | None = None


@dataclass(frozen=True)
class MethodSpec:
    name: str
    params: dict  # every declared param, defaults filled; JSON-able (paths as absolute str)


@dataclass(frozen=True)
class ExecutorSpec:
    backend: str = "local"
    workers: int = 2
    timeout_min: int = 60


@dataclass(frozen=True)
class TrackingSpec:
    uri: str | None = None


@dataclass(frozen=True)
class ReportSpec:
    baseline: str | None = None


@dataclass(frozen=True)
class SweepSpec:
    name: str
    description: str
    source: Path                     # the YAML file, resolved
    out: Path                        # resolved
    data_root: Path | None
    seeds: tuple[int, ...]
    tasks: tuple[TaskSpec, ...]
    methods: tuple[MethodSpec, ...]  # in file order
    executor: ExecutorSpec = field(default_factory=ExecutorSpec)
    tracking: TrackingSpec = field(default_factory=TrackingSpec)
    report: ReportSpec = field(default_factory=ReportSpec)

    def tracking_uri(self) -> str:
        return self.tracking.uri or f"sqlite:///{self.out}/mlflow.db"


def known_datasets() -> Mapping[str, Any]:
    """Dataset name -> info with `.horizons` (tuple of ints) and `.context` (int).

    Imported lazily so that importing this module stays cheap; tests may monkeypatch this function.
    """
    from tasks.timeseries import DATASETS

    return DATASETS


def _method_params() -> Mapping[str, Mapping[str, Any]]:
    from .methods.params import METHOD_PARAMS

    return METHOD_PARAMS


# --------------------------------------------------------------------------------------------
# Public entry points
# --------------------------------------------------------------------------------------------

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

    root = _compose(text, shown)
    loader = _Validator(shown, source.resolve())
    if overrides:
        _apply_overrides(root, overrides)
    return loader.sweep(root)


def spec_to_dict(spec: SweepSpec) -> dict:
    """A JSON-able dict of the resolved spec, shaped like `dataclasses.asdict(spec)`.

    Paths become absolute strings, tuples lists; defaults are filled. So:
    `tasks: [{dataset, horizons, context, path}]`, `methods: [{name, params}]` (file order),
    `executor: {backend, workers, timeout_min}`, `tracking: {uri}` (as given: null means the
    default SQLite file in `out`, see `SweepSpec.tracking_uri()`), `report: {baseline}`.
    """
    return _jsonable(asdict(spec))


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value


# --------------------------------------------------------------------------------------------
# Raw tree: YAML nodes -> _Node (value + where it came from)
# --------------------------------------------------------------------------------------------

class _Node:
    """One value and where it came from. `value` is a scalar, a list of _Node, or a dict
    key -> (key _Node, value _Node) in file order."""

    __slots__ = ("value", "file", "line", "text", "plain")

    def __init__(self, value: Any, file: str, line: int | None, text: str | None = None,
                 plain: bool = False):
        self.value = value
        self.file = file
        self.line = line
        self.text = text      # source text of a scalar
        self.plain = plain    # an unquoted scalar

    @property
    def from_command_line(self) -> bool:
        return self.file == COMMAND_LINE

    def error(self, key: str | None, message: str, hint: str | None = None) -> SpecError:
        return SpecError(message, file=self.file, line=self.line, key=key or None, hint=hint)


_YAML_HINTS = (
    ("'\\t'", "Indent with spaces; YAML does not allow tabs."),
    ("mapping values are not allowed", "Quote a value that contains ': ', or check the indentation."),
    ("expected <block end>", "Check the indentation of this line against the lines above."),
    ("found character '@'", "Quote values that start with @ or `."),
    ("found character '`'", "Quote values that start with @ or `."),
    ("single document", "A sweep file holds one YAML document; remove the extra `---`."),
    ("while parsing a flow", "Check that every [ and { is closed."),
)


def _compose(text: str, shown: str) -> _Node:
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        what = e.problem or e.context or "syntax error"
        if e.context and e.problem:
            context = e.context
            if (context.startswith("while") and e.context_mark is not None and mark is not None
                    and e.context_mark.line != mark.line):
                context += f" started on line {e.context_mark.line + 1}"
            what = f"{context}, {what}" if what.startswith("but ") else f"{what} ({context})"
        hint = next((h for needle, h in _YAML_HINTS if needle in what), None)
        raise SpecError(f"invalid YAML: {what}", file=shown,
                        line=None if mark is None else mark.line + 1, hint=hint) from None
    except yaml.YAMLError as e:
        raise SpecError(f"invalid YAML: {e}", file=shown) from None
    if node is None or (isinstance(node, yaml.ScalarNode) and node.tag == "tag:yaml.org,2002:null"):
        raise SpecError("the file is empty", file=shown,
                        hint="A sweep needs at least `name`, `tasks` and `methods` "
                             "(see the schema in launcher/config.py).")
    raw = _convert(node, shown, yaml.constructor.SafeConstructor(), "")
    if not isinstance(raw.value, dict):
        raise raw.error(None, f"the top level must be a mapping of keys ({', '.join(TOP_KEYS)}), "
                              f"got {_describe(raw)}")
    return raw


def _convert(node: yaml.Node, shown: str, constructor: yaml.constructor.SafeConstructor,
             path: str) -> _Node:
    line = node.start_mark.line + 1
    if isinstance(node, yaml.ScalarNode):
        try:
            value = constructor.construct_object(node, deep=True)
        except yaml.YAMLError as e:
            problem = getattr(e, "problem", None) or str(e)
            raise SpecError(f"cannot read this value: {problem}", file=shown, line=line,
                            key=path or None) from None
        return _Node(value, shown, line, text=node.value, plain=node.style is None)
    if isinstance(node, yaml.SequenceNode):
        return _Node([_convert(item, shown, constructor, f"{path}[{i}]")
                      for i, item in enumerate(node.value)], shown, line)
    if isinstance(node, yaml.MappingNode):
        out: dict[str, tuple[_Node, _Node]] = {}
        for key_node, value_node in node.value:
            key_line = key_node.start_mark.line + 1
            if key_node.tag == "tag:yaml.org,2002:merge":
                raise SpecError("YAML merge keys (<<) are not supported", file=shown, line=key_line,
                                key=path or None, hint="Write the keys out.")
            key = _convert(key_node, shown, constructor, path)
            if not isinstance(key.value, str):
                hint = ("YAML reads yes/no/on/off/true/false as booleans; quote the key."
                        if isinstance(key.value, bool) else "Quote the key.")
                raise key.error(path, f"keys must be strings, got {_describe(key)}", hint)
            if key.value in out:
                first = out[key.value][0].line
                raise key.error(_join(path, key.value), f"duplicate key (first given on line {first})",
                                "YAML would silently keep only the last one; remove one of them.")
            out[key.value] = (key, _convert(value_node, shown, constructor, _join(path, key.value)))
        return _Node(out, shown, line)
    raise SpecError(f"unsupported YAML node {type(node).__name__}", file=shown, line=line)


def _from_python(value: Any) -> _Node:
    """An override value (from the CLI) as a command-line _Node tree."""
    if isinstance(value, str) and value.strip():
        try:
            parsed = yaml.safe_load(value)
        except yaml.YAMLError:
            parsed = value
        node = _from_python_value(parsed)
        if not isinstance(parsed, (list, dict)):
            node.text = value.strip()
        return node
    return _from_python_value(value)


def _from_python_value(value: Any) -> _Node:
    if isinstance(value, Mapping):
        out = {}
        for k, v in value.items():
            key = _Node(k, COMMAND_LINE, None, text=str(k), plain=True)
            if not isinstance(k, str):
                raise key.error(None, f"keys must be strings, got {_describe(key)}")
            out[k] = (key, _from_python_value(v))
        return _Node(out, COMMAND_LINE, None)
    if isinstance(value, (list, tuple)):
        return _Node([_from_python_value(v) for v in value], COMMAND_LINE, None)
    if isinstance(value, Path):
        value = str(value)
    return _Node(value, COMMAND_LINE, None, text=None if value is None else str(value), plain=True)


def _apply_overrides(root: _Node, overrides: Mapping[str, Any]) -> None:
    for dotted, value in overrides.items():
        parts = dotted.split(".") if isinstance(dotted, str) else []
        if not parts or any(not p.strip() for p in parts):
            raise SpecError("not a key path", file=COMMAND_LINE, key=str(dotted),
                            hint="Use dotted keys such as executor.backend or tasks.0.context.")
        node = root
        for i, part in enumerate(parts):
            here = ".".join(parts[: i + 1])
            last = i == len(parts) - 1
            if isinstance(node.value, list):
                if not part.isdigit():
                    raise SpecError("is a list; select an item by its index", file=COMMAND_LINE,
                                    key=here, hint=f"e.g. {'.'.join(parts[:i] + ['0'] + parts[i + 1:])}")
                index = int(part)
                if index >= len(node.value):
                    raise SpecError(f"index {index} is out of range (the list has {len(node.value)} "
                                    f"item{'s' if len(node.value) != 1 else ''})",
                                    file=COMMAND_LINE, key=here)
                if last:
                    node.value[index] = _from_python(value)
                else:
                    node = node.value[index]
                continue
            if node.value is None:          # e.g. `executor:` left empty, or `naive:`
                node.value = {}
            if not isinstance(node.value, dict):
                raise SpecError(f"cannot set a key inside {_describe(node)}", file=COMMAND_LINE,
                                key=here)
            entry = node.value.get(part)
            key_node = entry[0] if entry else _Node(part, COMMAND_LINE, None, text=part, plain=True)
            if last:
                node.value[part] = (key_node, _from_python(value))
            elif entry is None or entry[1].value is None:
                child = _Node({}, COMMAND_LINE, None)
                node.value[part] = (key_node, child)
                node = child
            else:
                node = entry[1]


# --------------------------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------------------------

def _describe(node: _Node) -> str:
    v = node.value
    if v is None:
        return "null"
    if isinstance(v, bool):
        word = "true" if v else "false"
        if node.text and node.text.lower() != word:
            return f"{node.text} (which YAML reads as the boolean {word})"
        return f"{word} (a boolean)"
    if isinstance(v, int):
        return f"{v} (an integer)"
    if isinstance(v, float):
        return f"{v} (a number)"
    if isinstance(v, str):
        return f"{v!r} (a string)"
    if isinstance(v, list):
        return "a list"
    if isinstance(v, dict):
        return "a mapping"
    return f"{node.text or v!r} (a {type(v).__name__})"


def did_you_mean(word: str, options: Iterable[str]) -> str | None:
    """'Did you mean 'x'?' for the closest option(s) to `word`, or None."""
    options = list(dict.fromkeys(options))
    if not isinstance(word, str) or not options:
        return None
    lowered = {o.lower(): o for o in options}
    if word.lower() in lowered and lowered[word.lower()] != word:
        return f"Did you mean '{lowered[word.lower()]}'?"
    scored = []
    for i, option in enumerate(options):
        m = difflib.SequenceMatcher(None, word.lower(), option.lower())
        scored.append((m.ratio(), -i, option))
    close = set(difflib.get_close_matches(word.lower(), list(lowered), n=len(options), cutoff=0.6))
    best = sorted((s for s in scored if s[2].lower() in close), reverse=True)
    if not best:
        return None
    top = [o for r, _, o in best if r == best[0][0]][:3]
    return "Did you mean " + " or ".join(f"'{o}'" for o in top) + "?"


def _join(prefix: str, key: str) -> str:
    return f"{prefix}.{key}" if prefix else key


def _hint(*parts: str | None) -> str | None:
    text = " ".join(p for p in parts if p)
    return text or None


class _Validator:
    def __init__(self, shown: str, source: Path):
        self.shown = shown
        self.source = source
        self.yaml_dir = source.parent
        self.cwd = Path.cwd()

    # -- building blocks ------------------------------------------------------------------

    def mapping(self, node: _Node, key: str, allowed: Iterable[str], what: str
                ) -> dict[str, tuple[_Node, _Node]]:
        if node.value is None:
            return {}
        if not isinstance(node.value, dict):
            raise node.error(key, f"expected a mapping ({what}), got {_describe(node)}")
        allowed = tuple(allowed)
        for name, (key_node, _) in node.value.items():
            if name not in allowed:
                raise key_node.error(_join(key, name), "unknown key",
                                     _hint(did_you_mean(name, allowed),
                                           f"Valid keys{' under ' + key if key else ''}: "
                                           f"{', '.join(allowed)}."))
        return node.value

    @staticmethod
    def present(entries: dict, name: str) -> _Node | None:
        """The value node of an optional key, or None when absent or null."""
        entry = entries.get(name)
        if entry is None or entry[1].value is None:
            return None
        return entry[1]

    @staticmethod
    def require(entries: dict, parent: _Node, prefix: str, name: str) -> _Node:
        entry = entries.get(name)
        if entry is None:
            raise parent.error(_join(prefix, name), "required key is missing",
                               _REQUIRED_HINTS.get(name))
        return entry[1]

    @staticmethod
    def string(node: _Node, key: str, what: str = "a string", hint: str | None = None) -> str:
        v = node.value
        if isinstance(v, str):
            return v
        if node.plain and v is not None and not isinstance(v, (bool, list, dict)) and node.text:
            return node.text  # an unquoted number or date, taken by its source text
        if isinstance(v, bool):
            hint = _hint(hint, "YAML reads yes/no/on/off/true/false as booleans; quote it.")
        raise node.error(key, f"expected {what}, got {_describe(node)}", hint)

    @staticmethod
    def _range_text(minimum: float | None, maximum: float | None) -> str:
        if minimum is not None and maximum is not None:
            return f"between {_num(minimum)} and {_num(maximum)}"
        if minimum is not None:
            return f">= {_num(minimum)}"
        return f"<= {_num(maximum)}"

    def integer(self, node: _Node, key: str, minimum: float | None = None,
                maximum: float | None = None, hint: str | None = None) -> int:
        v = node.value
        if isinstance(v, bool) or not isinstance(v, int):
            if isinstance(v, float) and v.is_integer():
                hint = _hint(f"Write {int(v)} without the decimal point.", hint)
            what = "an integer" if minimum is None and maximum is None else \
                f"an integer {self._range_text(minimum, maximum)}"
            raise node.error(key, f"expected {what}, got {_describe(node)}", hint)
        self.check_range(node, key, v, minimum, maximum, hint)
        return v

    def number(self, node: _Node, key: str, minimum: float | None = None,
               maximum: float | None = None, hint: str | None = None) -> float:
        v = node.value
        if isinstance(v, str) and node.plain:
            try:  # YAML 1.1 reads 1e-3 (no dot) as a string
                v = float(v)
            except ValueError:
                pass
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise node.error(key, f"expected a number, got {_describe(node)}", hint)
        v = float(v)
        if not math.isfinite(v):
            raise node.error(key, f"expected a finite number, got {v}", hint)
        self.check_range(node, key, v, minimum, maximum, hint)
        return v

    def check_range(self, node: _Node, key: str, v: float, minimum: float | None,
                    maximum: float | None, hint: str | None = None) -> None:
        if (minimum is not None and v < minimum) or (maximum is not None and v > maximum):
            raise node.error(key, f"must be {self._range_text(minimum, maximum)}, got {_num(v)}",
                             hint)

    @staticmethod
    def boolean(node: _Node, key: str, hint: str | None = None) -> bool:
        if not isinstance(node.value, bool):
            raise node.error(key, f"expected true or false, got {_describe(node)}", hint)
        return node.value

    def int_list(self, node: _Node, key: str, minimum: float | None = None,
                 maximum: float | None = None, distinct: bool = False, example: str = "[1, 2]",
                 hint: str | None = None) -> tuple[int, ...]:
        if not isinstance(node.value, list):
            extra = None
            if isinstance(node.value, int) and not isinstance(node.value, bool):
                extra = f"Write a list, e.g. [{node.value}]."
            raise node.error(key, f"expected a list of integers such as {example}, "
                                  f"got {_describe(node)}", _hint(extra, hint))
        if not node.value:
            raise node.error(key, f"must not be empty; expected a list of integers such as {example}",
                             hint)
        out: list[int] = []
        first_line: dict[int, tuple[int, int | None]] = {}
        for i, item in enumerate(node.value):
            v = self.integer(item, f"{key}[{i}]", minimum, maximum, hint)
            if distinct and v in first_line:
                first, line = first_line[v]
                where = f" (already item {first}" + (
                    f", line {line})" if line is not None and line != item.line else ")")
                raise item.error(f"{key}[{i}]", f"duplicate value {v}{where}",
                                 "Values must be distinct.")
            first_line[v] = (i, item.line)
            out.append(v)
        return tuple(out)

    def path(self, node: _Node, key: str, base: Path) -> Path:
        text = self.string(node, key, "a path")
        if not text.strip():
            raise node.error(key, "expected a path, got an empty string")
        p = Path(text).expanduser()
        if node.from_command_line:
            base = self.cwd
        return (base / p).resolve()

    def existing(self, node: _Node, key: str, p: Path, *, folder: bool) -> Path:
        relative_to = "the working directory" if node.from_command_line else \
            f"the sweep file's folder ({self.yaml_dir})"
        raw = node.value if isinstance(node.value, str) else node.text
        note = f"Relative paths resolve against {relative_to}." \
            if raw and not Path(str(raw)).expanduser().is_absolute() else None
        if not p.exists():
            raise node.error(key, f"{'folder' if folder else 'file'} not found: {p}", note)
        if folder and not p.is_dir():
            raise node.error(key, f"expected a folder, but {p} is a file", note)
        return p

    # -- sections -------------------------------------------------------------------------

    def sweep(self, root: _Node) -> SweepSpec:
        top = self.mapping(root, "", TOP_KEYS, "the sweep")
        for required in ("name", "tasks", "methods"):
            self.require(top, root, "", required)

        name = self.name(top["name"][1])
        description = ""
        if (n := self.present(top, "description")) is not None:
            description = self.string(n, "description")

        if (n := self.present(top, "out")) is not None:
            out = self.path(n, "out", self.cwd)
        else:
            out = (self.cwd / "runs" / name).resolve()

        data_root = None
        if (n := self.present(top, "data_root")) is not None:
            data_root = self.existing(n, "data_root", self.path(n, "data_root", self.yaml_dir),
                                      folder=True)

        seeds: tuple[int, ...] = (0,)
        if (n := self.present(top, "seeds")) is not None:
            seeds = self.int_list(n, "seeds", minimum=0, distinct=True, example="[0, 1, 2]")

        tasks = self.tasks(top["tasks"][1])
        methods = self.methods(top["methods"][1])
        executor = self.executor(top)
        tracking = self.tracking(top)
        report = self.report(top, methods)
        return SweepSpec(name=name, description=description, source=self.source, out=out,
                         data_root=data_root, seeds=seeds, tasks=tasks, methods=methods,
                         executor=executor, tracking=tracking, report=report)

    def name(self, node: _Node) -> str:
        name = self.string(node, "name", "a sweep name such as timeseries")
        if not _NAME_RE.fullmatch(name) or set(name) == {"."}:
            fixed = re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_") or "my_sweep"
            if set(fixed) == {"."}:
                fixed = "my_sweep"
            raise node.error("name", f"{name!r} is not a valid sweep name; use only letters, digits "
                                     f"and _ . - (it names the MLflow experiment and the output "
                                     f"folder)", f"Try `name: {fixed}`.")
        return name

    def tasks(self, node: _Node) -> tuple[TaskSpec, ...]:
        if not isinstance(node.value, list):
            raise node.error("tasks", f"expected a list of tasks, got {_describe(node)}",
                             "Write e.g. `tasks: [{dataset: ETTh1, horizons: [96]}]`, or one "
                             "`- dataset: ...` line per task.")
        if not node.value:
            raise node.error("tasks", "must name at least one task", "Add e.g. `- dataset: ETTh1`.")
        datasets = known_datasets()
        out: list[TaskSpec] = []
        seen: dict[TaskSpec, int] = {}
        for i, item in enumerate(node.value):
            key = f"tasks[{i}]"
            if item.value is None or not isinstance(item.value, dict):
                raise item.error(key, f"expected a mapping with at least `dataset`, got "
                                      f"{_describe(item)}", "Write e.g. `- dataset: ETTh1`.")
            entries = self.mapping(item, key, TASK_KEYS, "a task")
            dnode = self.require(entries, item, key, "dataset")
            dataset = self.string(dnode, f"{key}.dataset", "a dataset name")
            if dataset not in datasets:
                known = sorted(datasets)
                raise dnode.error(f"{key}.dataset", f"unknown dataset {dataset!r}",
                                  _hint(did_you_mean(dataset, known),
                                        f"Known datasets: {', '.join(known)}."))
            info = datasets[dataset]
            horizons = tuple(int(h) for h in info.horizons)
            if (n := self.present(entries, "horizons")) is not None:
                horizons = self.int_list(n, f"{key}.horizons", minimum=1, distinct=True,
                                         example="[96, 192]")
            context = int(info.context)
            if (n := self.present(entries, "context")) is not None:
                context = self.integer(n, f"{key}.context", minimum=MIN_CONTEXT)
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

    def methods(self, node: _Node) -> tuple[MethodSpec, ...]:
        table = _method_params()
        known = sorted(table)
        example = "Write e.g. `methods: {naive: {}, autoar: {max_diff: 2}}`."
        if not isinstance(node.value, dict):
            raise node.error("methods", f"expected a mapping of method name -> params, "
                                        f"got {_describe(node)}", _hint(example,
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
                                       f"got {_describe(value)}",
                                  f"Write e.g. `{name}: {{}}`." if not declared else
                                  f"Valid params: {', '.join(declared)}.")
            given = value.value or {}
            for pname, (pkey, _) in given.items():
                if pname not in declared:
                    if not declared:
                        raise pkey.error(f"{key}.{pname}", "unknown key",
                                         f"Method {name} takes no params; write `{name}: {{}}`.")
                    raise pkey.error(f"{key}.{pname}", "unknown key",
                                     _hint(did_you_mean(pname, declared),
                                           f"Valid params of {name}: {', '.join(declared)}."))
            params = {}
            for pname, param in declared.items():
                if pname in given:
                    params[pname] = self.param(given[pname][1], f"{key}.{pname}", pname, param)
                else:
                    params[pname] = _copy_default(param.default)
            out.append(MethodSpec(name=name, params=params))
        return tuple(out)

    def param(self, node: _Node, key: str, pname: str, p: Any) -> Any:
        about = f"About {pname}: {p.help}." if getattr(p, "help", None) else None
        if node.value is None:
            if p.nullable:
                return None
            raise node.error(key, f"must not be null; expected {_KIND_TEXT.get(p.kind, p.kind)}",
                             about)
        if p.kind == "int":
            v = self.integer(node, key, p.minimum, p.maximum, about)
        elif p.kind == "float":
            v = self.number(node, key, p.minimum, p.maximum, about)
        elif p.kind == "str":
            v = self.string(node, key, hint=about)
        elif p.kind == "bool":
            v = self.boolean(node, key, about)
        elif p.kind == "int_list":
            items = self.int_list(node, key, p.minimum, p.maximum, hint=about)
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
        entries = self.mapping(entry[1], "executor", EXECUTOR_KEYS, "backend, workers, timeout_min")
        kwargs: dict[str, Any] = {}
        if (n := self.present(entries, "backend")) is not None:
            backend = self.string(n, "executor.backend", "a backend name")
            if backend not in BACKENDS:
                raise n.error("executor.backend", f"unknown backend {backend!r}; expected one of: "
                                                  f"{', '.join(BACKENDS)}",
                              did_you_mean(backend, BACKENDS))
            kwargs["backend"] = backend
        if (n := self.present(entries, "workers")) is not None:
            kwargs["workers"] = self.integer(n, "executor.workers", minimum=1)
        if (n := self.present(entries, "timeout_min")) is not None:
            kwargs["timeout_min"] = self.integer(n, "executor.timeout_min", minimum=1)
        return ExecutorSpec(**kwargs)

    def tracking(self, top: dict) -> TrackingSpec:
        entry = top.get("tracking")
        if entry is None:
            return TrackingSpec()
        entries = self.mapping(entry[1], "tracking", TRACKING_KEYS, "uri")
        n = self.present(entries, "uri")
        if n is None:
            return TrackingSpec()
        key = "tracking.uri"
        hint = "Use sqlite:///path/to/mlflow.db, http(s)://host:port, or a folder path."
        uri = self.string(n, key, "a tracking URI", hint).strip()
        if not uri:
            raise n.error(key, "expected a tracking URI, got an empty string", hint)
        m = _SCHEME_RE.match(uri)
        if m and len(m.group(1)) > 1:  # a one-letter "scheme" is a Windows drive
            scheme = m.group(1).lower()
            if scheme not in URI_SCHEMES:
                raise n.error(key, f"unsupported URI scheme {scheme!r}; expected one of: "
                                   f"{', '.join(URI_SCHEMES)}", _hint(did_you_mean(scheme, URI_SCHEMES), hint))
            if scheme == "sqlite":
                if not uri.startswith("sqlite:///"):
                    raise n.error(key, f"malformed SQLite URI {uri!r}",
                                  "Write sqlite:///relative/mlflow.db or sqlite:////absolute/mlflow.db.")
                db = uri[len("sqlite:///"):]
                if not db or db.endswith("/"):
                    raise n.error(key, f"SQLite URI {uri!r} names no database file", hint)
                if not db.startswith("/"):
                    uri = f"sqlite:///{(self.cwd / db).resolve()}"
            elif scheme in ("http", "https") and not uri.split("://", 1)[1].strip("/"):
                raise n.error(key, f"URI {uri!r} names no host", hint)
            return TrackingSpec(uri=uri)
        return TrackingSpec(uri=str((self.cwd / Path(uri).expanduser()).resolve()))

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


_KIND_TEXT = {"int": "an integer", "float": "a number", "str": "a string", "bool": "true or false",
              "int_list": "a list of integers", "path": "a path"}


def _num(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else repr(float(v))


def _copy_default(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return list(value)
    if isinstance(value, dict):
        return dict(value)
    return value
