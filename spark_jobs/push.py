"""push: recs/topk for date D -> Avro push input -> a new version of the serving store.

    spark-submit spark_jobs/push.py --date D --lake ROOT [--store STORE] [--partitions N]

1. Reads recs/topk ds=D, which the recs job must have published (else `UnpublishedPartition`, before any
   file or store is touched), and groups it per member into the served value (push.push_input).
2. Writes the push input in the layout push.push_input owns: Avro files of (key, value) records, one per
   key-hash partition even when empty, keys sorted in each file, sync markers derived from (D, partition),
   so a re-run writes the same bytes. The executors write it into a staging folder of the lake, which then
   replaces <lake>/push/recommendations/ds=D whole (`Lake.replace_folder`), on any filesystem the lake
   lives on (a plain path, file://, hdfs://, s3a://).
3. Full push to the store with push id "recs-<D>", built in the executors (`push.parallel`): one task per
   key-hash partition reads its Avro file and writes it straight into the new version (an SST file the
   RocksDB store ingests, pipelined MSET batches for Redis); then the store validates and swaps. An Airflow
   retry after a successful push is a no-op.
4. Incremental instead, unless --full: when the store's current version was last pushed from an earlier
   day B of this lake (push id "recs-<B>", full or incremental) and recs/topk of B and of D carry one and the
   same model version, only the members whose served value changed go out, as upserts, and members present
   on B and gone on D as deletes, through the store's incremental push (push id "recs-<D>"), written as
   <lake>/push/recommendations_incremental/ds=D. A value counts as changed when its candidates or its model
   version differ; `generated_ds` alone does not, so an unchanged member keeps the value, and the
   generated_ds, it was served with. The summary says which push ran (`mode`) and, for an incremental one,
   `members_changed`, `upserts` and `deletes` (or, for a full one, `full_reason`). A retry of a day whose
   push the store already holds is a no-op (`noop`), and leaves that day's incremental input as it was.

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
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from mutuals.errors import run_and_exit_code
from mutuals.jobargs import job_parser, run_job
from mutuals.lake import Lake, MissingTable, UnpublishedPartition
from mutuals.ledger import emit_summary
from mutuals.profiles import active_profile
from push.parallel import spark_runner
from push.push_input import group_recommendations, write_push_input_from
from push.schemas import KEY_FIELD, VALUE_FIELD, load_value_schema
from push.store import StoreOptions, VersionedStore
from push.stores import open_store

RECS_TOPK = "recs/topk"
DEFAULT_PARTITIONS = 8


def default_store(lake_root: str) -> str:
    """The store when no --store is given: the active profile's (`mutuals.profiles`) for this lake."""
    return active_profile().store(lake_root)


def push_folder(lake: Lake, ds: str) -> str:
    """The day's push input folder in the lake (a path or a URI, as the lake root is)."""
    return lake.folder("push", "recommendations", f"ds={ds}")


def write_day_input(spark: SparkSession, lake: Lake, ds: str, partitions: int,
                    recs: DataFrame | None = None) -> tuple[str, int]:
    """recs/topk ds=D -> <lake>/push/recommendations/ds=D/part-XXXXX.avro; returns (folder, records).
    `recs`: the day's rows when the caller already read them."""
    if recs is None:
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


PUSH_ID = re.compile(r"^recs-(\d{4}-\d{2}-\d{2})$")


@dataclass(frozen=True)
class Plan:
    """Which push to run: incremental against day `base`, whose rows are `base_recs` (None: full, for
    `reason`). `retry_of`: the served version already holds this day's incremental push, so nothing is
    written or pushed again."""

    base: str | None
    reason: str | None = None
    base_recs: DataFrame | None = None
    retry_of: int | None = None


def push_id(ds: str) -> str:
    return f"recs-{ds}"


def model_versions(recs: DataFrame) -> list[str]:
    return sorted(row["model_version"] for row in recs.select("model_version").distinct().collect())


def plan_push(spark: SparkSession, lake: Lake, store: VersionedStore, ds: str, recs: DataFrame,
              force_full: bool) -> Plan:
    """Incremental when the store serves an earlier day of this lake made with today's single model
    version; a full push otherwise (the reason is reported)."""
    if force_full:
        return Plan(None, "--full")
    listing = store.versions()
    current = listing["current"]
    if current is None:
        return Plan(None, "no current version")
    entry = next(v for v in listing["versions"] if v["version"] == current)
    incremental_last = entry.get("last_push_id") is not None
    found = PUSH_ID.match(entry.get("last_push_id") or entry.get("push_id") or "")
    if found is None:
        return Plan(None, f"current version v{current} was not pushed by this job (push id "
                          f"{entry.get('last_push_id') or entry.get('push_id')!r})")
    base = found.group(1)
    if base > ds:
        return Plan(None, f"current version v{current} serves {base}, a later day than {ds}")
    if base == ds:
        if not incremental_last:
            return Plan(None, f"current version v{current} was pushed from {ds} in full (a retry is a no-op)")
        # Diffing the day against itself would find no change and overwrite the day's incremental input
        # with an empty one: the record of what was pushed would be lost.
        return Plan(None, f"current version v{current} already holds the incremental push {push_id(ds)} "
                          "(a retry is a no-op)", retry_of=current)
    try:
        base_recs = lake.read_published(spark, RECS_TOPK, base)
    except (UnpublishedPartition, MissingTable) as exc:
        return Plan(None, f"recs of the served day {base} unreadable ({exc})")
    before, today = model_versions(base_recs), model_versions(recs)
    if len(today) != 1 or today != before:
        return Plan(None, f"model version changed: {before} on {base}, {today} on {ds}")
    return Plan(base, base_recs=base_recs)


def changed_values(recs: DataFrame, ds: str, base_recs: DataFrame, base: str) -> DataFrame:
    """`key`, `value` of every member whose served value differs from day `base`'s; null for a member
    who had recommendations on `base` and has none on `ds`."""
    today = recs.transform(group_recommendations(ds)).alias("t")
    before = base_recs.transform(group_recommendations(base)).alias("b")
    joined = today.join(before, F.col(f"t.{KEY_FIELD}") == F.col(f"b.{KEY_FIELD}"), "full_outer")
    same = (F.col(f"t.{VALUE_FIELD}.candidates").eqNullSafe(F.col(f"b.{VALUE_FIELD}.candidates"))
            & F.col(f"t.{VALUE_FIELD}.model_version").eqNullSafe(F.col(f"b.{VALUE_FIELD}.model_version")))
    return joined.where(~same).select(F.coalesce(F.col(f"t.{KEY_FIELD}"), F.col(f"b.{KEY_FIELD}")).alias(KEY_FIELD),
                                      F.col(f"t.{VALUE_FIELD}").alias(VALUE_FIELD))


def write_incremental_input(spark: SparkSession, lake: Lake, ds: str, changes: DataFrame,
                            partitions: int) -> tuple[str, int]:
    """The changes against `base` as an incremental push input (nullable values), replacing
    <lake>/push/recommendations_incremental/ds=D whole; returns (folder, records)."""
    target = lake.folder("push", "recommendations_incremental", f"ds={ds}")
    staging = lake.staging_folder(target)
    try:
        records = write_push_input_from(changes, staging, ds, partitions,
                                        load_value_schema(), nullable_value=True)
        lake.replace_folder(spark, staging, target)
    finally:
        lake.remove_folder(spark, staging)
    return target, records


def run(spark: SparkSession, args: argparse.Namespace) -> dict[str, Any]:
    lake = Lake(args.lake)
    recs = lake.read_published(spark, RECS_TOPK, args.date)  # before any folder exists: a missing day writes nothing
    folder, records = write_day_input(spark, lake, args.date, args.partitions, recs)
    store_url = args.store or default_store(args.lake)
    store = open_store(store_url, StoreOptions(max_drop=args.max_drop), create=True)
    try:
        plan = plan_push(spark, lake, store, args.date, recs, getattr(args, "full", False))
        if plan.retry_of is not None:
            result = {"version": plan.retry_of, "noop": True, "push_id": push_id(args.date),
                      "mode": "incremental", "reason": plan.reason}
        elif plan.base is not None and plan.base_recs is not None:
            changes = changed_values(recs, args.date, plan.base_recs, plan.base)
            delta, delta_records = write_incremental_input(spark, lake, args.date, changes, args.partitions)
            result = store.push(delta, push_id=push_id(args.date), incremental=True)
            result.update(mode="incremental", base_ds=plan.base, incremental_avro=delta,
                          members_changed=delta_records)
        else:
            result = store.push_parts(folder, spark_runner(spark), push_id=push_id(args.date),
                                      allow_empty=getattr(args, "allow_empty", False))
            result.update(mode="full", full_reason=plan.reason)
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
    parser.add_argument("--full", action="store_true",
                        help="always a full push (by default, a day with the served day's model version is "
                        "pushed incrementally: changed members only)")
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    run_job(build_parser(), run, argv)


if __name__ == "__main__":
    sys.exit(run_and_exit_code(main))
