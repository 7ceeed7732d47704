"""experiment_report: raw/experiment_assignments + labels/impressions -> reports/experiments ds=D and one HTML
page per experiment at <lake>/reports/html/experiments/<experiment>/ds=D.html.

    spark-submit spark_jobs/experiment_report.py --date D --lake ROOT [--experiment NAME] [--no-cuped] ...

Semantics (exposure, per-member metrics, goals and guardrails, CUPED, the cumulative curve) are in
`reports.experiment`; the statistics in `reports.stats`. The unit is the member.

* Inputs. Every assignment ingest published up to D (`read_published_as_of`). labels/impressions of every
  day from the first exposure day through D must be published (a missing day fails, naming the day and the
  job); the pre-period days before that are read where published (an unpublished one is left out).
* Weights. The SRM check compares each arm's units with `--weights` (e.g. `control=0.5,treatment=0.5`),
  equal weights by default. A failed check (p < 0.001) marks every row of the experiment
  `trustworthy = false` and puts the warning first on its page.
* Output. One row per (experiment, non-control variant, metric) in reports/experiments ds=D; the pages are
  written after the table and before the publication, the job's last commit. An experiment with a single
  variant, or with an arm of fewer than two members, cannot be compared: it is named in the summary
  (`skipped`) and has no rows.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import urllib.parse
from collections.abc import Sequence

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from mutuals.errors import run_and_exit_code
from mutuals.jobargs import job_parser, run_job
from mutuals.lake import Lake, days_between, join_uri, open_output
from mutuals.ledger import emit_summary
from mutuals.tables import REPORTS_EXPERIMENTS
from reports.experiment import (
    DAY,
    DEFAULT_ALPHA,
    DEFAULT_CORRECTION,
    DEFAULT_PRE_DAYS,
    KEYS,
    ExperimentResult,
    NoAssignments,
    analyze_experiment,
    assignments_by_member,
    collect_sums,
    cumulative_by_day,
    daily_increments,
    enough_units,
    excluded_counts,
    exposed_impressions,
    exposures,
    member_days,
    member_totals,
    order_variants,
    parse_weights,
    pre_period_covariates,
    variant_sums,
    weights_for,
    with_covariates,
)
from reports.experiment_html import render_page
from reports.stats import CORRECTIONS

JOB = "experiment_report"
ASSIGNMENTS, LABELS, REPORT = "raw/experiment_assignments", "labels/impressions", "reports/experiments"


def build_parser() -> argparse.ArgumentParser:
    parser = job_parser(JOB, __doc__)
    parser.add_argument("--experiment", default=None, help="report only this experiment (default: every one)")
    parser.add_argument("--no-cuped", dest="cuped", action="store_false",
                        help="no CUPED variance reduction (default: on)")
    parser.add_argument("--pre-days", type=_positive_int, default=DEFAULT_PRE_DAYS,
                        help="CUPED pre-period length in days before each member's assignment (default %(default)s)")
    parser.add_argument("--alpha", type=float, default=DEFAULT_ALPHA, help="significance level (default %(default)s)")
    parser.add_argument("--correction", default=DEFAULT_CORRECTION, choices=CORRECTIONS,
                        help="multiple-comparison correction over goal metrics (default %(default)s)")
    parser.add_argument("--weights", default=None, type=parse_weights,
                        help="configured arm weights VARIANT=W,... for the SRM check (default: equal)")
    return parser


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def page_uri(lake: Lake, experiment: str, ds: str) -> str:
    """<lake>/reports/html/experiments/<experiment>/ds=D.html (the name escaped so it stays one folder)."""
    folder = urllib.parse.quote(experiment, safe="")
    if set(folder) <= {"."}:  # "", "." and ".." would not be a folder of their own
        folder = folder.replace(".", "%2E") or "%20"
    return join_uri(lake.folder("reports", "html", "experiments", folder), f"ds={ds}.html")


def read_assignments(spark: SparkSession, lake: Lake, ds: str, experiment: str | None) -> DataFrame:
    assignments = lake.read_published_as_of(spark, ASSIGNMENTS, ds)
    return assignments.where(F.col("experiment") == experiment) if experiment is not None else assignments


def read_labels(spark: SparkSession, lake: Lake, first_day: str, ds: str, pre_days: int) -> DataFrame:
    """Labelled impressions from the pre-period of the first exposure through D; exposure days required."""
    pre_start = (dt.date.fromisoformat(first_day) - dt.timedelta(days=pre_days)).isoformat()
    return lake.read_published_range(spark, LABELS, pre_start, ds, required=days_between(first_day, ds))


def analyze_all(args: argparse.Namespace, totals: dict, increments: dict, excluded: dict[str, int]
                ) -> tuple[list[ExperimentResult], dict[str, str]]:
    """One `ExperimentResult` per comparable experiment; the others with the reason they were skipped."""
    results, skipped = [], {}
    for experiment in sorted({key[0] for key in totals} | set(excluded)):
        present = [key[1] for key in totals if key[0] == experiment]
        if len(present) < 2:
            skipped[experiment] = f"{len(present)} variant(s) with exposed members; nothing to compare"
            continue
        variants = order_variants(present)
        stats = {v: totals[(experiment, v)] for v in variants}
        if not enough_units(stats):
            skipped[experiment] = "an arm has fewer than two members"
            continue
        own = {(v, d): s for (e, v, d), s in increments.items() if e == experiment}
        first = min(d for (_, d), s in own.items() if s.get("n", 0) > 0)
        by_day = cumulative_by_day(own, variants, days_between(first, args.date))
        results.append(analyze_experiment(
            experiment, args.date, stats, by_day, weights_for(experiment, variants, args.weights or {}),
            excluded.get(experiment, 0), args.cuped, args.pre_days, args.alpha, args.correction))
    return results, skipped


def gather(spark: SparkSession, lake: Lake, args: argparse.Namespace) -> tuple[dict, dict, dict[str, int]]:
    """The Spark side: (experiment, variant) -> statistics over D's exposure window, (experiment, variant,
    day) -> daily increments of those statistics, and experiment -> members excluded for two variants."""
    by_member = read_assignments(spark, lake, args.date, args.experiment).transform(
        assignments_by_member(args.date)).persist()
    exposed = exposures(by_member).persist()
    cached = [by_member, exposed]
    try:
        excluded = excluded_counts(by_member)
        first_day = exposed.agg(F.min("exposure_day").alias("first")).first()["first"]
        if first_day is None:
            if args.experiment is not None and not excluded:
                raise NoAssignments(f"{args.experiment}: no assignment in {ASSIGNMENTS} up to {args.date}")
            return {}, {}, excluded
        impressions = exposed.transform(exposed_impressions(
            read_labels(spark, lake, first_day, args.date, args.pre_days), args.pre_days)).persist()
        days = member_days(exposed, impressions).transform(
            with_covariates(pre_period_covariates(impressions))).persist()
        cached += [impressions, days]
        totals = collect_sums(variant_sums(member_totals(days)), KEYS)
        increments = collect_sums(daily_increments(days), (*KEYS, DAY))
    finally:
        for df in reversed(cached):
            df.unpersist()
    return totals, increments, excluded


def write_pages(lake: Lake, results: list[ExperimentResult], ds: str) -> dict[str, str]:
    pages = {}
    for result in results:
        uri = page_uri(lake, result.experiment, ds)
        with open_output(uri) as out:
            out.write(render_page(result).encode("utf-8"))
        pages[result.experiment] = uri
    return pages


def experiment_summary(result: ExperimentResult, page: str) -> dict:
    """The figures an operator reads first: arms, SRM, and each goal's relative lift with its CI."""
    goals = {}
    for r in result.analysis["results"]:
        if r["p_value_adjusted"] is not None:
            relative = r["relative"]
            goals[f"{r['metric']}:{r['variant']}"] = {"relative_lift": relative["estimate"],
                                                     "ci": relative["ci"], "p_value_adjusted": r["p_value_adjusted"]}
    return {"units": result.units, "excluded_members": result.excluded,
            "srm_p_value": result.analysis["srm"]["p_value"], "srm_passed": result.srm_passed,
            "trustworthy": result.srm_passed, "cuped_metrics": result.cuped, "goals": goals, "page": page}


def run(spark: SparkSession, args: argparse.Namespace) -> dict:
    lake = Lake(args.lake)
    totals, increments, excluded = gather(spark, lake, args)
    results, skipped = analyze_all(args, totals, increments, excluded)
    rows = [row for result in results for row in result.rows()]
    table = spark.createDataFrame(rows, REPORTS_EXPERIMENTS)
    day = lake.day_run(spark, JOB, [args.date])
    day.write_partition(table, REPORT, args.date)
    pages = write_pages(lake, results, args.date)
    published = day.publish()
    summary = {"job": JOB, "ds": args.date, "rows": len(rows),
               "experiments": {r.experiment: experiment_summary(r, pages[r.experiment]) for r in results},
               "skipped": skipped, "excluded_members": excluded, "cuped": args.cuped,
               "run_id": published["run_id"]}
    emit_summary(summary)
    return summary


def main(argv: Sequence[str] | None = None) -> object:
    return run_job(build_parser(), run, argv)


if __name__ == "__main__":
    sys.exit(run_and_exit_code(main))
