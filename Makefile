# The two commands: `make run` and `make test`. Both build .venv on first use.
# The newest supported Python on the machine that runs (a pyenv shim of a version that is
# not selected does not); `make PYTHON=python3.12 VENV=.venv-3.12 test` picks another.
SUPPORTED_PYTHONS := python3.13 python3.12 python3.11
PYTHON ?= $(firstword $(foreach python,$(SUPPORTED_PYTHONS),$(shell \
	$(python) -c 'import sys' >/dev/null 2>&1 && echo $(python))))
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
LOCK := requirements/dev.lock
# pytest-xdist workers, each with its own embedded database: one more than the CPUs, at
# most 8, as the suite waits on its databases and subprocesses a third of the time (on 2
# cores: 3 workers took 8.4 min, 2 took 11.7). `make test PYTEST_ARGS=` runs it in one.
# worksteal: a worker that runs out takes over half of a busy one's queue; with xdist's
# default ("load") a worker's first quarter of the suite was its own to the end, and on
# 2 cores one worker ran its share alone for the last ~55 s.
TEST_WORKERS = $(shell $(PYTHON) -c 'import os; print(min(8, (os.cpu_count() or 2) + 1))')
PYTEST_ARGS ?= -n $(TEST_WORKERS) --dist worksteal

.PHONY: run test typecheck lint schema bench seed-demo demo-worker lock clean node-clients screenshots

$(BIN)/python:
	@test -n "$(PYTHON)" || { echo "make: no supported Python found (one of \
	$(SUPPORTED_PYTHONS)); install one or pass PYTHON=/path/to/python" >&2; exit 1; }
	$(PYTHON) -m venv $(VENV)

# Everything comes from the lock, hashes checked; the project itself is then installed
# without resolving again (its build backend, setuptools, is in the lock too).
$(STAMP): $(LOCK) pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --require-hashes -r $(LOCK)
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $(STAMP)

# After editing dependencies in pyproject.toml: relock, then commit both.
# UPGRADE=--upgrade (or "--upgrade-package NAME") moves pins forward.
lock: $(STAMP)
	$(BIN)/python requirements/lock.py $(UPGRADE)

# The npm packages the client tests drive (pinned by tests/clients/package-lock.json);
# without npm those tests skip (and fail under CI=true).
NODE_CLIENTS := tests/clients
NODE_STAMP := $(NODE_CLIENTS)/node_modules/.package-lock.json

node-clients:
	@if command -v npm >/dev/null 2>&1; then $(MAKE) --no-print-directory $(NODE_STAMP); \
	else echo "npm not found: the Node client tests will skip (and fail under CI=true)"; fi

$(NODE_STAMP): $(NODE_CLIENTS)/package.json $(NODE_CLIENTS)/package-lock.json
	cd $(NODE_CLIENTS) && npm ci --no-audit --no-fund --loglevel=error
	touch $@

run: $(STAMP)
	$(BIN)/jobgraph serve --host 127.0.0.1 --port 8000

test: $(STAMP) node-clients typecheck
	$(BIN)/ruff check .
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# mypy over repository/, graph/ and bench/ as [tool.mypy] in pyproject.toml says (strict
# but for the exceptions listed there); tests/test_typecheck.py shows that it bites.
typecheck: $(STAMP)
	$(BIN)/mypy

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

schema: $(STAMP)
	$(BIN)/jobgraph export-schema > schema.graphql

seed-demo: $(STAMP)
	$(BIN)/jobgraph seed-demo

demo-worker: $(STAMP)
	$(BIN)/jobgraph demo-worker

# The README's pictures of the dashboard: a throwaway server with the demo data and the
# demo worker, photographed by Chromium (Debian's `chromium`) into docs/screenshots/.
screenshots: $(STAMP)
	$(BIN)/python scripts/screenshots.py

bench: $(STAMP)
	$(BIN)/python -m bench $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache $(NODE_CLIENTS)/node_modules
