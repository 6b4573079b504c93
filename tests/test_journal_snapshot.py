"""Journal snapshots (launcher.engine.snapshot): a resume that starts from a snapshot and replays only the
events after it builds exactly what a replay of the whole journal builds, whatever line the snapshot
was cut at; a snapshot that does not match the journal (edited, shortened, other studies, damaged,
another version) is ignored with a note, never trusted; the controller's snapshot child runs while a
sweep runs and leaves a snapshot the next resume uses.

Real parts: the CLI, the controller, nevergrad, ASHA and the simulated backend with injected faults
(preemptions are retried, out-of-memory errors fail trials), so the journal holds every kind of event
a replay handles: asks, submissions, ingest rounds, continue/stop/complete decisions, retried and
failed segments and final retrains.
"""
import json
import zlib
from pathlib import Path

import pytest

from launcher.__main__ import main
from launcher.engine.controller import Controller
from launcher.engine.plan import plan_studies
from launcher.engine.replay import ReplayState
from launcher.engine.snapshot import SNAPSHOT_NAME, Mark, load_snapshot, make_snapshot, replay_state, write_snapshot
from launcher.engine.study import Study
from launcher.spec.load import load_sweep

SWEEP = """
name: snap
out: {out}
seeds: [0, 1]
tasks:
  - dataset: ETTh1
    horizons: [96, 192]
methods:
  synthetic:
    space:
      y: {{float: [0.0, 1.0]}}
      x: {{float: [0.0, 1.0]}}
search:
  trials: {trials}
  random_control: true
  final_epochs: 2
  max_failure_rate: 1.0
  scheduler: {{type: asha, eta: 2, grace: 1, max_epochs: 4}}
executor:
  backend: simulated
  workers: 3
  simulated: {{epoch_seconds: 5, jitter: 0.5, preemption: 0.15, out_of_memory: 0.08, seed: 3}}
"""


def canonical(state) -> str:
    return json.dumps(state.to_json(), sort_keys=True)       # NaN-safe equality


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    """One finished sweep; returns (sweep file, its folder, the journal's bytes)."""
    tmp = tmp_path_factory.mktemp("snap")
    path = tmp / "sweep.yaml"
    path.write_text(SWEEP.format(out=tmp / "out", trials=8))
    assert main(["sweep", str(path)]) == 1          # 1: some trials failed (the injected out-of-memory errors)
    data = (tmp / "out" / "journal.jsonl").read_bytes()
    kinds = {json.loads(line)["event"] for line in data.splitlines()}
    assert {"asked", "final_asked", "submitted", "ingesting", "segment_done", "trial_failed"} <= kinds, kinds
    retried = [json.loads(line) for line in data.splitlines() if b'"trial_failed"' in line]
    assert {e["retry"] for e in retried} == {True, False}, "the faults must give retried and failed segments"
    return path, tmp / "out", data


def line_ends(data: bytes) -> list[int]:
    return [i + 1 for i, byte in enumerate(data) if byte == ord("\n")]


def snapshot_at(out: Path, plans, workers: int, data: bytes, lines: int) -> Mark:
    """What the controller's snapshot child writes after the journal's first `lines` lines."""
    (out / SNAPSHOT_NAME).unlink(missing_ok=True)
    cut = line_ends(data)[lines - 1] if lines else 0
    state, _ = replay_state(out, plans, workers, data[:cut])
    mark = Mark(cut, lines, zlib.crc32(data[:cut]))
    write_snapshot(out, plans, state.to_json(), mark)
    return mark


def test_resuming_from_a_snapshot_cut_at_any_line_equals_replaying_the_whole_journal(swept):
    """For every prefix of the journal (a controller killed after any line), a snapshot cut at its start, in
    its middle, one line before its end or at its end, plus the events after the cut, builds the prefix's state."""
    path, out, data = swept
    spec = load_sweep(path)
    plans, workers = plan_studies(spec), spec.executor.workers
    events = [json.loads(line) for line in data.splitlines()]
    studies = {plan.name: Study(plan, workers) for plan in plans}   # reused: loading a snapshot resets them
    state = ReplayState(studies)
    snapshots, expected = [], []           # after line k: the snapshot's JSON text, and the state, canonical
    for k in range(len(events) + 1):
        if k:
            state.apply(events[k - 1])
        snapshots.append(json.dumps(state.to_json(), allow_nan=True))
        expected.append(canonical(state))
    assert len(set(expected)) > len(events) / 2         # the state changes as the journal goes on
    for end in range(1, len(events) + 1):
        for cut in sorted({0, end // 2, end - 1, end}):
            resumed = ReplayState(studies)
            resumed.load_json(json.loads(snapshots[cut]))
            for event in events[cut:end]:
                resumed.apply(event)
            assert canonical(resumed) == expected[end], f"snapshot after line {cut}, resumed to line {end}"


def resumed_controller(path: Path, out: Path, data: bytes, snapshot_lines: int | None, notes: list[str]):
    """A controller started on this journal, from a snapshot after `snapshot_lines` lines (or none)."""
    (out / "journal.jsonl").write_bytes(data)
    spec = load_sweep(path)
    if snapshot_lines is None:
        (out / SNAPSHOT_NAME).unlink(missing_ok=True)
    else:
        snapshot_at(out, plan_studies(spec), spec.executor.workers, data, snapshot_lines)
    controller = Controller(spec, echo=notes.append)
    with controller.lock:
        replayed = controller._start()
    return controller, replayed


def controller_view(controller) -> dict:
    """What a resumed controller goes on from, and what each study's optimizer asks next."""
    searching = {name: study for name, study in controller.studies.items() if study.can_ask()}
    # the next ask (the optimizer is rebuilt for it), then the rebuilt optimizers: as many asks and
    # tells, the same recommendation
    asks = {name: study.ask().params for name, study in searching.items()}
    optimizers = {name: (s.optimizer.num_ask, s.optimizer.num_tell, s.optimizer.recommend().value)
                  for name, s in searching.items()}
    assert all(tells > 0 for _, tells, _ in optimizers.values()), optimizers
    return {"queue": [(t.trial_id, until) for t, until in controller.queue], "counts": controller.counts,
            "restore_only": controller.restore_only, "jobs": controller.jobs, "next_asks": asks,
            "optimizers": optimizers,
            "best": {n: getattr(s.best_trial(), "trial_id", None) for n, s in controller.studies.items()}}


@pytest.mark.parametrize("fraction", [0.3, 0.6, 0.9])
def test_a_controller_resumed_from_a_snapshot_goes_on_exactly_as_one_that_replayed_everything(swept, fraction):
    path, out, data = swept
    ends = line_ends(data)
    killed_at = ends[int(len(ends) * fraction)]          # the journal of a controller killed mid-sweep
    prefix = data[:killed_at]
    lines = len(line_ends(prefix))
    notes: list[str] = []
    full, replayed_full = resumed_controller(path, out, prefix, None, notes)
    expected = controller_view(full)
    # mid-search (0.3, 0.6): the optimizers' next asks, rebuilt from the snapshot's log, must agree;
    # in the retrain stage (0.9): the queue of retrains
    assert expected["next_asks"] if fraction < 0.9 else expected["queue"], expected
    for snapshot_lines in (1, lines // 3, lines - 1, lines):
        fast, replayed = resumed_controller(path, out, prefix, snapshot_lines, notes)
        assert replayed == replayed_full == lines
        assert controller_view(fast) == expected, f"snapshot after line {snapshot_lines} of {lines}"
    assert notes == []
    (out / "journal.jsonl").write_bytes(data)


@pytest.mark.parametrize("damage, note", [
    ("edit", "the journal was edited"),
    ("shorten", "shorter than the prefix"),
    ("other_studies", "studies changed"),
    ("torn_snapshot", "damaged"),
    ("old_version", "version"),
    ("bit_rot", "checksum"),
    ("not_a_state", "does not load"),
])
def test_a_snapshot_that_does_not_match_is_ignored_and_the_whole_journal_replayed(swept, damage, note):
    path, out, data = swept
    spec = load_sweep(path)
    plans, workers = plan_studies(spec), spec.executor.workers
    lines = len(line_ends(data)) // 2
    mark = snapshot_at(out, plans, workers, data, lines)
    journal = data
    if damage == "edit":                 # same length, one digit of an early event's time changed
        at = data.index(b'"time": ') + len(b'"time": ') + 3
        journal = data[:at] + (b"1" if data[at:at + 1] != b"1" else b"2") + data[at + 1:]
    elif damage == "shorten":            # a backup restored: the journal ends before the snapshot's prefix
        journal = data[:line_ends(data)[lines - 3]]
    elif damage == "other_studies":
        plans = plans[:-1]
    elif damage == "torn_snapshot":
        raw = (out / SNAPSHOT_NAME).read_bytes()
        (out / SNAPSHOT_NAME).write_bytes(raw[: len(raw) // 2])
    elif damage == "bit_rot":            # one byte of the state changed, the file still valid JSON
        raw = (out / SNAPSHOT_NAME).read_bytes()
        at = raw.index(b'"trial_id"') if b'"trial_id"' in raw else raw.index(b'"queue"')
        (out / SNAPSHOT_NAME).write_bytes(raw[:at + 2] + raw[at + 2:at + 3].swapcase() + raw[at + 3:])
    elif damage == "old_version":
        head, _, body = (out / SNAPSHOT_NAME).read_bytes().partition(b"\n")
        (out / SNAPSHOT_NAME).write_bytes(head.replace(b'"version": 1', b'"version": 0') + b"\n" + body)
    elif damage == "not_a_state":        # checksummed as written, the right version, but a trial row cut short
        state = json.loads((out / SNAPSHOT_NAME).read_bytes().partition(b"\n")[2])
        study = next(s for s in state["studies"].values() if s["trials"])
        study["trials"][0] = study["trials"][0][:3]
        write_snapshot(out, plans, state, mark)
    if damage == "not_a_state":          # found out while loading it: the whole journal is replayed instead
        resumed, loaded = replay_state(out, plans, workers, journal)
        (out / SNAPSHOT_NAME).unlink()
        assert canonical(resumed) == canonical(replay_state(out, plans, workers, journal)[0])
    else:
        loaded = load_snapshot(out, plans, journal)
    assert loaded.state is None and loaded.mark.bytes == 0 and note in loaded.note, loaded.note
    assert mark.bytes > 0
    if damage in ("edit", "shorten"):    # and the controller says so, and replays the journal it has
        notes: list[str] = []
        (out / "journal.jsonl").write_bytes(journal)
        controller = Controller(spec, echo=notes.append)
        with controller.lock:
            replayed = controller._start()
        assert any(note in n for n in notes), notes
        assert replayed == len(line_ends(journal))
    (out / "journal.jsonl").write_bytes(data)
    (out / SNAPSHOT_NAME).unlink(missing_ok=True)


def test_the_snapshot_child_stops_before_a_damaged_line(swept):
    path, out, data = swept
    spec = load_sweep(path)
    plans = plan_studies(spec)
    (out / SNAPSHOT_NAME).unlink(missing_ok=True)
    ends = line_ends(data)
    (out / "journal.jsonl").write_bytes(data[:ends[10]] + b"not json\n" + data[ends[10]:])
    assert make_snapshot(out, plans, spec.executor.workers) is None
    assert not (out / SNAPSHOT_NAME).exists()
    (out / "journal.jsonl").write_bytes(data)
    mark = make_snapshot(out, plans, spec.executor.workers)
    assert mark is not None and mark.bytes == len(data) and mark.lines == len(ends)
    assert make_snapshot(out, plans, spec.executor.workers) is None         # nothing new since
    (out / SNAPSHOT_NAME).unlink()


def test_a_running_sweep_leaves_snapshots_that_its_resume_uses(write_sweep, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("LAUNCHER_SNAPSHOT_EVERY", "15")
    out = tmp_path / "out"
    path = write_sweep(SWEEP.format(out=out, trials=6))
    assert main(["sweep", str(path)]) == 1                 # 1: some trials failed (injected), by design
    data = (out / "journal.jsonl").read_bytes()
    spec = load_sweep(path)
    plans, workers = plan_studies(spec), spec.executor.workers
    loaded = load_snapshot(out, plans, data)         # written by the controller's child while the sweep ran
    assert loaded.state is not None and 15 <= loaded.mark.lines <= len(line_ends(data)), loaded.note
    assert not list(out.glob(f".{SNAPSHOT_NAME}.tmp*"))            # no half-written snapshot left
    resumed, _ = replay_state(out, plans, workers, data)
    child_snapshot = (out / SNAPSHOT_NAME).read_bytes()
    (out / SNAPSHOT_NAME).unlink()
    whole, _ = replay_state(out, plans, workers, data)
    assert canonical(resumed) == canonical(whole)
    (out / SNAPSHOT_NAME).write_bytes(child_snapshot)
    capsys.readouterr()
    assert main(["sweep", str(path)]) == 1                # the finished sweep resumed (its controller has the lock)
    captured = capsys.readouterr()
    assert "snapshot ignored" not in captured.out + captured.err
