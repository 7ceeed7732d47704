"""daily_report: the T+1 report of day D -> reports/daily ds=D and <lake>/reports/html/daily/ds=D.html.

    spark-submit spark_jobs/daily_report.py --date D --lake ROOT      (or: mutuals run daily_report ...)

Metrics, dimensions, maturity and flags are defined in `reports.daily`; the page in `reports.daily_html`.

Write, audit, publish. Inputs: labels/impressions and labels/unattributed ds=D, quarantine/ingest_counts
ds=D and recs/topk ds=D must be published, and raw/experiment_assignments every day from its first
published day through D; the source breakdown reads the newest published recs/topk partition before D
(none: every pair is "not_ranked"). The report is computed, audited (`reports.daily.audit_day`: labels
present, impressions volume in band against the trailing days, quarantine shares under the limit), and
only then written and published. A missing input or a failed audit writes ds=D.NOT_PUBLISHED.html with
the reasons beside (never over) ds=D.html, leaves reports/daily as it was, and fails: a missing partition
with `DailyInputMissing` (exit 10), an audit with `DailyReportRefused` (exit 5). A published run deletes
the day's stale NOT PUBLISHED page.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from labelling.attribution import Windows
from mutuals.errors import MutualsError, run_and_exit_code
from mutuals.jobargs import band, job_parser, run_job
from mutuals.lake import Lake, UnpublishedPartition, days_between
from mutuals.ledger import emit_summary
from mutuals.tables import DS, spec
from reports.daily import (
    ALL,
    SAME_WEEKDAY_LAGS,
    DailyConfig,
    DailyInputMissing,
    DailyReportRefused,
    LabelWindows,
    audit_day,
    flag_moved,
    label_dimensions,
    label_metrics,
    members_served,
    quarantine_shares,
    report_rows,
    shift_day,
)
from reports.daily_html import TREND_DAYS, not_published_uri, page_uri, render_daily, render_not_published, write_page

JOB = "daily_report"
LABELS, UNATTRIBUTED, COUNTS = "labels/impressions", "labels/unattributed", "quarantine/ingest_counts"
RECS, ASSIGNMENTS, REPORT = "recs/topk", "raw/experiment_assignments", "reports/daily"


def build_parser() -> argparse.ArgumentParser:
    parser = job_parser(JOB, __doc__)
    windows, config = Windows(), DailyConfig()
    parser.add_argument("--last-touch-hours", type=int, default=windows.last_touch_hours,
                        help="the labels' click window (default %(default)s)")
    parser.add_argument("--invite-window-days", type=int, default=windows.invite_window_days,
                        help="the labels' invite window (default %(default)s)")
    parser.add_argument("--accept-window-days", type=int, default=windows.accept_window_days,
                        help="the labels' accept window (default %(default)s)")
    parser.add_argument("--min-volume", type=int, default=config.min_volume,
                        help="figures under this volume are flagged small, and volume and quarantine audits are "
                             "judged only from it (default %(default)s)")
    parser.add_argument("--volume-band", type=band, default=config.volume_band, metavar="LOW:HIGH",
                        help="allowed ratio of the day's impressions to the trailing mean (default 0.5:2.0)")
    parser.add_argument("--volume-trailing-days", type=int, default=config.volume_trailing_days,
                        help="trailing days for the volume audit (default %(default)s)")
    parser.add_argument("--max-quarantine-share", type=float, default=config.max_quarantine_share,
                        help="refuse when a landing table's quarantine share is above this (default %(default)s)")
    return parser


def config_from_args(args: argparse.Namespace) -> tuple[DailyConfig, LabelWindows]:
    config = DailyConfig(min_volume=args.min_volume, volume_band=tuple(args.volume_band),
                         volume_trailing_days=args.volume_trailing_days,
                         max_quarantine_share=args.max_quarantine_share)
    return config, LabelWindows(args.last_touch_hours, args.invite_window_days, args.accept_window_days)


def missing_inputs(spark: SparkSession, lake: Lake, day: str) -> list[str]:
    """Every unpublished input partition of the day, named with the job to run (empty: all there)."""
    first_assignment = lake.first_published_day(spark, ASSIGNMENTS)
    assignment_days = days_between(first_assignment, day) if first_assignment and first_assignment <= day else [day]
    wanted = [(LABELS, [day]), (UNATTRIBUTED, [day]), (COUNTS, [day]), (RECS, [day]), (ASSIGNMENTS, assignment_days)]
    reasons = []
    for key, days in wanted:
        try:
            lake.require_published(spark, key, days)
        except UnpublishedPartition as exc:
            reasons.append(f"missing input: {exc}")
    return reasons


def serving_recs(spark: SparkSession, lake: Lake, day: str) -> DataFrame:
    """The newest published recs/topk partition before the day: the recommendations served on it."""
    before = lake.published_days(spark, RECS, end=shift_day(day, -1))
    if not before:
        return spark.createDataFrame([], spec(RECS).full_schema)
    return lake.read(spark, RECS, before[-1])


def trailing_impressions(spark: SparkSession, lake: Lake, day: str, days: int) -> list[int]:
    """Labelled impressions per published day of the `days` days before `day`."""
    if days < 1:
        return []
    labels = lake.read_published_range(spark, LABELS, shift_day(day, -days), shift_day(day, -1))
    return [int(r["n"]) for r in labels.groupBy(DS).agg(F.count(F.lit(1)).alias("n")).collect()]


def compute(spark: SparkSession, lake: Lake, day: str, config: DailyConfig, windows: LabelWindows) -> DataFrame:
    """Every row of reports/daily ds=D, with the band against the same weekday's published reports."""
    labels = lake.read_published(spark, LABELS, day)
    assignments = lake.read_published_as_of(spark, ASSIGNMENTS, day)
    dimensions = labels.transform(label_dimensions(assignments, serving_recs(spark, lake, day)))
    label_rows = dimensions.transform(
        label_metrics(lake.read_published(spark, UNATTRIBUTED, day), day, windows, config.min_volume))
    members = members_served(lake.read_published(spark, RECS, day))
    quarantine = lake.read_published(spark, COUNTS, day).transform(quarantine_shares(config.min_volume))
    history = lake.read_published_range(spark, REPORT, shift_day(day, -max(SAME_WEEKDAY_LAGS)), shift_day(day, -1))
    return report_rows(label_rows, members, quarantine).transform(flag_moved(history, day, config))


def refuse(spark: SparkSession, lake: Lake, day: str, reasons: list[str], error: type[MutualsError]) -> None:
    """Write the NOT PUBLISHED page beside the day's page and raise `error` with the reasons."""
    write_page(not_published_uri(lake.root, day), render_not_published(day, reasons))
    raise error(f"{REPORT} ds={day} not published: " + "; ".join(reasons))


def trend_history(spark: SparkSession, lake: Lake, day: str) -> list[dict]:
    """Published dimension-`all` rows of the trend window before the day, for the page's plots."""
    history = lake.read_published_range(spark, REPORT, shift_day(day, -(TREND_DAYS - 1)), shift_day(day, -1))
    return [r.asDict() for r in history.where(F.col("dimension") == ALL).collect()]


def run(spark: SparkSession, args: argparse.Namespace) -> dict[str, object]:
    started = time.perf_counter()
    lake, day = Lake(args.lake), args.date
    config, windows = config_from_args(args)
    missing = missing_inputs(spark, lake, day)
    if missing:
        refuse(spark, lake, day, missing, DailyInputMissing)
    computed = compute(spark, lake, day, config, windows)
    collected = computed.collect()
    # The day's rows are a few hundred: they are written from the driver's copy, not from the query, so
    # the write neither runs the query again nor, as a cache over reports/daily would be on its own
    # commit, re-plans it.
    rows = spark.createDataFrame(collected, computed.schema)
    today = [r.asDict() for r in collected]
    impressions = next((r["numerator"] for r in today if r["metric"] == "impressions"
                        and r["dimension"] == ALL), 0.0) or 0.0
    counts = [(r["table"], r["rows_read"], r["rows_quarantined"])
              for r in lake.read_published(spark, COUNTS, day).collect()]
    reasons = audit_day(int(impressions), trailing_impressions(spark, lake, day, config.volume_trailing_days),
                        counts, config)
    if reasons:
        refuse(spark, lake, day, reasons, DailyReportRefused)
    run_day = lake.day_run(spark, JOB, [day])
    run_day.write_partition(rows, REPORT, day)
    published = run_day.publish()
    page = page_uri(lake.root, day)
    write_page(page, render_daily(day, today, trend_history(spark, lake, day)))
    Lake.remove_folder(spark, not_published_uri(lake.root, day))
    summary = {
        "job": JOB, "date": day, "rows": len(today), "impressions": int(impressions),
        "small": sum(bool(r["small"]) for r in today), "moved": sum(bool(r["moved"]) for r in today),
        "mature": sum(bool(r["mature"]) for r in today), "page": page,
        "seconds": round(time.perf_counter() - started, 1), "run_id": published["run_id"],
    }
    emit_summary(summary)
    return summary


def main(argv: Sequence[str] | None = None) -> object:
    return run_job(build_parser(), run, argv)


if __name__ == "__main__":
    sys.exit(run_and_exit_code(main))
