"""Progress of a running job: one line per stage that moved, on stderr, and where its Spark UI is.

Why a line per stage rather than Spark's console progress bar: the bar redraws one terminal line with
carriage returns, which an Airflow task log or a cron mail turns into thousands of fragments. A poller
thread that asks Spark's status tracker every few seconds and prints a plain line only when a stage made
progress reads well in a terminal and in a log file alike, on local[*] and on a cluster.

    [candidates +42s] stage 7 (mapInArrow at triangles.py:120): 120/200 tasks done, 2 running

`MUTUALS_PROGRESS_S` sets the interval in seconds (default 10); `0` turns the lines off. The UI address is
printed once when the job starts, if the UI is on (`mutuals.session` turns it off with
`MUTUALS_SPARK_UI=false`, as the tests do).
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TextIO

from pyspark.sql import SparkSession

PROGRESS_ENV = "MUTUALS_PROGRESS_S"
DEFAULT_INTERVAL_S = 10.0


def interval_s() -> float:
    """Seconds between polls from `$MUTUALS_PROGRESS_S`; 0 (or a negative value) turns progress off."""
    raw = os.environ.get(PROGRESS_ENV, "")
    try:
        return float(raw) if raw.strip() else DEFAULT_INTERVAL_S
    except ValueError:
        return DEFAULT_INTERVAL_S


def stage_lines(spark: SparkSession, seen: dict[int, tuple[int, int]]) -> list[str]:
    """One line per active stage whose (done, running) counts changed since the last poll.

    `seen` carries the counts of the previous poll and is updated in place, so an idle stage stays quiet.
    """
    tracker = spark.sparkContext.statusTracker()
    lines = []
    for stage_id in sorted(tracker.getActiveStageIds()):
        info = tracker.getStageInfo(stage_id)
        if info is None:
            continue
        counts = (info.numCompletedTasks, info.numActiveTasks)
        if seen.get(stage_id) == counts:
            continue
        seen[stage_id] = counts
        failed = f", {info.numFailedTasks} failed" if info.numFailedTasks else ""
        lines.append(f"stage {stage_id} ({info.name}): {info.numCompletedTasks}/{info.numTasks} tasks done, "
                     f"{info.numActiveTasks} running{failed}")
    return lines


def ui_line(spark: SparkSession) -> str | None:
    url = spark.sparkContext.uiWebUrl
    return f"Spark UI: {url}" if url else None


@contextmanager
def reporting(spark: SparkSession, job: str, stream: TextIO | None = None,
              every_s: float | None = None) -> Iterator[None]:
    """Print the UI address, then a progress line per moving stage until the block ends."""
    out = stream or sys.stderr
    every = interval_s() if every_s is None else every_s
    started = time.monotonic()
    address = ui_line(spark)
    if address and every > 0:
        print(f"[{job}] {address}", file=out, flush=True)
    if every <= 0:
        yield
        return
    stop = threading.Event()

    def poll() -> None:
        seen: dict[int, tuple[int, int]] = {}
        while not stop.wait(every):
            try:
                lines = stage_lines(spark, seen)
            except Exception:  # the context is stopping; progress is best effort and must never fail a job
                return
            elapsed = int(time.monotonic() - started)
            for line in lines:
                print(f"[{job} +{elapsed}s] {line}", file=out, flush=True)

    thread = threading.Thread(target=poll, name=f"{job}-progress", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=every + 5)
