"""The lake: the only module that reads and writes tables.

Layout: `<root>/<layer>/<name>`, Delta tables partitioned by `ds` (see `spark_jobs.tables`).

Why `replaceWhere` on `ds`: a job for date D owns exactly the partition ds=D. Overwriting it with
`replaceWhere` is one Delta commit, so a reader sees the old partition or the new one, never half, and a
re-run or an Airflow retry replaces rows instead of appending a second copy. Two writers racing on the
same partition both read it in their transaction; Delta's conflict check makes the later commit fail
(`PartitionWriteConflict`) rather than silently doubling the rows.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from delta.exceptions import (
    ConcurrentAppendException,
    ConcurrentDeleteReadException,
    ConcurrentTransactionException,
    MetadataChangedException,
    ProtocolChangedException,
)
from delta.tables import DeltaTable
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import StructType

from spark_jobs.tables import DS, TableSpec, spec

DELTA_CONFLICTS = (
    ConcurrentAppendException,
    ConcurrentDeleteReadException,
    ConcurrentTransactionException,
    MetadataChangedException,
    ProtocolChangedException,
)


class LakeError(Exception):
    """Base class of lake failures."""


class SchemaMismatch(LakeError):
    """A DataFrame does not match its table's registered schema."""


class MissingTable(LakeError):
    """A table that a job reads has never been written."""


class PartitionWriteConflict(LakeError):
    """Another writer committed to the same partition first; nothing of ours was committed."""


def default_root() -> str:
    return os.environ.get("MUTUALS_LAKE", "./lake")


def _type_map(schema: StructType) -> dict[str, str]:
    return {f.name: f.dataType.simpleString() for f in schema.fields}


def conform(df: DataFrame, table: TableSpec) -> DataFrame:
    """Select the table's columns in registry order; fail naming every missing, extra or mistyped column."""
    expected, found = _type_map(table.schema), _type_map(df.drop(DS).schema)
    missing = sorted(set(expected) - set(found))
    extra = sorted(set(found) - set(expected))
    mistyped = sorted(f"{c}: expected {expected[c]}, found {found[c]}" for c in expected.keys() & found.keys()
                      if expected[c] != found[c])
    if missing or extra or mistyped:
        raise SchemaMismatch(
            f"{table.key}: schema mismatch; missing={missing} extra={extra} mistyped={mistyped}"
        )
    return df.select(*table.columns)


@dataclass(frozen=True)
class Lake:
    root: str

    def path(self, key: str) -> str:
        return f"{self.root.rstrip('/')}/{spec(key).key}"

    def exists(self, spark: SparkSession, key: str) -> bool:
        return DeltaTable.isDeltaTable(spark, self.path(key))

    def ensure(self, spark: SparkSession, key: str) -> None:
        """Create the empty, partitioned table if it does not exist yet (idempotent)."""
        table = spec(key)
        if self.exists(spark, key):
            return
        # A conflict means another writer created it a moment before us: same schema, same result.
        with contextlib.suppress(*DELTA_CONFLICTS):
            (
                DeltaTable.createIfNotExists(spark)
                .location(self.path(key))
                .addColumns(table.full_schema)
                .partitionedBy(*table.partition_by)
                .execute()
            )

    # ------------------------------------------------------------------ reads
    def read(self, spark: SparkSession, key: str, ds: str | None = None) -> DataFrame:
        """Whole table, or one partition when `ds` is given."""
        if not self.exists(spark, key):
            raise MissingTable(f"{key}: no Delta table at {self.path(key)}; run the job that writes it first")
        df = spark.read.format("delta").load(self.path(key))
        return df.where(F.col(DS) == ds) if ds is not None else df

    def read_or_empty(self, spark: SparkSession, key: str, ds: str | None = None) -> DataFrame:
        """Like `read`, but a table that was never written reads as empty with its registered schema."""
        if self.exists(spark, key):
            return self.read(spark, key, ds)
        return spark.createDataFrame([], spec(key).full_schema)

    def read_range(self, spark: SparkSession, key: str, start: str | None, end: str) -> DataFrame:
        """Partitions with start <= ds <= end (start None: from the beginning)."""
        df = self.read(spark, key)
        df = df.where(F.col(DS) <= end)
        return df.where(F.col(DS) >= start) if start is not None else df

    def read_as_of(self, spark: SparkSession, key: str, ds: str) -> DataFrame:
        """Every partition up to and including `ds`: what the lake knew at the end of that day."""
        return self.read_range(spark, key, None, ds)

    def read_version(self, spark: SparkSession, key: str, version: int) -> DataFrame:
        """Delta time travel, for audits and rollbacks."""
        return spark.read.format("delta").option("versionAsOf", version).load(self.path(key))

    def partitions(self, spark: SparkSession, key: str) -> list[str]:
        if not self.exists(spark, key):
            return []
        rows = self.read(spark, key).select(DS).distinct().orderBy(DS).collect()
        return [r[DS] for r in rows]

    def latest_ds(self, spark: SparkSession, key: str, before: str | None = None) -> str | None:
        """Newest partition, optionally strictly before a date (point-in-time reads)."""
        found = [d for d in self.partitions(spark, key) if before is None or d < before]
        return found[-1] if found else None

    # ------------------------------------------------------------------ writes
    def write_partition(self, df: DataFrame, key: str, ds: str) -> None:
        """Atomically replace partition ds=`ds` of `key` with `df` (which may omit the `ds` column)."""
        self.write_partitions(df.withColumn(DS, F.lit(ds)), key, [ds])

    def write_partitions(self, df: DataFrame, key: str, ds_values: Sequence[str]) -> None:
        """Atomically replace several partitions in one commit (late-data recomputes). `df` carries `ds`;
        Delta rejects rows whose `ds` is outside `ds_values`, so a bug cannot clobber other days."""
        table = spec(key)
        if DS not in df.columns:
            raise SchemaMismatch(f"{key}: write_partitions needs a `{DS}` column")
        out = df.select(*conform(df, table).columns, DS)
        self.ensure(df.sparkSession, key)
        predicate = _ds_predicate(ds_values)
        try:
            (
                out.write.format("delta")
                .mode("overwrite")
                .option("replaceWhere", predicate)
                .save(self.path(key))
            )
        except DELTA_CONFLICTS as exc:
            raise PartitionWriteConflict(
                f"{key}: another writer committed to {predicate} first; ours was not committed. "
                f"Re-run the job to replace the partition. ({type(exc).__name__})"
            ) from exc


def _ds_predicate(ds_values: Iterable[str]) -> str:
    values = sorted(set(ds_values))
    if not values:
        raise ValueError("no partitions to write")
    if len(values) == 1:
        return f"{DS} = '{values[0]}'"
    return f"{DS} IN ({', '.join(repr(v) for v in values)})"
