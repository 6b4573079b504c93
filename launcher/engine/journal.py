"""Append-only event log of a sweep: the source of truth for what ran and what finished.

One JSON object per line, written with one `write` per event, so a kill -9 never loses an event
written (the page cache outlives the process). `fsync` (for a machine that loses power) is per event,
or deferred inside a `batched()` region: the controller's loop syncs before it submits jobs (an ask is
on disk before its job exists) and before it waits, so a power loss costs at most the events of the
round in progress (re-done on resume). A controller killed at
any moment leaves at most one torn last line (no newline at its end): readers ignore it, and the
next controller cuts it off (`repair_tail`, kept aside in `journal.torn`) before it appends, so a
new event never lands glued to half an old one. Any other line that is not a JSON event means the
file was damaged by something else: the controller refuses to guess (`JournalError`, file:line),
while the read-only views (`status`, `report`) skip it.

Only the controller that holds the sweep folder's lock (`launcher.engine.lock`) appends.
"""
from __future__ import annotations

import contextlib
import json
import os
import time
from pathlib import Path
from typing import Any, Iterator

from launcher.errors import SpecError
from launcher.jsonl import numbered_objects_in


class JournalError(SpecError):
    """A damaged line in the middle of the journal (not a torn last line)."""


class Journal:
    def __init__(self, path: Path):
        self.path = Path(path)
        self._batching = 0
        self._unsynced = False
        self.appended = 0           # events this object appended (the snapshot schedule counts them)

    def append(self, event: str, **fields: Any) -> None:
        record = {"event": event, "time": time.time(), **fields}
        data = (json.dumps(record, sort_keys=True, allow_nan=True) + "\n").encode()
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, data)
            self.appended += 1
            if self._batching:
                self._unsynced = True
            else:
                os.fsync(fd)
        finally:
            os.close(fd)

    @contextlib.contextmanager
    def batched(self) -> Iterator[None]:
        """Events appended inside are written at once and synced by `sync()` or when the region ends."""
        self._batching += 1
        try:
            yield
        finally:
            self._batching -= 1
            if not self._batching:
                self.sync()

    def sync(self) -> None:
        """fsync what was appended since the last sync (nothing to do if nothing was)."""
        if self._unsynced:
            self._unsynced = False
            fd = os.open(self.path, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)

    def read_bytes(self) -> bytes:
        """The whole file (b"" before the first event)."""
        try:
            return self.path.read_bytes()
        except FileNotFoundError:
            return b""

    def repair_tail(self) -> int:
        """Cut a torn last line off (bytes after the last newline); returns how many bytes were cut.
        The cut bytes are appended to `journal.torn` beside it, for forensics."""
        if not self.path.exists():
            return 0
        with open(self.path, "rb+") as fh:
            size = fh.seek(0, os.SEEK_END)
            if size == 0:
                return 0
            block = 1 << 16
            end = size
            while end > 0:                        # find the last newline, reading backwards
                start = max(0, end - block)
                fh.seek(start)
                chunk = fh.read(end - start)
                cut = chunk.rfind(b"\n")
                if cut >= 0:
                    keep = start + cut + 1
                    break
                end = start
            else:
                keep = 0
            if keep == size:
                return 0
            fh.seek(keep)
            torn = fh.read()
            with open(self.path.with_name(self.path.name.replace(".jsonl", "") + ".torn"), "ab") as side:
                side.write(torn + b"\n")
            fh.truncate(keep)
            fh.flush()
            os.fsync(fh.fileno())
        return size - keep

    def replay(self, *, strict: bool = True, data: bytes | None = None, start: int = 0,
               first_line: int = 1) -> Iterator[dict]:
        """The events in order. A torn last line is skipped; a damaged line elsewhere raises
        `JournalError` naming the line (strict) or is skipped (strict=False, read-only views).
        `data`: the file's bytes, already read; `start`: replay from this byte (a line's start, the
        `first_line`-th line), e.g. after a snapshot (engine.snapshot)."""
        if data is None:
            data = self.read_bytes()
        for number, event in numbered_objects_in(data[start:] if start else data, first_line):
            if event is None or not isinstance(event.get("event"), str):
                if strict:
                    raise JournalError(
                        "damaged journal line (not a JSON event); the sweep cannot be replayed past it",
                        file=str(self.path), line=number,
                        hint="Restore the file from a backup, or delete that line to drop the event (the work "
                             "it recorded is then done again)")
                continue
            yield event
