"""`status` keeps its fold of the journal in status.cache.json and next time reads only what was
appended: whatever happened to the journal in between (appends, a torn last line and its repair, a
journal replaced by another one, a damaged or hostile cache file, a read-only folder), the answer is
the one a fold from the first line gives."""
import json
import os
import random
from pathlib import Path

import pytest

from launcher.engine.journal import Journal
from launcher.engine.progress import STATUS_CACHE, read_status, render_status

STUDIES = ["ETTh1-96/dlinear", "ETTh1-192/dlinear", "ETTh1-96/dlinear[random]"]


def events(seed: int, trials: int, start: int = 0):
    """A journal's events shaped like a sweep's: asks, submissions, rung ends, failures."""
    rng = random.Random(seed)
    for t in range(start, start + trials):
        study = STUDIES[t % len(STUDIES)]
        tid = f"{study}__t{t:04d}"
        yield {"event": "asked", "study": study, "trial_id": tid, "params": {"lr": rng.random()}}
        for rung in (1, 2, 4):
            yield {"event": "submitted", "trial_id": tid, "until_epoch": rung, "job_id": str(t)}
            if rng.random() < 0.1:
                yield {"event": "trial_failed", "trial_id": tid, "until_epoch": rung, "retry": rng.random() < 0.5,
                       "loss": None, "error": "x", "study": study}
                break
            if rng.random() < 0.15:
                break                   # still running
            stop = rung == 4 or rng.random() < 0.4
            yield {"event": "segment_done", "trial_id": tid, "until_epoch": rung, "study": study,
                   "value": rng.random(), "metrics": {}, "lines": rung, "next_epoch": None, "loss": None,
                   "decision": ("complete" if rung == 4 else "stop") if stop else "continue"}
            if stop:
                break


def make_folder(folder: Path) -> Journal:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "plan.json").write_text(json.dumps([{"study": s, "trials": 40, "mode": "min"} for s in STUDIES]))
    return Journal(folder / "journal.jsonl")


def append(journal: Journal, seed: int, trials: int, start: int) -> None:
    for event in events(seed, trials, start):
        journal.append(event.pop("event"), **event)


def fresh(folder: Path) -> str:
    return render_status(read_status(folder, cache=False))


def cached(folder: Path) -> str:
    return render_status(read_status(folder))


def test_the_cached_status_equals_a_fold_from_the_first_line_through_appends_tears_and_repairs(tmp_path):
    folder = tmp_path / "sweep"
    journal = make_folder(folder)
    journal.append("sweep_started", pid=1, studies=3, resumed=False)
    append(journal, 0, 30, 0)
    assert cached(folder) == fresh(folder)
    first_cache = json.loads((folder / STATUS_CACHE).read_text())
    assert first_cache["offset"] == (folder / "journal.jsonl").stat().st_size
    append(journal, 1, 25, 30)
    assert cached(folder) == fresh(folder)
    # a killed controller's torn last line: not read, and not cached past
    with open(folder / "journal.jsonl", "ab") as fh:
        fh.write(b'{"event": "segment_done", "trial_id": "ETTh1-96/dlinear__t0099", "until_')
    assert cached(folder) == fresh(folder)
    assert json.loads((folder / STATUS_CACHE).read_text())["offset"] < (folder / "journal.jsonl").stat().st_size
    journal.repair_tail()                         # the next controller cuts it off and goes on
    journal.append("paused", failed=3, ended=9, max_failure_rate=0.1)
    append(journal, 2, 10, 55)
    assert cached(folder) == fresh(folder)
    assert "PAUSED" in cached(folder)


def test_a_journal_replaced_by_another_is_read_from_its_first_line(tmp_path):
    folder = tmp_path / "sweep"
    journal = make_folder(folder)
    append(journal, 0, 40, 0)
    assert cached(folder) == fresh(folder)
    # another sweep's journal copied over this one, as long or longer: same path, different bytes
    other = make_folder(tmp_path / "other")
    append(other, 7, 60, 0)
    os.replace(tmp_path / "other" / "journal.jsonl", folder / "journal.jsonl")
    assert cached(folder) == fresh(folder)
    # rewritten in place (same inode), the same length, one value changed near the start
    data = bytearray((folder / "journal.jsonl").read_bytes())
    at = data.index(b'"value": 0.') + len(b'"value": 0.')
    data[at] = ord("0") if data[at] != ord("0") else ord("9")
    with open(folder / "journal.jsonl", "r+b") as fh:
        fh.write(bytes(data))
    assert cached(folder) == fresh(folder)


@pytest.mark.parametrize("content", [
    "not json", "[]", '{"version": 1, "offset": "x"}', '{"version": 1, "offset": 10, "fingerprint": {}, "fold": 3}',
    '{"version": 99}', '{"version": 1, "offset": 999999999}',
])
def test_a_damaged_or_hostile_cache_is_ignored(tmp_path, content):
    folder = tmp_path / "sweep"
    journal = make_folder(folder)
    append(journal, 0, 20, 0)
    (folder / STATUS_CACHE).write_text(content)
    assert cached(folder) == fresh(folder)


def test_a_cache_with_a_forged_fold_but_the_true_fingerprint_is_the_one_thing_it_trusts(tmp_path):
    """The fingerprint ties a fold to the journal's bytes; a fold forged for the same bytes is what a
    cache is, so this documents the trust boundary: the file is data (JSON), never code."""
    folder = tmp_path / "sweep"
    journal = make_folder(folder)
    append(journal, 0, 20, 0)
    cached(folder)
    record = json.loads((folder / STATUS_CACHE).read_text())
    record["fold"]["owner"] = {"__import__('os').system('touch pwned')": "x"}
    (folder / STATUS_CACHE).write_text(json.dumps(record))
    read_status(folder)
    assert not (folder / "pwned").exists() and not Path("pwned").exists()


def test_a_folder_where_the_cache_cannot_be_written_still_answers(tmp_path):
    folder = tmp_path / "sweep"
    journal = make_folder(folder)
    append(journal, 0, 20, 0)
    (folder / STATUS_CACHE).mkdir()          # (a read-only folder, for a user who is not root)
    assert cached(folder) == fresh(folder)
    assert (folder / STATUS_CACHE).is_dir() and not list(folder.glob(f".{STATUS_CACHE}.tmp*"))
