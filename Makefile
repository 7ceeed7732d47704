# Two commands a data engineer needs: `make demo` and `make test`.
# Every target installs what it needs from the project's own files; a second run reuses it.
SHELL := /bin/bash
ROOT := $(abspath .)
VENV := $(ROOT)/.venv
BIN := $(VENV)/bin
PY := $(BIN)/python
PYTHON_BOOT ?= python3.11

export PATH := $(BIN):$(PATH)
export PYSPARK_PYTHON := $(PY)
export PYSPARK_DRIVER_PYTHON := $(PY)
export SPARK_LOCAL_IP := 127.0.0.1
export GX_ANALYTICS_ENABLED := false
export MUTUALS_JARS_DIR := $(ROOT)/.jars
export AIRFLOW_HOME := $(ROOT)/.airflow
export AIRFLOW__CORE__DAGS_FOLDER := $(ROOT)/dags
export AIRFLOW__CORE__LOAD_EXAMPLES := False
export AIRFLOW_CONN_SPARK_DEFAULT := {"conn_type": "spark", "host": "local[*]", "extra": {"deploy-mode": "client"}}

.PHONY: setup demo test lint bench airflow-test cluster-test redis chromium clean

setup: $(VENV)/.installed .jars/.fetched $(VENV)/.configured

$(VENV)/.installed: requirements.lock pyproject.toml
	test -x $(PY) || $(PYTHON_BOOT) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -r requirements.lock
	$(PY) -m pip install -q --disable-pip-version-check --no-deps -e .
	touch $@

.jars/.fetched: pom.xml
	mvn -q -B dependency:copy-dependencies
	touch $@

# Points the venv's spark-submit at our jars, warms the numba kernel cache and dumps the JVM class archive
# every local or standalone Spark driver maps (about 10 s less per job start).
$(VENV)/.configured: $(VENV)/.installed .jars/.fetched mutuals/install.py mutuals/class_archive.py $(wildcard joins/*.py)
	$(PY) -m mutuals.install --jars-dir $(ROOT)/.jars
	$(PY) -m joins.warmup
	$(PY) -m mutuals.class_archive
	touch $@

redis:
	@command -v redis-server >/dev/null || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq redis-server >/dev/null; }

# Headless Chromium for the tests that open the reports' HTML pages (tests/browser.py).
chromium:
	@command -v chromium >/dev/null || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium >/dev/null; }

demo: setup
	$(BIN)/mutuals demo --lake $(ROOT)/.demo/lake

# Two pytest workers, whole files each (module fixtures are built once): most of a Spark test's wall time is
# JVM scheduling and Python round trips, so two sessions side by side keep both cores busy.
PYTEST_WORKERS ?= 2

test: setup redis chromium
	$(BIN)/pytest -q -n $(PYTEST_WORKERS) --dist loadfile --no-loadscope-reorder --durations=15 tests

# ruff, then the layer contracts of the house (pyproject.toml, [tool.importlinter]).
lint: setup
	$(BIN)/ruff check .
	$(BIN)/lint-imports

# Only the standalone-cluster file of `make test`: every daily job of one generated day on a real Spark
# standalone cluster (a master and two workers as separate JVMs), half through `mutuals run`, half through
# spark-submit with the code zip, compared with a local[*] run table by table (tests/test_cluster.py).
cluster-test: setup
	$(BIN)/pytest -q -s tests/test_cluster.py

# A real two-day backfill of mutuals_daily on SQLite (`airflow backfill create`, run by a real scheduler and
# API server started and stopped inside the target), then the same backfill again with every run cleared
# and re-run, compared table by table: the re-run must change no row (deploy/airflow/backfill_test.sh).
# Every task spark-submits its job on spark_default (local[*], see above); the pool of the lake is created
# first. Its own lake under AIRFLOW_HOME, generated afresh each time (`mutuals demo` wipes .demo/lake).
AIRFLOW_LAKE := $(ROOT)/.airflow/lake

airflow-test: setup
	AIRFLOW_LAKE=$(AIRFLOW_LAKE) AIRFLOW_FROM=2026-01-01 AIRFLOW_TO=2026-01-02 bash deploy/airflow/backfill_test.sh

clean:
	rm -rf $(VENV) .jars .airflow .demo
