# fedchain: the README's two commands are `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export PATH := $(CURDIR)/node_modules/.bin:$(CURDIR)/$(BIN):$(PATH)
export SOLCX_BINARY_PATH := $(CURDIR)/tools/solc-bin
export SE_OFFLINE := true

.PHONY: setup node python compile demo test test-fast lint gas bench-flower bench-large bench-ipfs bench-backend postgres chromium clean

setup: python node compile postgres chromium

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip 'wheel<0.46'  # wheel 0.46+ wants packaging>=24; ape pins packaging 23

python: $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test]'

node: node_modules/.bin/anvil

node_modules/.bin/anvil: package.json package-lock.json
	npm ci --no-audit --no-fund
	touch $@

# The backend tests run a throwaway Postgres server (Debian's postgresql); skipped when apt cannot install it.
postgres:
	@if ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then :; \
	elif command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null) \
		|| echo "warning: could not install postgresql; the backend's Postgres test will be skipped"; \
	else echo "note: postgresql not installed (needs root + apt); the backend's Postgres test will be skipped"; fi

# The dashboard's browser tests drive Debian's chromium through chromedriver; skipped when apt cannot install them.
chromium:
	@if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then :; \
	elif command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null) \
		|| echo "warning: could not install chromium; the dashboard's browser tests will be skipped"; \
	else echo "note: chromium not installed (needs root + apt); the dashboard's browser tests will be skipped"; fi

compile: python node
	$(BIN)/ape compile

demo: python node compile
	$(BIN)/fedchain demo

test: setup
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	$(BIN)/ape test tests --durations=25

test-fast: ## tests without re-running setup
	$(BIN)/ape test tests

lint:
	$(BIN)/ruff check .
	$(BIN)/lint-imports

gas: setup
	$(BIN)/python bench/gas_report.py --markdown bench/results/gas.md

bench-flower: setup ## round time and accuracy against Flower 1.42 on the same task (creates .flwr-venv/ once)
	$(BIN)/python bench/vs_flower.py --markdown bench/results/vs_flower.md

bench-large: setup ## large models: streamed aggregation of 10M/100M-parameter updates, a 100M-parameter federation
	$(BIN)/python bench/large_models.py --markdown bench/results/large_models.md

bench-ipfs: setup ## KuboStore vs raw HTTP throughput (10 MB, 200 MB) against a local js-ipfs node
	$(BIN)/python bench/ipfs_throughput.py

bench-backend: setup ## backend list endpoints: requests/s and p99 latency with 10,000 indexed contributions
	$(BIN)/python bench/backend_load.py

clean:
	rm -rf .build contracts/.cache
