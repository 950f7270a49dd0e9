# The user's verbs. Each target sets itself up: .venv, the project, Debian packages for tests.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# Reinstall only when pyproject.toml changes.
STAMP := $(VENV)/.installed-$(shell sha1sum pyproject.toml | cut -c1-16)
# Debian packages the tests need (chromium drives the browser tests; postgresql gives the
# server binaries the tests start a throwaway PostgreSQL from).
DEB_PACKAGES := chromium postgresql caddy systemd
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: demo lab test bench lint format setup debian clean

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	@rm -f $(VENV)/.installed-*
	@touch $@

setup: $(STAMP)

debian:
	@missing=""; for p in $(DEB_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing >/dev/null; \
	fi

## demo: open the dashboard on the embedded defaults (DuckDB file, local exchange, shipped data)
demo: $(STAMP)
	$(PY) -m workbench demo

## lab: JupyterLab on notebooks/ at http://127.0.0.1:$(LAB_PORT)/lab (the URL with its token is printed)
LAB_PORT ?= 8888
# Jupyter refuses to run as root unless told (containers and CI run as root).
LAB_ROOT := $(shell [ "$$(id -u)" = 0 ] && echo --allow-root)
lab: $(STAMP)
	$(VENV)/bin/jupyter lab --ServerApp.root_dir=notebooks --ServerApp.ip=127.0.0.1 \
	  --ServerApp.port=$(LAB_PORT) --no-browser $(LAB_ROOT)

## test: every test (unit, end-to-end through the local exchange, notebooks, browser)
test: $(STAMP) debian
	$(PY) -m pytest

## bench: benchmarks, figures printed as ratios and per-item costs
bench: $(STAMP)
	$(PY) benchmarks/run.py

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(STAMP)
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
