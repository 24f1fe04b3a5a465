PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup test demo style bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

test: $(STAMP)
	$(BIN)/python -m pytest -q

demo: $(STAMP)
	$(BIN)/patron demo

style: $(STAMP)
	$(BIN)/ruff check patron features models training targeting serving tests benchmarks notebooks

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_features.py

clean:
	rm -rf $(VENV) .pytest_cache
