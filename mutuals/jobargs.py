"""Argument parsing shared by every spark-submit entrypoint.

Each job module has `main(argv)` that parses with `job_parser` and calls `run(spark, args)`; `run` reads
one date partition, writes one, and never looks at the clock: the date always comes from `--date`.

`--profile` (else `$MUTUALS_PROFILE`, else `local`) picks the bundle `mutuals.profiles` declares; the lake,
the master and, for a job with a `--store` option, the store default to that bundle's, and an explicit
`--lake`, `--master` or `--store` wins.
"""

from __future__ import annotations

import argparse
import datetime as dt
import re
from collections.abc import Callable, Sequence

from pyspark.sql import SparkSession

from mutuals import ledger
from mutuals.profiles import PROFILE_ENV, PROFILES, active_profile
from mutuals.progress import reporting
from mutuals.session import build_session

ISO_DATE_SHAPE = re.compile(r"\d{4}-\d{2}-\d{2}")


def iso_date(text: str) -> str:
    """Validate a YYYY-MM-DD date and keep it a string (the `ds` contract).

    Two messages, because they need different fixes: a value in another shape (`2026/01/02`, `2026-1-2`)
    and a value in the right shape that is not a day of the calendar (`2026-13-01`, `2026-02-30`).
    """
    if not ISO_DATE_SHAPE.fullmatch(text):
        raise argparse.ArgumentTypeError(f"must be YYYY-MM-DD, got {text!r}")
    try:
        return dt.date(int(text[:4]), int(text[5:7]), int(text[8:])).isoformat()
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not a calendar date ({exc})") from None


def band(text: str) -> tuple[float, float]:
    """An argument `LOW:HIGH` (an allowed ratio or rate band of a gate), LOW <= HIGH."""
    low, _, high = text.partition(":")
    try:
        parsed = (float(low), float(high))
    except ValueError:
        raise argparse.ArgumentTypeError(f"a band is LOW:HIGH, got {text!r}") from None
    if parsed[0] > parsed[1]:
        raise argparse.ArgumentTypeError(f"a band needs LOW <= HIGH, got {text!r}")
    return parsed


def job_parser(prog: str, description: str | None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description=description,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--date", required=True, type=iso_date, help="the partition to compute (YYYY-MM-DD)")
    parser.add_argument("--profile", default=None, choices=tuple(PROFILES),
                        help=f"resource bundle: master, lake and store defaults (default: ${PROFILE_ENV} or local)")
    parser.add_argument("--lake", default=None, help="lake root (default: the profile's; local: $MUTUALS_LAKE or "
                                                     "./lake)")
    parser.add_argument("--master", default=None, help="Spark master (default: spark-submit's, else the "
                                                       "profile's; local: local[*])")
    return parser


def parse_job_args(parser: argparse.ArgumentParser, argv: Sequence[str] | None) -> argparse.Namespace:
    """Parse, then fill the lake (and the store, for a job that has one) from the active profile."""
    args = parser.parse_args(argv)
    profile = active_profile(args.profile)
    args.profile = profile.name
    if args.lake is None:
        args.lake = profile.lake()
    if "store" in vars(args) and args.store is None:
        args.store = profile.store(args.lake)
    return args


def run_job(
    parser: argparse.ArgumentParser,
    run: Callable[[SparkSession, argparse.Namespace], object],
    argv: Sequence[str] | None = None,
) -> object:
    """Parse, build (or reuse) the session, run with progress lines. Used by every job's `main`."""
    args = parse_job_args(parser, argv)
    job_ledger = ledger.start()
    spark = build_session(parser.prog, master=args.master, profile=active_profile(args.profile))
    job_ledger.session_ready()
    with reporting(spark, parser.prog):
        return run(spark, args)
