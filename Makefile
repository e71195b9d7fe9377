# Fresh-machine entry points: `make demo` runs the workflow on the bundled demo regions,
# `make test` runs the test suite, `make lint` the linters and type checks. All create
# .venv from requirements.lock first.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
CORES ?= $(shell nproc 2>/dev/null || echo 2)

.PHONY: setup demo resume test lint benchmark clean

$(BIN)/.karstflow-installed: requirements.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $@

setup: $(BIN)/.karstflow-installed

demo: setup
	$(BIN)/snakemake --cores $(CORES)

# after kill -9, a power or node loss: remove the stale lock (refused while a Snakemake of
# this directory still runs) and run again; README "If a run was interrupted"
resume: setup
	$(BIN)/python scripts/resume.py --cores $(CORES)

# two pytest-xdist workers, each test file on one worker (its module fixture, often a
# workflow run, is built once); the session's demo run is shared (tests/conftest.py). Most
# of the suite is Snakemake runs using one core at a time: two at once fill both cores.
TEST_WORKERS ?= 2
test: setup
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadfile --durations=25

# ruff and mypy read their settings from pyproject.toml (mypy checks src/karstflow)
lint: setup
	$(BIN)/ruff check src tests benchmarks workflow/scripts
	$(BIN)/mypy
	$(BIN)/snakefmt --check Snakefile workflow/rules
	$(BIN)/snakemake --lint

clean:
	rm -rf results logs resources/demo .snakemake
