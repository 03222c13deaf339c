# Hivewire: `make run` starts the stack, `make test` runs the suite. Both create .venv first.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: setup run test test-fast lint fmt proto proto-check bench bench-quick bench-soak chaos clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: setup
	$(VENV)/bin/hivewire up --demo

# Test files run in parallel, each whole in one worker (its module fixtures start once): most
# tests wait on processes and sockets, so three workers on two cores take a third of the time.
TEST_WORKERS ?= 3
PYTEST := $(PY) -m pytest -q -p no:cacheprovider -n $(TEST_WORKERS) --dist loadfile

test: setup
	$(PYTEST)

test-fast: setup
	$(PYTEST) -m "not e2e"

node_modules/.bin/buf: package.json
	npm install --no-audit --no-fund --silent
	touch $@

lint: setup node_modules/.bin/buf
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports
	node_modules/.bin/buf lint

fmt: setup
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

proto: setup
	$(PY) scripts/gen_proto.py

# The pipeline benches, the peer table (Celery, Dramatiq, taskiq, installed by the bench into
# bench/.peers-venv on first use), where a unary submit's enqueue -> start goes, and the memory
# after 100,000 tasks; bench-quick is the peer table alone, in a few minutes.
bench: setup
	$(PY) -m bench
	$(PY) -m bench.peers
	$(PY) -m bench.latency_path
	$(PY) -m bench.soak --tasks 100000

# Ten minutes at a steady 200 tasks/s, the stack's memory sampled every 30 s (bench/soak.py).
bench-soak: setup
	$(PY) -m bench.soak --minutes 10 --rate 200

bench-quick: setup
	$(PY) -m bench.peers --quick

# Kill -9 agents, the coordinator and Redis under load, then prove delivery offline.
# Options: make chaos CHAOS_ARGS="--tasks 5000 --seed 7" (see python -m bench.chaos --help).
chaos: setup
	$(PY) -m bench.chaos $(CHAOS_ARGS)

clean:
	rm -rf $(VENV) node_modules .hivewire .pytest_cache .mypy_cache .ruff_cache
