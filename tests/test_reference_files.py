"""Every published-reference YAML in sweeps/reference/ loads, says where its numbers come from, and names
only tasks and metrics this project knows (format: sweeps/reference/README.md)."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from launcher.report.load import load_reference
from launcher.report.model import DOMAINS
from tasks.registry import known_tasks

REFERENCE_DIR = Path(__file__).resolve().parent.parent / "sweeps" / "reference"
FILES = sorted(REFERENCE_DIR.glob("*.yaml")) + sorted(REFERENCE_DIR.glob("*.yml"))
FORECAST_TASK = re.compile(r"^(?P<dataset>.+)-(?P<horizon>[1-9][0-9]*)$")
KINDS = {"supervised", "zero-shot FM", "fine-tuned FM"}


def _domain_of(task: str, known: dict[str, str]) -> str | None:
    """The domain of a reference task key: `DATASET-HORIZON` for forecasting, the dataset name otherwise."""
    match = FORECAST_TASK.match(task)
    if match and known.get(match["dataset"]) == "forecasting":
        return "forecasting"
    domain = known.get(task)
    return domain if domain in ("genomics", "satellite") else None


def test_there_are_reference_files():
    assert FILES, f"no reference YAML in {REFERENCE_DIR}"


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_reference_file_is_sourced_and_known(path: Path):
    refs = load_reference(path)                    # raises SpecError when malformed
    assert refs
    doc = yaml.safe_load(path.read_text())
    source = doc.get("source") or {}
    assert isinstance(source.get("citation"), str) and source["citation"].strip(), "source.citation missing"
    assert isinstance(source.get("url"), str) and source["url"].startswith("http"), "source.url missing"
    known = known_tasks()
    for entry in doc["entries"]:
        protocol = entry.get("protocol", doc.get("protocol"))
        assert isinstance(protocol, str) and protocol.strip(), f"{entry['name']}: no protocol (per file or per entry)"
        assert entry.get("kind", "supervised") in KINDS, f"{entry['name']}: kind {entry.get('kind')!r}"
        if "pretraining_observations" in entry:
            assert isinstance(entry["pretraining_observations"], (int, float)) and entry["pretraining_observations"] > 0
        assert entry["results"], f"{entry['name']}: empty results"
        for task, values in entry["results"].items():
            domain = _domain_of(str(task), known)
            assert domain is not None, f"{entry['name']}: unknown task {task!r}"
            allowed = {m.name for m in DOMAINS[domain].metrics}
            assert values and set(values) <= allowed, f"{entry['name']}.{task}: metrics {sorted(values)} not in {sorted(allowed)}"
    # the loader's view agrees with the file: one Reference per entry, every value kept
    assert [r.name for r in refs] == [e["name"] for e in doc["entries"]]
    assert sum(len(v) for r in refs for v in r.results.values()) == \
        sum(len(v) for e in doc["entries"] for v in e["results"].values())


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_reference_file_says_where_its_numbers_come_from(path: Path):
    """No file without a provenance comment (the document the numbers were read from)."""
    text = path.read_text()
    comments = "\n".join(line for line in text.splitlines() if line.lstrip().startswith("#"))
    assert re.search(r"(?i)provenance|read from|source", comments), f"{path.name}: no comment saying where the numbers come from"


def test_readme_lists_every_reference_file():
    readme = (REFERENCE_DIR / "README.md").read_text()
    for path in FILES:
        assert f"`{path.name}`" in readme, f"README.md table lacks {path.name}"
    assert re.search(r"(?im)^#+ .*missing", readme), "README.md lacks a 'missing' section"
