"""Journal snapshots: a resume replays only the events after the last one.

A snapshot (`journal.snapshot.json` in the sweep folder) is the `ReplayState` of a prefix of the
journal, with what pins it to that prefix: its length in bytes and lines and the CRC-32 of those
bytes, a fingerprint of the studies it was built for, and the CRC-32 of the state itself. It is a
cache, never the source of truth:

- a resume loads it only if the journal still starts with exactly those bytes and the studies are the
  same; otherwise it says why and replays the whole journal (the result is the same, only slower);
- it is JSON (no pickle: reading it back runs no code), written to a temporary file and renamed, so a
  kill -9 leaves the old snapshot or the new one, never half of one;
- it is made by a child process of the controller (`Compactor`), from the last snapshot and the events
  after it, while the controller goes on: the loop never waits for it. The child reads only complete
  lines and stops before a damaged one.

A snapshot is due every SNAPSHOT_EVERY events (env LAUNCHER_SNAPSHOT_EVERY), so a resume parses at
most that many events plus what the controller wrote while the last child ran.
"""
from __future__ import annotations

import hashlib
import json
import os
import signal
import zlib
from dataclasses import dataclass
from pathlib import Path

from launcher.engine.child import fork_quiet_child
from launcher.engine.journal import Journal, JournalError
from launcher.engine.replay import ReplayState
from launcher.engine.study import Study, StudyPlan

SNAPSHOT_NAME = "journal.snapshot.json"
FORMAT = "launcher-journal-snapshot"
VERSION = 1          # bump when ReplayState's JSON or the meaning of an event changes
SNAPSHOT_EVERY = 50_000


def snapshot_every() -> int:
    raw = os.environ.get("LAUNCHER_SNAPSHOT_EVERY")
    try:
        return max(1, int(raw)) if raw else SNAPSHOT_EVERY
    except ValueError:
        return SNAPSHOT_EVERY


def plans_fingerprint(plans: list[StudyPlan]) -> str:
    """What the replay of an event depends on, per study (a changed sweep file invalidates the snapshot)."""
    described = [[p.name, p.slug, p.trials, list(p.seeds), p.optimizer, p.optimizer_seed, p.epochs,
                  p.epoch_budget, p.final_epochs, p.objective, p.mode,
                  None if p.asha is None else [p.asha.eta, p.asha.grace, p.asha.max_epochs, p.asha.mode],
                  None if p.space is None else list(p.space.names), p.fixed_params] for p in plans]
    text = json.dumps(described, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class Mark:
    """A prefix of the journal: its first `bytes` bytes, `lines` complete lines, their CRC-32."""
    bytes: int
    lines: int
    crc32: int


@dataclass
class Loaded:
    state: dict | None       # the ReplayState's JSON, or None: replay from the start
    mark: Mark
    note: str | None         # why a snapshot that exists was not used


START = Mark(0, 0, 0)


def load_snapshot(out: Path, plans: list[StudyPlan], journal_bytes: bytes) -> Loaded:
    """The snapshot of `out`, if it is one of a prefix of `journal_bytes` for these studies."""
    path = Path(out) / SNAPSHOT_NAME
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return Loaded(None, START, None)
    except OSError as error:
        return Loaded(None, START, f"journal snapshot unreadable ({error}): replaying the whole journal")
    why = None
    try:
        head, _, body = raw.partition(b"\n")
        doc = json.loads(head)
        mark = Mark(int(doc["journal"]["bytes"]), int(doc["journal"]["lines"]), int(doc["journal"]["crc32"]))
        if doc.get("format") != FORMAT or doc.get("version") != VERSION:
            why = f"it is version {doc.get('version')!r} of {doc.get('format')!r}, not {VERSION}"
        elif zlib.crc32(body) != doc["state_crc32"]:
            why = "it is damaged (its state does not match its checksum)"
        elif doc.get("plans") != plans_fingerprint(plans):
            why = "the sweep's studies changed since it was written"
        elif mark.bytes > len(journal_bytes) or (mark.bytes and journal_bytes[mark.bytes - 1:mark.bytes] != b"\n"):
            why = "the journal is shorter than the prefix it covers"
        elif zlib.crc32(memoryview(journal_bytes)[:mark.bytes]) != mark.crc32:
            why = "the journal's first bytes are not the ones it covers (the journal was edited)"
        else:
            return Loaded(json.loads(body), mark, None)
    except (ValueError, KeyError, TypeError) as error:
        why = f"it is damaged ({type(error).__name__})"
    return Loaded(None, START, f"journal snapshot ignored: {why}; replaying the whole journal")


def write_snapshot(out: Path, plans: list[StudyPlan], state: dict, mark: Mark) -> None:
    """Two lines: a header (what it covers, the state's checksum), then the state."""
    body = json.dumps(state, allow_nan=True).encode()           # one-shot dumps: the C encoder
    head = {"format": FORMAT, "version": VERSION, "plans": plans_fingerprint(plans), "state_crc32": zlib.crc32(body),
            "journal": {"bytes": mark.bytes, "lines": mark.lines, "crc32": mark.crc32}}
    path = Path(out) / SNAPSHOT_NAME
    tmp = path.with_name(f".{SNAPSHOT_NAME}.tmp{os.getpid()}")
    with open(tmp, "wb") as fh:
        fh.write(json.dumps(head).encode() + b"\n" + body)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def remove_stale_temporaries(out: Path) -> None:
    """Temporary files of snapshot children that were killed mid-write."""
    for tmp in Path(out).glob(f".{SNAPSHOT_NAME}.tmp*"):
        tmp.unlink(missing_ok=True)


def replay_state(out: Path, plans: list[StudyPlan], workers: int, data: bytes, *,
                 studies: dict[str, Study] | None = None) -> tuple[ReplayState, Loaded]:
    """The ReplayState of the whole of `data` (the journal's complete lines): the snapshot's, then the
    events after it. Its `studies` are `studies` (fresh ones of `plans`), or new ones when a snapshot
    failed to load into them halfway."""
    state = ReplayState(studies if studies is not None else {p.name: Study(p, workers) for p in plans})
    loaded = load_snapshot(out, plans, data)
    if loaded.state is not None:
        try:
            state.load_json(loaded.state)
        except (KeyError, IndexError, ValueError, TypeError, AttributeError) as error:   # valid JSON, not a state
            state = ReplayState({p.name: Study(p, workers) for p in plans})
            loaded = Loaded(None, START, f"journal snapshot ignored: its state does not load ({type(error).__name__}: "
                                         f"{error}); replaying the whole journal")
    for event in Journal(Path(out) / "journal.jsonl").replay(data=data, start=loaded.mark.bytes,
                                                              first_line=loaded.mark.lines + 1):
        state.apply(event)
    return state, loaded


def make_snapshot(out: Path, plans: list[StudyPlan], workers: int, data: bytes | None = None) -> Mark | None:
    """Snapshot the journal's complete lines now (what the Compactor's child runs), or only its first
    bytes `data`. None: nothing new, or a damaged line (the controller reports that one itself)."""
    if data is None:
        data = Journal(Path(out) / "journal.jsonl").read_bytes()
    data = data[:data.rfind(b"\n") + 1]
    try:
        state, loaded = replay_state(out, plans, workers, data)
    except JournalError:
        return None
    if len(data) == loaded.mark.bytes:
        return None
    mark = Mark(len(data), state.events, zlib.crc32(memoryview(data)[loaded.mark.bytes:], loaded.mark.crc32))
    write_snapshot(out, plans, state.to_json(), mark)
    return mark


class Compactor:
    """Starts a snapshot child when SNAPSHOT_EVERY events were journalled since the last one began."""

    def __init__(self, out: Path, plans: list[StudyPlan], workers: int, unsnapshotted: int):
        self.out, self.plans, self.workers = Path(out), plans, workers
        self.every = snapshot_every()
        self.unsnapshotted = unsnapshotted       # events in the journal after the last snapshot's prefix
        self.pid: int | None = None
        self.started = 0
        remove_stale_temporaries(self.out)

    def tick(self, appended: int) -> None:
        """`appended`: events journalled so far by this controller (cheap: called every loop round)."""
        if self.pid is not None and os.waitpid(self.pid, os.WNOHANG)[0]:
            self.pid = None
        if self.pid is None and self.unsnapshotted + appended - self.started >= self.every:
            self.unsnapshotted, self.started = 0, appended
            self.pid = fork_quiet_child(lambda: 0 if make_snapshot(self.out, self.plans, self.workers) else 2)

    def close(self, *, wait: bool) -> None:
        """Wait for a child still writing (or stop it: the next controller replays a little more)."""
        if self.pid is None:
            return
        if not wait:
            try:
                os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        os.waitpid(self.pid, 0)
        self.pid = None
        if not wait:
            remove_stale_temporaries(self.out)
