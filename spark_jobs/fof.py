"""`mutuals fof`: ad hoc exact triangle closing over a CSV edge list, written as Parquet.

    mutuals fof --edges edges.csv --top-k 50 --out DIR [--overwrite] [--skip-bad-rows] [--strategy S]
    spark-submit spark_jobs/fof.py --edges edges.csv --top-k 50 --out DIR

The edge file is read and checked on the driver by ingestion.edge_list (errors name file, line and
field); Spark does the distributed part: the kernel per wedge-balanced block of members, and the Parquet
write (joins.triangles).

Why everything is checked before Spark starts: the arguments, the edge file (every row) and the output
target cost well under a second to check, a Spark session about ten; a typo must not cost the ten.

Why the output is staged and swapped in: `--out` is replaced as a whole, so the result is written into a
hidden staging folder beside it, marked with a `_MUTUALS_FOF` file, and swapped into place by the lake's
folder operations (`Lake.replace_folder`); a previous output is deleted only once the new one is there.
An existing `--out` that is not a previous `fof` output (marker plus part files only) is refused unless
`--overwrite` is given. A target that is or holds the edge file, or holds the working folder, is always
refused.

`--top-k` above the number of members is capped at the number of members: no member has more candidates
than that, so the answer is the same and no task reserves memory for rows that cannot exist.

Not a --date job: it reads no lake partition and writes one folder, so it builds its own parser.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pyspark.sql import DataFrame, SparkSession

from ingestion.edge_list import EdgeList, check_edge_file, member_count, read_edge_csv
from joins.csr import build_csr
from joins.triangles import (
    DEFAULT_BROADCAST_LIMIT_BYTES,
    DEFAULT_MAX_TASK_BYTES,
    STRATEGIES,
    close_triangles,
    close_triangles_from_csr,
)
from mutuals.errors import UsageError, run_and_exit_code
from mutuals.lake import Lake, join_uri, open_output
from mutuals.ledger import emit_summary
from mutuals.outputs import OutputGuard
from mutuals.session import build_session

# The JVM only moves Arrow batches to Parquet here: 1 GiB of heap is plenty, and the serial collector
# keeps the committed heap (hence RSS) near what is used, so the whole tree stays under 2 GiB.
FOF_SESSION_CONF = {
    "spark.driver.memory": "1g",
    "spark.driver.extraJavaOptions": "-Duser.timezone=UTC -XX:+UseSerialGC -XX:ReservedCodeCacheSize=96m",
}


class ArgumentInvalid(UsageError, ValueError):
    """A numeric argument out of its range (--top-k, the byte budgets)."""


@dataclass(frozen=True)
class Prepared:
    """Everything checked and parsed before Spark starts."""

    args: argparse.Namespace
    edges: EdgeList
    target: Path  # absolute --out
    top_k: int  # --top-k capped at the number of members


def capped_top_k(top_k: int, members: int) -> int:
    """K above the number of members keeps the same rows; capping it keeps task memory plans honest."""
    return max(1, min(top_k, members))


FOF_OUTPUT = OutputGuard(command="mutuals fof", marker="_MUTUALS_FOF")
MARKER = FOF_OUTPUT.marker


def is_previous_output(folder: Path) -> bool:
    """True for a folder an earlier `mutuals fof` wrote (see mutuals.outputs)."""
    return FOF_OUTPUT.is_previous_output(folder)


def _marker(args: argparse.Namespace, top_k: int) -> dict:
    return {"command": FOF_OUTPUT.command, "edges": os.path.abspath(args.edges), "top_k": args.top_k,
            "top_k_used": top_k, "strategy": args.strategy, "skip_bad_rows": args.skip_bad_rows}


# ---------------------------------------------------------------- command


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mutuals fof", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--edges", required=True, type=Path, help="CSV with header src,dst (LF or CRLF)")
    parser.add_argument("--top-k", required=True, type=int,
                        help="candidates kept per member, >= 1 (capped at the number of members)")
    parser.add_argument("--out", required=True, type=Path,
                        help="output folder (Parquet); replaced if it is a previous fof output")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace --out even if it is not a previous fof output (never the edge file)")
    parser.add_argument("--skip-bad-rows", action="store_true", help="skip and count malformed lines")
    parser.add_argument("--strategy", default="auto", choices=STRATEGIES, help="see joins.triangles")
    parser.add_argument("--max-task-bytes", type=int, default=DEFAULT_MAX_TASK_BYTES)
    parser.add_argument("--broadcast-limit-bytes", type=int, default=DEFAULT_BROADCAST_LIMIT_BYTES)
    parser.add_argument("--master", default=None, help="Spark master (default: spark-submit's, or local[*])")
    return parser


def _check_numbers(args: argparse.Namespace) -> None:
    for flag, value in (("--top-k", args.top_k), ("--max-task-bytes", args.max_task_bytes),
                        ("--broadcast-limit-bytes", args.broadcast_limit_bytes)):
        if value < 1:
            raise ArgumentInvalid(f"{flag} must be >= 1, found {value}")


def prepare(args: argparse.Namespace) -> Prepared:
    """Every check that needs no Spark: arguments, output target, then the whole edge file."""
    _check_numbers(args)
    check_edge_file(args.edges)
    target = FOF_OUTPUT.check(args.out, args.edges, getattr(args, "overwrite", False))
    edges = read_edge_csv(args.edges, args.skip_bad_rows)
    return Prepared(args, edges, target, capped_top_k(args.top_k, member_count(edges)))


def _edges_frame(spark: SparkSession, edges: EdgeList):
    table = pa.table({"src": pa.array(edges.src, pa.int64()), "dst": pa.array(edges.dst, pa.int64())})
    return spark.createDataFrame(table)


def _closed_triangles(spark: SparkSession, job: Prepared):
    args, edges = job.args, job.edges
    strategy = args.strategy
    if strategy in ("auto", "broadcast"):
        csr = build_csr(edges.src, edges.dst)
        fits = csr.nbytes <= args.broadcast_limit_bytes
        strategy = "broadcast" if (strategy == "broadcast" or fits) else "partitioned"
    if strategy == "broadcast":
        return strategy, close_triangles_from_csr(spark, csr, job.top_k, max_task_bytes=args.max_task_bytes)
    return strategy, close_triangles(_edges_frame(spark, edges), job.top_k, strategy=strategy,
                                     max_task_bytes=args.max_task_bytes,
                                     broadcast_limit_bytes=args.broadcast_limit_bytes)


def write_output(job: Prepared, result: DataFrame) -> None:
    """Write into a staging folder beside the target, mark it as ours, re-check the target, swap it in."""
    spark, target = result.sparkSession, str(job.target)
    staging = Lake.staging_folder(target)
    try:
        result.write.mode("errorifexists").parquet(staging)
        with open_output(join_uri(staging, MARKER)) as sink:
            sink.write((json.dumps(_marker(job.args, job.top_k), indent=2) + "\n").encode())
        FOF_OUTPUT.check(job.args.out, job.args.edges, getattr(job.args, "overwrite", False))
        Lake.replace_folder(spark, staging, target)
    finally:
        Lake.remove_folder(spark, staging)


def execute(spark: SparkSession, job: Prepared) -> dict:
    """Close triangles, write and swap in the output; return (and print) the one-line summary."""
    started = time.monotonic()
    if job.edges.skipped:
        print(f"mutuals fof: skipped {job.edges.skipped} malformed line(s); first: {job.edges.first_skip}",
              file=sys.stderr)
    strategy, result = _closed_triangles(spark, job)
    write_output(job, result)
    members = pq.read_table(job.target, columns=["member_id"])["member_id"]
    summary = {
        "edges": str(job.args.edges),
        "out": str(job.args.out),
        "strategy": strategy,
        "top_k": job.top_k,
        "rows": len(members),
        "members": pc.count_distinct(members).as_py() if len(members) else 0,
        "skipped_rows": job.edges.skipped,
        "rows_in": len(job.edges.src),
        "rows_out": len(members),
        "seconds": round(time.monotonic() - started, 3),
    }
    emit_summary(summary)
    return summary


def run(spark: SparkSession, args: argparse.Namespace) -> dict:
    """Check and parse, then close triangles into args.out (the path tests take with their own session)."""
    return execute(spark, prepare(args))


def _main(argv: Sequence[str] | None) -> None:
    args = build_parser().parse_args(argv)
    job = prepare(args)
    spark = build_session("mutuals-fof", master=args.master, conf=FOF_SESSION_CONF)
    execute(spark, job)


def main(argv: Sequence[str] | None = None) -> int:
    """Exit code: 0, or the failure family's code with one `ClassName: message` line on stderr."""
    return run_and_exit_code(lambda: _main(argv))


if __name__ == "__main__":
    sys.exit(main())
