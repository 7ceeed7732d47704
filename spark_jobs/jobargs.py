"""Argument parsing shared by every spark-submit entrypoint.

Each job module has `main(argv)` that parses with `job_parser` and calls `run(spark, args)`; `run` reads
one date partition, writes one, and never looks at the clock: the date always comes from `--date`.
"""

from __future__ import annotations

import argparse
import datetime as dt
from collections.abc import Callable, Sequence

from pyspark.sql import SparkSession

from spark_jobs.lake import default_root
from spark_jobs.session import build_session


def iso_date(text: str) -> str:
    """Validate a YYYY-MM-DD date and keep it a string (the `ds` contract)."""
    try:
        return dt.date.fromisoformat(text).isoformat()
    except ValueError:
        raise argparse.ArgumentTypeError(f"--date must be YYYY-MM-DD, got {text!r}") from None


def job_parser(prog: str, description: str | None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description=description,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--date", required=True, type=iso_date, help="the partition to compute (YYYY-MM-DD)")
    parser.add_argument("--lake", default=None, help="lake root (default: $MUTUALS_LAKE or ./lake)")
    parser.add_argument("--master", default=None, help="Spark master (default: spark-submit's, or local[*])")
    return parser


def parse_job_args(parser: argparse.ArgumentParser, argv: Sequence[str] | None) -> argparse.Namespace:
    args = parser.parse_args(argv)
    if args.lake is None:
        args.lake = default_root()
    return args


def run_job(
    parser: argparse.ArgumentParser,
    run: Callable[[SparkSession, argparse.Namespace], object],
    argv: Sequence[str] | None = None,
) -> object:
    """Parse, build (or reuse) the session, run. Used by every job's `main`."""
    args = parse_job_args(parser, argv)
    spark = build_session(parser.prog, master=args.master)
    return run(spark, args)
