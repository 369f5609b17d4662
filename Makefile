# Two commands do all set-up on a fresh machine: `make demo` and `make test`.
# Both create (or reuse) .venv and install the project with torch pinned in the
# same pip call: an unpinned torch pulls a multi-GB CUDA build.

PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
TORCH_PIN := torch==2.13.0
STAMP := $(VENV)/.installed

.PHONY: install test test-setup test-fast lint format demo bench clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "$(TORCH_PIN)" -e ".[service,workers,dev]"
	touch $(STAMP)

install: $(STAMP)

lint: $(STAMP)
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/ruff check .

format: $(STAMP)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

# The whole suite, slow tests included (they fit CI's budget). scripts/test-setup.sh starts
# PostgreSQL, installs chromium and clears a stale Ray session first: nothing to do by hand.
test: lint test-setup
	$(PY) -m pytest -q

test-setup:
	./scripts/test-setup.sh

# The default quick loop while developing.
test-fast: $(STAMP)
	$(PY) -m pytest -q -m "not slow"

demo: $(STAMP)
	$(VENV)/bin/vradam-hpo demo

# Speed targets, printed as ratios against a baseline measured in the same run.
bench: $(STAMP)
	$(PY) benchmarks/optimizer_step.py
	$(PY) benchmarks/tasks.py
	$(PY) benchmarks/engine.py
	$(PY) benchmarks/report.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
