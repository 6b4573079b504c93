"""The scalar and container readers every sweep-spec section is built from.

`SpecReader` reads one `Node` (from `launcher.spec.yaml_nodes`) as a string, integer, number, boolean,
integer list, path or mapping of allowed keys, and raises `SpecError` with the node's file, line and
key path otherwise. It knows no sweep schema: `launcher.spec.validation.Validator` (the
sections) and `launcher.spec.search.SearchReader` (`search` and method spaces) build on it.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Iterable

from launcher.errors import did_you_mean
from launcher.spec.yaml_nodes import Node, describe, int_text, join_key

# Bounds on what a sweep file may say, so that no value overflows SQLite, MLflow or numpy later.
MAX_INT = 10**9          # any integer without a tighter bound of its own
MAX_COUNT = 10**6        # horizons, context, trials, workers, timeout_min, epochs, budgets
MAX_SEED = 2**31 - 1     # seeds (numpy, torch and Nevergrad accept them all)
MAX_STRING = 6000        # characters of any string (MLflow's limit on a param value)
MAX_PATH = 4096          # characters of a path (Linux PATH_MAX); 255 bytes per folder or file name

REQUIRED_HINTS = {
    "name": "Add e.g. `name: my_sweep` (it names the MLflow experiment and the output folder).",
    "tasks": "Add e.g. `tasks: [{dataset: ETTh1}]`.",
    "methods": "Add e.g. `methods: {naive: {}, autoar: {}}`.",
    "dataset": "Add e.g. `dataset: ETTh1`.",
}


def join_hints(*parts: str | None) -> str | None:
    """The non-empty parts joined into one hint, or None."""
    text = " ".join(p for p in parts if p)
    return text or None


def num(v: float) -> str:
    if isinstance(v, int):
        return int_text(v)
    return str(int(v)) if float(v).is_integer() else repr(float(v))


class SpecReader:
    def __init__(self, shown: str, source: Path):
        self.shown = shown
        self.source = source
        self.yaml_dir = source.parent
        self.cwd = Path.cwd()

    # -- building blocks ------------------------------------------------------------------

    def mapping(self, node: Node, key: str, allowed: Iterable[str], what: str
                ) -> dict[str, tuple[Node, Node]]:
        if node.value is None:
            return {}
        if not isinstance(node.value, dict):
            raise node.error(key, f"expected a mapping ({what}), got {describe(node)}")
        allowed = tuple(allowed)
        for name, (key_node, _) in node.value.items():
            if name not in allowed:
                raise key_node.error(join_key(key, name), "unknown key",
                                     join_hints(did_you_mean(name, allowed),
                                           f"Valid keys{' under ' + key if key else ''}: "
                                           f"{', '.join(allowed)}."))
        return node.value

    @staticmethod
    def present(entries: dict, name: str) -> Node | None:
        """The value node of an optional key, or None when absent or null."""
        entry = entries.get(name)
        if entry is None or entry[1].value is None:
            return None
        return entry[1]

    @staticmethod
    def require(entries: dict, parent: Node, prefix: str, name: str) -> Node:
        entry = entries.get(name)
        if entry is None:
            raise parent.error(join_key(prefix, name), "required key is missing",
                               REQUIRED_HINTS.get(name))
        return entry[1]

    @staticmethod
    def string(node: Node, key: str, what: str = "a string", hint: str | None = None,
               max_length: int = MAX_STRING) -> str:
        v = node.value
        if not isinstance(v, str):
            if node.plain and v is not None and not isinstance(v, (bool, list, dict)) and node.text:
                v = node.text  # an unquoted number or date, taken by its source text
            else:
                if isinstance(v, bool):
                    hint = join_hints(hint, "YAML reads yes/no/on/off/true/false as booleans; quote it.")
                raise node.error(key, f"expected {what}, got {describe(node)}", hint)
        if "\x00" in v:
            raise node.error(key, f"contains a NUL character (\\0) at position {v.index(chr(0)) + 1}",
                             "Remove it.")
        if len(v) > max_length:
            raise node.error(key, f"is {len(v)} characters long; at most {max_length} are allowed",
                             hint)
        return v

    @staticmethod
    def _range_text(minimum: float | None, maximum: float | None) -> str:
        if minimum is not None and maximum is not None:
            return f"between {num(minimum)} and {num(maximum)}"
        if minimum is not None:
            return f">= {num(minimum)}"
        return f"<= {num(maximum)}"

    def integer(self, node: Node, key: str, minimum: float | None = None,
                maximum: float | None = None, hint: str | None = None, ceiling: int = MAX_INT) -> int:
        """An integer in [minimum, maximum]; with no maximum, at most `ceiling`: a bound on sane
        values that only its own error mentions."""
        v = node.value
        if isinstance(v, bool) or not isinstance(v, int):
            if isinstance(v, float) and v.is_integer() and abs(v) <= MAX_INT:
                hint = join_hints(f"Write {int(v)} without the decimal point.", hint)
            what = "an integer" if minimum is None and maximum is None else \
                f"an integer {self._range_text(minimum, maximum)}"
            raise node.error(key, f"expected {what}, got {describe(node)}", hint)
        self.check_range(node, key, v, minimum, maximum, hint)
        if maximum is None:
            self.check_range(node, key, v, None, ceiling, hint)
        return v

    def number(self, node: Node, key: str, minimum: float | None = None,
               maximum: float | None = None, hint: str | None = None) -> float:
        v = node.value
        if isinstance(v, str) and node.plain:
            try:  # YAML 1.1 reads 1e-3 (no dot) as a string
                v = float(v)
            except ValueError:
                pass
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise node.error(key, f"expected a number, got {describe(node)}", hint)
        try:
            v = float(v)
        except OverflowError:     # an integer beyond any float
            v = math.inf
        if not math.isfinite(v):
            raise node.error(key, f"expected a finite number, got {v}", hint)
        self.check_range(node, key, v, minimum, maximum, hint)
        return v

    def check_range(self, node: Node, key: str, v: float, minimum: float | None,
                    maximum: float | None, hint: str | None = None) -> None:
        if (minimum is not None and v < minimum) or (maximum is not None and v > maximum):
            raise node.error(key, f"must be {self._range_text(minimum, maximum)}, got {num(v)}",
                             hint)

    @staticmethod
    def boolean(node: Node, key: str, hint: str | None = None) -> bool:
        if not isinstance(node.value, bool):
            raise node.error(key, f"expected true or false, got {describe(node)}", hint)
        return node.value

    def int_list(self, node: Node, key: str, minimum: float | None = None,
                 maximum: float | None = None, distinct: bool = False, example: str = "[1, 2]",
                 hint: str | None = None, ceiling: int = MAX_INT) -> tuple[int, ...]:
        if not isinstance(node.value, list):
            extra = None
            if isinstance(node.value, int) and not isinstance(node.value, bool):
                extra = f"Write a list, e.g. [{node.value}]."
            raise node.error(key, f"expected a list of integers such as {example}, "
                                  f"got {describe(node)}", join_hints(extra, hint))
        if not node.value:
            raise node.error(key, f"must not be empty; expected a list of integers such as {example}",
                             hint)
        out: list[int] = []
        first_line: dict[int, tuple[int, int | None]] = {}
        for i, item in enumerate(node.value):
            v = self.integer(item, f"{key}[{i}]", minimum, maximum, hint, ceiling)
            if distinct and v in first_line:
                first, line = first_line[v]
                where = f" (already item {first}" + (
                    f", line {line})" if line is not None and line != item.line else ")")
                raise item.error(f"{key}[{i}]", f"duplicate value {v}{where}",
                                 "Values must be distinct.")
            first_line[v] = (i, item.line)
            out.append(v)
        return tuple(out)

    def path(self, node: Node, key: str, base: Path) -> Path:
        text = self.string(node, key, "a path", max_length=MAX_PATH)
        if not text.strip():
            raise node.error(key, "expected a path, got an empty string")
        long_part = next((part for part in text.split("/") if len(part.encode("utf-8", "replace")) > 255), None)
        if long_part is not None:
            raise node.error(key, f"the name {long_part[:40]!r}... is longer than 255 bytes, the limit of "
                                  f"a file or folder name", "Shorten it.")
        p = Path(text).expanduser()
        if node.from_command_line:
            base = self.cwd
        return (base / p).resolve()

    def existing(self, node: Node, key: str, p: Path, *, folder: bool) -> Path:
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
