"""`mutuals fof`: ad hoc exact triangle closing over a CSV edge list, written as Parquet.

    mutuals fof --edges edges.csv --top-k 50 --out DIR [--skip-bad-rows] [--strategy S] [--master M]
    spark-submit spark_jobs/fof.py --edges edges.csv --top-k 50 --out DIR

Why parse on the driver with pyarrow: the CSV is read once, fast, straight into the numpy arrays the CSR
builder needs; sending it through the JVM only to collect it back would double the end-to-end time on
the graphs this command is for. Spark does the distributed part: the kernel per wedge-balanced block of
members, and the Parquet write (see joins.triangles). A malformed line is reported with file, line
number and field, found by a line-tracking re-read that only runs when the fast read fails.

Not a --date job: it reads no lake partition and writes one folder, so it builds its own parser.
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from pyspark.sql import SparkSession

from joins.csr import build_csr
from joins.triangles import (
    DEFAULT_BROADCAST_LIMIT_BYTES,
    DEFAULT_MAX_TASK_BYTES,
    STRATEGIES,
    close_triangles,
    close_triangles_from_csr,
)
from spark_jobs.session import build_session

HEADER = ("src", "dst")
LONG_MIN, LONG_MAX = -(2**63), 2**63 - 1
LONG_TEXT = re.compile(r"\s*[+-]?\d+\s*")
# The JVM only moves Arrow batches to Parquet here: 1 GiB of heap is plenty, and the serial collector
# keeps the committed heap (hence RSS) near what is used, so the whole tree stays under 2 GiB.
FOF_SESSION_CONF = {
    "spark.driver.memory": "1g",
    "spark.driver.extraJavaOptions": "-Duser.timezone=UTC -XX:+UseSerialGC -XX:ReservedCodeCacheSize=96m",
}


class FofInputError(ValueError):
    """Base of the errors `mutuals fof` reports as one line, without a traceback."""


class EdgeFileUnreadable(FofInputError):
    """The edge file is missing or not UTF-8 text."""


class EdgeHeaderInvalid(FofInputError):
    """The first line is not `src,dst`."""


class EdgeRowMalformed(FofInputError):
    """A data line has the wrong number of fields or a field that is not a long."""


@dataclass(frozen=True)
class EdgeList:
    src: np.ndarray
    dst: np.ndarray
    skipped: int
    first_skip: str | None


def _check_header(path: Path) -> None:
    try:
        with path.open("rb") as handle:
            first = handle.readline()
        header = first.decode("utf-8-sig").rstrip("\r\n")
    except (OSError, UnicodeDecodeError) as err:
        raise EdgeFileUnreadable(f"{path}: cannot read the edge file: {err}") from None
    found = tuple(name.strip() for name in header.split(","))
    if found != HEADER:
        raise EdgeHeaderInvalid(f"{path}: header must be {','.join(HEADER)!r}, found {header!r}")


def _parse_long(text: str) -> int | None:
    if not LONG_TEXT.fullmatch(text):
        return None
    value = int(text)
    return value if LONG_MIN <= value <= LONG_MAX else None


def _row_problem(path: Path, line: int, row: list[str]) -> str | None:
    if len(row) != len(HEADER):
        return f"{path} line {line}: expected {len(HEADER)} fields ({','.join(HEADER)}), found {len(row)}"
    for name, text in zip(HEADER, row, strict=True):
        if _parse_long(text) is None:
            return f"{path} line {line}, field {name}: {text!r} is not a long"
    return None


def _read_tracking_lines(path: Path, skip_bad_rows: bool) -> EdgeList:
    """Slow, exact re-read: csv.reader knows the line number of every record (CRLF or LF)."""
    src: list[int] = []
    dst: list[int] = []
    skipped, first_skip = 0, None
    try:
        with path.open("r", encoding="utf-8-sig", newline="") as handle:
            reader = csv.reader(handle)
            next(reader, None)
            for row in reader:
                if not row:
                    continue  # blank line, as the fast reader does
                problem = _row_problem(path, reader.line_num, row)
                if problem is None:
                    src.append(int(row[0]))
                    dst.append(int(row[1]))
                    continue
                if not skip_bad_rows:
                    raise EdgeRowMalformed(problem)
                skipped += 1
                first_skip = first_skip or problem
    except UnicodeDecodeError as err:
        raise EdgeFileUnreadable(f"{path}: not UTF-8 text: {err}") from None
    return EdgeList(np.array(src, dtype=np.int64), np.array(dst, dtype=np.int64), skipped, first_skip)


def read_edge_csv(path: Path, skip_bad_rows: bool = False) -> EdgeList:
    """Parse `src,dst` longs; fast with pyarrow, exact line numbers only when something is wrong."""
    _check_header(path)
    convert = pacsv.ConvertOptions(column_types={name: pa.int64() for name in HEADER}, null_values=[],
                                   strings_can_be_null=False)
    read = pacsv.ReadOptions(skip_rows=1, column_names=list(HEADER), block_size=16 << 20)
    try:
        table = pacsv.read_csv(path, read_options=read, convert_options=convert)
    except pa.ArrowInvalid:
        return _read_tracking_lines(path, skip_bad_rows)
    return EdgeList(table["src"].to_numpy(), table["dst"].to_numpy(), 0, None)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mutuals fof", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--edges", required=True, type=Path, help="CSV with header src,dst (LF or CRLF)")
    parser.add_argument("--top-k", required=True, type=int, help="candidates kept per member")
    parser.add_argument("--out", required=True, type=Path, help="output folder (Parquet), replaced")
    parser.add_argument("--skip-bad-rows", action="store_true", help="skip and count malformed lines")
    parser.add_argument("--strategy", default="auto", choices=STRATEGIES, help="see joins.triangles")
    parser.add_argument("--max-task-bytes", type=int, default=DEFAULT_MAX_TASK_BYTES)
    parser.add_argument("--broadcast-limit-bytes", type=int, default=DEFAULT_BROADCAST_LIMIT_BYTES)
    parser.add_argument("--master", default=None, help="Spark master (default: spark-submit's, or local[*])")
    return parser


def _edges_frame(spark: SparkSession, edges: EdgeList):
    table = pa.table({"src": pa.array(edges.src, pa.int64()), "dst": pa.array(edges.dst, pa.int64())})
    return spark.createDataFrame(table)


def run(spark: SparkSession, args: argparse.Namespace) -> dict:
    """Parse, close triangles, write Parquet to args.out; return (and print) the one-line summary."""
    started = time.monotonic()
    if args.top_k < 1:
        raise FofInputError(f"--top-k must be >= 1, found {args.top_k}")
    edges = read_edge_csv(args.edges, args.skip_bad_rows)
    if edges.skipped:
        print(f"mutuals fof: skipped {edges.skipped} malformed line(s); first: {edges.first_skip}",
              file=sys.stderr)
    strategy = args.strategy
    if strategy in ("auto", "broadcast"):
        csr = build_csr(edges.src, edges.dst)
        fits = csr.nbytes <= args.broadcast_limit_bytes
        strategy = "broadcast" if (strategy == "broadcast" or fits) else "partitioned"
    if strategy == "broadcast":
        result = close_triangles_from_csr(spark, csr, args.top_k, max_task_bytes=args.max_task_bytes)
    else:
        result = close_triangles(_edges_frame(spark, edges), args.top_k, strategy=strategy,
                                 max_task_bytes=args.max_task_bytes,
                                 broadcast_limit_bytes=args.broadcast_limit_bytes)
    result.write.mode("overwrite").parquet(str(args.out))
    members = pq.read_table(args.out, columns=["member_id"])["member_id"]
    summary = {
        "edges": str(args.edges),
        "out": str(args.out),
        "strategy": strategy,
        "rows": len(members),
        "members": pc.count_distinct(members).as_py() if len(members) else 0,
        "skipped_rows": edges.skipped,
        "seconds": round(time.monotonic() - started, 3),
    }
    print(json.dumps(summary))
    return summary


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    spark = build_session("mutuals-fof", master=args.master, conf=FOF_SESSION_CONF)
    try:
        run(spark, args)
    except FofInputError as err:
        print(f"mutuals fof: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
