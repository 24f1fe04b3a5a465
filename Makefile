PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup browser test demo style bench clean

setup: $(STAMP) browser

# Debian's chromium for the tests that open pages in a real headless browser (idempotent).
browser:
	command -v chromium >/dev/null || (apt-get update -qq && apt-get install -y -qq chromium)

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
	$(BIN)/ruff check patron core features models training targeting serving jobs tests benchmarks notebooks

BENCHMARKS := bench_features bench_clv bench_training bench_churn bench_targeting bench_batch bench_api

bench: $(STAMP)
	for b in $(BENCHMARKS); do echo "== $$b"; $(BIN)/python benchmarks/$$b.py || exit 1; done

clean:
	rm -rf $(VENV) .pytest_cache
