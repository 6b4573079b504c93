"""The one rule for the append-only JSON-lines files the launcher reads back (the journal, trial outboxes).

Each writer appends a whole line, newline included, in one write. So a line counts once its newline is
there: the last, unterminated piece of a file is the torn write of a killed writer and is never read. A
complete line that is not a JSON object is damaged; readers decide whether that is fatal (the journal,
when replaying) or skipped (views, outboxes).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Iterator


def complete_lines(data: bytes) -> list[bytes]:
    """The newline-terminated lines of `data`, without their newlines."""
    return data.split(b"\n")[:-1]


def parse_object(raw: bytes) -> dict | None:
    """One line as a JSON object, or None when it is not one (damaged)."""
    try:
        value = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def numbered_objects(path: Path) -> Iterator[tuple[int, dict | None]]:
    """(line number, object or None when damaged) for every complete line of `path` (none if it is missing)."""
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        return
    yield from numbered_objects_in(data)


def numbered_objects_in(data: bytes, first_line: int = 1) -> Iterator[tuple[int, dict | None]]:
    """The same for the bytes of such a file (or of its tail from a line's start: say which line that is)."""
    for number, raw in enumerate(complete_lines(data), start=first_line):
        yield number, parse_object(raw)


def read_objects(path: Path, start: int = 0, stop: int | None = None) -> list[dict]:
    """The complete, undamaged objects of `path`, [start:stop] in the order written."""
    objects = [obj for _, obj in numbered_objects(path) if obj is not None]
    return objects[start:stop]


def cut_torn_tail(path: Path) -> int:
    """Remove an unterminated last line (a killed writer's) so the next append starts a fresh line; bytes cut."""
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        return 0
    if not data or data.endswith(b"\n"):
        return 0
    keep = data.rfind(b"\n") + 1
    with open(path, "r+b") as fh:
        fh.truncate(keep)
    return len(data) - keep
