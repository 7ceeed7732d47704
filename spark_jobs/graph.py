"""Graph snapshot: every connection up to day D -> a symmetric, deduplicated `graph/edges` partition ds=D,
plus `graph/degrees` (degree and hub flag per member), which candidate generation reads.

    spark-submit spark_jobs/graph.py --date D --lake ROOT      (or: mutuals run graph ...)

Self-loops are dropped, duplicates (also the same edge landing in both directions) merged, and an edge
keeps its earliest `connected_at` (`joins.edges.symmetric_edges`). A hub is a member whose degree is at
least sqrt(number of undirected edges) (`joins.edges.member_degrees`).
Inputs: ingest must have published D and every day since its first published day (a skipped day would
otherwise drop that day's connections from the snapshot). Both tables are published together, last.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from joins.edges import member_degrees, symmetric_edges
from mutuals.errors import run_and_exit_code
from mutuals.jobargs import job_parser, run_job
from mutuals.lake import Lake
from mutuals.ledger import emit_summary


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
    emit_summary(summary)
    return summary


def main(argv: Sequence[str] | None = None) -> None:
    run_job(job_parser("graph", __doc__), run, argv)


if __name__ == "__main__":
    sys.exit(run_and_exit_code(main))
