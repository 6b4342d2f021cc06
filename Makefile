# The two commands a new machine needs: `make demo` and `make test`.
# Both create (or refresh) the virtualenv in .venv and install the project into it.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test lint typecheck unit integration e2e bench install clean node-interop

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

# Independent SD-JWT libraries (OpenWallet Foundation @sd-jwt, TypeScript) and Web Crypto
# that the interop tests run on the published vectors, installed into the project (pinned
# by package-lock.json). Without npm the tests that need it are skipped.
NODE_INTEROP := tests/interop/node
$(NODE_INTEROP)/node_modules/.installed: $(NODE_INTEROP)/package.json $(NODE_INTEROP)/package-lock.json
	cd $(NODE_INTEROP) && npm ci --no-audit --no-fund --ignore-scripts
	touch $@

node-interop:
	@if command -v npm >/dev/null 2>&1; then \
		$(MAKE) --no-print-directory $(NODE_INTEROP)/node_modules/.installed; \
	else echo "npm not found: the Web Crypto and @sd-jwt interop tests will be skipped"; fi

## Runs the once-only scenario against a local Synapse it starts (and stops).
demo: $(STAMP)
	$(BIN)/onceonly demo

## Lint, type-check the core, then every test (unit, integration against a real Synapse, e2e).
test: $(STAMP) node-interop
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/python -m pytest -q -p no:cacheprovider

lint: $(STAMP)
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP) node-interop
	$(BIN)/python -m pytest -q tests/unit

integration: $(STAMP)
	$(BIN)/python -m pytest -q tests/integration

e2e: $(STAMP)
	$(BIN)/python -m pytest -q tests/e2e

bench: $(STAMP)
	for b in bench/*.py; do $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache $(NODE_INTEROP)/node_modules
