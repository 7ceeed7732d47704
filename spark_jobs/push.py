"""push: recs/topk for date D -> Avro push input -> a new version of the serving store.

    spark-submit spark_jobs/push.py --date D --lake ROOT [--store STORE] [--partitions N]

1. Reads recs/topk ds=D, which the recs job must have published (else `UnpublishedPartition`, before any
   file or store is touched), and groups it per member, candidates ordered by rank (the served value of
   push/schemas/recommendation.avsc).
2. Writes the push input, as Venice's push job expects it: Avro container files of (key, value) records,
   partitioned by key hash (pmod(xxhash64(member_id), N)), keys sorted in each file, one file per
   partition even when empty, and a sync marker derived from (D, partition), so a re-run writes the same
   bytes. The folder <lake>/push/recommendations/ds=D is replaced in one atomic rename (an exchange).
3. Full push to the store with push id "recs-<D>": an Airflow retry after a successful push is a no-op.

STORE defaults to $MUTUALS_STORE, else <lake>/_store (a RocksDB folder beside the tables, so wiping a
local lake wipes its store too); redis://HOST:PORT/DB targets Redis. The Avro files are written by the
executors into the lake folder, so on a cluster the lake must be a shared filesystem path.
"""

# ruff: noqa: E402  (the sys.path guard below must run before `import push`)
from __future__ import annotations

import sys
from pathlib import Path as _Path

# Run as a script (`spark-submit spark_jobs/push.py`), Python puts spark_jobs/ first on sys.path, where this
# very file would shadow the top-level `push` package. Drop that entry; `spark_jobs.*` imports still work.
if sys.path and _Path(sys.path[0] or ".").resolve() == _Path(__file__).resolve().parent:
    sys.path.pop(0)

import argparse
import ctypes
import ctypes.util
import hashlib
import json
import os
import shutil
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import fastavro
import pyarrow as pa
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from mutuals.errors import run_and_exit_code
from mutuals.jobargs import job_parser, run_job
from mutuals.lake import Lake
from push.cli import demo_readback
from push.schemas import load_value_schema, parsed, push_input_schema
from push.store import StoreOptions, open_store

RECS_TOPK = "recs/topk"
DEFAULT_PARTITIONS = 8
PART_SCHEMA = "part int, records long"
CANDIDATE_FIELDS = ("candidate_id", "rank", "score", "common_connections", "sources",
                    "coworker_overlap_days", "schoolmate_overlap_days", "ppr_score")


def default_store(lake_root: str) -> str:
    return os.environ.get("MUTUALS_STORE") or str(Path(lake_root) / "_store")


def push_folder(lake_root: str, ds: str) -> Path:
    return Path(lake_root) / "push" / "recommendations" / f"ds={ds}"


def group_recommendations(ds: str, partitions: int) -> Callable[[DataFrame], DataFrame]:
    """One row per member: the served value's fields, candidates in rank order (ties: candidate id)."""
    def transform(recs: DataFrame) -> DataFrame:
        ranked = F.struct(F.col("rank"), F.col("candidate_id"),
                          F.struct(*[F.col(c) for c in CANDIDATE_FIELDS]).alias("candidate"))
        grouped = recs.groupBy("member_id").agg(
            F.sort_array(F.collect_list(ranked)).alias("ranked"),
            F.min("model_version").alias("model_version"),
        )
        return grouped.select(
            F.col("member_id").cast("long").alias("member_id"),
            F.lit(ds).alias("generated_ds"),
            F.col("model_version"),
            F.transform("ranked", lambda r: r["candidate"]).alias("candidates"),
            F.pmod(F.xxhash64("member_id"), F.lit(partitions)).cast("int").alias("part"),
        )
    return transform


def sync_marker(ds: str, part: int) -> bytes:
    return hashlib.sha256(f"recs-{ds}-{part}".encode()).digest()[:16]


def avro_part_writer(staging: str, ds: str) -> Callable[[Iterator[pa.RecordBatch]], Iterator[pa.RecordBatch]]:
    """mapInArrow sink: writes each key-hash partition's rows (already sorted) as part-XXXXX.avro."""
    schema = push_input_schema(load_value_schema())

    def write(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        rows_by_part: dict[int, list[dict[str, Any]]] = {}
        for batch in batches:
            for row in batch.to_pylist():
                value = {"generated_ds": row["generated_ds"], "model_version": row["model_version"],
                         "candidates": row["candidates"]}
                rows_by_part.setdefault(row["part"], []).append({"key": row["member_id"], "value": value})
        parts, counts = [], []
        for part, records in sorted(rows_by_part.items()):
            records.sort(key=lambda r: r["key"])
            with open(os.path.join(staging, f"part-{part:05d}.avro"), "wb") as fh:
                fastavro.writer(fh, parsed(schema), records, sync_marker=sync_marker(ds, part))
            parts.append(part)
            counts.append(len(records))
        yield pa.RecordBatch.from_arrays([pa.array(parts, pa.int32()), pa.array(counts, pa.int64())],
                                         names=["part", "records"])
    return write


def exchange_folders(staging: Path, target: Path) -> None:
    """Atomically put `staging` at `target`: renameat2(RENAME_EXCHANGE) when the target exists, so a
    reader of `target` sees the old folder or the new one, never none; then drop the old one."""
    if not target.exists():
        os.rename(staging, target)
        return
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    at_fdcwd, rename_exchange = -100, 2
    result = libc.renameat2(at_fdcwd, str(staging).encode(), at_fdcwd, str(target).encode(), rename_exchange)
    if result != 0:
        raise OSError(ctypes.get_errno(), f"renameat2 exchange {staging} <-> {target} failed")
    shutil.rmtree(staging)


def write_push_input(spark: SparkSession, lake: Lake, ds: str, partitions: int) -> tuple[Path, int]:
    """recs/topk ds=D -> <lake>/push/recommendations/ds=D/part-XXXXX.avro; returns (folder, records)."""
    recs = lake.read_published(spark, RECS_TOPK, ds)  # before any folder exists: a missing day writes nothing
    target = push_folder(lake.root, ds)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = target.parent / f"_staging-ds={ds}-{uuid.uuid4().hex}"
    staging.mkdir()
    try:
        values = recs.transform(group_recommendations(ds, partitions))
        written = (values.repartition(partitions, "part").sortWithinPartitions("part", "member_id")
                   .mapInArrow(avro_part_writer(str(staging), ds), PART_SCHEMA).collect())
        empty_schema = parsed(push_input_schema(load_value_schema()))
        for part in set(range(partitions)) - {r["part"] for r in written}:
            with open(staging / f"part-{part:05d}.avro", "wb") as fh:
                fastavro.writer(fh, empty_schema, [], sync_marker=sync_marker(ds, part))
        exchange_folders(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target, sum(r["records"] for r in written)


def run(spark: SparkSession, args: argparse.Namespace) -> dict[str, Any]:
    lake = Lake(args.lake)
    folder, records = write_push_input(spark, lake, args.date, args.partitions)
    store_url = args.store or default_store(args.lake)
    store = open_store(store_url, StoreOptions(max_drop=args.max_drop), create=True)
    try:
        result = store.push(str(folder), push_id=f"recs-{args.date}", allow_empty=getattr(args, "allow_empty", False))
    finally:
        store.close()
    result.update(avro=str(folder), avro_records=records)
    print(json.dumps(result, sort_keys=True, default=str))
    return result


def print_served_sample(lake_root: str, ds: str, count: int = 3) -> list[dict[str, Any]]:
    """For `make demo`: read a few pushed members back through the store and print them."""
    keys: list[int] = []
    for path in sorted(push_folder(lake_root, ds).glob("*.avro")):
        with path.open("rb") as fh:
            keys += [r["key"] for _, r in zip(range(count - len(keys)), fastavro.reader(fh), strict=False)]
        if len(keys) >= count:
            break
    store = default_store(lake_root)
    rows = demo_readback(store, keys)
    print(f"\nserved values read back through the store ({store}); full JSON: mutuals store get --store STORE KEY")
    for row in rows:
        value = row["value"] or {}
        top = ", ".join(
            f"{c['candidate_id']} (score {c['score']:.3f}, common {c['common_connections']}, {'+'.join(c['sources'])})"
            for c in value.get("candidates", [])[:3]
        )
        print(f"member {row['key']} @ version {row['version']} [{value.get('generated_ds')}, "
              f"{value.get('model_version')}, {len(value.get('candidates', []))} candidates]: {top}")
    return rows


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
