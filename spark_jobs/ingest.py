"""Ingest: landing files of day D -> validated `raw/<table>` partitions plus `quarantine/<table>`.

    spark-submit spark_jobs/ingest.py --date D --lake ROOT      (or: mutuals run ingest ...)

For every landing table (all at once, `read_tables_at_once`): read every line with its file and line
number, parse it (CSV or JSON Lines), route each row to accepted or quarantined by the rules in
`quality.landing_rules`, check that the counts balance (read = accepted + quarantined), and run the Great
Expectations suite on the accepted rows (`ingestion.routing`).
Only when every table passes are the partitions written, each with one atomic `replaceWhere` commit (the
commits run side by side, `DayRun.write_partitions_at_once`), and then the day is published
(`meta/publications`, see `mutuals.lake`), last: a bad day publishes nothing, a crash between two commits
leaves the day unpublished, and a re-run replaces that day and nothing else.
Every table's landing folder for D must exist (a folder with only a `_SUCCESS` marker is an empty table),
and a day with no data file in any table fails: a wrong `--lake` or a day not landed is not an empty day
(`ingestion.landing.check_landed`).
Duplicates are valid rows here (the same edge both ways, a repeated event); later jobs merge them.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict

from pyspark.sql import SparkSession

from ingestion.landing import check_landed
from ingestion.routing import IngestedTable, TableCounts, gate_accepted, ingest_table, require_committed
from mutuals.errors import run_and_exit_code
from mutuals.jobargs import job_parser, run_job
from mutuals.lake import Lake
from mutuals.ledger import emit_summary
from mutuals.session import sql_conf
from mutuals.tables import QUARANTINE, spec
from quality import gx_runner
from quality.landing_rules import DEFAULT_ALLOWED_LATENESS_DAYS, RULES

READ_THREADS = len(RULES)
CACHE_COMPRESSED = "spark.sql.inMemoryColumnarStorage.compressed"


def read_tables_at_once(spark: SparkSession, lake: Lake, args: argparse.Namespace) -> list[IngestedTable]:
    """Every landing table read, routed, cached and counted, in RULES order, READ_THREADS tables at a time.

    Why side by side: a small table's read is mostly driver-side work (listing, planning, a one- or
    two-task stage) while the executors idle, and the events table's parse keeps both cores busy for
    longer than all the others together. The first failing table in RULES order raises, as it would one
    after another.

    The routed rows are cached without columnar compression: they are read back twice (the GX gate, the
    commit) and dropped, and compressing them was the costliest step of the read after the JSON parse.
    A warm read of a 100k-member day: compressed, 6.7-7.0 s three tables at a time and 6.3-6.6 s all
    six; uncompressed, 5.6-6.0 s and 5.0-5.1 s.
    """
    with (sql_conf(spark, {CACHE_COMPRESSED: "false"}),
          ThreadPoolExecutor(max_workers=READ_THREADS, thread_name_prefix="ingest-read") as pool):
        reads = [pool.submit(ingest_table, spark, lake, table, args.date, args.lateness_days) for table in RULES]
        return [read.result() for read in reads]


def run(spark: SparkSession, args: argparse.Namespace) -> list[TableCounts]:
    lake = Lake(args.lake)
    check_landed(spark, lake.root, args.date)
    ingested = read_tables_at_once(spark, lake, args)
    for item in ingested:
        gate_accepted(item.counts.table, args.date, item.accepted, args.lateness_days)
    day = lake.day_run(spark, "ingest", [args.date])
    counts = [item.counts for item in ingested]
    counts_df = spark.createDataFrame([asdict(c) for c in counts], spec("quarantine/ingest_counts").schema)
    writes = [(counts_df, "quarantine/ingest_counts")]
    for item in ingested:
        writes += [(item.accepted, f"raw/{item.counts.table}"),
                   (item.quarantined.select(*QUARANTINE.fieldNames()), f"quarantine/{item.counts.table}")]
    day.write_partitions_at_once(writes, args.date)
    for item in ingested:
        item.cached.unpersist()
        accepted, quarantined = (day.committed_rows(f"{layer}/{item.counts.table}")[args.date]
                                 for layer in ("raw", "quarantine"))
        require_committed(item.counts, args.date, accepted, quarantined)
    published = day.publish()
    emit_summary({"job": "ingest", "ds": args.date, "tables": [asdict(c) for c in counts],
                  "rows_in": sum(c.rows_read for c in counts), "run_id": published["run_id"]})
    return counts


def build_parser() -> argparse.ArgumentParser:
    parser = job_parser("ingest", __doc__)
    parser.add_argument("--lateness-days", type=int, default=DEFAULT_ALLOWED_LATENESS_DAYS,
                        help="how many days late a timestamped row may land (default %(default)s)")
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    gx_runner.preload()
    run_job(build_parser(), run, argv)


if __name__ == "__main__":
    sys.exit(run_and_exit_code(main))
