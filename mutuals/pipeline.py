"""The pipeline's jobs, the DAG each belongs to and the jobs each waits for, declared once.

Each job is `spark_jobs/<job>.py` with `main(argv)`. The CLI (`mutuals run`), the demo and the Airflow DAGs
all derive their job lists and edges from this module, so adding a job is one line here plus its file.
Pure data on purpose: the DAGs import this module while Airflow parses them, so it imports nothing beyond
the standard library (no Spark, no lake, no I/O).

Two DAGs, two mappings:
- `UPSTREAMS`, the daily DAG (`mutuals_daily`): the batch layer and the daily report, whose edges order
  the runs of one day.
- `EXPERIMENT_REPORT_UPSTREAMS`, the experiment report DAG (`mutuals_experiment_report`): it reads days
  the daily DAG publishes, but lives apart so that re-running an experiment's analysis never re-runs or
  blocks the batch layer; a run that starts before its inputs are published fails with exit 10 and retries.
"""

from __future__ import annotations

# job -> the jobs it waits for, written in a run order (every job after all of its upstreams).
UPSTREAMS: dict[str, tuple[str, ...]] = {
    "ingest": (),
    "graph": ("ingest",),
    "candidates": ("graph",),
    "recs": ("candidates",),
    "labels": ("ingest",),
    "daily_report": ("labels", "recs"),
    "samples": ("labels", "candidates"),
    "push": ("recs",),
}

# The jobs of the experiment report DAG, in the same shape; their inputs come from the daily DAG's days.
EXPERIMENT_REPORT_UPSTREAMS: dict[str, tuple[str, ...]] = {
    "experiment_report": (),
}

# dag_id -> its jobs and their upstreams.
DAGS: dict[str, dict[str, tuple[str, ...]]] = {
    "mutuals_daily": UPSTREAMS,
    "mutuals_experiment_report": EXPERIMENT_REPORT_UPSTREAMS,
}

# The order one process runs the jobs of a day in (a backfill of the daily DAG).
JOB_ORDER: tuple[str, ...] = tuple(UPSTREAMS)

# Every job of every DAG, daily ones first: what `mutuals run` and the demo know.
ALL_JOBS: tuple[str, ...] = JOB_ORDER + tuple(EXPERIMENT_REPORT_UPSTREAMS)


def downstreams(upstreams: dict[str, tuple[str, ...]] = UPSTREAMS) -> dict[str, set[str]]:
    """job -> the jobs that wait for it (the shape of an Airflow task graph)."""
    waiting: dict[str, set[str]] = {job: set() for job in upstreams}
    for job, waits_for in upstreams.items():
        for upstream in waits_for:
            waiting[upstream].add(job)
    return waiting
