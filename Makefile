PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup chromium test demo style bench clean

setup: $(STAMP) chromium

# The headless browser of the docs-page and report tests (Debian's chromium; playwright drives it, never downloads one).
# Idempotent: nothing happens when /usr/bin/chromium exists; installing needs root (CI has it).
chromium:
	@command -v chromium >/dev/null 2>&1 || { apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null; }

$(STAMP): pyproject.toml
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

# Two workers, one test file per worker (files share module fixtures); conftest.py schedules the longest files first.
test: $(STAMP) chromium
	$(BIN)/python -m pytest -q -n 2 --dist loadfile

demo: $(STAMP) chromium
	$(BIN)/patron demo

style: $(STAMP)
	$(BIN)/ruff check patron core features models training targeting serving jobs tests benchmarks notebooks
	$(BIN)/mypy

BENCHMARKS := bench_features bench_clv bench_training bench_churn bench_targeting bench_campaigns bench_batch bench_api

bench: $(STAMP)
	for b in $(BENCHMARKS); do echo "== $$b"; $(BIN)/python benchmarks/$$b.py || exit 1; done

clean:
	rm -rf $(VENV) .pytest_cache
