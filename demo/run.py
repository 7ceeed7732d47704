"""`mutuals demo` (what `make demo` runs): synthetic landing data, then every job for every day, on local[*].

It is the smallest honest end-to-end run: the same job modules and `main()` entrypoints that Airflow
spark-submits, sharing one local session, followed by a summary of rows and quarantined rows per table.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import json
import shutil
import time
from collections.abc import Sequence
from pathlib import Path

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from demo.served import print_served_sample
from mutuals.lake import PUBLICATIONS, Lake
from mutuals.pipeline import JOB_ORDER
from mutuals.session import build_session
from mutuals.tables import TABLES

DEFAULT_START = "2026-01-01"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mutuals demo", description=__doc__)
    parser.add_argument("--lake", default="./.demo/lake", help="lake root (wiped first; default %(default)s)")
    parser.add_argument("--start", default=DEFAULT_START, help="first day (default %(default)s)")
    parser.add_argument("--days", type=int, default=3, help="days to generate and run (default %(default)s)")
    parser.add_argument("--members", type=int, default=2000, help="members on day one (default %(default)s)")
    parser.add_argument("--seed", type=int, default=7, help="generator seed (default %(default)s)")
    parser.add_argument("--keep", action="store_true", help="do not wipe the lake first")
    return parser


def days(start: str, count: int) -> list[str]:
    first = dt.date.fromisoformat(start)
    return [(first + dt.timedelta(days=i)).isoformat() for i in range(count)]


def table_summary(spark: SparkSession, lake: Lake) -> list[dict]:
    rows = []
    for key in sorted(TABLES):
        if key in ("quarantine/ingest_counts", PUBLICATIONS) or not lake.exists(spark, key):
            continue
        per_day = lake.read(spark, key).groupBy("ds").count().orderBy("ds").collect()
        rows.append({"table": key, "rows": sum(r["count"] for r in per_day),
                     "per_day": {r["ds"]: r["count"] for r in per_day}})
    return rows


def print_summary(spark: SparkSession, lake: Lake, timings: dict[str, float]) -> None:
    print("\n== mutuals demo summary ==")
    print(f"lake: {lake.root}")
    print(f"{'table':<34}{'rows':>10}   per day")
    for row in table_summary(spark, lake):
        per_day = ", ".join(f"{d}: {n}" for d, n in row["per_day"].items())
        print(f"{row['table']:<34}{row['rows']:>10}   {per_day}")
    if lake.exists(spark, "quarantine/ingest_counts"):
        print(f"\n{'landing table':<26}{'read':>9}{'accepted':>10}{'quarantined':>13}")
        counts = (lake.read(spark, "quarantine/ingest_counts").groupBy("table")
                  .agg(*[F.sum(c).alias(c) for c in ("rows_read", "rows_accepted", "rows_quarantined")])
                  .orderBy("table").collect())
        for c in counts:
            print(f"{c.table:<26}{c.rows_read:>9}{c.rows_accepted:>10}{c.rows_quarantined:>13}")
        reasons = (lake.read(spark, "quarantine/events").groupBy("reason").count().orderBy("reason").collect()
                   if lake.exists(spark, "quarantine/events") else [])
        if reasons:
            print("quarantine/events by reason: " + ", ".join(f"{r.reason}={r['count']}" for r in reasons))
    print_publications(spark, lake)
    print("\njob seconds: " + json.dumps({k: round(v, 1) for k, v in timings.items()}))


def print_publications(spark: SparkSession, lake: Lake) -> None:
    """Which jobs published each day: a job's tables count for a day only once it is listed here."""
    if not lake.exists(spark, PUBLICATIONS):
        return
    rows = lake.read(spark, PUBLICATIONS).select("ds", "job").orderBy("ds", "job").collect()
    by_day: dict[str, list[str]] = {}
    for row in rows:
        by_day.setdefault(row["ds"], []).append(row["job"])
    print("\npublished days (meta/publications):")
    for ds, jobs in by_day.items():
        print(f"  {ds}: {', '.join(jobs)}")


def run_pipeline(lake_root: str, dates: list[str], jobs: list[str]) -> dict[str, float]:
    timings: dict[str, float] = {}
    for ds in dates:
        for job in jobs:
            began = time.monotonic()
            print(f"-- {job} {ds}", flush=True)
            importlib.import_module(f"spark_jobs.{job}").main(["--date", ds, "--lake", lake_root])
            timings[job] = timings.get(job, 0.0) + time.monotonic() - began
    return timings


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    lake_root = str(Path(args.lake).resolve())
    if not args.keep:
        shutil.rmtree(lake_root, ignore_errors=True)
    from synthetic.generate import main as generate_main

    began = time.monotonic()
    generate_main(["--lake", lake_root, "--start", args.start, "--days", str(args.days),
                   "--members", str(args.members), "--seed", str(args.seed)])
    timings = {"generate": time.monotonic() - began}
    spark = build_session("mutuals-demo")
    jobs = list(JOB_ORDER)
    timings.update(run_pipeline(lake_root, days(args.start, args.days), jobs))
    print_summary(spark, Lake(lake_root), timings)
    if "push" in jobs:
        print_served_sample(lake_root, days(args.start, args.days)[-1])
    return 0
