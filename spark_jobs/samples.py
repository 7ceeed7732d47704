"""samples: labels/impressions + features/pairs -> training/samples, for run date R.

    spark-submit spark_jobs/samples.py --date R --lake ROOT [--lookback-days 3]

* Same days as labels. The labels job rewrites label days R-L .. R for late data, so this job rebuilds
  the same sample days from them; late labels flow into samples on the next run.
* Point in time. A sample of day D takes every pair feature from the newest features/pairs partition with
  ds < D, the whole partition (what serving had on D), never a per-pair latest row and never D or later.
  See `labelling.attribution.point_in_time_features` for features_ds and feature_age_s.
* Published inputs only. labels must be published for every sample day (the labels run for R publishes
  R-L .. R). Feature partitions are the features days that were published: a day with no published
  features partition before it (the lake's first days) gets null features, and an unpublished or
  half-written features partition is never read.
* Exactly one sample per labelled impression, unique keys and no feature from the future are asserted by
  `quality.label_gates.check_samples` before the write; a failed gate leaves the published partitions as
  they were. The partitions R-L .. R are replaced in one commit.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from labelling.attribution import point_in_time_features
from labelling.days import feature_partitions_for, recompute_days
from labelling.options import add_lookback_argument
from mutuals.errors import run_and_exit_code
from mutuals.jobargs import job_parser, run_job
from mutuals.lake import Lake
from mutuals.ledger import emit_summary
from mutuals.tables import DS
from quality import gx_runner
from quality.label_gates import check_samples

LABELS_TABLE, SAMPLES_TABLE, FEATURES_TABLE = "labels/impressions", "training/samples", "features/pairs"


def build_parser() -> argparse.ArgumentParser:
    parser = job_parser("samples", __doc__)
    add_lookback_argument(parser)
    return parser


def run(spark: SparkSession, args: argparse.Namespace) -> dict[str, object]:
    started = time.perf_counter()
    lake = Lake(args.lake)
    days = recompute_days(args.date, args.lookback_days)
    labels = lake.read_published_range(spark, LABELS_TABLE, days[0], days[-1], required=days)
    feature_days = feature_partitions_for(lake.published_days(spark, FEATURES_TABLE, end=days[-1]), days)
    features = lake.read_or_empty(spark, FEATURES_TABLE).where(F.col(DS).isin(feature_days))
    samples = labels.transform(point_in_time_features(features)).persist()
    try:
        label_rows = labels.count()
        check_samples(samples, label_rows)
        run_days = lake.day_run(spark, "samples", days)
        run_days.write_partitions(samples, SAMPLES_TABLE)
        published = run_days.publish()
        per_day = samples.groupBy(DS, "features_ds").agg(
            F.count(F.lit(1)).alias("rows"),
            F.count("common_connections").alias("with_features"),
        ).orderBy(DS).collect()
    finally:
        samples.unpersist()
    summary = {
        "job": "samples", "date": args.date, "days": days, "rows": label_rows,
        "per_day": [r.asDict() for r in per_day],
        "seconds": round(time.perf_counter() - started, 1), "run_id": published["run_id"],
    }
    emit_summary(summary)
    return summary


def main(argv: Sequence[str] | None = None) -> object:
    gx_runner.preload()
    return run_job(build_parser(), run, argv)


if __name__ == "__main__":
    sys.exit(run_and_exit_code(main))
