"""The experiment report of `mutuals`: one SparkSubmitOperator per job that `mutuals.pipeline` declares
for this DAG (today `spark_jobs/experiment_report.py`), for day `ds` of the same lake as `mutuals_daily`.

This file only wires operators (style.md, "Orchestration"), with the conventions of `mutuals_daily.py`:
the job contract is `spark-submit spark_jobs/<job>.py --date D --lake ROOT`, the lake is resolved when a
task renders (the Airflow Variable `mutuals_lake`, else the worker's `$MUTUALS_LAKE`, else `<repo>/lake`),
and of ours it imports only the pure job table `mutuals.pipeline`. The two helpers below repeat those of
`mutuals_daily.py` on purpose: a DAG file that imported another would build that DAG a second time.

Why a DAG of its own: the report reads days that `mutuals_daily` publishes (labels, experiment
assignments) and writes only `reports/experiments`, so a re-run or backfill of an analysis never touches
the batch layer, and a slow or failing analysis never holds up tomorrow's recommendations. Its run for D
has `ds` == D like the daily DAG's. The job checks that every input it reads was published for D before
doing any work: a run that starts before `mutuals_daily` has finished D fails with exit 10, and the
retries below (six, twenty minutes apart) wait for the day to be published without a sensor.
"""

from __future__ import annotations

import os
import sys
from datetime import timedelta
from pathlib import Path

import pendulum
from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator
from airflow.sdk import DAG, CronDataIntervalTimetable

from mutuals.pipeline import EXPERIMENT_REPORT_UPSTREAMS

# dags/ sits next to spark_jobs/; absolute() only joins with the cwd, it touches no file.
REPO_ROOT = Path(__file__).absolute().parents[1]
SPARK_JOBS_DIR = REPO_ROOT / "spark_jobs"

# The same templates as mutuals_daily: rendered per task instance, on the worker, at run time.
LAKE_TEMPLATE = "{{ var.value.get('mutuals_lake', default_lake_root()) }}"
DATE_TEMPLATE = "{{ ds }}"

SPARK_SUBMIT_ENV: dict[str, str] = {
    "PYSPARK_PYTHON": sys.executable,
    "PYSPARK_DRIVER_PYTHON": sys.executable,
}


def default_lake_root() -> str:
    """The lake when no Variable is set: `$MUTUALS_LAKE`, else `<repo>/lake` (as in mutuals_daily)."""
    return os.environ.get("MUTUALS_LAKE") or str(REPO_ROOT / "lake")


def spark_job(job: str) -> SparkSubmitOperator:
    """One job as a spark-submit on `spark_default`, for day `ds` of the chosen lake."""
    return SparkSubmitOperator(
        task_id=job,
        application=str(SPARK_JOBS_DIR / f"{job}.py"),
        application_args=["--date", DATE_TEMPLATE, "--lake", LAKE_TEMPLATE],
        name=f"mutuals-{job}",
        conn_id="spark_default",
        env_vars=SPARK_SUBMIT_ENV,
    )


with DAG(
    dag_id="mutuals_experiment_report",
    description="Experiment report: per-member lifts with CIs, CUPED and SRM, from the days mutuals_daily publishes",
    schedule=CronDataIntervalTimetable("@daily", timezone="UTC"),
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=["mutuals", "spark", "daily", "experiments"],
    default_args={
        "owner": "mutuals",
        "retries": 6,
        "retry_delay": timedelta(minutes=20),
        "execution_timeout": timedelta(hours=2),
    },
    user_defined_macros={"default_lake_root": default_lake_root},
    doc_md=__doc__,
) as dag:
    tasks = {job: spark_job(job) for job in EXPERIMENT_REPORT_UPSTREAMS}
    for job, upstreams in EXPERIMENT_REPORT_UPSTREAMS.items():
        for upstream in upstreams:
            tasks[upstream] >> tasks[job]
