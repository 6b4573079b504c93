"""The sweep file as a tree of `Node`s: each value with the file and 1-based line it came from.

`compose` reads YAML text with `yaml.compose` into that tree (duplicate keys, merge keys and
non-string keys are errors, YAML syntax errors get a hint); `apply_overrides` sets dotted
command-line key paths in it, as nodes whose file is `COMMAND_LINE`. Also the helpers that word
errors about a node: `describe` (what a value is) and `did_you_mean` (close spellings).
Nothing here knows the sweep schema; `launcher.spec_validation` checks the tree against it.
"""
from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any, Iterable, Mapping

import yaml

from .errors import SpecError

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


def compose(text: str, shown: str) -> Node:
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
    return raw

def _convert(node: yaml.Node, shown: str, constructor: yaml.constructor.SafeConstructor,
             path: str) -> Node:
    line = node.start_mark.line + 1
    if isinstance(node, yaml.ScalarNode):
        try:
            value = constructor.construct_object(node, deep=True)
        except yaml.YAMLError as e:
            problem = getattr(e, "problem", None) or str(e)
            raise SpecError(f"cannot read this value: {problem}", file=shown, line=line,
                            key=path or None) from None
        return Node(value, shown, line, text=node.value, plain=node.style is None)
    if isinstance(node, yaml.SequenceNode):
        return Node([_convert(item, shown, constructor, f"{path}[{i}]")
                      for i, item in enumerate(node.value)], shown, line)
    if isinstance(node, yaml.MappingNode):
        out: dict[str, tuple[Node, Node]] = {}
        for key_node, value_node in node.value:
            key_line = key_node.start_mark.line + 1
            if key_node.tag == "tag:yaml.org,2002:merge":
                raise SpecError("YAML merge keys (<<) are not supported", file=shown, line=key_line,
                                key=path or None, hint="Write the keys out.")
            key = _convert(key_node, shown, constructor, path)
            if not isinstance(key.value, str):
                hint = ("YAML reads yes/no/on/off/true/false as booleans; quote the key."
                        if isinstance(key.value, bool) else "Quote the key.")
                raise key.error(path, f"keys must be strings, got {describe(key)}", hint)
            if key.value in out:
                first = out[key.value][0].line
                raise key.error(join_key(path, key.value), f"duplicate key (first given on line {first})",
                                "YAML would silently keep only the last one; remove one of them.")
            out[key.value] = (key, _convert(value_node, shown, constructor, join_key(path, key.value)))
        return Node(out, shown, line)
    raise SpecError(f"unsupported YAML node {type(node).__name__}", file=shown, line=line)


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


def join_key(prefix: str, key: str) -> str:
    return f"{prefix}.{key}" if prefix else key
