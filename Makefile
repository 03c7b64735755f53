# The README's two commands are `make run` and `make test`; everything else is a helper.
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: run test setup setup-dev lint lint-only format test-fast screenshots bench clean

run: setup  ## set up if needed, then serve the studio on 127.0.0.1:7860
	$(VENV)/bin/studio serve

# Converted test models persist here between local runs (a fresh clone converts once).
export STUDIO_TEST_MODEL_HOME ?= $(abspath $(VENV))/studio-test-home

test: setup-dev  ## set up (with dev + browser deps) if needed, lint, run the whole suite
	@$(MAKE) --no-print-directory lint-only
	$(PY) -m pytest

setup:
	@scripts/bootstrap.sh run

setup-dev:
	@scripts/bootstrap.sh dev

lint: setup-dev lint-only

lint-only:
	$(PY) -m ruff check studio tests app.py benchmarks
	$(PY) -m ruff format --check studio tests app.py benchmarks
	$(PY) -m mypy
	$(VENV)/bin/lint-imports

format: setup-dev
	$(PY) -m ruff format studio tests app.py benchmarks
	$(PY) -m ruff check --fix studio tests app.py benchmarks

test-fast: setup-dev  ## unit tests only (no model, no browser)
	$(PY) -m pytest -m "not model and not browser"

# Browser tests save their screenshots in test-artifacts/; this redraws the ones the docs show.
screenshots: setup-dev  ## run only the browser tests, saving their screenshots into docs/screenshots/
	STUDIO_TEST_SCREENSHOTS=docs/screenshots $(PY) -m pytest -m browser

bench: setup-dev
	$(PY) benchmarks/startup.py
	$(PY) benchmarks/model_load.py
	$(PY) benchmarks/generation.py
	$(PY) benchmarks/compare_throughput.py
	$(PY) benchmarks/tune_throughput.py
	$(PY) benchmarks/served_generation.py
	$(PY) benchmarks/ui_latency.py
	$(PY) benchmarks/shared_cores.py
	$(PY) benchmarks/template_render.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
