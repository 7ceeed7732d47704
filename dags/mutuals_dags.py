"""Every DAG of `mutuals`, built from `mutuals.pipeline.DAGS`: one SparkSubmitOperator per job, wired by
the jobs' upstreams, scheduled by `mutuals.pipeline.DAG_OPTIONS`.

This file only wires operators (style.md, "Orchestration"). Every job is the same contract
(`spark-submit spark_jobs/<job>.py --date D --lake ROOT`, design.md), so a DAG is the table of its jobs
and their upstreams that `mutuals.pipeline` declares for the CLI and the demo too: adding a job (or a DAG)
is one line there plus its spark_jobs/<job>.py, and it runs here with no edit to this file. Of ours it
imports only the pure job table (`mutuals.pipeline`) and the standard-library landing check
(`mutuals.readiness`), so parsing loads no Spark, reads no Variable or connection and touches no lake.

Why these choices:
- Data-interval cron schedules: the run for day D starts after D ends and has `ds` == D. With Airflow 3's
  default cron semantics (`create_cron_data_intervals=False`) a run at 00:00 of D+1 would get
  `ds` == D+1, a day that has not ended.
- The lake root is resolved when a task renders, never while parsing: the Airflow Variable
  `mutuals_lake` (or `AIRFLOW_VAR_MUTUALS_LAKE`) if set, else the worker's `$MUTUALS_LAKE`, else
  `<repo>/lake`.
- A landing sensor (`landing_ready`, a PythonSensor in reschedule mode, so it holds no worker slot
  between pokes) sits before `ingest` in every DAG that has it: it waits until each landing table's day
  folder holds its `_SUCCESS` marker, and fails the run after `LANDING_SENSOR.timeout_s`.
- One Airflow pool per lake (`mutuals.pipeline.pool_name`) holds every Spark task, of every DAG, that
  writes that lake, so its slots bound how many jobs run on one lake at once. A pool is not a templated
  field, so it is named from the deployment's lake, `$MUTUALS_LAKE` (else `<repo>/lake`) where the DAG is
  parsed: set the same `$MUTUALS_LAKE` on the DAG processor and the workers (a Variable naming another
  lake changes where a run writes, not its pool). The pool must exist (`airflow pools set NAME SLOTS
  DESC`; `make airflow-test` creates it); a task in a missing pool is never scheduled.
- Jobs overwrite one `ds` partition atomically and publish their day last, so retries, re-runs and
  backfills are safe to automate; a job whose input day is not published fails with exit 10 and retries.
"""

from __future__ import annotations

import os
import sys
from datetime import timedelta
from pathlib import Path

import pendulum
from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator
from airflow.providers.standard.sensors.python import PythonSensor
from airflow.sdk import DAG, CronDataIntervalTimetable

from mutuals.pipeline import (
    DAGS,
    LANDING_JOB,
    LANDING_SENSOR,
    LANDING_SENSOR_TASK,
    dag_options,
    pool_name,
)
from mutuals.readiness import landing_ready

# dags/ sits next to spark_jobs/; absolute() only joins with the cwd, it touches no file.
REPO_ROOT = Path(__file__).absolute().parents[1]
SPARK_JOBS_DIR = REPO_ROOT / "spark_jobs"
START_DATE = pendulum.datetime(2026, 1, 1, tz="UTC")

# Rendered per task instance; `default_lake_root` is a user macro, so it runs on the worker, at run time.
LAKE_TEMPLATE = "{{ var.value.get('mutuals_lake', default_lake_root()) }}"
DATE_TEMPLATE = "{{ ds }}"

# Environment of every spark-submit: the driver and executors run the interpreter that has our packages
# (the venv's); sys.executable is a value the interpreter already holds, not I/O.
SPARK_SUBMIT_ENV: dict[str, str] = {
    "PYSPARK_PYTHON": sys.executable,
    "PYSPARK_DRIVER_PYTHON": sys.executable,
}


def default_lake_root() -> str:
    """The lake when no Variable is set: `$MUTUALS_LAKE`, else `<repo>/lake` (design.md's `./lake`,
    made absolute because an Airflow worker's cwd is not the repo)."""
    return os.environ.get("MUTUALS_LAKE") or str(REPO_ROOT / "lake")


# The pool of the deployment's lake (see the module docstring); an environment value, not I/O.
LAKE_POOL = pool_name(default_lake_root())


def spark_job(job: str) -> SparkSubmitOperator:
    """One job of the pipeline as a spark-submit on `spark_default`, for day `ds` of the chosen lake."""
    return SparkSubmitOperator(
        task_id=job,
        application=str(SPARK_JOBS_DIR / f"{job}.py"),
        application_args=["--date", DATE_TEMPLATE, "--lake", LAKE_TEMPLATE],
        name=f"mutuals-{job}",
        conn_id="spark_default",
        env_vars=SPARK_SUBMIT_ENV,
        pool=LAKE_POOL,
    )


def landing_sensor() -> PythonSensor:
    """Waits, in reschedule mode, until day `ds` has fully landed (every landing table's `_SUCCESS`)."""
    return PythonSensor(
        task_id=LANDING_SENSOR_TASK,
        python_callable=landing_ready,
        op_kwargs={"lake_root": LAKE_TEMPLATE, "ds": DATE_TEMPLATE},
        mode=LANDING_SENSOR.mode,
        poke_interval=LANDING_SENSOR.poke_interval_s,
        timeout=LANDING_SENSOR.timeout_s,
    )


def build_dag(dag_id: str, upstreams: dict[str, tuple[str, ...]]) -> DAG:
    options = dag_options(dag_id)
    with DAG(
        dag_id=dag_id,
        description=options.description,
        schedule=CronDataIntervalTimetable(options.schedule, timezone="UTC"),
        start_date=START_DATE,
        catchup=False,
        max_active_runs=1,
        tags=list(options.tags),
        default_args={
            "owner": "mutuals",
            "retries": options.retries,
            "retry_delay": timedelta(minutes=options.retry_delay_minutes),
            "execution_timeout": timedelta(hours=2),
        },
        user_defined_macros={"default_lake_root": default_lake_root},
        doc_md=__doc__,
    ) as dag:
        tasks = {job: spark_job(job) for job in upstreams}
        for job, waits_for in upstreams.items():
            for upstream in waits_for:
                tasks[upstream] >> tasks[job]
        if LANDING_JOB in tasks:
            landing_sensor() >> tasks[LANDING_JOB]
    return dag


for _dag_id, _upstreams in DAGS.items():
    globals()[_dag_id] = build_dag(_dag_id, _upstreams)
