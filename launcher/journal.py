"""Append-only event log of a sweep: the source of truth for what ran and what finished.

One JSON object per line, flushed and fsynced per event, so a controller killed at any moment
leaves at most one torn last line, which `replay` ignores.
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any, Iterator


class Journal:
    def __init__(self, path: Path):
        self.path = Path(path)

    def append(self, event: str, **fields: Any) -> None:
        record = {"event": event, "time": time.time(), **fields}
        with open(self.path, "a") as fh:
            fh.write(json.dumps(record, sort_keys=True) + "\n")
            fh.flush()
            os.fsync(fh.fileno())

    def replay(self) -> Iterator[dict]:
        if not self.path.exists():
            return
        with open(self.path) as fh:
            for line in fh:
                try:
                    yield json.loads(line)
                except json.JSONDecodeError:
                    # only a torn last line can be malformed (every append is one write + fsync)
                    continue


def finished_trials(journal: Journal) -> set[str]:
    return {e["trial_id"] for e in journal.replay() if e["event"] == "trial_finished"}
