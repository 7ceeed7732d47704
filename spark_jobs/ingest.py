"""Ingest: landing files of day D -> validated `raw/<table>` partitions plus `quarantine/<table>`.

    spark-submit spark_jobs/ingest.py --date D --lake ROOT      (or: mutuals run ingest ...)

For every landing table: read every line with its file and line number, parse it (CSV or JSON Lines),
route each row to accepted or quarantined by the rules in `quality.landing_rules`, check that the counts
balance (read = accepted + quarantined), and run the Great Expectations suite on the accepted rows.
Only when every table passes are the partitions written, each with one atomic `replaceWhere` commit, and
then the day is published (`meta/publications`, see `mutuals.lake`), last: a bad day publishes nothing,
a crash between two commits leaves the day unpublished, and a re-run replaces that day and nothing else.
Every table's landing folder for D must exist (a folder with only a `_SUCCESS` marker is an empty table),
and a day with no data file in any table fails: a wrong `--lake` or a day not landed is not an empty day.
Duplicates are valid rows here (the same edge both ways, a repeated event); later jobs merge them.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from ingestion.landing import landing_dir, list_files, raise_on_file_errors, read_lines
from mutuals.errors import GateFailed, MissingInput, run_and_exit_code
from mutuals.jobargs import job_parser, run_job
from mutuals.lake import Lake
from mutuals.tables import LANDING_FORMATS, QUARANTINE, spec
from quality.gx_runner import validate
from quality.landing_rules import DEFAULT_ALLOWED_LATENESS_DAYS, RULES, LandingRules, day_window

RAW_PREFIX = "_raw_"


class IngestCountMismatch(GateFailed):
    """rows read != rows accepted + rows quarantined: a row would be lost."""


class QualityGateFailed(GateFailed):
    """The GX suite found a bad row among the accepted ones; nothing was published."""


@dataclass(frozen=True)
class TableCounts:
    table: str
    files: int
    rows_read: int
    rows_accepted: int
    rows_quarantined: int


def parse_lines(rules: LandingRules, fmt: str) -> Callable[[DataFrame], DataFrame]:
    """Split `raw_line` into one string column per field (`_raw_<name>`) and flag unparseable lines."""
    names = [f.name for f in rules.fields]
    ddl = ", ".join(f"`{n}` STRING" for n in names)

    def transform(lines: DataFrame) -> DataFrame:
        if fmt == "csv":
            parsed = F.from_csv("raw_line", ddl)
            line_error = F.when(F.col("field_count") != len(names), F.lit("wrong_field_count"))
        else:
            parsed = F.from_json("raw_line", f"{ddl}, `_corrupt` STRING",
                                 {"columnNameOfCorruptRecord": "_corrupt", "mode": "PERMISSIVE"})
            line_error = F.when(parsed["_corrupt"].isNotNull(), F.lit("unparseable_json"))
        return lines.select(
            "source_file", "line_number", "raw_line", "file_error",
            line_error.alias("line_error"),
            *[F.nullif(F.trim(parsed[n]), F.lit("")).alias(RAW_PREFIX + n) for n in names],
        )

    return transform


def _typed(rule_name: str, sql_type: str) -> Column:
    return F.expr(f"try_cast(`{RAW_PREFIX}{rule_name}` AS {sql_type})")


def classify_rows(rules: LandingRules, ds: str, lateness_days: int) -> Callable[[DataFrame], DataFrame]:
    """Add typed columns plus `bad_field` / `reason` for the first failing check (null when the row is good)."""
    start, end = day_window(ds, lateness_days)

    def transform(parsed: DataFrame) -> DataFrame:
        typed = {r.name: _typed(r.name, r.data_type.simpleString()) for r in rules.fields}
        checks: list[tuple[Column, str | None, str]] = [(F.col("line_error").isNotNull(), None, "line")]
        for rule in rules.fields:
            raw = F.col(RAW_PREFIX + rule.name)
            is_missing = raw.isNull()
            if rule.required:
                checks.append((is_missing, rule.name, "missing_field"))
            checks.append((~is_missing & typed[rule.name].isNull(), rule.name, "bad_type"))
            if rule.allowed:
                checks.append((~is_missing & ~typed[rule.name].isin(list(rule.allowed)), rule.name, "unknown_enum"))
            if rule.in_day_window:
                is_outside = (typed[rule.name] < F.lit(start)) | (typed[rule.name] >= F.lit(end))
                checks.append((~is_missing & is_outside, rule.name, "out_of_window"))
        with_typed = parsed.select("*", *[col.alias(name) for name, col in typed.items()])
        for row_rule in rules.row_rules:
            checks.append((F.coalesce(F.expr(row_rule.sql_violation), F.lit(False)), row_rule.field,
                           row_rule.reason))
        reason = F.lit(None).cast("string")
        bad_field = F.lit(None).cast("string")
        for condition, field_name, why in reversed(checks):
            is_bad = F.coalesce(condition, F.lit(False))
            reason = F.when(is_bad, F.col("line_error") if why == "line" else F.lit(why)).otherwise(reason)
            bad_field = F.when(is_bad, F.lit(field_name)).otherwise(bad_field)
        return with_typed.select("*", reason.alias("reason"), bad_field.alias("bad_field"))

    return transform


def accepted_rows(table: str) -> Callable[[DataFrame], DataFrame]:
    schema = spec(f"raw/{table}").schema

    def transform(classified: DataFrame) -> DataFrame:
        return classified.where(F.col("reason").isNull()).select(
            *[F.col(f.name).cast(f.dataType).alias(f.name) for f in schema.fields]
        )

    return transform


def quarantined_rows(classified: DataFrame) -> DataFrame:
    return classified.where(F.col("reason").isNotNull()).select(
        F.col("source_file"), F.col("line_number"), F.col("bad_field").alias("field"),
        F.col("reason"), F.col("raw_line"),
    )


@dataclass
class IngestedTable:
    counts: TableCounts
    accepted: DataFrame
    quarantined: DataFrame
    cached: DataFrame


def ingest_table(spark: SparkSession, lake: Lake, table: str, ds: str, lateness_days: int) -> IngestedTable:
    """Read, route and count one landing table for one day; writes nothing.

    One cached pass: the file errors and all three counts come from a single aggregation, so a day of six
    tables costs six scans of the landing files, not eighteen.
    """
    rules, fmt = RULES[table], LANDING_FORMATS[table]
    files = list_files(spark, landing_dir(lake.root, table, ds), f".{fmt}")
    lines = read_lines(spark, files, rules.header if fmt == "csv" else None)
    classified = lines.transform(parse_lines(rules, fmt)).transform(classify_rows(rules, ds, lateness_days)).cache()
    is_file_error = F.col("file_error").isNotNull()
    is_accepted = ~is_file_error & F.col("reason").isNull()
    is_quarantined = ~is_file_error & F.col("reason").isNotNull()
    totals = classified.agg(
        F.sum(is_file_error.cast("long")).alias("file_errors"),
        F.sum((~is_file_error).cast("long")).alias("read"),
        F.sum(is_accepted.cast("long")).alias("accepted"),
        F.sum(is_quarantined.cast("long")).alias("quarantined"),
    ).first()
    if totals.file_errors:
        raise_on_file_errors(classified)
    counts = TableCounts(table, len(files), totals.read or 0, totals.accepted or 0, totals.quarantined or 0)
    if counts.rows_read != counts.rows_accepted + counts.rows_quarantined:
        raise IngestCountMismatch(
            f"{table} {ds}: read {counts.rows_read} rows but accepted {counts.rows_accepted} "
            f"+ quarantined {counts.rows_quarantined}"
        )
    valid_lines = classified.where(~is_file_error)
    return IngestedTable(counts, valid_lines.transform(accepted_rows(table)), quarantined_rows(valid_lines), classified)


def gate_accepted(table: str, ds: str, accepted: DataFrame, lateness_days: int) -> None:
    from quality.landing_rules import gx_expectations

    outcome = validate(accepted, f"landing_{table}", gx_expectations(RULES[table], ds, lateness_days))
    if not outcome.success:
        failures = "; ".join(f.describe() for f in outcome.failures)
        raise QualityGateFailed(f"raw/{table} {ds}: accepted rows fail the landing suite: {failures}")


class MissingLandingFolder(MissingInput):
    """A table's landing partition folder for the day does not exist."""


class NoLandingData(MissingInput):
    """Not one landing data file for the day across all tables: the day has not landed."""


def folder_exists(spark: SparkSession, folder: str) -> bool:
    """Through Hadoop's FileSystem, like the landing listing, so S3/HDFS lake roots work too."""
    path = spark.sparkContext._jvm.org.apache.hadoop.fs.Path(folder)
    return bool(path.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration()).exists(path))


def check_landed(spark: SparkSession, root: str, ds: str) -> dict[str, int]:
    """Data files per table for D; fails before anything is read or written when the day has not landed.

    A table's folder must exist; a folder holding no data file (only a `_SUCCESS` marker, or nothing) is
    that table's empty day. But a day without a single data file in any table is not an empty day: it is
    a wrong lake root or a day that has not arrived, and publishing it would make it look empty.
    """
    folders = {table: landing_dir(root, table, ds) for table in RULES}
    missing = [folder for folder in folders.values() if not folder_exists(spark, folder)]
    files = {table: len(list_files(spark, folder, f".{LANDING_FORMATS[table]}"))
             for table, folder in folders.items() if folder not in missing}
    if not any(files.values()):
        absent = f"; missing folders: {', '.join(missing)}" if missing else ""
        raise NoLandingData(f"ingest ds={ds}: no landing data files for any table under "
                            f"{root.rstrip('/')}/landing/<table>/ds={ds}{absent}. A day that has not landed is "
                            f"not an empty day; check --lake and that the day's files have arrived")
    if missing:
        raise MissingLandingFolder(
            f"ingest ds={ds}: landing folder{'s' if len(missing) > 1 else ''} {', '.join(missing)} "
            f"do{'' if len(missing) > 1 else 'es'} not exist (a table with no rows that day lands an empty "
            f"folder, or one holding only a _SUCCESS marker)"
        )
    return files


def run(spark: SparkSession, args: argparse.Namespace) -> list[TableCounts]:
    lake = Lake(args.lake)
    check_landed(spark, lake.root, args.date)
    ingested = [ingest_table(spark, lake, t, args.date, args.lateness_days) for t in RULES]
    for item in ingested:
        gate_accepted(item.counts.table, args.date, item.accepted, args.lateness_days)
    day = lake.day_run(spark, "ingest", [args.date])
    for item in ingested:
        table = item.counts.table
        day.write_partition(item.accepted, f"raw/{table}", args.date)
        day.write_partition(item.quarantined.select(*QUARANTINE.fieldNames()), f"quarantine/{table}", args.date)
        item.cached.unpersist()
        committed = tuple(lake.read(spark, f"{layer}/{table}", args.date).count() for layer in ("raw", "quarantine"))
        if sum(committed) != item.counts.rows_read:
            raise IngestCountMismatch(
                f"{table} {args.date}: read {item.counts.rows_read} rows but the published partitions hold "
                f"{committed[0]} accepted + {committed[1]} quarantined"
            )
    counts = [item.counts for item in ingested]
    counts_df = spark.createDataFrame([asdict(c) for c in counts], spec("quarantine/ingest_counts").schema)
    day.write_partition(counts_df, "quarantine/ingest_counts", args.date)
    published = day.publish()
    print(json.dumps({"job": "ingest", "ds": args.date, "tables": [asdict(c) for c in counts],
                      "run_id": published["run_id"]}))
    return counts


def build_parser() -> argparse.ArgumentParser:
    parser = job_parser("ingest", __doc__)
    parser.add_argument("--lateness-days", type=int, default=DEFAULT_ALLOWED_LATENESS_DAYS,
                        help="how many days late a timestamped row may land (default %(default)s)")
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    run_job(build_parser(), run, argv)


if __name__ == "__main__":
    sys.exit(run_and_exit_code(main))
