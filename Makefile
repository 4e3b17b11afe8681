# Two commands set up everything on a fresh machine:
#   make demo   installs what is missing, then runs the whole platform end to end (embedded defaults)
#   make test   installs what is missing, then runs the test suite
# Both are idempotent: a second run installs nothing.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PY_STAMP   := $(VENV)/.installed
JARS_STAMP := jvm/jars/.resolved
DEMO_ARGS  ?=
PYTEST_ARGS ?=

export SPARK_LOCAL_IP ?= 127.0.0.1

.PHONY: install python-deps jars browser demo test test-erasure lint bench-collector bench-serving bench-lakehouse bench-feature-sets bench-freshness bench-training-scale clean

install: python-deps jars browser

python-deps: $(PY_STAMP)

$(PY_STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) not found: install Python 3.11+"; exit 1; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e ".[dev]"
	@touch $@

jars: $(JARS_STAMP)

# Delta and S3A jars for the Spark that pyspark ships, resolved once by Maven (never by Ivy at
# session start) into jvm/jars/, which git ignores.
$(JARS_STAMP): jvm/pom.xml
	@command -v java >/dev/null || { echo "error: java not found: install OpenJDK 17 (apt-get install openjdk-17-jdk-headless)"; exit 1; }
	@command -v mvn >/dev/null || { echo "error: mvn not found: install Maven (apt-get install maven)"; exit 1; }
	rm -rf jvm/jars
	cd jvm && mvn -q -B dependency:copy-dependencies
	@touch $@

# The report tests render HTML to PNG with headless Chromium (Debian package), installed when missing.
browser:
	@command -v chromium >/dev/null || { apt-get update -qq && apt-get install -y -qq chromium; }

demo: install
	$(BIN)/playerpulse demo $(DEMO_ARGS)

# pytest exits 5 when it collected no test: say so plainly instead of failing obscurely.
test: install
	@$(BIN)/python -m pytest $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests (exit 5)"; exit 0; fi; exit $$rc

# The erasure proof (README, Privacy): a whole small run of the line on local disk and again on
# the local S3 server, a player forgotten, then every store searched. Minutes of CPU, so it is its
# own step (`.ci/run` runs it after `make test`) rather than part of the default suite.
test-erasure: install
	$(BIN)/python -m pytest -m erasure_proof tests/test_forget.py $(PYTEST_ARGS)

# The collector benchmark's load generator is wrk (Debian package), installed when missing.
bench-collector: python-deps
	@command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }
	$(BIN)/python benchmarks/collector.py $(BENCH_ARGS)

# bronze → silver → gold at 1M and 10M events (BENCH_ARGS=--quick: 100k and 1M), compaction,
# an incremental run and DuckDB on the same files; run it on a quiet machine.
bench-lakehouse: install
	$(BIN)/python benchmarks/lakehouse.py $(BENCH_ARGS)

# Prediction latency in process, over HTTP (wrk, installed when missing) and through the Lambda package.
bench-serving: python-deps
	@command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }
	$(BIN)/python benchmarks/serving.py $(BENCH_ARGS)

# One model trained on each feature set over the demo's simulated history (seeds 7 and 1): holdout
# AUC against the ground-truth ceiling, player_activity_v1 against v2 and v3.
bench-feature-sets: install
	$(BIN)/python benchmarks/feature_sets.py $(BENCH_ARGS)

# Event → profile freshness: a steady load through the collector while `playerpulse stream profiles`
# runs (its own process), every acknowledged batch timed to the first profile read showing it, then a
# ramp until the job's backlog grows (BENCH_ARGS=--quick: 1,000 events/s for 15 s, no ramp).
bench-freshness: install
	$(BIN)/python benchmarks/freshness.py $(BENCH_ARGS)

# Gold, the point-in-time training set and the store_offer xgboost fit on 10M generated silver events
# (~1M training rows), against a baseline at a tenth of the size (BENCH_ARGS=--quick: 1M events).
bench-training-scale: install
	$(BIN)/python benchmarks/training_scale.py $(BENCH_ARGS)

lint: python-deps
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

clean:
	rm -rf var spark-warehouse .pytest_cache
