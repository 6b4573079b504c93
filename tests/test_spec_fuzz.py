"""Fuzzing the sweep-spec loader: random YAML documents and random mutations of the shipped sweep
files (sweeps/*.yaml) never give a traceback or a hang. `load_sweep` either returns a spec or raises
`SpecError` (one line, with the file), each case within 2 s (hypothesis' deadline); through the CLI,
a rejected file exits 2 and writes nothing.

The mutations: delete, duplicate or swap lines; set a value to a random one (huge or negative
integers, floats, long strings, unicode, NUL, lists, mappings, aliases, tags); turn a mapping into a
list; put an anchor on one value and aliases to it elsewhere (or inside itself).
"""
from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from launcher.__main__ import main
from launcher.errors import SpecError
from launcher.methods.registry import builtin_methods
from launcher.spec.load import load_sweep
from launcher.spec.sweep import EXECUTOR_KEYS, SCHEDULER_KEYS, SEARCH_KEYS, TASK_KEYS, TOP_KEYS, SweepSpec

ROOT = Path(__file__).resolve().parents[1]
SWEEPS = sorted((ROOT / "sweeps").glob("*.yaml"))
SOURCES = {p.name: p.read_text(encoding="utf-8") for p in SWEEPS}
# Under CI the examples are derandomized (the same cases every run: a red CI is a reproducible bug);
# on a developer's machine every run explores new ones.
FUZZ = settings(deadline=2000, database=None, derandomize=bool(os.environ.get("CI")),
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.filter_too_much])

_KEY_LINE = re.compile(r"^(\s*(?:- )?)([A-Za-z_][A-Za-z0-9_]*):(\s*)([^#\n]*?)(\s*(#.*)?)$")


# ------------------------------------------------------------------------------------ values

WEIRD_SCALARS = [
    "0", "-1", "-0", "2147483648", "1e23", "1.0e+23", "1e400", "-1.0e400", ".nan", ".inf", "0x" + "f" * 600,
    "1" * 5000, "100000000000000000000000000000", "0b101", "0o777", "1:30:00", "1_000", "~", "null", "yes",
    "No", "on", "true", "2024-13-45", "2024-02-29", "2001-12-14t21:59:43.10-05:00", '"\\0"', '"a\\0b"', "\x00",
    '"\\x07"', "\x07", "\ufeff", "é", "天气预报", "🙂", "''", '""', "' '", "[]", "{}", "[1, 2, 3]", "[-1]",
    "{a: 1}", "[[[[[[1]]]]]]", "*undefined", "&a", "!!binary AAAA", "!!python/object:os.system x",
    "!!int x", "!!float y", "!!str 5", "!!set {a, b}", "!!omap [a: 1]", "? a", "|\n  text", ">-", "@x", "`x",
    "%TAG", "---", "...", "- a", "a: b: c", "\t1", "x" * 7000, "sqlite://", "http://:80", "file:x",
    "http://[::1", "../../../../etc/passwd", "/", "~/x", "a/" * 3000, "n" * 300,
]

scalar_text = st.one_of(
    st.sampled_from(WEIRD_SCALARS),
    st.integers(min_value=-10**40, max_value=10**40).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.text(max_size=40).map(json.dumps),                       # any unicode, double-quoted
    st.text(alphabet=st.characters(codec="utf-8"), max_size=20),  # raw, unquoted
    st.integers(min_value=0, max_value=9000).map(lambda n: "y" * n),
)


# ------------------------------------------------------------------------------------ mutations

def _value_lines(lines: list[str]) -> list[int]:
    return [i for i, line in enumerate(lines) if _KEY_LINE.match(line)]


@st.composite
def mutated_sweep(draw) -> tuple[str, str]:
    name = draw(st.sampled_from(sorted(SOURCES)))
    lines = SOURCES[name].splitlines()
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        if not lines:
            break
        op = draw(st.sampled_from(["delete", "duplicate", "swap", "scalar", "scalar", "scalar", "to_list",
                                   "alias", "self_alias", "indent"]))
        i = draw(st.integers(min_value=0, max_value=len(lines) - 1))
        keyed = _value_lines(lines)
        if op == "delete":
            del lines[i]
        elif op == "duplicate":
            lines.insert(i, lines[i])
        elif op == "swap":
            j = draw(st.integers(min_value=0, max_value=len(lines) - 1))
            lines[i], lines[j] = lines[j], lines[i]
        elif op == "indent":
            lines[i] = draw(st.sampled_from(["", " ", "  ", "\t", "    "])) + lines[i]
        elif keyed and op == "scalar":
            k = draw(st.sampled_from(keyed))
            m = _KEY_LINE.match(lines[k])
            lines[k] = f"{m.group(1)}{m.group(2)}: {draw(scalar_text)}"
        elif keyed and op == "to_list":      # a mapping (or value) becomes a list
            k = draw(st.sampled_from(keyed))
            m = _KEY_LINE.match(lines[k])
            lines[k] = f"{m.group(1)}{m.group(2)}: [{m.group(4) or 'a'}, {m.group(4) or 'b'}]"
        elif len(keyed) >= 2 and op in ("alias", "self_alias"):
            a, b = draw(st.sampled_from(keyed)), draw(st.sampled_from(keyed))
            ma = _KEY_LINE.match(lines[a])
            lines[a] = f"{ma.group(1)}{ma.group(2)}: &x {ma.group(4)}"
            target = a if op == "self_alias" else b
            mb = _KEY_LINE.match(lines[target]) or ma
            if op == "self_alias" and target + 1 < len(lines):
                lines.insert(target + 1, f"{mb.group(1)}  - *x")
            else:
                lines[target] = f"{mb.group(1)}{mb.group(2)}: *x"
    return name, "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------------ documents

schema_keys = st.sampled_from(sorted({*TOP_KEYS, *TASK_KEYS, *EXECUTOR_KEYS, *SEARCH_KEYS, *SCHEDULER_KEYS,
                                      *builtin_methods(), *(p for c in builtin_methods().values() for p in c.params),
                                      "space", "log", "int", "float", "choice", "uri", "baseline"}))
leaves = st.one_of(st.none(), st.booleans(), st.integers(min_value=-10**30, max_value=10**30),
                   st.floats(allow_nan=True), st.text(max_size=30), st.sampled_from(["ETTh1", "naive", "dlinear"]))
trees = st.recursive(leaves, lambda kids: st.lists(kids, max_size=4)
                     | st.dictionaries(st.one_of(schema_keys, st.text(max_size=8)), kids, max_size=5),
                     max_leaves=30)
documents = st.one_of(
    st.fixed_dictionaries({"name": leaves, "tasks": trees, "methods": trees},
                          optional={k: trees for k in TOP_KEYS if k not in ("name", "tasks", "methods")})
    .map(lambda d: yaml.safe_dump(d, allow_unicode=True)),
    trees.map(lambda d: yaml.safe_dump(d, allow_unicode=True)),
    st.text(alphabet=st.sampled_from(list(":-[]{},&*!|>'\"#%@?~ \n\t\\") + list("abxyz019") + ["\x00", "é", "\ufeff"]),
            max_size=200),
    st.text(max_size=200),
)


# ------------------------------------------------------------------------------------ checks

@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("fuzz")
    for path in SWEEPS:          # warm the lazy imports (Nevergrad, the task registries) outside the deadline
        load_sweep(path)
    return folder


def _load(folder: Path, text: str) -> SweepSpec | SpecError:
    path = folder / "sweep.yaml"
    path.write_text(text, encoding="utf-8")
    try:
        spec = load_sweep(path)
    except SpecError as err:
        message = str(err)
        assert message.startswith(str(path)), message      # it says which file
        assert "\n" not in message and len(message) < 2000, message
        return err
    assert isinstance(spec, SweepSpec)
    return spec


@settings(FUZZ, max_examples=150)
@given(text=documents)
def test_random_documents_load_or_give_one_spec_error(workdir, text):
    _load(workdir, text)


@settings(FUZZ, max_examples=200)
@given(case=mutated_sweep())
def test_mutated_sweeps_load_or_give_one_spec_error(workdir, case):
    _load(workdir, case[1])


@pytest.mark.slow
@settings(FUZZ, max_examples=2500)
@given(case=mutated_sweep())
def test_many_mutated_sweeps(workdir, case):
    _load(workdir, case[1])


@pytest.mark.slow
@settings(FUZZ, max_examples=1500)
@given(text=documents)
def test_many_random_documents(workdir, text):
    _load(workdir, text)


@settings(FUZZ, max_examples=12)
@given(case=mutated_sweep())
def test_cli_rejects_bad_mutants_with_exit_2_and_writes_nothing(tmp_path_factory, workdir, case):
    """Through `main` (no --dry-run): exit 2 and no output folder. A mutant the loader accepts would
    start a real sweep, so only rejected ones go through the CLI here (valid sweeps run in the e2e tests)."""
    folder = tmp_path_factory.mktemp("cli")
    if not isinstance(_load(folder, case[1]), SpecError):
        return
    out = folder / "out"
    code = main(["sweep", str(folder / "sweep.yaml"), "--out", str(out), "--backend", "inline"])
    assert code == 2
    assert sorted(p.name for p in folder.iterdir()) == ["sweep.yaml"]

