"""The sweep file as a tree of `Node`s: each value with the file and 1-based line it came from.

`compose` reads YAML text with `yaml.compose` into that tree (duplicate keys, merge keys and
non-string keys are errors, YAML syntax errors get a hint); `apply_overrides` sets dotted
command-line key paths in it, as nodes whose file is `COMMAND_LINE`. Also the helpers that word
errors about a node: `describe` (what a value is) and `did_you_mean` (close spellings).
Nothing here knows the sweep schema; `launcher.spec.validation` checks the tree against it.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Mapping

import yaml

from launcher.errors import SpecError

COMMAND_LINE = "command line"


class Node:
    """One value and where it came from. `value` is a scalar, a list of Node, or a dict
    key -> (key Node, value Node) in file order."""

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
        return SpecError(_cut_quoted(message), file=self.file, line=self.line, key=_cut_quoted(key) or None,
                         hint=_cut_quoted(hint))


_LONG_QUOTED = re.compile(r"'([^'\n]{80,})'")


def _cut_quoted(text: str | None) -> str | None:
    """A message that quotes a very long value (a 9,000-character dataset name) cut to one short line."""
    if not text or len(text) < 200:
        return text
    text = _LONG_QUOTED.sub(lambda m: f"'{m.group(1)[:60]}...' ({len(m.group(1))} characters)", text)
    return " ".join(text.split()) if "\n" in text else text


_YAML_HINTS = (
    ("'\\t'", "Indent with spaces; YAML does not allow tabs."),
    ("mapping values are not allowed", "Quote a value that contains ': ', or check the indentation."),
    ("expected <block end>", "Check the indentation of this line against the lines above."),
    ("found character '@'", "Quote values that start with @ or `."),
    ("found character '`'", "Quote values that start with @ or `."),
    ("single document", "A sweep file holds one YAML document; remove the extra `---`."),
    ("while parsing a flow", "Check that every [ and { is closed."),
)


MAX_DEPTH = 64          # lists/mappings nested in one another (a sweep file needs about 6)
MAX_VALUES = 10_000     # values once aliases are expanded (a sweep file holds a few hundred)
_LIMIT_HINT = ("A sweep file holds a few hundred values; write them out instead of nesting "
               "aliases (*name) of anchors (&name).")


class _Loader(yaml.SafeLoader):
    """A SafeLoader whose composer (which recurses once per level) refuses nesting deeper than
    MAX_DEPTH, and remembers where each alias was written (the composer keeps only its anchor)."""

    def __init__(self, text: str, shown: str):
        super().__init__(text)
        self.shown = shown
        self.depth = 0
        self.alias_at: dict[tuple[int, Any], tuple[int, str]] = {}  # (parent, index) -> (line, name)

    def compose_node(self, parent: Any, index: Any) -> yaml.Node:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            key = (id(parent), id(index) if isinstance(index, yaml.Node) else index)
            self.alias_at[key] = (event.start_mark.line + 1, event.anchor)
            return super().compose_node(parent, index)
        self.depth += 1
        try:
            if self.depth > MAX_DEPTH:
                mark = self.peek_event().start_mark
                raise SpecError(f"values are nested more than {MAX_DEPTH} levels deep", file=self.shown,
                                line=mark.line + 1,
                                hint="Check that every [ and { is closed; a sweep file needs a few levels.")
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1


def _reader_error(e: yaml.reader.ReaderError, text: str, shown: str) -> SpecError:
    """A character YAML does not allow (NUL, other control characters), with its line."""
    line = text.count("\n", 0, e.position) + 1 if isinstance(e.position, int) else None
    if isinstance(e.character, int):
        name = {0: " (NUL)", 0xFEFF: " (a byte order mark)"}.get(e.character, "")
        what = f"the character #x{e.character:04x}{name} is not allowed in YAML"
    else:
        what = " ".join(str(e).split())
    hint = "Remove it; a NUL byte often means a binary or UTF-16 file." if e.character == 0 else \
        "Remove it, or write it as an escape (\"\\x07\") inside a double-quoted string."
    return SpecError(f"invalid YAML: {what}", file=shown, line=line, hint=hint)


def compose(text: str, shown: str) -> Node:
    loader = None
    try:
        loader = _Loader(text, shown)
        node = loader.get_single_node()
    except yaml.reader.ReaderError as e:
        raise _reader_error(e, text, shown) from None
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        what = e.problem or e.context or "syntax error"
        if e.context and e.problem:
            context = e.context
            if (context.startswith("while") and e.context_mark is not None and mark is not None
                    and e.context_mark.line != mark.line):
                context += f" started on line {e.context_mark.line + 1}"
            what = f"{context}, {what}" if what.startswith("but ") else f"{what} ({context})"
        what = " ".join(what.split())
        hint = next((h for needle, h in _YAML_HINTS if needle in what), None)
        raise SpecError(f"invalid YAML: {what}", file=shown,
                        line=None if mark is None else mark.line + 1, hint=hint) from None
    except yaml.YAMLError as e:
        raise SpecError(f"invalid YAML: {' '.join(str(e).split())}", file=shown) from None
    except RecursionError:  # a safety net: the depth limit above stops nesting long before
        raise SpecError(f"values are nested more than {MAX_DEPTH} levels deep", file=shown,
                        hint="Check that every [ and { is closed.") from None
    finally:
        if loader is not None:
            loader.dispose()
    if node is None or (isinstance(node, yaml.ScalarNode) and node.tag == "tag:yaml.org,2002:null"):
        raise SpecError("the file is empty", file=shown,
                        hint="A sweep needs at least `name`, `tasks` and `methods` "
                             "(see the schema in launcher/config.py).")
    return _Converter(shown, loader.alias_at).convert(node, "", None)


class _Converter:
    """yaml nodes -> `Node`s. An alias is the very node of its anchor, so a shared node is converted
    once per use: the total is counted (MAX_VALUES) and so is the depth (MAX_DEPTH), and an alias
    inside its own anchor is refused."""

    def __init__(self, shown: str, alias_at: dict[tuple[int, Any], tuple[int, str]]):
        self.shown = shown
        self.alias_at = alias_at
        self.constructor = yaml.constructor.SafeConstructor()
        self.count = 0
        self.open: set[int] = set()    # the nodes being converted (the path from the root)
        self.depth = 0

    def aliased(self, parent: yaml.Node, index: Any, path: str) -> tuple[int, str, str] | None:
        """(line, anchor name, key path) of the alias written as this child of `parent`, or None."""
        found = self.alias_at.get((id(parent), id(index) if isinstance(index, yaml.Node) else index))
        return None if found is None else (*found, path)

    def convert(self, node: yaml.Node, path: str, alias: tuple[int, str, str] | None) -> Node:
        """`alias`: (line, name, key path) of the outermost alias on the way here: the limits'
        errors point there (the anchored value may be far away)."""
        line = node.start_mark.line + 1
        where, where_key = (alias[0], alias[2]) if alias else (line, path)
        if id(node) in self.open:
            name = f" *{alias[1]}" if alias else ""
            raise SpecError(f"the alias{name} is used inside its own anchor (a value that contains "
                            f"itself)", file=self.shown, line=where, key=where_key or None,
                            hint="Write the value out.")
        self.count += 1
        if self.count > MAX_VALUES:
            via = f" (at the alias *{alias[1]})" if alias else ""
            raise SpecError(f"the file expands to more than {MAX_VALUES} values{via}", file=self.shown,
                            line=where, key=where_key or None, hint=_LIMIT_HINT)
        if self.depth >= MAX_DEPTH:
            raise SpecError(f"values are nested more than {MAX_DEPTH} levels deep", file=self.shown,
                            line=where, key=where_key or None, hint=_LIMIT_HINT)
        if isinstance(node, yaml.ScalarNode):
            return self.scalar(node, path, line)
        self.open.add(id(node))
        self.depth += 1
        try:
            if isinstance(node, yaml.SequenceNode):
                return Node([self.convert(item, f"{path}[{i}]", alias or self.aliased(node, i, f"{path}[{i}]"))
                             for i, item in enumerate(node.value)], self.shown, line)
            if isinstance(node, yaml.MappingNode):
                return self.mapping(node, path, alias, line)
        finally:
            self.open.discard(id(node))
            self.depth -= 1
        raise SpecError(f"unsupported YAML node {type(node).__name__}", file=self.shown, line=line)

    def scalar(self, node: yaml.ScalarNode, path: str, line: int) -> Node:
        try:
            value = self.constructor.construct_object(node, deep=True)
        except yaml.YAMLError as e:
            problem = getattr(e, "problem", None) or str(e)
            raise SpecError(f"cannot read this value: {' '.join(problem.split())}", file=self.shown,
                            line=line, key=path or None) from None
        except (ValueError, OverflowError, TypeError) as e:
            if node.style is None and node.tag in _IMPLICIT_TAGS:
                value = node.value    # e.g. 2024-13-45 looks like a date but is none: its text
            else:
                raise SpecError(f"cannot read this value: {e}", file=self.shown, line=line,
                                key=path or None) from None
        if isinstance(value, str) and any("\ud800" <= c <= "\udfff" for c in value):
            # a "\ud800" escape: no file name, parameter or tag can hold it (it is not encodable text)
            raise SpecError("contains a lone surrogate escape (\\ud800-\\udfff), which is not text", file=self.shown,
                            line=line, key=path or None, hint="Remove the \\u escape or write the character itself.")
        return Node(value, self.shown, line, text=node.value, plain=node.style is None)

    def mapping(self, node: yaml.MappingNode, path: str, alias: tuple[int, str, str] | None,
                line: int) -> Node:
        out: dict[str, tuple[Node, Node]] = {}
        for key_node, value_node in node.value:
            key_line = key_node.start_mark.line + 1
            if key_node.tag == "tag:yaml.org,2002:merge":
                raise SpecError("YAML merge keys (<<) are not supported", file=self.shown,
                                line=key_line, key=path or None,
                                hint="Write the keys out.")
            key = self.convert(key_node, path, alias or self.aliased(node, None, path))
            if not isinstance(key.value, str):
                hint = ("YAML reads yes/no/on/off/true/false as booleans; quote the key."
                        if isinstance(key.value, bool) else "Quote the key.")
                raise key.error(path, f"keys must be strings, got {describe(key)}", hint)
            if key.value in out:
                first = out[key.value][0].line
                raise key.error(join_key(path, key.value), f"duplicate key (first given on line {first})",
                                "YAML would silently keep only the last one; remove one of them.")
            here = join_key(path, key.value)
            out[key.value] = (key, self.convert(value_node, here, alias or self.aliased(node, key_node, here)))
        return Node(out, self.shown, line)


_IMPLICIT_TAGS = frozenset(f"tag:yaml.org,2002:{t}" for t in ("timestamp", "int", "float", "bool", "null"))


def _from_python(value: Any) -> Node:
    """An override value (from the CLI) as a command-line Node tree."""
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


def _from_python_value(value: Any) -> Node:
    if isinstance(value, Mapping):
        out = {}
        for k, v in value.items():
            key = Node(k, COMMAND_LINE, None, text=str(k), plain=True)
            if not isinstance(k, str):
                raise key.error(None, f"keys must be strings, got {describe(key)}")
            out[k] = (key, _from_python_value(v))
        return Node(out, COMMAND_LINE, None)
    if isinstance(value, (list, tuple)):
        return Node([_from_python_value(v) for v in value], COMMAND_LINE, None)
    if isinstance(value, Path):
        value = str(value)
    return Node(value, COMMAND_LINE, None, text=None if value is None else str(value), plain=True)


def apply_overrides(root: Node, overrides: Mapping[str, Any]) -> None:
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
                raise SpecError(f"cannot set a key inside {describe(node)}", file=COMMAND_LINE,
                                key=here)
            entry = node.value.get(part)
            key_node = entry[0] if entry else Node(part, COMMAND_LINE, None, text=part, plain=True)
            if last:
                node.value[part] = (key_node, _from_python(value))
            elif entry is None or entry[1].value is None:
                child = Node({}, COMMAND_LINE, None)
                node.value[part] = (key_node, child)
                node = child
            else:
                node = entry[1]


def describe(node: Node) -> str:
    v = node.value
    if v is None:
        return "null"
    if isinstance(v, bool):
        word = "true" if v else "false"
        if node.text and node.text.lower() != word:
            return f"{node.text} (which YAML reads as the boolean {word})"
        return f"{word} (a boolean)"
    if isinstance(v, int):
        return f"{int_text(v)} (an integer)"
    if isinstance(v, float):
        return f"{v} (a number)"
    if isinstance(v, str):
        return f"{short(v)} (a string)"
    if isinstance(v, list):
        return "a list"
    if isinstance(v, dict):
        return "a mapping"
    return f"{short(node.text) if node.text else short(repr(v), quote=False)} (a {type(v).__name__})"


def short(text: str, limit: int = 60, quote: bool = True) -> str:
    """`repr(text)` (or the text), cut to about `limit` characters: messages stay one short line."""
    shown = repr(text) if quote else text
    if len(shown) <= limit:
        return shown
    return f"{shown[:limit]}... ({len(text)} characters)"


def int_text(v: int) -> str:
    """An integer as digits, or its size when it has too many to print."""
    if abs(v) < 10**30:
        return str(v)
    digits = len(str(abs(v))) if v.bit_length() < 10_000 else int(v.bit_length() * 0.30103) + 1
    return f"{'-' if v < 0 else ''}about 10**{digits - 1}"


def join_key(prefix: str, key: str) -> str:
    return f"{prefix}.{key}" if prefix else key
