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
$(VENV)/.installed: pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q torch==2.13.0
	DS_BUILD_OPS=0 $(PY) -m pip install -q -e '.[dev,bench]'
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
