"""The verdict line every benchmark prints last (see benchmarks/README.md).

One item per target, items joined by "; ", all on the script's last line of output:

    <metric> = <value> (target <op> <value>): MET | MISSED
    <metric> = n/a (target <op> <value>): SKIPPED (<why>)

SKIPPED means the benchmark cannot measure the target on this machine (gpu_check.py without a CUDA
device); it is never a way to hide a MISSED. The quick-mode test accepts it for gpu_check only.
This file is imported by the scripts beside it (their folder is sys.path[0] when run as a script).
"""
from __future__ import annotations

import operator
import re

OPS = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge, "==": operator.eq}
STATUSES = ("MET", "MISSED", "SKIPPED")
ITEM_RE = re.compile(r"(?P<metric>[A-Za-z0-9_.@/+\-]+) = (?P<value>[^();]+?) "
                     r"\(target (?P<op><=|>=|==|<|>) (?P<target>[^();]+?)\): (?P<status>MET|MISSED|SKIPPED)"
                     r"(?: \((?P<reason>[^();]*)\))?")


def _show(value, fmt: str, unit: str) -> str:
    text = format(value, fmt) if isinstance(value, (int, float)) and not isinstance(value, bool) else str(value)
    return f"{text} {unit}" if unit else text


def verdict(metric: str, value, op: str, target, *, unit: str = "", fmt: str = ".3g") -> str:
    """One item: `value op target` decides MET or MISSED. The value is shown with `fmt`, the target
    in its shortest form ("g"), both followed by `unit`."""
    met = OPS[op](value, target)
    return f"{metric} = {_show(value, fmt, unit)} (target {op} {_show(target, 'g', unit)}): {'MET' if met else 'MISSED'}"


def skipped(metric: str, op: str, target, reason: str, *, unit: str = "") -> str:
    """One item for a target this machine cannot measure; `reason` says why (no parentheses or ';')."""
    reason = re.sub(r"[()]", "", reason.replace(";", ",")).strip()
    return f"{metric} = n/a (target {op} {_show(target, 'g', unit)}): SKIPPED ({reason})"


def verdict_line(items: list[str]) -> str:
    return "; ".join(items)


def print_verdicts(items: list[str]) -> None:
    """Print the verdict line; call it last, nothing may be printed after it."""
    print(verdict_line(items), flush=True)


def parse_verdicts(line: str) -> list[dict]:
    """The items of a verdict line as dicts (metric, value, op, target, status, reason); raises
    ValueError when the line is not a verdict line (every "; "-separated part must be an item)."""
    items = []
    for part in line.strip().split("; "):
        match = ITEM_RE.fullmatch(part)
        if match is None:
            raise ValueError(f"not a verdict item: {part!r}")
        items.append(match.groupdict())
    if not items:
        raise ValueError("empty verdict line")
    return items
