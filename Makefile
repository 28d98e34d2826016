# make test: bootstrap .venv if missing, lint, type-check and run the tests.
# make bench: the main job, the default plan on smollm2-135m (see README).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export PRUNING_DATA_DIR ?= $(abspath ../shared/data)
BENCH_ARGS ?=
# Two xdist workers: the suite's long tests (golden real-model runs, subprocesses) overlap.
TEST_ARGS ?= -n 2

.PHONY: test bench lint install docs clean browser

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check --upgrade pip
	# The pinned CPU wheel first, so no resolver ever reaches for a CUDA build.
	$(BIN)/python -m pip install -q --disable-pip-version-check --no-compile torch==2.13.0
	$(BIN)/python -m pip install -q --disable-pip-version-check --no-compile -e '.[dev]'
	# Bytecode on every core: pip compiles one file at a time. A few files in a newer Python's syntax (torch's py312 test
	# helpers) fail to compile here as under pip, and are ignored as pip ignores them.
	$(BIN)/python -m compileall -q -j 0 "$$($(BIN)/python -c 'import sysconfig; print(sysconfig.get_path("purelib"))')" > /dev/null || true
	touch $(STAMP)

install: $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check pruning tests benchmarks scripts conftest.py
	$(BIN)/mypy

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
