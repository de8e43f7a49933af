# Strata — the two commands: `make run` and `make test`. Everything they need is
# installed by this file; the embedded PostgreSQL and Redis start when DATABASE_URL /
# REDIS_URL are unset (see config/devservers.py).
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
UV_VERSION := 0.13.8
DEV := $(PY) -m config.devservers
FRONTEND_SOURCES := $(wildcard frontend/src/* frontend/tailwind.config.js) $(shell find templates -name '*.html' 2>/dev/null)
CHROMIUM := /usr/bin/chromium

.PHONY: run test test-fast test-browser lint bench install assets browsers stop clean check-python

run: install assets ## install, build assets, start dev servers, migrate, seed, serve
	$(DEV) exec -- $(PY) manage.py dev_up

test: install assets browsers lint ## the architecture contracts, then the whole suite against real PostgreSQL and Redis
	$(DEV) exec --prefer-system -- $(PY) -m pytest $(PYTEST_ARGS)

test-fast: install assets lint ## everything but the browser tests
	$(DEV) exec --prefer-system -- $(PY) -m pytest -m "not browser" $(PYTEST_ARGS)

lint: install ## the rooms of shared/DESIGN.md: import-linter contracts in pyproject.toml
	$(VENV)/bin/lint-imports --no-logo

bench: install ## benchmarks (not part of make test); results in bench/RESULTS.md
	$(DEV) exec --bench -- $(PY) -m bench $(BENCH_ARGS)

stop: ## stop the embedded PostgreSQL / Redis if a run left them up
	$(PY) -m config.devservers stop

install: $(VENV)/.installed

check-python:
	@command -v $(PYTHON) >/dev/null || { echo "strata: $(PYTHON) not found — install Python 3.11 or run make PYTHON=/path/to/python3.11"; exit 1; }

# The stamp is written last, so an interrupted install simply runs again.
$(VENV)/.installed: pyproject.toml uv.lock | check-python
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)
	$(VENV)/bin/uv sync --frozen --inexact --quiet
	touch $@

assets: static/dist/.built

frontend/node_modules/.installed: frontend/package.json frontend/package-lock.json
	cd frontend && npm ci --no-audit --no-fund --loglevel=error
	touch $@

static/dist/.built: frontend/node_modules/.installed $(FRONTEND_SOURCES)
	cd frontend && npm run --silent build
	touch $@

browsers: ## Debian's Chromium for the browser tests (Playwright's own download is not used)
	@if [ ! -x $(CHROMIUM) ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
	      || { echo "strata: could not install chromium with apt-get"; exit 1; }; \
	  else echo "strata: browser tests need $(CHROMIUM): sudo apt-get install chromium"; exit 1; fi; \
	fi

clean: stop
	rm -rf $(VENV) frontend/node_modules static/dist staticfiles
