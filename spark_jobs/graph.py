"""Graph snapshot: every connection up to day D -> a symmetric, deduplicated `graph/edges` partition ds=D,
plus `graph/degrees`.

    spark-submit spark_jobs/graph.py --date D --lake ROOT      (or: mutuals run graph ...)

Why symmetric: every later kernel asks "who are the neighbours of a?"; storing both directions makes that
one filter on `src`, and one row per direction is exactly the adjacency the triangle kernel needs.
Self-loops are dropped, duplicates (also the same edge landing in both directions) merged, and an edge
keeps its earliest `connected_at`.
A hub is a member whose degree is at least sqrt(number of undirected edges): the classic heavy-hitter
cut of triangle listing, above which a member's wedges dominate the join's output.
Inputs: ingest must have published D and every day since its first published day (a skipped day would
otherwise drop that day's connections from the snapshot). Both tables are published together, last.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from mutuals.errors import run_and_exit_code
from mutuals.jobargs import job_parser, run_job
from mutuals.lake import Lake


def symmetric_edges(connections: DataFrame) -> DataFrame:
    """Undirected, deduplicated, loop-free edges in both directions, with the earliest connected_at."""
    is_loop = F.col("src") == F.col("dst")
    canonical = connections.where(~is_loop).select(
        F.least("src", "dst").alias("a"), F.greatest("src", "dst").alias("b"), "connected_at"
    )
    undirected = canonical.groupBy("a", "b").agg(F.min("connected_at").alias("connected_at"))
    forward = undirected.select(F.col("a").alias("src"), F.col("b").alias("dst"), "connected_at")
    backward = undirected.select(F.col("b").alias("src"), F.col("a").alias("dst"), "connected_at")
    return forward.unionByName(backward).select(
        F.col("src").cast("long"), F.col("dst").cast("long"), F.col("connected_at")
    )


def member_degrees(edges: DataFrame) -> DataFrame:
    """Degree per member from symmetric edges, and whether the member is a hub (degree >= sqrt(#edges))."""
    degrees = edges.groupBy("src").agg(F.count(F.lit(1)).alias("degree"))
    undirected_edge_count = edges.count() // 2
    hub_cut = max(1.0, undirected_edge_count**0.5)
    return degrees.select(
        F.col("src").alias("member_id"),
        F.col("degree").cast("long"),
        (F.col("degree") >= F.lit(hub_cut)).alias("is_hub"),
    )


def run(spark: SparkSession, args: argparse.Namespace) -> dict:
    lake = Lake(args.lake)
    connections = lake.read_published_as_of(spark, "raw/connections", args.date)
    edges = symmetric_edges(connections).cache()
    day = lake.day_run(spark, "graph", [args.date])
    day.write_partition(edges, "graph/edges", args.date)
    day.write_partition(member_degrees(edges), "graph/degrees", args.date)
    published = day.publish()
    written = lake.read(spark, "graph/degrees", args.date)
    top = written.agg(F.max("degree").alias("max_degree"), F.sum(F.col("is_hub").cast("int")).alias("hubs")).first()
    summary = {"job": "graph", "ds": args.date, "edges": lake.read(spark, "graph/edges", args.date).count(),
               "members": written.count(), "max_degree": top.max_degree, "hubs": top.hubs,
               "run_id": published["run_id"]}
    edges.unpersist()
    print(json.dumps(summary))
    return summary


def main(argv: Sequence[str] | None = None) -> None:
    run_job(job_parser("graph", __doc__), run, argv)


if __name__ == "__main__":
    sys.exit(run_and_exit_code(main))
