# Deletion Desk. Quick start: `make run` serves the desk, `make test` runs every test.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: run test lint format install migrate sandbox demo demo-reset bench load clean browser-deps axe-deps

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test]' --config-settings editable_mode=compat
	touch $(STAMP)

install: $(STAMP)

migrate: install
	$(BIN)/desk db upgrade

## Serve the desk at http://127.0.0.1:8000 on SQLite (instance/desk.db), scheduler in-process.
run: migrate
	$(BIN)/desk serve

## A demo on http://127.0.0.1:$(DEMO_PORT): the Heap sandbox on $(SANDBOX_PORT) holding the sample
## list's people, demo accounts (two-factor off), a sample list. `make demo-reset` starts it afresh.
DEMO_PORT ?= 8000
SANDBOX_PORT ?= 8765
DEMO_DB := $(CURDIR)/instance/demo.db
DEMO_ENV := DESK_DATABASE_URL=sqlite:///$(DEMO_DB) DESK_2FA_REQUIRED_ROLES= DESK_POLL_INTERVAL_SECONDS=60 \
	DESK_HEAP_URL_ALLOWLIST=127.0.0.1:$(SANDBOX_PORT) DESK_PORT=$(DEMO_PORT)
demo: install
	@$(DEMO_ENV) $(BIN)/desk db upgrade >/dev/null
	@$(DEMO_ENV) $(BIN)/desk demo-seed --sandbox-url http://127.0.0.1:$(SANDBOX_PORT)
	@$(BIN)/desk sandbox --port $(SANDBOX_PORT) --people instance/demo-subjects.csv & SANDBOX=$$!; \
		trap "kill $$SANDBOX" EXIT INT TERM; \
		$(DEMO_ENV) $(BIN)/desk serve

## Forget the demo: its database and sample list (the sandbox keeps nothing between runs).
demo-reset:
	rm -f $(DEMO_DB) $(DEMO_DB)-wal $(DEMO_DB)-shm instance/demo-subjects.csv
	@echo "The demo starts afresh at the next make demo."

## The Heap sandbox on http://127.0.0.1:8765 (point an environment's base URL at it).
sandbox: install
	$(BIN)/desk sandbox

## Debian's chromium (browser tests; never `playwright install`), pdftotext (certificates) and
## openssl (`openssl ts` is the tests' real RFC 3161 time-stamping authority).
browser-deps:
	@if [ ! -x /usr/bin/chromium ] || ! command -v pdftotext >/dev/null || ! command -v openssl >/dev/null; then \
		echo "installing Debian's chromium, poppler-utils and openssl for the tests"; \
		if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium fonts-dejavu-core poppler-utils openssl >/dev/null; \
	fi

## axe-core, the accessibility engine the browser tests run in each page (pinned; npm, into
## build/axe, gitignored). Installed once: a new AXE_VERSION installs afresh.
AXE_VERSION := 4.14.1
AXE_DIR := build/axe
AXE_STAMP := $(AXE_DIR)/.axe-core-$(AXE_VERSION)
$(AXE_STAMP):
	@command -v npm >/dev/null || { \
		echo "installing Debian's npm for axe-core"; \
		if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq npm >/dev/null; }
	rm -rf $(AXE_DIR)
	mkdir -p $(AXE_DIR)
	npm install --prefix $(AXE_DIR) --no-save --no-package-lock --no-audit --no-fund --loglevel=error axe-core@$(AXE_VERSION)
	test -f $(AXE_DIR)/node_modules/axe-core/axe.min.js
	touch $(AXE_STAMP)

axe-deps: $(AXE_STAMP)

## Lint, then the whole suite (browser tests included).
test: install browser-deps axe-deps
	$(BIN)/ruff check webapp tests alembic
	$(BIN)/ruff format --check webapp tests
	$(BIN)/lint-imports
	$(BIN)/python -m pytest $(PYTEST_ARGS)

## ruff, and the import direction (import-linter contracts in pyproject.toml).
lint: install
	$(BIN)/ruff check webapp tests alembic
	$(BIN)/lint-imports

format: install
	$(BIN)/ruff format webapp tests
	$(BIN)/ruff check --fix webapp tests

## Benchmarks: figures with their limits, written to bench-results/latest.json.
bench: install
	$(BIN)/python tests/benchmarks/run.py

## 50 virtual users against `desk serve --workers 4` for 60 s (SQLite, or DESK_DATABASE_URL).
load: install
	$(BIN)/python -m tests.load.run_load

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache test-artifacts $(AXE_DIR)
