"""Every malformed sweep file, through the real CLI: exit code 2, one message with file:line,
and nothing written (no output folder, no MLflow store)."""
import re
from pathlib import Path

import pytest

from launcher.__main__ import main

BAD = sorted((Path(__file__).parent / "bad_specs").glob("*.yaml"))


def expected_line(path: Path) -> int | None:
    found = re.search(r"^# expect-line:\s*(\d+)", path.read_text(), re.M)
    return int(found.group(1)) if found else None


@pytest.mark.parametrize("path", BAD, ids=[p.stem for p in BAD])
def test_bad_spec_exits_2_and_writes_nothing(path, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "out"
    assert main(["sweep", str(path), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0, err                       # one message
    line = expected_line(path)
    prefix = f"{path}:{line}:" if line else f"{path}"
    assert err.startswith(f"error: {prefix}"), err
    assert list(tmp_path.iterdir()) == []                  # not even the output folder


def test_there_are_at_least_ten_bad_specs():
    assert len(BAD) >= 10
