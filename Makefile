# Every target sets up its own virtual environment (.venv) on first use.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: demo test test-all conformance bench sweep notebooks notebook-wafer lint clean venv gpu

venv: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

## gpu: adds JAX's CUDA 12 plugin to .venv (an NVIDIA GPU and driver needed to use it)
gpu: $(STAMP)
	$(PY) -m pip install --quiet -e '.[dev,gpu]'
	$(PY) -c "import jax; print('JAX devices:', jax.devices())"

## demo: the seed GEMV tutorial (CSL + run.py, unmodified) through wsejax cslc and wsejax python
demo: $(STAMP)
	$(PY) examples/seed.py

## test: the fast test suite and the notebooks
test: $(STAMP) notebooks
	$(PY) -m pytest -q -n auto -m "not slow and not conformance"

## test-all: every test, including the long ones marked slow
test-all: $(STAMP) notebooks
	$(PY) -m pytest -q -n auto

## conformance: every SDK tutorial wsejax runs (shared/sdk-examples beside the repository), timed
conformance: $(STAMP)
	$(PY) -m pytest -q --durations=0 tests/test_tutorials.py

## bench: the GEMV throughput benchmark (writes benchmarks/results/gemv.json)
bench: $(STAMP)
	$(PY) benchmarks/gemv.py

## sweep: both GEMV programs from 1x1 to 750x994 PEs (writes benchmarks/results/sweep.json)
sweep: $(STAMP)
	$(PY) benchmarks/sweep.py

## notebooks: execute every notebook (fails if a cell raises)
notebooks: $(STAMP)
	$(PY) notebooks/run.py

## notebook-wafer: the wafer-scale notebook with the streaming GEMV on 512 x 512 PEs
notebook-wafer: $(STAMP)
	WSEJAX_WAFER_K=512 $(PY) notebooks/run.py notebooks/02-wafer-scale.ipynb

lint: $(STAMP)
	$(PY) -m ruff check wsejax tests benchmarks examples notebooks

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis benchmarks/results
