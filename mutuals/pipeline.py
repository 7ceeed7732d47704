"""The pipeline's jobs, the DAG each belongs to and the jobs each waits for, declared once.

Each job is `spark_jobs/<job>.py` with `main(argv)`. The CLI (`mutuals run`), the demo and the Airflow DAGs
all derive their job lists and edges from this module, so adding a job is one line here plus its file.
Pure data on purpose: the DAGs import this module while Airflow parses them, so it imports nothing beyond
the standard library (no Spark, no lake, no I/O).

Three DAGs, three mappings:
- `UPSTREAMS`, the daily DAG (`mutuals_daily`): the batch layer and the daily report, whose edges order
  the runs of one day.
- `TRAINING_UPSTREAMS`, the training DAG (`mutuals_training`, weekly): `train` and its promotion gate.
- `EXPERIMENT_REPORT_UPSTREAMS`, the experiment report DAG (`mutuals_experiment_report`): it reads days
  the daily DAG publishes, but lives apart so that re-running an experiment's analysis never re-runs or
  blocks the batch layer; a run that starts before its inputs are published fails with exit 10 and retries.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

# job -> the jobs it waits for, written in a run order (every job after all of its upstreams).
UPSTREAMS: dict[str, tuple[str, ...]] = {
    "ingest": (),
    "graph": ("ingest",),
    "candidates": ("graph",),
    "features": ("candidates",),
    "recs": ("features",),
    "labels": ("ingest",),
    "daily_report": ("labels", "recs"),
    "samples": ("labels", "features"),
    "push": ("recs",),
}

# The jobs of the experiment report DAG, in the same shape; their inputs come from the daily DAG's days.
EXPERIMENT_REPORT_UPSTREAMS: dict[str, tuple[str, ...]] = {
    "experiment_report": (),
}

# The model training DAG: its own (weekly) schedule; it reads the samples, features and graph days the daily
# DAG publishes, and a new champion is picked up by the next day's recs.
TRAINING_UPSTREAMS: dict[str, tuple[str, ...]] = {
    "train": (),
}

# dag_id -> its jobs and their upstreams.
DAGS: dict[str, dict[str, tuple[str, ...]]] = {
    "mutuals_daily": UPSTREAMS,
    "mutuals_experiment_report": EXPERIMENT_REPORT_UPSTREAMS,
    "mutuals_training": TRAINING_UPSTREAMS,
}

# The order one process runs the jobs of a day in (a backfill of the daily DAG).
JOB_ORDER: tuple[str, ...] = tuple(UPSTREAMS)

# Every job of every DAG, daily ones first: what `mutuals run` and the demo know.
ALL_JOBS: tuple[str, ...] = JOB_ORDER + tuple(EXPERIMENT_REPORT_UPSTREAMS) + tuple(TRAINING_UPSTREAMS)


def downstreams(upstreams: dict[str, tuple[str, ...]] = UPSTREAMS) -> dict[str, set[str]]:
    """job -> the jobs that wait for it (the shape of an Airflow task graph)."""
    waiting: dict[str, set[str]] = {job: set() for job in upstreams}
    for job, waits_for in upstreams.items():
        for upstream in waits_for:
            waiting[upstream].add(job)
    return waiting


# ---------------------------------------------------------------- how each DAG is scheduled and gated


@dataclass(frozen=True)
class DagOptions:
    """The scheduling of one DAG of `DAGS`; a DAG with no entry in `DAG_OPTIONS` runs with the defaults.

    `schedule` is a cron preset or expression on data intervals (the run for day D starts after D ends and
    has `ds` == D); `retry_delay_minutes` spaces a job's retries.
    """

    description: str
    schedule: str = "@daily"
    retries: int = 2
    retry_delay_minutes: int = 5
    tags: tuple[str, ...] = ("mutuals", "spark")


DAG_OPTIONS: dict[str, DagOptions] = {
    "mutuals_daily": DagOptions(
        "People You May Know batch layer: landing check, ingest, graph, candidates, recs, push; labels, samples; "
        "daily_report", tags=("mutuals", "spark", "daily")),
    # Inputs come from the daily DAG's days: more retries, further apart, wait for a day to be published.
    "mutuals_experiment_report": DagOptions(
        "Experiment report: per-member lifts with CIs, CUPED and SRM, from the days mutuals_daily publishes",
        retries=6, retry_delay_minutes=20, tags=("mutuals", "spark", "daily", "experiments")),
    # Weekly: a model needs days of final labels; the gate keeps the champion unless the new model earns it.
    "mutuals_training": DagOptions(
        "Model training: GBT on the final labels, held-out metrics beside LR and heuristic-v1, promotion gate "
        "to the champion", schedule="@weekly", retries=3, retry_delay_minutes=30,
        tags=("mutuals", "spark", "training")),
}


def dag_options(dag_id: str) -> DagOptions:
    return DAG_OPTIONS.get(dag_id) or DagOptions(f"mutuals: {', '.join(DAGS[dag_id])}")


# The job that reads the landing files: in every DAG that has it, a sensor waits before it until every
# landing table's folder for the day holds its `_SUCCESS` marker (the producer writes it last).
LANDING_JOB = "ingest"
LANDING_TABLES: tuple[str, ...] = ("members", "connections", "positions", "educations", "events",
                                   "experiment_assignments")
SUCCESS_MARKER = "_SUCCESS"


@dataclass(frozen=True)
class SensorOptions:
    """The landing sensor: reschedule mode frees its worker slot between pokes."""

    poke_interval_s: int = 300
    timeout_s: int = 6 * 3600
    mode: str = "reschedule"


LANDING_SENSOR = SensorOptions()
LANDING_SENSOR_TASK = "landing_ready"


def landing_markers(lake_root: str, ds: str, tables: tuple[str, ...] = LANDING_TABLES) -> list[str]:
    """The marker paths (or URIs) that say day `ds` has fully landed in `lake_root`."""
    root = lake_root.rstrip("/")
    return [f"{root}/landing/{table}/ds={ds}/{SUCCESS_MARKER}" for table in tables]


def pool_name(lake_root: str) -> str:
    """The Airflow pool of one lake: every Spark task writing that lake takes a slot of it, so one pool
    bounds how many jobs run on a lake at once across all DAGs. Readable tail plus a hash of the whole
    root, so two lakes with the same folder name never share a pool."""
    canonical = lake_root.rstrip("/") or "/"
    tail = re.sub(r"[^A-Za-z0-9]+", "_", canonical.rsplit("/", 1)[-1]).strip("_")[:40] or "root"
    return f"mutuals_lake_{tail}_{hashlib.sha256(canonical.encode()).hexdigest()[:10]}"
