# Two entry points for a fresh machine (Debian/Ubuntu, Python >= 3.10, CPU):
#   make run    set up .venv if missing, then run the forecasting comparison on embedded data
#   make test   set up .venv if missing, then run the test suite
VENV ?= .venv
PY := $(VENV)/bin/python
export PIP_DISABLE_PIP_VERSION_CHECK = 1
export MLFLOW_DISABLE_TELEMETRY = true
export DO_NOT_TRACK = true

.PHONY: run test smoke bench setup

setup: $(VENV)/.installed

# torch is pinned first: the CPU build of 2.13.0 is what CPU machines get; installing deepspeed into
# an env without torch would pull a multi-GB CUDA build. DS_BUILD_OPS=0: DeepSpeed JIT-builds ops later.
# DEHB (benchmarks/hpo_peers.py) goes in last and with --no-deps: its only release, 0.1.2, declares numpy<2.0
# and pip would downgrade the project's numpy; its code runs on numpy 2 (checked with numpy 2.4.6: DEHB's own
# examples, and tests/test_hpo_peers_dehb.py), and its other requirements are in the bench extra. A later pip
# install in this env prints that declared conflict ("dehb 0.1.2 requires numpy<2.0") and goes on (exit 0).
$(VENV)/.installed: pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q torch==2.13.0
	DS_BUILD_OPS=0 $(PY) -m pip install -q -e '.[dev,bench]'
	$(PY) -m pip install -q --no-deps dehb==0.1.2
	touch $@

run: setup
	$(PY) -m launcher sweep sweeps/timeseries.yaml

smoke: setup
	$(PY) -m launcher sweep sweeps/smoke.yaml

test: setup
	$(PY) -m pytest -q

# every benchmark in full mode (tens of minutes on 2 cores); the verdict table goes to benchmarks/results.md
bench: setup
	$(PY) benchmarks/run_all.py
