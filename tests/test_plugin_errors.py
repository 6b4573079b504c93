"""Bad plugin references in a sweep file: each exits 2 with ONE line `error: FILE:LINE: key: message`
saying what to fix, and writes nothing (the --out folder is never created).

Every case runs `python -m launcher sweep FILE --out DIR` in a subprocess whose PYTHONPATH holds a folder
of small modules written here (and, for the duplicate name, a tiny package pip-installed into a --target
folder whose entry point reuses the built-in name `naive`).
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.slow

ERROR_LINE = re.compile(r"^error: (?P<file>[^:]+):(?P<line>\d+): (?P<key>[^:\s]+): (?P<message>.+)$")

MYMOD = '''
from launcher.methods import Method, MethodResult


class NotAnAdapter:
    """Has no from_pretrained: not an FM adapter."""


def plain_function(*, horizon, context=96, **options):
    """A loader without @task_source."""
    raise AssertionError("never called: validation refuses it first")


class AudioMethod(Method):
    name = "audio_thing"
    kind = "baseline"
    domains = ("audio",)

    def run(self, task, params, report):
        return MethodResult(metrics={})
'''

BROKEN = 'raise RuntimeError("this plugin module fails at import")\n'

DUPLICATE_PYPROJECT = '''
[build-system]
requires = ["setuptools>=68"]
build-backend = "setuptools.build_meta"

[project]
name = "duplicate-naive-plugin"
version = "0.0.1"

[tool.setuptools]
packages = ["duplicate_naive"]

[project.entry-points."launcher.methods"]
naive = "duplicate_naive:NaiveAgain"
'''

DUPLICATE_MODULE = '''
from launcher.methods import Method, MethodResult


class NaiveAgain(Method):
    name = "naive"           # the built-in method's name
    kind = "baseline"

    def run(self, task, params, report):
        return MethodResult(metrics={})
'''

TASK = "tasks:\n  - dataset: ETTh1\n    horizons: [24]\n"


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("plugin_errors")
    modules = root / "modules"
    modules.mkdir()
    (modules / "mymod.py").write_text(MYMOD)
    (modules / "broken_plugin.py").write_text(BROKEN)
    package = root / "duplicate_source"
    (package / "duplicate_naive").mkdir(parents=True)
    (package / "pyproject.toml").write_text(DUPLICATE_PYPROJECT)
    (package / "duplicate_naive" / "__init__.py").write_text(DUPLICATE_MODULE)
    site = root / "duplicate_site"
    done = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-build-isolation", "--no-input",
                           "--disable-pip-version-check", "--quiet", "--target", str(site), str(package)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    return {"modules": modules, "duplicate": site}


# (id, the sweep's methods/tasks text, which folder is on PYTHONPATH, line, key, what the message says)
CASES = [
    ("missing_module", TASK + "methods:\n  mine: {method: no_such_pkg.mod:X}\n", "modules",
     6, "methods.mine.method", "module 'no_such_pkg' is not importable"),
    ("missing_attribute", TASK + "methods:\n  mine: {method: launcher.methods.forecasting:NoSuch}\n", "modules",
     6, "methods.mine.method", "has no attribute 'NoSuch'"),
    ("wrong_base_class", TASK + "methods:\n  mine: {method: pathlib:Path}\n", "modules",
     6, "methods.mine.method", "not a subclass of launcher.methods.Method"),
    ("module_raises_on_import", TASK + "methods:\n  mine: {method: broken_plugin:Thing}\n", "modules",
     6, "methods.mine.method", "raised RuntimeError: this plugin module fails at import"),
    ("duplicate_entry_point_name", TASK + "methods:\n  naive: {}\n", "duplicate",
     6, "methods.naive", "declares name 'naive', which another method already uses"),
    ("unknown_domain", TASK + "methods:\n  mine: {method: mymod:AudioMethod}\n", "modules",
     6, "methods.mine.method", "domains ['audio'] must be a non-empty subset of forecasting, genomics, satellite"),
    ("adapter_without_from_pretrained",
     TASK + "methods:\n  fm:\n    method: finetune\n    adapter: mymod:NotAnAdapter\n    stand_in: tiny\n",
     "modules", 8, "methods.fm.adapter", "has no from_pretrained"),
    ("distributed_on_autoar", TASK + "methods:\n  autoar:\n    distributed: {strategy: ddp, ranks: 2}\n", "modules",
     7, "methods.autoar.distributed", "does not support distributed training with ddp"),
    ("undecorated_task_loader", "tasks:\n  - task: mymod:plain_function\nmethods:\n  naive: {}\n", "modules",
     3, "tasks[0].task", "is a function, not a task source: decorate its loader function with @tasks.plugins.task_source"),
]


@pytest.mark.parametrize("sweep_body, on_path, line, key, says", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_plugin_reference_is_one_line_and_exit_2(folders, tmp_path, sweep_body, on_path, line, key, says):
    sweep = tmp_path / "sweep.yaml"
    sweep.write_text("name: bad_plugin\n" + textwrap.dedent(sweep_body))
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": str(folders[on_path])}
    proc = subprocess.run([sys.executable, "-m", "launcher", "sweep", "sweep.yaml", "--out", str(out)], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2, proc.stdout[-2000:] + proc.stderr[-3000:]
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and proc.stdout.strip() == "", proc.stdout + proc.stderr
    match = ERROR_LINE.match(lines[0])
    assert match, lines[0]
    assert (match["file"], int(match["line"]), match["key"]) == ("sweep.yaml", line, key), lines[0]
    assert says in match["message"], lines[0]
    assert not out.exists(), "a refused sweep must write nothing"
