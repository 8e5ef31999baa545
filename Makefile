# Marlin developer entry points. `make` alone lists them.

SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
VENV_STAMP := $(VENV)/.installed
PYTEST_ARGS ?=
BENCH ?=

.PHONY: help venv test run stop lint imports migrations-check bench

help: ## List the targets
	@echo "Marlin make targets:"
	@grep -E '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) \
		| awk 'BEGIN {FS = ":.*## "}; {printf "  %-18s %s\n", $$1, $$2}'
	@echo
	@echo "  PYTEST_ARGS='-k foo -x' make test   passes arguments to pytest"
	@echo "  BENCH=\"load audit\" make bench        runs only those benchmarks"

venv: $(VENV_STAMP) ## Create .venv and install requirements-dev.txt (again when requirements change)

$(VENV_STAMP): requirements.txt requirements-dev.txt
	@set -e; \
	if ! $(VENV)/bin/python -m pip --version >/dev/null 2>&1; then \
		if ! $(PYTHON) -m venv --clear $(VENV); then \
			echo "python3 -m venv failed; installing python3-venv" >&2; \
			if [ "$$(id -u)" -eq 0 ]; then SUDO=; else SUDO=sudo; fi; \
			$$SUDO apt-get update && $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y python3-venv; \
			$(PYTHON) -m venv --clear $(VENV); \
		fi; \
	fi
	$(VENV)/bin/python -m pip install --disable-pip-version-check -q -r requirements-dev.txt
	@touch $@

test: venv imports ## Check the layers, then run pytest against a throwaway PostgreSQL + Redis (PYTEST_ARGS=...)
	scripts/test.sh $(PYTEST_ARGS)

run: venv ## Start PostgreSQL, Redis, web (:8000), worker and beat under .local/run
	scripts/run.sh start

stop: ## Stop everything `make run` started
	scripts/run.sh stop

lint: venv imports ## ruff check + ruff format --check + the layer contract
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check .

imports: venv ## The layer order: an import that climbs a layer or closes a cycle fails (lint-imports)
	$(VENV)/bin/lint-imports --no-cache

migrations-check: venv ## Fail if models changed without a migration (no database needed)
	DEBUG=true DJANGO_SETTINGS_MODULE=marlin.settings \
		$(VENV)/bin/python manage.py makemigrations --check --dry-run

bench: venv ## Run the benchmarks and write their figures into BENCHMARKS.md (BENCH="load audit")
	$(VENV)/bin/python -m bench.run_all $(BENCH)
