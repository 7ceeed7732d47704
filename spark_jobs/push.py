"""push: recs/topk for date D -> Avro push input -> a new version of the serving store.

    spark-submit spark_jobs/push.py --date D --lake ROOT [--store STORE] [--partitions N]

1. Reads recs/topk ds=D, which the recs job must have published (else `UnpublishedPartition`, before any
   file or store is touched), and groups it per member into the served value (push.push_input).
2. Writes the push input in the layout push.push_input owns: Avro files of (key, value) records, one per
   key-hash partition even when empty, keys sorted in each file, sync markers derived from (D, partition),
   so a re-run writes the same bytes. The executors write it into a staging folder of the lake, which then
   replaces <lake>/push/recommendations/ds=D whole (`Lake.replace_folder`), on any filesystem the lake
   lives on (a plain path, file://, hdfs://, s3a://).
3. Full push to the store with push id "recs-<D>": an Airflow retry after a successful push is a no-op.

STORE defaults to $MUTUALS_STORE, else <lake>/_store (a RocksDB folder beside the tables, so wiping a
local lake wipes its store too); redis://HOST:PORT/DB targets Redis.
"""

# ruff: noqa: E402  (the sys.path guard below must run before `import push`)
from __future__ import annotations

import sys
from pathlib import Path as _Path

# The one place that handles this file's name. Run as a script (`spark-submit spark_jobs/push.py`, or
# `python spark_jobs/push.py`), Python puts the script's folder, spark_jobs/, first on sys.path, and there
# this very file, push.py, would shadow the top-level `push` package that the imports below need. Drop that
# entry before importing anything of ours; `spark_jobs.*` imports still resolve from the project root.
if sys.path and _Path(sys.path[0] or ".").resolve() == _Path(__file__).resolve().parent:
    sys.path.pop(0)

import argparse
from collections.abc import Sequence
from typing import Any

from pyspark.sql import SparkSession

from mutuals.errors import run_and_exit_code
from mutuals.jobargs import job_parser, run_job
from mutuals.lake import Lake
from mutuals.ledger import emit_summary
from mutuals.profiles import active_profile
from push.push_input import group_recommendations, write_push_input_from
from push.schemas import load_value_schema
from push.store import StoreOptions
from push.stores import open_store

RECS_TOPK = "recs/topk"
DEFAULT_PARTITIONS = 8


def default_store(lake_root: str) -> str:
    """The store when no --store is given: the active profile's (`mutuals.profiles`) for this lake."""
    return active_profile().store(lake_root)


def push_folder(lake: Lake, ds: str) -> str:
    """The day's push input folder in the lake (a path or a URI, as the lake root is)."""
    return lake.folder("push", "recommendations", f"ds={ds}")


def write_day_input(spark: SparkSession, lake: Lake, ds: str, partitions: int) -> tuple[str, int]:
    """recs/topk ds=D -> <lake>/push/recommendations/ds=D/part-XXXXX.avro; returns (folder, records)."""
    recs = lake.read_published(spark, RECS_TOPK, ds)  # before any folder exists: a missing day writes nothing
    target = push_folder(lake, ds)
    staging = lake.staging_folder(target)
    try:
        records = write_push_input_from(recs.transform(group_recommendations(ds)), staging, ds, partitions,
                                        load_value_schema())
        lake.replace_folder(spark, staging, target)
    finally:
        lake.remove_folder(spark, staging)
    return target, records


def run(spark: SparkSession, args: argparse.Namespace) -> dict[str, Any]:
    lake = Lake(args.lake)
    folder, records = write_day_input(spark, lake, args.date, args.partitions)
    store_url = args.store or default_store(args.lake)
    store = open_store(store_url, StoreOptions(max_drop=args.max_drop), create=True)
    try:
        result = store.push(folder, push_id=f"recs-{args.date}", allow_empty=getattr(args, "allow_empty", False))
    finally:
        store.close()
    result.update(avro=folder, avro_records=records)
    emit_summary({"job": "push", "ds": args.date, "rows_out": records, **result})
    return result


def build_parser() -> argparse.ArgumentParser:
    parser = job_parser("push", __doc__)
    parser.add_argument("--store", default=None, help="RocksDB folder or redis://HOST:PORT/DB "
                        "(default: $MUTUALS_STORE, else <lake>/_store)")
    parser.add_argument("--partitions", type=int, default=DEFAULT_PARTITIONS, help="Avro files (key-hash parts)")
    parser.add_argument("--max-drop", type=float, default=StoreOptions().max_drop,
                        help="gate: largest allowed drop in keys or bytes against the current version")
    parser.add_argument("--allow-empty", action="store_true", help="accept a push of zero records (refused by default)")
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    run_job(build_parser(), run, argv)


if __name__ == "__main__":
    sys.exit(run_and_exit_code(main))
