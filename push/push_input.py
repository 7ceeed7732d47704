"""The push input's one layout and its one writer, used by the push job, the store tests and the bench.

Layout (as Venice's push job expects it): a folder of Avro container files `part-XXXXX.avro`, one per
key-hash partition (`partition_of`) and one even when a partition is empty, so the file set depends only
on the partition count. Records are (`key` long, `value` record, or null for an incremental delete),
sorted by key in each file. Each file's sync marker is derived from (ds, partition), so the same records
give the same bytes.

Why one hash computed in Python: the job computes each member's partition inside its Arrow batches with the
same `partition_of` that the plain-Python writer uses, and both write through `write_parts`, so an input a
test or the bench builds by hand has exactly the layout the job writes.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterable, Iterator, Sequence

import fastavro
import numpy as np
import pyarrow as pa
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import IntegerType, StructField, StructType

from mutuals.lake import join_uri, open_output
from push.schemas import KEY_FIELD, VALUE_FIELD, Schema, parsed, push_input_schema

PART = "part"
COUNTS_SCHEMA = "part int, records long"
CANDIDATE_FIELDS = ("candidate_id", "rank", "score", "common_connections", "sources",
                    "coworker_overlap_days", "schoolmate_overlap_days", "ppr_score")
# splitmix64's finaliser: every key bit moves every output bit, so consecutive member ids spread evenly.
GOLDEN, MIX1, MIX2 = np.uint64(0x9E3779B97F4A7C15), np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)
SHIFTS = (np.uint64(30), np.uint64(27), np.uint64(31))

Record = tuple[int, dict | None]


def partition_of(keys: Sequence[int] | np.ndarray, partitions: int) -> np.ndarray:
    """The partition (0..partitions-1, int32) of each key: splitmix64 of its 64 bits, mod `partitions`."""
    z = np.asarray(keys, dtype=np.int64).view(np.uint64) + GOLDEN   # uint64 arithmetic wraps modulo 2**64
    z = (z ^ (z >> SHIFTS[0])) * MIX1
    z = (z ^ (z >> SHIFTS[1])) * MIX2
    z = z ^ (z >> SHIFTS[2])
    return (z % np.uint64(partitions)).astype(np.int32)


def part_name(part: int) -> str:
    return f"part-{part:05d}.avro"


def sync_marker(ds: str, part: int) -> bytes:
    """The container's 16-byte sync marker; fastavro would draw a random one, making re-runs differ."""
    return hashlib.sha256(f"recs-{ds}-{part}".encode()).digest()[:16]


def write_parts(folder: str, parts: dict[int, list[Record]], schema: Schema, ds: str,
                codec: str = "null", nullable_value: bool = False) -> dict[int, int]:
    """Write each partition's (key, value) pairs, sorted by key (stable: repeated keys keep their order),
    as `folder/part-XXXXX.avro`; returns the records written per partition."""
    container = parsed(push_input_schema(schema, nullable_value))
    written = {}
    for part, rows in sorted(parts.items()):
        rows.sort(key=lambda kv: kv[0])
        with open_output(join_uri(folder, part_name(part))) as sink:
            fastavro.writer(sink, container, ({KEY_FIELD: k, VALUE_FIELD: v} for k, v in rows), codec=codec,
                            sync_marker=sync_marker(ds, part))
        written[part] = len(rows)
    return written


def write_push_input(folder: str | os.PathLike, records: Iterable[Record], value_schema: Schema, partitions: int = 4,
                     ds: str = "", codec: str = "null", nullable_value: bool = False) -> list[str]:
    """Write (key, value) pairs as the push input of day `ds` in plain Python; returns the files written."""
    rows = list(records)
    buckets: dict[int, list[Record]] = {part: [] for part in range(partitions)}
    for row, part in zip(rows, partition_of([k for k, _ in rows], partitions).tolist(), strict=True):
        buckets[part].append(row)
    write_parts(str(folder), buckets, value_schema, ds, codec, nullable_value)
    return [join_uri(str(folder), part_name(part)) for part in range(partitions)]


# ------------------------------------------------------------------ the same layout from Spark
def group_recommendations(ds: str) -> Callable[[DataFrame], DataFrame]:
    """recs rows -> one row per member: `key` and the served `value` (push/schemas/recommendation.avsc),
    candidates in rank order (ties: candidate id)."""
    def transform(recs: DataFrame) -> DataFrame:
        ranked = F.struct(F.col("rank"), F.col("candidate_id"),
                          F.struct(*[F.col(c) for c in CANDIDATE_FIELDS]).alias("candidate"))
        grouped = recs.groupBy("member_id").agg(
            F.sort_array(F.collect_list(ranked)).alias("ranked"),
            F.min("model_version").alias("model_version"),
        )
        value = F.struct(F.lit(ds).alias("generated_ds"), F.col("model_version"),
                         F.transform("ranked", lambda r: r["candidate"]).alias("candidates"))
        return grouped.select(F.col("member_id").cast("long").alias(KEY_FIELD), value.alias(VALUE_FIELD))
    return transform


def with_partition(partitions: int) -> Callable[[DataFrame], DataFrame]:
    """Adds `part`, each key's `partition_of`, computed in the executors' Arrow batches."""
    def add(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            parts = partition_of(batch.column(KEY_FIELD).to_numpy(), partitions)
            yield batch.append_column(PART, pa.array(parts, pa.int32()))

    def transform(values: DataFrame) -> DataFrame:
        schema = StructType([*values.schema.fields, StructField(PART, IntegerType(), False)])
        return values.mapInArrow(add, schema)
    return transform


def part_file_writer(folder: str, ds: str, value_schema: Schema, nullable_value: bool = False
                     ) -> Callable[[Iterator[pa.RecordBatch]], Iterator[pa.RecordBatch]]:
    """mapInArrow sink: a task writes every partition it holds through `write_parts` and yields
    (part, records) per file it wrote. `nullable_value`: an incremental input, where a null value deletes."""
    def write(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        parts: dict[int, list[Record]] = {}
        for batch in batches:
            for row in batch.to_pylist():
                parts.setdefault(row[PART], []).append((row[KEY_FIELD], row[VALUE_FIELD]))
        written = write_parts(folder, parts, value_schema, ds, nullable_value=nullable_value)
        yield pa.RecordBatch.from_arrays([pa.array(list(written), pa.int32()), pa.array(list(written.values()),
                                                                                        pa.int64())],
                                         names=["part", "records"])
    return write


def write_push_input_from(values: DataFrame, folder: str, ds: str, partitions: int, value_schema: Schema,
                          nullable_value: bool = False) -> int:
    """Write `key`, `value` rows as the push input of day `ds` into `folder` from the executors (a folder
    every executor can reach); partitions no executor held get their empty file here. Returns the records.
    `nullable_value`: an incremental input (null values are deletes)."""
    written = (values.transform(with_partition(partitions)).repartition(partitions, PART)
               .mapInArrow(part_file_writer(folder, ds, value_schema, nullable_value), COUNTS_SCHEMA).collect())
    missing = set(range(partitions)) - {row["part"] for row in written}
    write_parts(folder, {part: [] for part in missing}, value_schema, ds, nullable_value=nullable_value)
    return sum(row["records"] for row in written)
