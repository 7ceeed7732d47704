"""features: candidates/pairs + graph snapshot + profiles + event history -> features/pairs, for date D.

    spark-submit spark_jobs/features.py --date D --lake ROOT [--graph-strategy auto|broadcast|expand]
    mutuals run features --date D --lake ROOT

One row per candidates/pairs row of D, every value as of D; what each column means is written in
`ranking.pair_features`, the graph kernels in `joins.pair_graph`. Inputs, all published:
candidates/pairs ds=D, graph/edges and graph/degrees ds=D, raw/members as of D (every ingest day up to D),
and the raw/events partitions of the 28 days before D through D that ingest published (a day that was
never ingested, e.g. before the lake's first day, simply contributes nothing to the history).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from joins.pair_graph import DEFAULT_BROADCAST_LIMIT_BYTES, STRATEGIES, choose_strategy
from mutuals.errors import run_and_exit_code
from mutuals.jobargs import job_parser, run_job
from mutuals.lake import Lake
from mutuals.ledger import emit_summary
from mutuals.session import fit_shuffle_partitions
from ranking.pair_features import history_window, pair_features

PAIRS_TABLE, FEATURES_TABLE = "candidates/pairs", "features/pairs"


def build_parser() -> argparse.ArgumentParser:
    parser = job_parser("features", __doc__)
    parser.add_argument("--graph-strategy", choices=STRATEGIES, default="auto",
                        help="joins.pair_graph strategy (default %(default)s: broadcast when the CSR fits)")
    parser.add_argument("--broadcast-limit-bytes", type=int, default=DEFAULT_BROADCAST_LIMIT_BYTES,
                        help="largest CSR the auto strategy broadcasts (default %(default)s)")
    return parser


def run(spark: SparkSession, args: argparse.Namespace) -> dict[str, object]:
    started = time.perf_counter()
    lake = Lake(args.lake)
    fit_shuffle_partitions(spark, lake.published_rows(spark, PAIRS_TABLE, args.date, args.date).get(args.date, 0))
    pairs = lake.read_published(spark, PAIRS_TABLE, args.date)
    edges = lake.read_published(spark, "graph/edges", args.date)
    degrees = lake.read_published(spark, "graph/degrees", args.date)
    members = lake.read_published_as_of(spark, "raw/members", args.date)
    first_event_day, last_event_day = history_window(args.date)
    events = lake.read_published_range(spark, "raw/events", first_event_day, last_event_day)
    strategy = choose_strategy(args.graph_strategy, degrees, args.broadcast_limit_bytes)
    features = pairs.drop("ds").transform(pair_features(edges, degrees, members, events, args.date,
                                                        graph_strategy=strategy))
    day = lake.day_run(spark, "features", [args.date])
    day.write_partition(features, FEATURES_TABLE, args.date)
    published = day.publish()
    written = lake.read(spark, FEATURES_TABLE, args.date).agg(
        F.count(F.lit(1)).alias("rows"), F.sum(F.when(F.col("shown_28d") > 0, 1).otherwise(0)).alias("shown"),
    ).first()
    summary = {
        "job": "features", "ds": args.date, "graph_strategy": strategy,
        "pairs_in": pairs.count(), "rows_out": published["tables"][FEATURES_TABLE]["rows"][args.date],
        "pairs_shown_28d": int(written["shown"] or 0),
        "seconds": round(time.perf_counter() - started, 1), "run_id": published["run_id"],
    }
    emit_summary(summary)
    return summary


def main(argv: Sequence[str] | None = None) -> object:
    return run_job(build_parser(), run, argv)


if __name__ == "__main__":
    sys.exit(run_and_exit_code(main))
