# make test: bootstrap .venv if missing, lint, type-check and run the tests.
# make bench: the main job, the default plan on smollm2-135m (see README).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export PRUNING_DATA_DIR ?= $(abspath ../shared/data)
BENCH_ARGS ?=
# Two xdist workers: the suite's long tests (golden real-model runs, subprocesses) overlap, and an
# idle worker steals queued tests from the busy one (the tests' durations vary from ms to a minute).
# The 15 slowest tests are listed at the end, so a slow one is seen.
TEST_ARGS ?= -n 2 --dist worksteal --durations=15

.PHONY: test bench lint install lock docs clean browser

# The environment is the lock (requirements.lock, written by `make lock`), installed into a new venv
# (nothing from an older lock stays) in one step with no resolver by uv, which fetches and unpacks in
# parallel, from the sources pip is configured with (where this machine keeps the CPU build of torch);
# then the project itself, editable. uv is a pinned tool kept inside the venv, not a package of it.
UV_VERSION := 0.13.8
UV := $(VENV)/uv/bin/uv
UV_INSTALL = $(UV) pip install -q --python $(BIN)/python --no-deps
# Nothing is compiled ahead (compiling every installed file took longer than installing them):
# Python writes the bytecode of what the suite imports when it first imports it, so that must be on.
unexport PYTHONDONTWRITEBYTECODE

$(STAMP): pyproject.toml requirements.lock
	rm -rf $(VENV)
	$(PYTHON) -m venv --without-pip $(VENV)
	$(PYTHON) -m pip install -q --disable-pip-version-check --root-user-action=ignore --no-deps --no-compile \
		--target $(VENV)/uv uv==$(UV_VERSION)
	$(UV_INSTALL) $$($(PYTHON) scripts/uv_sources.py) -r requirements.lock
	$(UV_INSTALL) --no-build-isolation -e .
	touch $(STAMP)

install: $(STAMP)

# Resolve pyproject.toml's ranges anew (pip's resolver, this machine's pip configuration) into the lock;
# review its diff like code. It needs a venv, not a current one; the next `make install` rebuilds it.
lock:
	test -f $(STAMP) || $(MAKE) install
	$(BIN)/python scripts/lock.py

lint: $(STAMP)
	$(BIN)/ruff check pruning tests benchmarks scripts conftest.py
	$(BIN)/mypy --num-workers 2

test: lint browser
	$(BIN)/pytest tests -q -p no:cacheprovider $(TEST_ARGS)

# The HTML report's test drives Debian's Chromium (never a downloaded browser); as root it is
# installed where missing, otherwise that test says it was skipped and why.
browser:
	@test -x /usr/bin/chromium || [ "$$(id -u)" != 0 ] || ! command -v apt-get > /dev/null || \
		{ echo "installing Debian's chromium for the HTML report test ..."; \
		  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium > /dev/null; }

bench: $(STAMP)
	$(BIN)/pytest benchmarks -p no:cacheprovider --prune-report reports/latest $(BENCH_ARGS)

# The options reference is generated from the plugin's option table (a test checks it is current).
docs: $(STAMP)
	$(BIN)/python -m pruning.plugin.reference > docs/options.md

clean:
	rm -rf $(VENV) reports .benchmarks
