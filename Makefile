# phot7dt: two commands on a fresh machine.
#   make demo   create .venv, install, simulate the sample field, run the pipelines, print where outputs are
#   make test   create .venv, install, lint (ruff check), run the test suite
PYTHON ?= python3.11
VENV   := .venv
CONSTRAINTS := requirements/constraints-py311.txt
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
export KEDRO_DISABLE_TELEMETRY := 1
export DO_NOT_TRACK := 1
export KEDRO_LOGGING_CONFIG := conf/logging.yml
export MPLBACKEND := Agg

.PHONY: demo test install benchmarks viz docs clean-data

$(BIN)/python:
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "error: $(PYTHON) not found (phot7dt needs Python 3.11 or newer; e.g. make PYTHON=python3.12)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml $(CONSTRAINTS) | $(BIN)/python
	$(BIN)/python -m pip install --quiet -c $(CONSTRAINTS) -e ".[test,sim,viz,dask]"
	$(BIN)/python -m phot7dt.warmup  # compile the numba kernels once (~45 s of CPU)
	touch $(STAMP)

install: $(STAMP)

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -n 2 --dist loadgroup -q

demo: $(STAMP)
	$(BIN)/kedro run --pipeline simulate -e sample
	$(BIN)/kedro run --pipeline full -e sample
	$(BIN)/kedro run --pipeline validate -e sample
	$(BIN)/python -m phot7dt.demo_summary --work-dir data

benchmarks: $(STAMP)
	$(BIN)/python benchmarks/white_stack.py
	$(BIN)/python benchmarks/engine.py
	$(BIN)/python benchmarks/artefacts.py

docs: $(STAMP)
	$(BIN)/python -m phot7dt.docs_parameters > docs/parameters.md

viz: $(STAMP)
	$(BIN)/kedro viz build

clean-data:
	find data -type f ! -name .gitkeep -delete
