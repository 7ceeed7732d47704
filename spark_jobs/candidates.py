"""Candidate generation for date D: triangle, co-worker, schoolmate and PPR candidates -> candidates/pairs.

Reads graph/edges and graph/degrees ds=D (symmetric, deduplicated) and the position/education records as
of D (every landing partition ds <= D, the newest copy of each (member, organisation, start date)
winning), each of which must be published (graph of D; ingest of D and of every day since its first), and
writes one row per (member, candidate) with the sources that proposed it and their features. The sources,
their caps and the exact `common_connections` are described in `joins.candidates`.

    spark-submit spark_jobs/candidates.py --date D --lake ROOT [--max-per-source 100] [--seed 0]
    mutuals run candidates --date D --lake ROOT
"""

from __future__ import annotations

import argparse
import sys

from pyspark.sql import SparkSession

from joins.candidates import CandidateOptions, complete_candidates, propose_candidates
from joins.triangles import STRATEGIES
from mutuals.errors import run_and_exit_code
from mutuals.jobargs import job_parser, run_job
from mutuals.lake import Lake
from mutuals.ledger import emit_summary

DEFAULTS = CandidateOptions(as_of="")


def build_parser() -> argparse.ArgumentParser:
    parser = job_parser("candidates", __doc__)
    parser.add_argument("--max-per-source", type=int, default=DEFAULTS.max_per_source,
                        help="candidates kept per member per source (default %(default)s)")
    parser.add_argument("--cold-threshold", type=int, default=DEFAULTS.cold_threshold,
                        help="members with fewer triangle/economic candidates get PPR (default %(default)s)")
    parser.add_argument("--ppr-walks", type=int, default=DEFAULTS.ppr_walks,
                        help="random walks per cold member (default %(default)s)")
    parser.add_argument("--ppr-max-length", type=int, default=DEFAULTS.ppr_max_length,
                        help="steps per walk (default %(default)s)")
    parser.add_argument("--ppr-restart-prob", type=float, default=DEFAULTS.ppr_restart_prob,
                        help="probability of jumping back to the member at each step (default %(default)s)")
    parser.add_argument("--seed", type=int, default=DEFAULTS.seed, help="PPR walk seed (default %(default)s)")
    parser.add_argument("--hub-threshold", type=int, default=DEFAULTS.hub_threshold,
                        help="organisations with more stints go through the sweep kernel in member blocks, never "
                             "a pair join (default %(default)s)")
    parser.add_argument("--block-size", type=int, default=DEFAULTS.block_size,
                        help="stints per member block of a kernel organisation (default %(default)s)")
    parser.add_argument("--triangle-strategy", choices=STRATEGIES, default=DEFAULTS.triangle_strategy,
                        help="joins.triangles strategy (default %(default)s)")
    return parser


def options_from_args(args: argparse.Namespace) -> CandidateOptions:
    return CandidateOptions(
        as_of=args.date, max_per_source=args.max_per_source, cold_threshold=args.cold_threshold,
        ppr_walks=args.ppr_walks, ppr_max_length=args.ppr_max_length, ppr_restart_prob=args.ppr_restart_prob,
        seed=args.seed, hub_threshold=args.hub_threshold, block_size=args.block_size,
        triangle_strategy=args.triangle_strategy,
    )


def run(spark: SparkSession, args: argparse.Namespace) -> dict:
    lake = Lake(args.lake)
    edges = lake.read_published(spark, "graph/edges", args.date)
    degrees = lake.read_published(spark, "graph/degrees", args.date)
    positions = lake.read_published_as_of(spark, "raw/positions", args.date)
    educations = lake.read_published_as_of(spark, "raw/educations", args.date)
    options = options_from_args(args)
    proposed = propose_candidates(edges, positions, educations, options).persist()
    day = lake.day_run(spark, "candidates", [args.date])
    try:
        day.write_partition(complete_candidates(edges, degrees, proposed, options), "candidates/pairs", args.date)
    finally:
        proposed.unpersist()
    published = day.publish()
    rows = published["tables"]["candidates/pairs"]["rows"][args.date]
    summary = {"job": "candidates", "ds": args.date, "pairs": rows, "run_id": published["run_id"]}
    emit_summary(summary)
    return summary


def main(argv: list[str] | None = None) -> object:
    return run_job(build_parser(), run, argv)


if __name__ == "__main__":
    sys.exit(run_and_exit_code(main))
