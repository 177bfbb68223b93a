# Developer and CI entry points. `make test` on a fresh Debian machine installs everything it needs
# (venv, Python packages, Mosquitto, InfluxDB and PostgreSQL via apt) and runs the whole suite.

PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: venv install install-gateway lock services services-down lint test demo clean bench bench-compare browser screenshots

venv: $(BIN)/python

# A fresh Debian / Raspberry Pi OS has python3 but not always its venv module (python3-venv).
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo -n)
$(BIN)/python:
	$(PY) -m venv $(VENV) || { rm -rf $(VENV) && $(SUDO) apt-get update -q && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q python3-venv && $(PY) -m venv $(VENV); }
	$(BIN)/pip install -q --upgrade pip

install: $(STAMP) node_modules/.installed

# A gateway (Raspberry Pi at a bank) needs the package alone: no test tools, and no npm (its
# attendant page uses no front-end library).
install-gateway: $(VENV)/.installed-gateway
$(VENV)/.installed-gateway: pyproject.toml constraints.txt | $(BIN)/python
	$(BIN)/pip install -c constraints.txt -e .
	touch $@

# The pages' front-end libraries (Chart.js, Leaflet) from the npm registry, pinned by
# package-lock.json; the API serves them from node_modules/ (no CDN at run time).
node_modules/.installed: package.json package-lock.json
	command -v npm >/dev/null || { $(SUDO) apt-get update -q && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q --no-install-recommends npm; }
	npm ci --omit=dev --no-audit --no-fund --ignore-scripts
	touch $@

# Debian's Chromium for the page tests and screenshots (Playwright cannot download a browser here).
CHROMIUM := /usr/bin/chromium
browser: $(CHROMIUM)
$(CHROMIUM):
	$(SUDO) apt-get update -q && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q --no-install-recommends chromium

# Re-install only when pyproject.toml or the pinned versions changed since the last install.
# Every package at the version constraints.txt names: a release between two clean clones does
# not change what CI runs on (stamina 26.2.0 once failed mypy between two runs an hour apart).
$(STAMP): pyproject.toml constraints.txt | $(BIN)/python
	$(BIN)/pip install -c constraints.txt -e '.[dev]'
	touch $@

# SERVICES_ARGS: `make test` starts PostgreSQL too (the ledger tests run on SQLite and on it),
# and Gammu SMSD on a dummy phone in .run/gammu (the SMS tests install it from there and run
# their own).
services: install
	$(BIN)/wastebank services up $(SERVICES_ARGS)

services-down:
	@if [ -x $(BIN)/wastebank ]; then $(BIN)/wastebank services down; fi

# bench/reports.py's ledger is PostgreSQL by default.
bench: SERVICES_ARGS = --with postgresql
bench: install services
	$(BIN)/pip install -q -c constraints.txt -e '.[dev,bench]'
	$(BIN)/python bench/gateway_footprint.py
	$(BIN)/python bench/ingest.py
	$(BIN)/python bench/api.py
	$(BIN)/python bench/ledger.py
	$(BIN)/python bench/reports.py

# The benches against an earlier revision and this tree, interleaved in one run, each side on
# services of its own (bench/before_after.py; docs/scaling.md, "Before/after a restructuring"):
#   make bench-compare [BEFORE=<rev>] [QUICK=1] [REPEATS=3] [BENCHES=ingest,api]
bench-compare: install
	$(BIN)/python -c 'import psutil' 2>/dev/null || $(BIN)/pip install -q -c constraints.txt -e '.[dev,bench]'
	$(BIN)/python bench/before_after.py $(if $(BEFORE),--before $(BEFORE)) $(if $(QUICK),--quick) \
	  $(if $(REPEATS),--repeats $(REPEATS)) $(if $(BENCHES),--benches $(BENCHES))

# constraints.txt again from the registry's newest releases that pyproject.toml allows, in a
# venv of its own (then `make test`, and commit both if it passes).
LOCK_VENV := .lock-venv
lock:
	rm -rf $(LOCK_VENV) && $(PY) -m venv $(LOCK_VENV) && $(LOCK_VENV)/bin/pip install -q --upgrade pip
	$(LOCK_VENV)/bin/pip install -q -e '.[dev,bench,printer]'
	{ sed -n '/^#/p' constraints.txt; $(LOCK_VENV)/bin/pip freeze --exclude-editable | grep -v '^#'; } \
	  > constraints.txt.new && mv constraints.txt.new constraints.txt
	rm -rf $(LOCK_VENV)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

# PYTEST_ARGS='--ledger sqlite' skips the PostgreSQL runs of the ledger tests.
test: SERVICES_ARGS = --with postgresql --with sms
test: install browser services lint
	$(BIN)/pytest $(PYTEST_ARGS)

# DEMO_ARGS=--with-sms: SMS to members too (Gammu SMSD on a dummy phone; apt-get the first time).
demo: install services
	$(BIN)/wastebank demo $(DEMO_ARGS)

# PNGs of every page into docs/screenshots/: the app on demo data (a temporary SQLite ledger and
# InfluxDB database), driven by Debian's Chromium (docs/screenshots.py).
screenshots: install browser services
	$(BIN)/python docs/screenshots.py

clean: services-down
	rm -rf .run
