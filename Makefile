# RRR — every target works on a fresh clone; `make install` is implied.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat requirements.lock pyproject.toml | cksum | cut -d' ' -f1)
PYTEST := $(BIN)/python -m pytest -p no:cacheprovider
COV    := --cov=rrr_live --cov=rrr_pipelines --cov-report=term:skip-covered

.PHONY: install system-deps demo test test-fast lint format up down bench clean

install: $(STAMP)

$(STAMP): requirements.lock pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.lock
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps -e .
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

# Debian's `prometheus` package (prometheus + promtool) for the monitoring tests; as root with
# apt-get it is installed, otherwise one line says so (those tests then skip, or fail under CI=true).
system-deps:           ## system packages the tests use (Prometheus, promtool)
	@if command -v prometheus >/dev/null 2>&1 && command -v promtool >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		{ apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
			--no-install-recommends prometheus; } \
		|| { echo "system-deps: installing prometheus failed"; [ "$$CI" != true ]; }; \
	else \
		echo "system-deps: prometheus/promtool not found; as root run 'make system-deps' (Debian package 'prometheus'), else the Prometheus tests skip"; \
	fi

demo: install          ## the end-to-end demo on embedded defaults
	$(BIN)/rrr demo

test: install system-deps  ## the full suite, what CI runs (coverage printed)
	$(PYTEST) $(COV) --durations=20

test-fast: install     ## skip tests marked slow
	$(PYTEST) -m "not slow" $(COV) --durations=10

lint: install          ## ruff (lint + format check) and mypy (strict on rrr_live and rrr_pipelines/lib)
	$(BIN)/ruff check rrr_live rrr_pipelines tests bench
	$(BIN)/ruff format --check rrr_live rrr_pipelines tests bench
	$(BIN)/mypy

format: install
	$(BIN)/ruff format rrr_live rrr_pipelines tests bench
	$(BIN)/ruff check --fix rrr_live rrr_pipelines tests bench

up: install            ## PostgreSQL + MLflow (127.0.0.1:5000) + Dagster (127.0.0.1:3000); Ctrl-C stops
	$(BIN)/rrr up

down:
	$(BIN)/rrr down

bench: install         ## benchmarks (numbers, not tests)
	@for b in bench/bench_*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

clean:
	$(BIN)/rrr db down || true
	rm -rf .rrr
