"""The daily pipeline's jobs and the jobs each waits for, declared once.

Each job is `spark_jobs/<job>.py` with `main(argv)`. The CLI (`mutuals run`), the demo and the Airflow DAG
all derive their job lists and edges from `UPSTREAMS`, so adding a job is one line here plus its file.
Pure data on purpose: the DAG imports this module while Airflow parses it, so it imports nothing beyond
the standard library (no Spark, no lake, no I/O).
"""

from __future__ import annotations

# job -> the jobs it waits for, written in a run order (every job after all of its upstreams).
UPSTREAMS: dict[str, tuple[str, ...]] = {
    "ingest": (),
    "graph": ("ingest",),
    "candidates": ("graph",),
    "recs": ("candidates",),
    "labels": ("ingest",),
    "samples": ("labels", "candidates"),
    "push": ("recs",),
}

# The order one process runs the jobs of a day in (the demo, a backfill).
JOB_ORDER: tuple[str, ...] = tuple(UPSTREAMS)


def downstreams() -> dict[str, set[str]]:
    """job -> the jobs that wait for it (the shape of an Airflow task graph)."""
    waiting: dict[str, set[str]] = {job: set() for job in UPSTREAMS}
    for job, upstreams in UPSTREAMS.items():
        for upstream in upstreams:
            waiting[upstream].add(job)
    return waiting
