"""Top-K recommendations for date D from features/pairs ds=D -> recs/topk ds=D.

Scored by the champion of models/registry as of D (`--model VERSION` picks another registered version);
with no champion yet (day one) by heuristic-v1 (`ranking.heuristic`). `model_version` says which scored
each row. Existing connections (graph/edges ds=D) and the pairs the member dismissed or invited in the
last 28 days (raw/events ds in [D-27, D]) are never recommended (`ranking.scorer`). Equal scores go by
candidate id ascending; ranks run 1..K per member.
features/pairs, graph/edges and raw/events must be published for D; earlier event days are read when
published (a young lake has fewer). A missing day fails, it never reads as empty.

    spark-submit spark_jobs/recs.py --date D --lake ROOT [--top-k 20] [--model VERSION]
    mutuals run recs --date D --lake ROOT
"""

from __future__ import annotations

import argparse
import sys
import time

from pyspark.sql import DataFrame, SparkSession

from mutuals.errors import run_and_exit_code
from mutuals.jobargs import job_parser, run_job
from mutuals.lake import Lake
from mutuals.ledger import emit_summary
from mutuals.session import fit_shuffle_partitions
from ranking import registry
from ranking.heuristic import DEFAULT_TOP_K
from ranking.heuristic import MODEL_VERSION as HEURISTIC
from ranking.scorer import (
    broadcast_when_small,
    connected_pairs,
    recent_action_window,
    recently_acted_pairs,
    top_k_by_score,
)
from ranking.training import heuristic_scores, model_scores


def build_parser() -> argparse.ArgumentParser:
    parser = job_parser("recs", __doc__)
    parser.add_argument("--top-k", type=int, default=DEFAULT_TOP_K,
                        help="recommendations kept per member (default %(default)s)")
    parser.add_argument("--model", default=None,
                        help="a registered model version to score with (default: the champion as of --date)")
    return parser


def scored_pairs(spark: SparkSession, lake: Lake, features: DataFrame,
                 args: argparse.Namespace) -> tuple[DataFrame, str]:
    """(features with `score`, the version that scored them)."""
    chosen = (registry.require_version(spark, lake, args.model) if args.model is not None
              else registry.champion(spark, lake, as_of=args.date))
    if chosen is None:
        return heuristic_scores(features), HEURISTIC
    return features.transform(model_scores(registry.load_model(chosen["artifact"]))), chosen["version"]


def run(spark: SparkSession, args: argparse.Namespace) -> dict:
    started = time.perf_counter()
    lake = Lake(args.lake)
    fit_shuffle_partitions(spark, lake.published_rows(spark, "features/pairs", args.date, args.date).get(args.date, 0))
    features = lake.read_published(spark, "features/pairs", args.date)
    edges = lake.read_published(spark, "graph/edges", args.date)
    first, last = recent_action_window(args.date)
    events = lake.read_published_range(spark, "raw/events", first, last, required=[args.date])
    scored, version = scored_pairs(spark, lake, features, args)
    acted = recently_acted_pairs(events, args.date).persist()
    edge_rows = lake.published_rows(spark, "graph/edges", args.date, args.date)[args.date]
    day = lake.day_run(spark, "recs", [args.date])
    try:
        excluded = [broadcast_when_small(connected_pairs(edges), edge_rows),
                    broadcast_when_small(acted, acted.count())]
        top = scored.transform(top_k_by_score(args.top_k, version, excluded))
        day.write_partition(top, "recs/topk", args.date)
    finally:
        acted.unpersist()
    published = day.publish()
    written = lake.read(spark, "recs/topk", args.date)
    summary = {"job": "recs", "ds": args.date, "rows": published["tables"]["recs/topk"]["rows"][args.date],
               "members": written.select("member_id").distinct().count(), "model_version": version,
               "top_k": args.top_k, "seconds": round(time.perf_counter() - started, 1),
               "run_id": published["run_id"]}
    emit_summary(summary)
    return summary


def main(argv: list[str] | None = None) -> object:
    return run_job(build_parser(), run, argv)


if __name__ == "__main__":
    sys.exit(run_and_exit_code(main))
