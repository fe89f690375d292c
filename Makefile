# Two commands do everything on a fresh clone with Python 3.11+: `make demo`, `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: install demo test lint bench clean

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

# Imports the sample customers, then their transactions, into a sandbox API started for
# the run (etl/demo.py). The samples hold a handful of deliberately bad rows, so each
# import itself exits 1: that is the demo.
demo: install
	$(BIN)/python -m etl.demo

lint: install
	$(BIN)/ruff check etl schemas tests bench
	$(BIN)/ruff format --check etl schemas tests bench
	$(BIN)/mypy

test: lint
	$(BIN)/pytest -q

# Speed and memory against baselines measured in the same run (see bench/README.md).
bench: install
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev,bench]'
	$(BIN)/python -m bench.transports --repeats 1
	$(BIN)/python -m bench.run

clean:
	rm -rf $(VENV) build .mypy_cache .ruff_cache .pytest_cache .hypothesis
