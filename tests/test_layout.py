"""The house rules of the code, checked like any behaviour: the import layering of launcher/ (the
import-linter contracts in pyproject.toml) and lint (ruff). Both tools come with the dev extra."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def _tool(name: str) -> str:
    found = BIN / name if (BIN / name).exists() else shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is not installed: pip install -e '.[dev]'")
    return str(found)


def test_import_contracts_hold():
    done = subprocess.run([_tool("lint-imports")], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]


def test_ruff_passes():
    done = subprocess.run([_tool("ruff"), "check", "--output-format", "concise", "."], cwd=ROOT,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]


def test_a_layering_violation_is_caught(tmp_path):
    """The contracts can fail: a copy of the tree where tasks/ imports launcher is refused."""
    copy = tmp_path / "tree"
    for name in ("launcher", "models", "tasks"):
        shutil.copytree(ROOT / name, copy / name, ignore=shutil.ignore_patterns("__pycache__", "data"))
    shutil.copy(ROOT / "pyproject.toml", copy / "pyproject.toml")
    with open(copy / "tasks" / "registry.py", "a") as fh:
        fh.write("\nimport launcher.engine.journal  # a library reaching up into the launcher\n")
    done = subprocess.run([_tool("lint-imports")], cwd=copy, capture_output=True, text=True,
                          env={"PYTHONPATH": str(copy), "PATH": "/usr/bin:/bin"})
    assert done.returncode != 0
    assert "tasks.registry -> launcher.engine.journal" in done.stdout
