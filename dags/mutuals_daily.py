"""The daily `mutuals` pipeline: one SparkSubmitOperator per job in spark_jobs/, wired by `mutuals.pipeline`.

This file only wires operators (style.md, "Orchestration"). Every job is the same contract
(`spark-submit spark_jobs/<job>.py --date D --lake ROOT`, design.md), so the DAG is the table of jobs and
their upstreams that `mutuals.pipeline.UPSTREAMS` declares for the CLI and the demo too: adding a job is
one line there plus its spark_jobs/<job>.py. That module is pure data (standard library only), the one
module of ours this file imports, so parsing loads no Spark and touches no lake.

Why these choices:
- The schedule is a data-interval cron: the run for day D starts after D ends and has `ds` == D. With
  Airflow 3's default cron semantics (`create_cron_data_intervals=False`) a run at 00:00 of D+1 would
  get `ds` == D+1, i.e. a day that has not ended.
- The lake root is resolved when a task renders, never while parsing: the Airflow Variable
  `mutuals_lake` (or `AIRFLOW_VAR_MUTUALS_LAKE`) if set, else the worker's `$MUTUALS_LAKE`, else
  `<repo>/lake`. Parsing reads no Variable, no connection and no file.
- `spark_default` decides where Spark runs (local[*] here, YARN/k8s elsewhere); the DAG does not know.
- Jobs overwrite one `ds` partition atomically, so retries and re-runs are safe to automate.
- A job publishes its day last (`meta/publications`), after every table it writes, and checks that each
  input it reads was published for D before doing any work: a downstream task never runs on a missing or
  half-published day, it fails with exit 10 naming the job to re-run, and the retry (or a re-run of the
  upstream task) completes the day. The DAG needs no sensor for it: the edges below only order the runs.
"""

from __future__ import annotations

import os
import sys
from datetime import timedelta
from pathlib import Path

import pendulum
from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator
from airflow.sdk import DAG, CronDataIntervalTimetable

from mutuals.pipeline import UPSTREAMS

# dags/ sits next to spark_jobs/; absolute() only joins with the cwd, it touches no file.
REPO_ROOT = Path(__file__).absolute().parents[1]
SPARK_JOBS_DIR = REPO_ROOT / "spark_jobs"

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


def application_path(job: str) -> str:
    return str(SPARK_JOBS_DIR / f"{job}.py")


def spark_job(job: str) -> SparkSubmitOperator:
    """One job of the pipeline as a spark-submit on `spark_default`, for day `ds` of the chosen lake."""
    return SparkSubmitOperator(
        task_id=job,
        application=application_path(job),
        application_args=["--date", DATE_TEMPLATE, "--lake", LAKE_TEMPLATE],
        name=f"mutuals-{job}",
        conn_id="spark_default",
        env_vars=SPARK_SUBMIT_ENV,
    )


with DAG(
    dag_id="mutuals_daily",
    description="People You May Know batch layer: ingest, graph, candidates, recs, push; labels, samples; daily_report",
    schedule=CronDataIntervalTimetable("@daily", timezone="UTC"),
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=["mutuals", "spark", "daily"],
    default_args={
        "owner": "mutuals",
        "retries": 2,
        "retry_delay": timedelta(minutes=5),
        "execution_timeout": timedelta(hours=2),
    },
    user_defined_macros={"default_lake_root": default_lake_root},
    doc_md=__doc__,
) as dag:
    tasks = {job: spark_job(job) for job in UPSTREAMS}
    for job, upstreams in UPSTREAMS.items():
        for upstream in upstreams:
            tasks[upstream] >> tasks[job]
