"""Candidate generation for date D: triangle, co-worker, schoolmate and PPR candidates -> candidates/pairs.

Reads graph/edges and graph/degrees ds=D (symmetric, deduplicated) and the position/education records as
of D (every landing partition ds <= D, the newest copy of each (member, organisation, start date)
winning), each of which must be published (graph of D; ingest of D and of every day since its first), and
writes one row per (member, candidate) with the sources that proposed it and their features. The sources,
their caps and the exact `common_connections` are described in `joins.candidates`.

    spark-submit spark_jobs/candidates.py --date D --lake ROOT [--max-per-source 100] [--seed 0]
        [--full] [--full-every-days 7] [--incremental-max-share 0.005]
    mutuals run candidates --date D --lake ROOT

Triangles are incremental by default (`joins.incremental`): when D-1's graph/edges and candidates/pairs
are published, the day's edge delta is at most `--incremental-max-share` of D's edges and both graphs fit
the broadcast limit, D's triangle top K is made from D-1's kept top K (the candidates/pairs rows whose
sources include triangle, which carry exact common counts) and the delta, and equals a full recompute
row for row. It assumes D-1 ran with the same `--max-per-source` (a larger one is detected and runs in
full; a smaller one is not detectable from the rows, which is one reason for the scheduled full run).
The default share is low because the incremental path rewrites every kept row and merges the top K of
every member next to a new connection's end (on a power-law graph, most members: new connections reach
hubs): it measured 2.45x faster at 0.1% new edges, 1.09x at 1% and slower at 5% (`bench.incremental`,
1.6M edges). `--full` forces a full recompute; one also runs every `--full-every-days` days (days since 1970-01-01
divisible by it, so the schedule is the same on every re-run and backfill; 0 turns it off). Only the
triangle source is incremental: co-worker, schoolmate and PPR candidates are recomputed every day (their
cost next to the triangle closing has not been measured; they do not grow with sum(deg^2)), and the
merged rows and their exact common counts are made from them as in a full run, so candidates/pairs
equals a full run's. The JSON summary's
`triangles` entry says which mode ran and why.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from joins.candidates import CandidateOptions, cold_members, complete_candidates, propose_candidates
from joins.csr import Csr, collect_csr, collect_edges, csr_bytes
from joins.incremental import edge_delta, incremental_close_triangles
from joins.triangles import DEFAULT_BROADCAST_LIMIT_BYTES, STRATEGIES, close_triangles_from_csr
from mutuals.errors import run_and_exit_code
from mutuals.jobargs import job_parser, run_job
from mutuals.lake import Lake
from mutuals.ledger import emit_summary
from mutuals.session import fit_shuffle_partitions

DEFAULTS = CandidateOptions(as_of="")
FULL_EVERY_DAYS = 7
INCREMENTAL_MAX_SHARE = 0.005  # bench.incremental, 1.6M edges: 2.45x at 0.1% new, 1.09x at 1%, 0.62x at 5%
EPOCH = dt.date(1970, 1, 1)
# Candidate pairs a day holds per directed edge of its graph, to size the shuffles before any is built:
# 15.7 at 100k members (1.62M edges, 25.4M pairs), 15.8 at 300k.
PAIRS_PER_EDGE = 16
INCREMENTAL_STRATEGIES = ("auto", "broadcast")  # the incremental path holds both graphs as broadcast CSRs


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
                        help="joins.triangles strategy of a full recompute (default %(default)s); "
                             "the incremental path runs only with auto or broadcast")
    parser.add_argument("--full", action="store_true",
                        help="recompute the triangle candidates in full, never incrementally from D-1")
    parser.add_argument("--full-every-days", type=int, default=FULL_EVERY_DAYS,
                        help="also recompute in full on days whose day number since 1970-01-01 divides by "
                             "this, as a check (0: never; default %(default)s)")
    parser.add_argument("--incremental-max-share", type=float, default=INCREMENTAL_MAX_SHARE,
                        help="go incremental only when added plus removed edges are at most this share of "
                             "D's edges (default %(default)s)")
    parser.add_argument("--broadcast-limit-bytes", type=int, default=DEFAULT_BROADCAST_LIMIT_BYTES,
                        help="the incremental path needs D-1's and D's graphs as CSRs of at most this size, "
                             "and the exact common counts probe broadcast edges up to it (default %(default)s)")
    return parser


def options_from_args(args: argparse.Namespace) -> CandidateOptions:
    return CandidateOptions(
        as_of=args.date, max_per_source=args.max_per_source, cold_threshold=args.cold_threshold,
        ppr_walks=args.ppr_walks, ppr_max_length=args.ppr_max_length, ppr_restart_prob=args.ppr_restart_prob,
        seed=args.seed, hub_threshold=args.hub_threshold, block_size=args.block_size,
        triangle_strategy=args.triangle_strategy, broadcast_limit_bytes=args.broadcast_limit_bytes,
    )


def previous_day(ds: str) -> str:
    return (dt.date.fromisoformat(ds) - dt.timedelta(days=1)).isoformat()


def is_scheduled_full(ds: str, every_days: int) -> bool:
    """Full on every `every_days`-th day counted from a fixed epoch: the same answer on any re-run."""
    return every_days > 0 and (dt.date.fromisoformat(ds) - EPOCH).days % every_days == 0


def why_not_incremental(spark: SparkSession, lake: Lake, args: argparse.Namespace) -> str | None:
    """The reason this day runs a full triangle recompute, decided before any graph is collected; None
    when the incremental path may run (the delta share is checked once both graphs are in hand)."""
    prev = previous_day(args.date)
    if args.full:
        return "--full"
    if is_scheduled_full(args.date, args.full_every_days):
        return f"scheduled: every {args.full_every_days} days counted from {EPOCH.isoformat()}"
    if args.triangle_strategy not in INCREMENTAL_STRATEGIES:
        return f"--triangle-strategy {args.triangle_strategy} asks for a full strategy"
    for key in ("graph/edges", "candidates/pairs"):
        if prev not in lake.published_rows(spark, key, prev, prev):
            return f"{key} ds={prev} is not published"
    prev_edges = lake.published_rows(spark, "graph/edges", prev, prev)[prev]
    edge_rows = lake.published_rows(spark, "graph/edges", args.date, args.date)[args.date]
    nodes = lake.published_rows(spark, "graph/degrees", args.date, args.date)[args.date]
    biggest = csr_bytes(max(prev_edges, edge_rows), nodes)
    if biggest > args.broadcast_limit_bytes:
        return f"the graphs' CSRs (up to {biggest} B) exceed --broadcast-limit-bytes {args.broadcast_limit_bytes}"
    return None


def previous_triangles(spark: SparkSession, lake: Lake, ds: str) -> DataFrame:
    """D-1's triangle top K with exact counts: its candidates/pairs rows proposed by the triangle source."""
    pairs = lake.read_published(spark, "candidates/pairs", ds)
    is_triangle = F.array_contains(F.col("sources"), "triangle")
    return pairs.where(is_triangle).select("member_id", "candidate_id", "common_connections")


def graph_csr(spark: SparkSession, lake: Lake, args: argparse.Namespace, edges: DataFrame) -> Csr | None:
    """D's graph as a CSR on the driver, collected once for every broadcast kernel of the job (the
    triangle closing, incremental or full, and the exact common counts): when its size from the published
    edge and member counts fits --broadcast-limit-bytes, or --triangle-strategy broadcast asks for it.
    None: every step runs its partitioned strategy."""
    edge_rows = lake.published_rows(spark, "graph/edges", args.date, args.date)[args.date]
    nodes = lake.published_rows(spark, "graph/degrees", args.date, args.date)[args.date]
    fits = csr_bytes(edge_rows, nodes) <= args.broadcast_limit_bytes
    return collect_csr(edges) if fits or args.triangle_strategy == "broadcast" else None


def triangles_for_day(spark: SparkSession, lake: Lake, args: argparse.Namespace, edges: DataFrame,
                      new_csr: Csr | None) -> tuple[DataFrame | None, dict]:
    """D's triangle top K, incrementally when allowed, else the full broadcast run on `new_csr` (D's
    graph, when the job holds it) or None (a full recompute in propose_candidates); with the mode, the
    reason and the counts."""
    reason = why_not_incremental(spark, lake, args)
    if reason is None and new_csr is None:
        reason = "D's graph is not held as a CSR"
    if reason is not None:
        broadcasts = new_csr is not None and args.triangle_strategy in INCREMENTAL_STRATEGIES
        return (close_triangles_from_csr(spark, new_csr, args.max_per_source) if broadcasts else None,
                {"mode": "full", "reason": reason})
    prev = previous_day(args.date)
    k = args.max_per_source
    prev_rows = previous_triangles(spark, lake, prev).persist()
    widest = prev_rows.groupBy("member_id").count().agg(F.max("count")).first()[0] or 0
    if widest > k:
        prev_rows.unpersist()
        return close_triangles_from_csr(spark, new_csr, k), {
            "mode": "full", "reason": f"ds={prev} kept {widest} triangle rows for a member, more than "
                                      f"--max-per-source {k}"}
    prev_src, prev_dst = collect_edges(lake.read_published(spark, "graph/edges", prev))
    delta = edge_delta(prev_src, prev_dst, new_csr)
    share = (delta.n_added + delta.n_removed) / max(1, new_csr.n_edges)
    if share > args.incremental_max_share:
        prev_rows.unpersist()
        return close_triangles_from_csr(spark, new_csr, k), {
            "mode": "full", "reason": f"delta share {share:.4f} > --incremental-max-share "
                                      f"{args.incremental_max_share}", "delta_share": share}
    rows, stats = incremental_close_triangles(spark, prev_src, prev_dst, new_csr, prev_rows, k, delta=delta)
    return rows, {"mode": "incremental", "reason": f"from ds={prev}, delta share {share:.4f}",
                  "delta_share": share, **stats}


def run(spark: SparkSession, args: argparse.Namespace) -> dict:
    lake = Lake(args.lake)
    edge_rows = lake.published_rows(spark, "graph/edges", args.date, args.date).get(args.date, 0)
    fit_shuffle_partitions(spark, edge_rows * PAIRS_PER_EDGE)
    edges = lake.read_published(spark, "graph/edges", args.date)
    degrees = lake.read_published(spark, "graph/degrees", args.date)
    positions = lake.read_published_as_of(spark, "raw/positions", args.date)
    educations = lake.read_published_as_of(spark, "raw/educations", args.date)
    options = options_from_args(args)
    csr = graph_csr(spark, lake, args, edges)
    triangles, triangle_run = triangles_for_day(spark, lake, args, edges, csr)
    proposed = propose_candidates(edges, positions, educations, options, triangles=triangles, csr=csr).persist()
    cold = degrees.transform(cold_members(options.cold_threshold, proposed)).persist()
    day = lake.day_run(spark, "candidates", [args.date])
    try:
        n_cold = cold.count()  # runs every source once into the persisted proposals, before the write reads them
        pairs = complete_candidates(edges, degrees, proposed, cold, options, csr=csr)
        day.write_partition(pairs, "candidates/pairs", args.date)
    finally:
        cold.unpersist()
        proposed.unpersist()
    published = day.publish()
    rows = published["tables"]["candidates/pairs"]["rows"][args.date]
    summary = {"job": "candidates", "ds": args.date, "pairs": rows, "cold_members": n_cold,
               "triangles": triangle_run, "run_id": published["run_id"]}
    emit_summary(summary)
    return summary


def main(argv: list[str] | None = None) -> object:
    return run_job(build_parser(), run, argv)


if __name__ == "__main__":
    sys.exit(run_and_exit_code(main))
