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

.PHONY: setup demo test lint bench airflow-test redis clean

setup: $(VENV)/.installed .jars/.fetched $(VENV)/.configured

$(VENV)/.installed: requirements.lock pyproject.toml
	test -x $(PY) || $(PYTHON_BOOT) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -r requirements.lock
	$(PY) -m pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e .
	touch $@

.jars/.fetched: pom.xml
	mvn -q -B dependency:copy-dependencies
	touch $@

# Points the venv's spark-submit at our jars and warms the numba kernel cache.
$(VENV)/.configured: $(VENV)/.installed .jars/.fetched spark_jobs/install.py $(wildcard joins/*.py)
	$(PY) -m spark_jobs.install --jars-dir $(ROOT)/.jars
	touch $@

redis:
	@command -v redis-server >/dev/null || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq redis-server >/dev/null; }

demo: setup
	$(BIN)/mutuals demo --lake $(ROOT)/.demo/lake

test: setup redis
	$(BIN)/pytest -q tests

lint: setup
	$(BIN)/ruff check .

airflow-test: setup
	$(BIN)/airflow db migrate >/dev/null
	MUTUALS_LAKE=$(ROOT)/.demo/lake $(BIN)/airflow dags test mutuals_daily 2026-01-03

clean:
	rm -rf $(VENV) .jars .airflow .demo
