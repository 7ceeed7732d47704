"""Top-K recommendations for date D from candidates/pairs ds=D -> recs/topk ds=D.

Scored by `ranking.heuristic` ("heuristic-v1", documented there): common connections first, then
economic-graph overlap, then PPR; equal scores by candidate id ascending; ranks 1..K per member; pairs
already connected in graph/edges ds=D are never recommended.
Both inputs must be published for D (candidates and graph); a missing day fails, it never reads as empty.

    spark-submit spark_jobs/recs.py --date D --lake ROOT [--top-k 20]
    mutuals run recs --date D --lake ROOT
"""

from __future__ import annotations

import argparse
import json
import sys

from pyspark.sql import SparkSession

from mutuals.errors import run_and_exit_code
from mutuals.jobargs import job_parser, run_job
from mutuals.lake import Lake
from ranking.heuristic import DEFAULT_TOP_K, MODEL_VERSION, top_k_recommendations


def build_parser() -> argparse.ArgumentParser:
    parser = job_parser("recs", __doc__)
    parser.add_argument("--top-k", type=int, default=DEFAULT_TOP_K,
                        help="recommendations kept per member (default %(default)s)")
    return parser


def run(spark: SparkSession, args: argparse.Namespace) -> dict:
    lake = Lake(args.lake)
    pairs = lake.read_published(spark, "candidates/pairs", args.date)
    edges = lake.read_published(spark, "graph/edges", args.date)
    day = lake.day_run(spark, "recs", [args.date])
    day.write_partition(pairs.transform(top_k_recommendations(args.top_k, edges)), "recs/topk", args.date)
    published = day.publish()
    written = lake.read(spark, "recs/topk", args.date)
    summary = {"job": "recs", "ds": args.date, "rows": published["tables"]["recs/topk"]["rows"][args.date],
               "members": written.select("member_id").distinct().count(), "model_version": MODEL_VERSION,
               "top_k": args.top_k, "run_id": published["run_id"]}
    print(json.dumps(summary))
    return summary


def main(argv: list[str] | None = None) -> object:
    return run_job(build_parser(), run, argv)


if __name__ == "__main__":
    sys.exit(run_and_exit_code(main))
