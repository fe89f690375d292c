# Two commands do everything on a fresh clone with Python 3.11+: `make demo`, `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
# etl/ and schemas/ are installed as the package affelios_import (see pyproject.toml), in
# a strict editable install: a tree of links to each module (under build/), which mypy
# reads as it reads any installed package. It is linked again when a module is added or
# removed: MODULES lists them, rewritten only when the list changes.
MODULES := $(VENV)/.modules
EDITABLE := --config-settings editable_mode=strict
$(shell mkdir -p $(VENV) && find etl schemas -name '*.py' -not -path '*/__pycache__/*' | sort \
	> $(MODULES).now && { cmp -s $(MODULES).now $(MODULES) || mv $(MODULES).now $(MODULES); })

.PHONY: install demo test test-fast lint bench clean

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt $(MODULES)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt $(EDITABLE) -e '.[dev]'
	touch $(STAMP)

# Imports the sample customers, then their transactions, into a sandbox API started for
# the run (etl/demo.py). The samples hold a handful of deliberately bad rows, so each
# import itself exits 1: that is the demo.
demo: install
	$(BIN)/python -m affelios_import.demo

lint: install
	$(BIN)/ruff check etl schemas tests bench
	$(BIN)/ruff format --check etl schemas tests bench
	$(BIN)/mypy

test: lint
	$(BIN)/pytest -q

# The inner loop: the tests that start no server and no process (under 30 s).
test-fast: install
	$(BIN)/pytest -q -m "not slow"

# Speed and memory against baselines measured in the same run (see bench/README.md).
bench: install
	$(BIN)/python -m pip install --quiet -c constraints.txt $(EDITABLE) -e '.[dev,bench]'
	$(BIN)/python -m bench.transports --repeats 1
	$(BIN)/python -m bench.run

clean:
	rm -rf $(VENV) build *.egg-info .mypy_cache .ruff_cache .pytest_cache .hypothesis
