"""`mutuals demo` (what `make demo` runs): synthetic landing data, then every job for every day, on local[*].

It is the smallest honest end-to-end run: the same job modules and `main()` entrypoints that Airflow
spark-submits, sharing one local session, followed by a summary of rows and quarantined rows per table,
the report pages and the ranker experiment's invite lift, then one training run on the last day with the
held-out metrics of the model beside logistic regression's and heuristic-v1's.

The jobs are those of both DAGs (`mutuals.pipeline.ALL_JOBS`) whose module exists. The reports are leaves
nothing else reads, so a report that refuses a day (an expected failure: it writes a NOT PUBLISHED page
and publishes nothing) is printed and the demo goes on; any other job's failure stops it.
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
from mutuals.cli import available_jobs
from mutuals.errors import MutualsError
from mutuals.lake import PUBLICATIONS, Lake
from mutuals.pipeline import EXPERIMENT_REPORT_UPSTREAMS, TRAINING_UPSTREAMS
from mutuals.session import build_session
from mutuals.tables import TABLES
from synthetic.experiments import RANKER

DEFAULT_START = "2026-01-01"
# Jobs whose expected failure the demo reports and survives: nothing downstream reads their output.
REPORT_JOBS = frozenset({"daily_report", *EXPERIMENT_REPORT_UPSTREAMS})
EXPERIMENTS_TABLE = "reports/experiments"
# Training has its own schedule: the demo runs it once, after the last day. Three days close no 21-day label
# window, so it learns which candidate pairs connect the next day (features of D-1, edges of D).
TRAIN_ARGS = ("--label", "connected", "--horizon-days", "1")
SCORERS = (("model", "GBT (new model)"), ("champion", "champion before"), ("logistic_regression", "logistic reg."),
           ("heuristic-v1", "heuristic-v1"))


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
            try:
                importlib.import_module(f"spark_jobs.{job}").main(["--date", ds, "--lake", lake_root])
            except MutualsError as refused:
                if job not in REPORT_JOBS:
                    raise
                print(f"   {job} {ds} not published: {type(refused).__name__}: {refused}", flush=True)
            timings[job] = timings.get(job, 0.0) + time.monotonic() - began
    return timings


def report_pages(lake_root: str, ds: str) -> tuple[Path | None, list[Path]]:
    """The daily report page of `ds` (None if absent) and every experiment's page of `ds`, on a local lake."""
    html = Path(lake_root) / "reports" / "html"
    daily = html / "daily" / f"ds={ds}.html"
    experiments = sorted((html / "experiments").glob(f"*/ds={ds}.html"))
    return (daily if daily.is_file() else None), experiments


def print_reports(spark: SparkSession, lake: Lake, ds: str) -> None:
    """The report pages of the last day and the ranker experiment's invite lift; silent for what is absent."""
    daily, experiments = report_pages(lake.root, ds)
    if daily is not None or experiments:
        print(f"\nreport pages for {ds}:")
    if daily is not None:
        print(f"  daily:      {daily}")
    for page in experiments:
        print(f"  experiment: {page}")
    if not lake.exists(spark, EXPERIMENTS_TABLE):
        return
    rows = (lake.read(spark, EXPERIMENTS_TABLE, ds)
            .where((F.col("experiment") == RANKER.name) & (F.col("metric") == "invites"))
            .orderBy("variant").collect())
    for row in rows:
        print(invite_lift_line(row.asDict()))


def invite_lift_line(row: dict) -> str:
    """One line: relative and absolute invite lift with their CIs, the adjusted p-value and the SRM check."""
    def pct(value: float | None) -> str:
        return "n/a" if value is None else f"{100 * value:+.1f}%"

    def num(value: float | None) -> str:
        return "n/a" if value is None else f"{value:+.4f}"

    trust = "" if row["trustworthy"] else "  UNTRUSTWORTHY (sample ratio mismatch)"
    p_value = "n/a" if row["p_value_adjusted"] is None else f"{row['p_value_adjusted']:.2g}"
    return (f"{row['experiment']} {row['variant']} vs control, invites per member: "
            f"{pct(row['relative_estimate'])} (CI {pct(row['relative_ci_low'])} to {pct(row['relative_ci_high'])}), "
            f"absolute {num(row['absolute_estimate'])} (CI {num(row['absolute_ci_low'])} to "
            f"{num(row['absolute_ci_high'])}), p adjusted {p_value}, {row['units']} members{trust}")


def run_training(lake_root: str, ds: str) -> dict | None:
    """Train on day `ds` and print the held-out metrics of the model beside its baselines; None if refused
    for want of data (printed, the demo goes on: nothing else reads the registry within the demo)."""
    print(f"-- train {ds}", flush=True)
    try:
        summary = importlib.import_module("spark_jobs.train").main(["--date", ds, "--lake", lake_root, *TRAIN_ARGS])
    except MutualsError as refused:
        print(f"   train {ds}: {type(refused).__name__}: {refused}", flush=True)
        return None
    print_training(summary)
    return summary


def print_training(summary: dict) -> None:
    """One small table: AUC-ROC, AUC-PR, log loss, recall@K, NDCG@K per scorer on the held-out day."""
    k = next((key.split("@")[1] for key in summary["model"] if key.startswith("recall@")), "20")
    print(f"\nmodel {summary['version']} ({summary['label']} label, held-out day {summary['eval_ds']}, "
          f"{summary['model']['rows']} held-out pairs, {summary['model']['positives']} positive): "
          f"{summary['status']} ({summary['reason']})")
    print(f"{'scorer':<20}{'AUC-ROC':>9}{'AUC-PR':>9}{'log loss':>10}{'recall@' + k:>11}{'NDCG@' + k:>9}")

    def cell(value: float | None, width: int) -> str:
        return f"{'n/a':>{width}}" if value is None else f"{value:>{width}.4f}"

    for key, name in SCORERS:
        if key in summary:
            m = summary[key]
            print(f"{name:<20}{cell(m['auc_roc'], 9)}{cell(m['auc_pr'], 9)}{cell(m['log_loss'], 10)}"
                  f"{cell(m.get('recall@' + k), 11)}{cell(m.get('ndcg@' + k), 9)}")


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
    jobs = available_jobs()
    daily_jobs = [job for job in jobs if job not in TRAINING_UPSTREAMS]
    timings.update(run_pipeline(lake_root, days(args.start, args.days), daily_jobs))
    print_summary(spark, Lake(lake_root), timings)
    last_day = days(args.start, args.days)[-1]
    if "push" in jobs:
        print_served_sample(lake_root, last_day)
    print_reports(spark, Lake(lake_root), last_day)
    if "train" in jobs and args.days > 1:
        run_training(lake_root, last_day)
    return 0
