# streamlearn — every target sets up what it needs, idempotently.
#   make demo   run broker + worker + a real data set with a live summary (ARGS="--duration 60")
#   make test   unit + integration tests against a real Kafka broker, with coverage
#   make bench  throughput and latency benchmarks (results in benchmarks/results/)
#   make screenshots  the dashboard during the demo, as docs/img/dashboard-*.png
#   make chaos  fault tests at full size; make soak  1 h of load, poison and kill -9 (not in CI)

SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
ARGS ?=
PYTEST_ARGS ?=

.PHONY: help venv system-deps jars demo test unit integration bench chaos soak lint format \
	clean screenshots

help:
	@sed -n '2,7p' Makefile

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

# Debian packages the tests use: kcat (an independent Kafka client).
system-deps:
	@bash scripts/system-deps.sh

# Kafka jars from Maven Central into the user cache (a no-op once cached).
jars: venv
	$(PY) -m streamlearn kafka install

demo: venv jars
	$(PY) -m streamlearn demo $(ARGS)

# The dashboard's screenshots in docs/img, taken by headless Chromium during the demo.
screenshots: venv system-deps jars
	$(PY) scripts/screenshots.py $(ARGS)

test: venv system-deps jars
	$(PY) -m pytest --cov=streamlearn --cov-report=term --cov-fail-under=95 --durations=25 $(PYTEST_ARGS)

unit: venv
	$(PY) -m pytest tests/unit $(PYTEST_ARGS)

integration: venv system-deps jars
	$(PY) -m pytest -m integration $(PYTEST_ARGS)

bench: venv jars
	$(PY) benchmarks/throughput.py $(ARGS)
	$(PY) benchmarks/query_api.py
	$(PY) benchmarks/models_quality.py
	$(PY) benchmarks/predict_api.py
	$(PY) benchmarks/features_cost.py
	$(PY) benchmarks/anomaly_quality.py
	$(PY) benchmarks/drift_quality.py

# Full-size fault tests (make test runs smaller sizes): 200,000 events and three kill -9s
# for the windows; 100,000 valid events with 1% poison; broker outages and a rebalance
# with 50,000 and 24,000 events.
chaos: venv system-deps jars
	STREAMLEARN_CHAOS_EVENTS=200000 STREAMLEARN_CHAOS_KILLS=3 \
	  $(PY) -m pytest tests/integration/test_windows_exact.py -k kill_9 -p no:cacheprovider $(PYTEST_ARGS)
	STREAMLEARN_POISON_EVENTS=100000 \
	  $(PY) -m pytest tests/integration/test_poison.py -p no:cacheprovider $(PYTEST_ARGS)
	STREAMLEARN_FAULT_EVENTS=50000 STREAMLEARN_SCALE_EVENTS_PER_KEY=3000 \
	  $(PY) -m pytest tests/integration/test_faults.py -p no:cacheprovider $(PYTEST_ARGS)

# Soak (not in CI): 1 h at 3,000 events/s, 0.5% poison, kill -9 every 10 min; figures in
# benchmarks/results/soak-<UTC>.json, a non-zero exit naming the failed criteria
# (ARGS="--minutes 5 --rate 500" for a short one).
soak: venv jars
	$(PY) benchmarks/soak.py $(ARGS)

lint: venv
	$(PY) -m ruff check streamlearn tests benchmarks
	$(PY) -m ruff format --check streamlearn tests benchmarks

format: venv
	$(PY) -m ruff format streamlearn tests benchmarks
	$(PY) -m ruff check --fix streamlearn tests benchmarks

clean:
	rm -rf $(VENV) .pytest_cache .coverage .coverage.* htmlcov build *.egg-info
