# The two commands: `make run` and `make test`. Both build .venv on first use.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint schema bench seed-demo demo-worker clean node-clients

$(BIN)/python:
	$(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[embedded,dev]"
	touch $(STAMP)

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

test: $(STAMP) node-clients
	$(BIN)/ruff check .
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

schema: $(STAMP)
	$(BIN)/jobgraph export-schema > schema.graphql

seed-demo: $(STAMP)
	$(BIN)/jobgraph seed-demo

demo-worker: $(STAMP)
	$(BIN)/jobgraph demo-worker

bench: $(STAMP)
	$(BIN)/python -m bench $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache $(NODE_CLIENTS)/node_modules
