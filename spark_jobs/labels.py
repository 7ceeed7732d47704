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
import datetime as dt
import json
import sys
import time
from collections.abc import Sequence

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from labelling.attribution import (
    Windows,
    attribute_actions,
    day_start,
    dedup_events,
    dedup_impressions,
    label_impressions,
    unattributed_actions,
)
from mutuals.errors import run_and_exit_code
from mutuals.jobargs import job_parser, run_job
from mutuals.lake import Lake
from mutuals.tables import DS
from quality.label_gates import add_label_gate_arguments, check_labels, label_gate_config

LABELS_TABLE, UNATTRIBUTED_TABLE, EVENTS_TABLE = "labels/impressions", "labels/unattributed", "raw/events"


def shift_day(ds: str, days: int) -> str:
    return (dt.date.fromisoformat(ds) + dt.timedelta(days=days)).isoformat()


def recompute_days(run_date: str, lookback_days: int) -> list[str]:
    """R-L .. R, oldest first: the label partitions a run for R owns."""
    if lookback_days < 0:
        raise ValueError(f"--lookback-days must be >= 0, found {lookback_days}")
    return [shift_day(run_date, -back) for back in range(lookback_days, -1, -1)]


def add_lookback_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--lookback-days", type=int, default=3,
                        help="recompute the partitions R-L..R for late data (default %(default)s)")


def add_window_arguments(parser: argparse.ArgumentParser) -> None:
    defaults = Windows()
    parser.add_argument("--last-touch-hours", type=int, default=defaults.last_touch_hours,
                        help="last-touch attribution window (default %(default)s)")
    parser.add_argument("--invite-window-days", type=int, default=defaults.invite_window_days,
                        help="an invite counts for an impression this long after it (default %(default)s)")
    parser.add_argument("--accept-window-days", type=int, default=defaults.accept_window_days,
                        help="an accept counts for an invite this long after it (default %(default)s)")
    parser.add_argument("--valid-dwell-ms", type=int, default=defaults.valid_dwell_ms,
                        help="dwell that makes a click valid without an invite (default %(default)s)")


def windows_from_args(args: argparse.Namespace) -> Windows:
    return Windows(
        last_touch_hours=args.last_touch_hours,
        invite_window_days=args.invite_window_days,
        accept_window_days=args.accept_window_days,
        valid_dwell_ms=args.valid_dwell_ms,
    )


def build_parser() -> argparse.ArgumentParser:
    parser = job_parser("labels", __doc__)
    add_lookback_argument(parser)
    add_window_arguments(parser)
    add_label_gate_arguments(parser)
    return parser


def required_event_days(run_date: str, days: list[str], first_published: str | None) -> list[str]:
    """The raw/events days that must be published: R, and every label day from the first day ingest ever
    published on (before it the lake holds no events, so those label days are legitimately empty)."""
    return sorted({run_date, *(d for d in days if first_published is not None and d >= first_published)})


def read_events(
    spark: SparkSession, lake: Lake, run_date: str, days: list[str], windows: Windows
) -> DataFrame:
    """Published landing partitions that can hold events the label days need, minus anything after R's end.
    The required days (`required_event_days`) must be published; older history days are read where
    published and skipped where not."""
    first = shift_day(days[0], -windows.history_days)
    required = required_event_days(run_date, days, lake.first_published_day(spark, EVENTS_TABLE))
    horizon = day_start(run_date) + F.make_dt_interval(days=F.lit(1))
    events = lake.read_published_range(spark, EVENTS_TABLE, first, run_date, required=required)
    return events.where(F.col("ts") < horizon)


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
        run_days.write_partitions(labels, LABELS_TABLE)
        run_days.write_partitions(unattributed, UNATTRIBUTED_TABLE)
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
    print(json.dumps(summary, sort_keys=True))
    return summary


def main(argv: Sequence[str] | None = None) -> object:
    return run_job(build_parser(), run, argv)


if __name__ == "__main__":
    sys.exit(run_and_exit_code(main))
