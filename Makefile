# cdp developer targets (GNU make).
#
#   make demo    install the core and every plugin into .venv, sync all graphs of connectors.toml, print the NPS
#   make test    the same with dev extras, then the type and import checks and every test suite
#                against SQLite and a throwaway PostgreSQL (installs Debian's chromium when missing,
#                for the NPS report's browser test; CDP_SKIP_BROWSER_TESTS=1 skips that test)
#   make typecheck     only the type check: mypy over cdp_core and every plugin's package
#   make importcheck   only the import check: lint-imports (the kernel imports no plugin)
#   make bench   the 1M-record pipeline benchmark (bench/README.md)
#   make bench-ingest   1M person records into the profile store vs the raw SQLite floor (bench/README.md)
#   make bench-segments 20 computed traits and 10 segments over that store vs a hand-written query (bench/README.md)
#   make bench-serve    cdp serve under load: events/s and latency vs baselines, then the SIGKILL run (bench/README.md)
#   make install / make install-dev   only the install steps
#
# Installs are stamped: they run again only when a pyproject.toml changes or a plugin
# folder appears or goes away. Delete .venv to start over.

SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
CONFIG ?= connectors.toml
PYTEST_ARGS ?=

PLUGIN_PYPROJECTS := $(sort $(wildcard plugins/*/pyproject.toml))
PLUGIN_DIRS := $(patsubst %/pyproject.toml,%,$(PLUGIN_PYPROJECTS))
STAMP := $(VENV)/.cdp-install
STAMP_DEV := $(VENV)/.cdp-install-dev
INSTALL_DEPS := pyproject.toml $(PLUGIN_PYPROJECTS) scripts/install.sh

# A plugin folder that went away (or came back with an old mtime) reinstalls too.
ifneq ($(PLUGIN_DIRS),$(sort $(shell cat $(VENV)/.cdp-plugins 2>/dev/null)))
$(shell rm -f $(STAMP) $(STAMP_DEV))
endif

export VENV PYTHON

.PHONY: help demo test typecheck importcheck bench bench-ingest bench-segments bench-serve install install-dev clean

help:
	@sed -n 's/^#   //p' Makefile

install: $(STAMP)

install-dev: $(STAMP_DEV)

$(STAMP): $(INSTALL_DEPS)
	scripts/install.sh
	touch $@

$(STAMP_DEV): $(INSTALL_DEPS)
	scripts/install.sh --dev
	touch $@ $(STAMP)

# The samples are from the first half of 2024: segments are evaluated as of this day.
DEMO_AS_OF ?= 2024-07-01

demo: $(STAMP)
	CDP_AS_OF=$(DEMO_AS_OF) $(VENV)/bin/cdp sync --all -c $(CONFIG)
	CDP_AS_OF=$(DEMO_AS_OF) $(VENV)/bin/cdp segments list -c $(CONFIG)
	$(VENV)/bin/cdp nps -c $(CONFIG)

test: $(STAMP_DEV)
	scripts/ensure-chromium.sh
	scripts/pgtest.sh run -- scripts/run-tests.sh $(PYTEST_ARGS)

typecheck: $(STAMP_DEV)
	scripts/checks.sh typecheck

importcheck: $(STAMP_DEV)
	scripts/checks.sh importcheck

bench: $(STAMP_DEV)
	$(PY) bench/pipeline_rss.py

bench-ingest: $(STAMP_DEV)
	$(PY) bench/ingest.py

bench-segments: $(STAMP_DEV)
	$(PY) bench/segments.py

bench-serve: $(STAMP_DEV)
	$(PY) bench/serve.py
	$(PY) bench/serve.py --kill

clean:
	rm -rf bench/out .pytest_cache
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -prune -exec rm -rf {} +
