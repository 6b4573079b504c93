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


MINIMAL_SPEC = "name: direct\ntasks:\n  - dataset: ETTh1\n    horizons: [96]\nmethods:\n  naive: {}\n"


def _only(tmp_path, *names):
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(names)   # nothing else was written


def test_out_at_an_existing_file_names_the_key_out(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "sweep.yaml").write_text(MINIMAL_SPEC)
    (tmp_path / "taken").write_text("not a folder")
    assert main(["sweep", "sweep.yaml", "--out", "taken"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: command line: out: the output folder ") and "is an existing file" in err, err
    assert err.count("\n") == 0, err
    _only(tmp_path, "sweep.yaml", "taken")


def test_out_inside_a_file_names_the_key_out(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "sweep.yaml").write_text(MINIMAL_SPEC + "out: taken/sub\n")
    (tmp_path / "taken").write_text("not a folder")
    assert main(["sweep", "sweep.yaml"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: sweep.yaml:7: out: cannot make the output folder"), err
    _only(tmp_path, "sweep.yaml", "taken")


def test_sqlite_store_inside_a_file_is_a_spec_error(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "sweep.yaml").write_text(MINIMAL_SPEC + "tracking: {uri: 'sqlite:///taken/mlflow.db'}\n")
    (tmp_path / "taken").write_text("not a folder")
    assert main(["sweep", "sweep.yaml", "--out", "out"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: sweep.yaml:7: tracking.uri: cannot make the tracking store"), err
    _only(tmp_path, "sweep.yaml", "taken")
