"""labels: raw/events -> labels/impressions and labels/unattributed, for run date R.

    spark-submit spark_jobs/labels.py --date R --lake ROOT [--lookback-days 3 ...]

What a run does (semantics in `labelling.attribution`):

* Late data. Events for day D may land in raw/events ds=D+1..D+L. So each run recomputes the label days
  R-L .. R (L = --lookback-days) and overwrites those partitions of both tables in one commit each: a
  re-run gives the same rows, and a click that lands a day late changes the earlier day's labels on the
  next run.
* What it reads. raw/events landing partitions from R-L-H through R, where H = accept window + the
  last-touch window in whole days (15 by default): an accept on day R-L may credit an invite 14 days
  earlier whose last-touch impression was up to 24 h before it. Events stamped after R's end (R+1 00:00
  UTC) are ignored, so the result depends only on R and what had landed. A request_id match has no time
  limit in the semantics, but it can only find impressions inside this read range: an action credited by
  request_id to an impression more than H days before the first label day is beyond what a run reads.
* What must be published. ingest of R, and of every label day R-L .. R from the first day ingest ever
  published on: those are the days whose events the rewritten partitions count, so a missing one fails
  the run instead of rewriting its labels as empty. Label days before the lake's first ingested day have
  no events by definition and are written empty. The older history days (read only to credit actions
  to earlier impressions and invites) are read where published; an unpublished history day is skipped,
  never read half written. Both tables are published for every label day together, last.
* Partitions. labels/impressions ds = the impression's UTC day; labels/unattributed ds = the action's UTC
  day, with reason no_impression (click, invite, dismiss), no_invite or invite_unattributed (accept).
* Provisional rows. With the defaults (L = 3, windows 7 + 14 days) every row a daily run writes is still
  provisional; a periodic run with --lookback-days 22 rewrites the older days with final labels.
* Gates (`quality.label_gates`) run before any write; a failed gate raises and the published partitions
  stay as they were.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from labelling.attribution import (
    Windows,
    attribute_actions,
    dedup_events,
    dedup_impressions,
    label_impressions,
    unattributed_actions,
)
from labelling.days import first_event_day, landed_by_end_of, recompute_days, required_event_days
from labelling.options import add_lookback_argument, add_window_arguments, windows_from_args
from mutuals.errors import run_and_exit_code
from mutuals.jobargs import job_parser, run_job
from mutuals.lake import Lake
from mutuals.ledger import emit_summary
from mutuals.tables import DS
from quality import gx_runner
from quality.label_gates import add_label_gate_arguments, check_labels, label_gate_config

LABELS_TABLE, UNATTRIBUTED_TABLE, EVENTS_TABLE = "labels/impressions", "labels/unattributed", "raw/events"


def build_parser() -> argparse.ArgumentParser:
    parser = job_parser("labels", __doc__)
    add_lookback_argument(parser)
    add_window_arguments(parser)
    add_label_gate_arguments(parser)
    return parser


def read_events(
    spark: SparkSession, lake: Lake, run_date: str, days: list[str], windows: Windows
) -> DataFrame:
    """Published landing partitions that can hold events the label days need, minus anything after R's end.
    The required days (`required_event_days`) must be published; older history days are read where
    published and skipped where not."""
    required = required_event_days(run_date, days, lake.first_published_day(spark, EVENTS_TABLE))
    events = lake.read_published_range(spark, EVENTS_TABLE, first_event_day(days, windows), run_date,
                                       required=required)
    return events.transform(landed_by_end_of(run_date))


def run(spark: SparkSession, args: argparse.Namespace) -> dict[str, object]:
    started = time.perf_counter()
    lake = Lake(args.lake)
    windows = windows_from_args(args)
    days = recompute_days(args.date, args.lookback_days)
    in_days = F.col(DS).isin(days)

    events = dedup_events(read_events(spark, lake, args.date, days, windows)).persist()
    impressions = dedup_impressions(events).persist()
    attributed = events.transform(attribute_actions(impressions, windows)).persist()
    labels = impressions.transform(label_impressions(attributed, windows, args.date)).where(in_days).persist()
    unattributed = unattributed_actions(attributed).where(in_days).persist()
    try:
        figures = check_labels(labels, impressions, args.date, label_gate_config(args))
        run_days = lake.day_run(spark, "labels", days)
        run_days.write_partitions_at_once([(labels, LABELS_TABLE), (unattributed, UNATTRIBUTED_TABLE)], None)
        published = run_days.publish()
        by_reason = {r["reason"]: r["n"] for r in
                     unattributed.groupBy("reason").agg(F.count(F.lit(1)).alias("n")).collect()}
    finally:
        for df in (unattributed, labels, attributed, impressions, events):
            df.unpersist()
    summary = {
        "job": "labels", "date": args.date, "days": days, **figures,
        "rows": sum(d["impressions"] for d in figures["days"]),
        "unattributed": dict(sorted(by_reason.items())),
        "seconds": round(time.perf_counter() - started, 1), "run_id": published["run_id"],
    }
    emit_summary(summary)
    return summary


def main(argv: Sequence[str] | None = None) -> object:
    gx_runner.preload()
    return run_job(build_parser(), run, argv)


if __name__ == "__main__":
    sys.exit(run_and_exit_code(main))
