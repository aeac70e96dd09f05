# chartlake: two commands do everything on a fresh machine (Python 3.11, package registries only).
#   make demo   generate the simulated January 2025 data, load, build, check and publish it
#   make test   run the test suite
#   make ui     the Dagster web UI on the same home
#   make report the Evidence dashboards (static site) from the home's serving file; make report-dev serves them live
#   make play-setup  the Node fetcher of Google Play charts (npm ci; needed only to fetch Play)
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.chartlake-installed
export CHARTLAKE_HOME ?= $(CURDIR)/data
export DAGSTER_HOME ?= $(CHARTLAKE_HOME)/dagster
# One planned event per asset for a ranged run (backfill, full build), not one per asset and day (runner.py says why).
export DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS ?= true

.PHONY: demo test test-slow test-slow-ci test-all check-defs ui setup clean-data bench report report-dev report-setup \
  play-setup

$(STAMP): pyproject.toml requirements.lock
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c requirements.lock -e '.[dev]'
	@touch $(STAMP)

setup: $(STAMP)
	$(BIN)/chartlake setup

demo: setup
	$(BIN)/chartlake demo

# The dashboards (reports/, Evidence on Node >= 18): npm ci installs exactly reports/package-lock.json (npm registry
# only). `make report` builds the static site from a read-only copy of $(CHARTLAKE_HOME)/serving/chartlake.duckdb into
# $(CHARTLAKE_HOME)/reports/site; `make report-dev` serves them live on 127.0.0.1:3001.
REPORTS_STAMP := reports/node_modules/.chartlake-installed
$(REPORTS_STAMP): reports/package.json reports/package-lock.json
	cd reports && npm ci --no-audit --no-fund
	@touch $(REPORTS_STAMP)

report-setup: $(REPORTS_STAMP)

report: setup report-setup
	$(BIN)/python -m orchestration.lib.reports build

report-dev: setup report-setup
	$(BIN)/python -m orchestration.lib.reports dev

# The Google Play fetch (fetchers/google-play, Node >= 18): npm ci installs exactly its package-lock.json, i.e.
# google-play-scraper 10.1.3 (npm registry only). Needed only to fetch Play (the play_schedule); imports, the demo
# and the marts do without it. The offline tests run the same npm ci themselves when node and npm are present.
PLAY_STAMP := fetchers/google-play/node_modules/.chartlake-installed
$(PLAY_STAMP): fetchers/google-play/package.json fetchers/google-play/package-lock.json
	cd fetchers/google-play && npm ci --no-audit --no-fund
	@touch $(PLAY_STAMP)

play-setup: $(PLAY_STAMP)

# The suite without the heavy end-to-end cases (marked slow): minutes, for every commit.
test: setup
	$(BIN)/python -m pytest -q -m "not slow"

# The heavy cases: whole demo pipelines, injected defects, readers during runs, the browser. CI runs both.
test-slow: setup
	$(BIN)/python -m pytest -q -m slow

# A cheap smoke test of the wiring: dg loads the one Definitions as the UI and the daemon would.
check-defs: setup
	$(BIN)/dg check defs

# CI's slow run: the slow tests listed in .ci/slow-verified.txt (why those: its header); the
# others wait for a run of `make test-slow` (see that file's header).
test-slow-ci: setup
	$(BIN)/python -m pytest -q -m slow $$(grep -v '^#' .ci/slow-verified.txt)

test-all: setup
	$(BIN)/python -m pytest -q

ui: setup
	@mkdir -p $(DAGSTER_HOME)
	$(BIN)/dagster dev -m orchestration.definitions -h 127.0.0.1 -p 3000

# The benchmark (issue 6): default 365 days x 50 storefronts x 3 charts x 2 devices x 200 ranks (18.25 M rows: 71 min
# on 2 cores; needs ~25 GB of free disk for the raw store and lake in a temporary home, deleted afterwards).
# Smaller: make bench BENCH_ARGS="--days 30 --countries 12". Results: benchmarks/results/latest.{md,json}.
BENCH_ARGS ?= --days 365 --countries 50 --depth 200
bench: setup
	$(BIN)/python benchmarks/run.py $(BENCH_ARGS)

clean-data:
	rm -rf $(CHARTLAKE_HOME)/raw $(CHARTLAKE_HOME)/lake $(CHARTLAKE_HOME)/serving $(CHARTLAKE_HOME)/quality \
	  $(CHARTLAKE_HOME)/dagster $(CHARTLAKE_HOME)/demo_payloads $(CHARTLAKE_HOME)/.duckdb_extensions
