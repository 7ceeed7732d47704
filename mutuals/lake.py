"""The lake: the only module that reads and writes tables.

Layout: `<root>/<layer>/<name>`, Delta tables partitioned by `ds` (see `mutuals.tables`).

Why `replaceWhere` on `ds`: a job for date D owns exactly the partition ds=D. Overwriting it with
`replaceWhere` is one Delta commit, so a reader sees the old partition or the new one, never half, and a
re-run or an Airflow retry replaces rows instead of appending a second copy. Two writers racing on the
same partition both read it in their transaction; Delta's conflict check makes the later commit fail
(`PartitionWriteConflict`) rather than silently doubling the rows.

Why publications: a job often writes several tables for a day (ingest thirteen, graph two), and each
write is its own commit, so a crash between two commits would leave a day half written. Jobs therefore
write through a `DayRun`: its first write retracts the job's publication of the day, every table is
committed, and only then is the publication record written, last, to `meta/publications` (partitioned by
job and ds, so two jobs publishing the same day never conflict). The record lists each table with the
Delta version of its commit, its rows per day, and the run id, which also tags those commits
(`userMetadata`). Job inputs are read with `read_published*`, which first look up the publication of the
table's writer (from the registry) and raise `UnpublishedPartition` when the day is not published. So a
reader sees a whole day or none, a missing day fails instead of reading as empty, and re-running the job
completes a half-published day.

Why folder operations here too: some outputs are plain files, not tables (the push input's Avro files,
`mutuals fof`'s Parquet folder), and they must work wherever the lake lives. A plain path is handled with
os calls; a URI with a scheme (`s3a://`, `hdfs://`, `file://`) goes through Hadoop's FileSystem on the
driver (through the JVM of the Spark session) and through `pyarrow.fs` in Python code, executors included.
A folder is replaced whole: written into a staging folder beside it, then swapped in (`replace_folder`).
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import datetime as dt
import errno
import json
import os
import posixpath
import re
import shutil
import uuid
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import BinaryIO

from delta.exceptions import (
    ConcurrentAppendException,
    ConcurrentDeleteReadException,
    ConcurrentTransactionException,
    MetadataChangedException,
    ProtocolChangedException,
)
from delta.tables import DeltaTable
from pyarrow import fs as pafs
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import StructType

from mutuals import ledger
from mutuals.errors import Conflict, MissingInput, SchemaError
from mutuals.tables import DS, JOB, TableSpec, spec, tables_written_by

PUBLICATIONS = "meta/publications"
HISTORY_DEPTH = 100  # commits searched for a run's own commit (its userMetadata)
# Commits `DayRun.write_partitions_at_once` runs side by side.
WRITE_THREADS = 4
LISTED_DAYS = 10  # days named in an error message before "... N in all"
STAGING_PREFIX = "_staging-"  # Spark and Hadoop readers skip names starting with `_`
ARROW_SCHEMES = {"s3a": "s3", "s3n": "s3"}  # Hadoop's names for what pyarrow calls s3://
URI_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]+:/")  # two letters at least: `C:/` is a path
AT_FDCWD, RENAME_EXCHANGE = -100, 2
EXCHANGE_UNSUPPORTED = (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP, errno.EXDEV)

DELTA_CONFLICTS = (
    ConcurrentAppendException,
    ConcurrentDeleteReadException,
    ConcurrentTransactionException,
    MetadataChangedException,
    ProtocolChangedException,
)


class LakeError(Exception):
    """Base class of lake failures."""


class SchemaMismatch(LakeError, SchemaError):
    """A DataFrame does not match its table's registered schema."""


class MissingTable(LakeError, MissingInput):
    """A table that a job reads has never been written."""


class UnpublishedPartition(LakeError, MissingInput):
    """A partition a job needs was never published by the job that writes it (missing, or half written)."""


class PartitionWriteConflict(LakeError, Conflict):
    """Another writer committed to the same partition first; nothing of ours was committed."""


class IncompletePublication(LakeError):
    """A job tried to publish a day without writing every table the registry says it writes (a bug)."""


# ------------------------------------------------------------------ files (driver or executor, no Spark)
def is_local(uri: str) -> bool:
    """A plain path, handled with os calls; anything with a scheme (`file:/x`, `s3a://b/x`) goes through a
    filesystem client."""
    return URI_SCHEME.match(uri) is None


def join_uri(base: str, *parts: str) -> str:
    """`base/part/...` for a path or a URI (never an OS separator: URIs use `/`)."""
    return "/".join([base.rstrip("/"), *parts])


def _arrow_fs(uri: str) -> tuple[pafs.FileSystem, str]:
    scheme, rest = uri.split(":", 1)
    return pafs.FileSystem.from_uri(f"{ARROW_SCHEMES.get(scheme, scheme)}:{rest}")


def open_output(uri: str) -> BinaryIO:
    """A new file for writing, its folder created if needed (executors write the push input with it)."""
    if is_local(uri):
        os.makedirs(os.path.dirname(os.path.abspath(uri)), exist_ok=True)
        return open(uri, "wb")  # noqa: SIM115 - the caller closes it
    fs, path = _arrow_fs(uri)
    fs.create_dir(posixpath.dirname(path), recursive=True)
    return fs.open_output_stream(path)


def open_input(uri: str) -> BinaryIO:
    """A file for reading."""
    if is_local(uri):
        return open(uri, "rb")  # noqa: SIM115 - the caller closes it
    fs, path = _arrow_fs(uri)
    return fs.open_input_file(path)


def is_folder(uri: str) -> bool:
    if is_local(uri):
        return os.path.isdir(uri)
    fs, path = _arrow_fs(uri)
    return fs.get_file_info(path).type == pafs.FileType.Directory


def list_files(folder: str, suffix: str = "") -> list[str]:
    """The files directly in `folder` whose name ends with `suffix`, as paths or URIs, sorted by name."""
    if is_local(folder):
        names = [n for n in os.listdir(folder) if os.path.isfile(os.path.join(folder, n))]
    else:
        fs, path = _arrow_fs(folder)
        names = [info.base_name for info in fs.get_file_info(pafs.FileSelector(path))
                 if info.type == pafs.FileType.File]
    return [join_uri(folder, n) for n in sorted(names) if n.endswith(suffix)]


def _remove_local(path: str) -> None:
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path)
    elif os.path.lexists(path):
        os.unlink(path)


def _exchange_local(staging: str, target: str) -> bool:
    """Swap two existing paths in one step with renameat2(RENAME_EXCHANGE): a reader of `target` sees the
    old entry or the new one, never none. False where the call or the filesystem does not support it."""
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    renameat2 = getattr(libc, "renameat2", None)
    if renameat2 is None:
        return False
    if renameat2(AT_FDCWD, staging.encode(), AT_FDCWD, target.encode(), RENAME_EXCHANGE) == 0:
        return True
    code = ctypes.get_errno()
    if code in EXCHANGE_UNSUPPORTED:
        return False
    raise OSError(code, f"renameat2 exchange {staging} <-> {target} failed: {os.strerror(code)}")


def _replace_local(staging: str, target: str) -> None:
    os.makedirs(os.path.dirname(os.path.abspath(target)), exist_ok=True)
    if not os.path.lexists(target):
        os.rename(staging, target)
        return
    if _exchange_local(staging, target):
        _remove_local(staging)  # holds the old entry now
        return
    previous = f"{staging}.previous"
    os.rename(target, previous)
    try:
        os.rename(staging, target)
    except OSError:
        os.rename(previous, target)
        raise
    _remove_local(previous)


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

    # ------------------------------------------------------------------ folders that are not tables
    def folder(self, *parts: str) -> str:
        """A folder under the root that holds plain files (the push input), as a path or URI."""
        return join_uri(self.root, *parts)

    @staticmethod
    def staging_folder(target: str) -> str:
        """A fresh name beside `target`, not created yet, for writing its next content; hidden from Spark
        and Hadoop readers of the parent by its leading `_`."""
        parent, name = posixpath.split(target.rstrip("/"))
        return join_uri(parent, f"{STAGING_PREFIX}{name}-{uuid.uuid4().hex}")

    @staticmethod
    def replace_folder(spark: SparkSession | None, staging: str, target: str) -> None:
        """Put the folder `staging` at `target` (creating its parent) and delete what was there.

        A plain path is exchanged in one step (renameat2) where the OS allows it, else the old entry is
        renamed aside first and put back if the second rename fails. A URI uses Hadoop FileSystem renames:
        old aside, new in, old deleted; Hadoop has no exchange, so a reader may briefly find no folder.
        `spark` (whose JVM reaches Hadoop) may be None for a plain path."""
        if is_local(target):
            _replace_local(staging, target)
            return
        fs, hadoop_path = _hadoop_fs(spark, target)
        new, old, previous = hadoop_path(staging), hadoop_path(target), hadoop_path(f"{staging}.previous")
        fs.mkdirs(old.getParent())
        had_old = fs.exists(old)
        if had_old and not fs.rename(old, previous):
            raise OSError(f"cannot move {target} aside to {previous.toString()}")
        if not fs.rename(new, old):
            if had_old:
                fs.rename(previous, old)
            raise OSError(f"cannot rename {staging} to {target}")
        if had_old:
            fs.delete(previous, True)

    @staticmethod
    def remove_folder(spark: SparkSession | None, uri: str) -> None:
        """Delete a folder (or file) and everything in it; nothing there is fine."""
        if is_local(uri):
            _remove_local(uri)
            return
        fs, hadoop_path = _hadoop_fs(spark, uri)
        fs.delete(hadoop_path(uri), True)

    def ensure(self, spark: SparkSession, key: str) -> None:
        """Create the empty, partitioned table if it does not exist yet (idempotent)."""
        table = spec(key)
        if self.exists(spark, key):
            return
        # A conflict means another writer created it a moment before us: same schema, same result.
        with contextlib.suppress(*DELTA_CONFLICTS):
            builder = (DeltaTable.createIfNotExists(spark).location(self.path(key))
                       .addColumns(table.full_schema).partitionedBy(*table.partition_by))
            if table.stats_columns is not None:
                builder = builder.property("delta.dataSkippingNumIndexedCols", str(table.stats_columns))
            builder.execute()

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

    def partitions(self, spark: SparkSession, key: str) -> list[str]:
        if not self.exists(spark, key):
            return []
        rows = self.read(spark, key).select(DS).distinct().orderBy(DS).collect()
        return [r[DS] for r in rows]

    # ------------------------------------------------------------------ writes
    def write_partition(self, df: DataFrame, key: str, ds: str, run_id: str | None = None) -> None:
        """Atomically replace partition ds=`ds` of `key` with `df` (which may omit the `ds` column).
        This commits a table, it publishes nothing: jobs write through a `DayRun`."""
        self.write_partitions(df.withColumn(DS, F.lit(ds)), key, [ds], run_id)

    def write_partitions(self, df: DataFrame, key: str, ds_values: Sequence[str], run_id: str | None = None) -> None:
        """Atomically replace several partitions in one commit (late-data recomputes). `df` carries `ds`;
        Delta rejects rows whose `ds` is outside `ds_values`, so a bug cannot clobber other days.
        `run_id` tags the commit (Delta `userMetadata`) so the run's publication can find its version."""
        table = spec(key)
        if DS not in df.columns:
            raise SchemaMismatch(f"{key}: write_partitions needs a `{DS}` column")
        out = df.select(*conform(df, table).columns, DS)
        self._replace(out, key, _ds_predicate(ds_values), run_id)

    def _replace(self, out: DataFrame, key: str, predicate: str, run_id: str | None) -> None:
        """One `replaceWhere` overwrite commit; a lost race becomes `PartitionWriteConflict`."""
        self.ensure(out.sparkSession, key)
        writer = out.write.format("delta").mode("overwrite").option("replaceWhere", predicate)
        if run_id is not None:
            writer = writer.option("userMetadata", run_id)
        try:
            writer.save(self.path(key))
        except DELTA_CONFLICTS as exc:
            raise PartitionWriteConflict(
                f"{key}: another writer committed to {predicate} first; ours was not committed. "
                f"Re-run the job to replace the partition. ({type(exc).__name__})"
            ) from exc

    # ------------------------------------------------------------------ publications
    def published_days(self, spark: SparkSession, key: str, start: str | None = None,
                       end: str | None = None) -> list[str]:
        """Days (start <= ds <= end) whose publication by `key`'s writer lists `key`, oldest first."""
        return sorted(self.published_rows(spark, key, start, end))

    def published_rows(self, spark: SparkSession, key: str, start: str | None = None,
                       end: str | None = None) -> dict[str, int]:
        """ds -> rows of `key` as its writer published them, for the published days in [start, end]."""
        writer = writer_of(key)
        found: dict[str, int] = {}
        for record in self._publication_records(spark):
            day = record[DS]
            if record[JOB] != writer or (start is not None and day < start) or (end is not None and day > end):
                continue
            for entry in record["tables"]:
                if entry["table"] == key:
                    found[day] = int(entry["rows"] or 0)
                    break
        return found

    def publication(self, spark: SparkSession, job: str, ds: str) -> dict | None:
        """The publication record of `job` for `ds` as a dict (tables, run_id, published_at), or None."""
        for record in self._publication_records(spark):
            if record[JOB] == job and record[DS] == ds:
                return dict(record)
        return None

    def _publication_records(self, spark: SparkSession) -> tuple[dict, ...]:
        """Every publication record, as dicts, read through Spark once per version of the table.

        A job looks publications up a dozen times before its first real stage (twice per input, and
        again for its inputs' row counts); each lookup as a Spark query costs about half a second on a
        small machine. The table is small (a record per job and day), so it is read whole and kept for
        as long as the newest commit in its `_delta_log` is the one listed before the read: a publication
        by this or any other process makes a new version and the next lookup reads again.

        It is read as it is now, not `versionAsOf` the listed version: time travel makes Delta build a
        second snapshot of the log, and this is the first query of every job, where each snapshot costs
        seconds of a cold JVM. A publication that lands between the listing and the read is simply read
        early; the records are never older than the version they are kept under."""
        table = self.path(PUBLICATIONS)
        versions = _commit_versions(table)
        if not versions:
            return ()
        cached = _PUBLICATION_RECORDS.get(table)
        if cached is not None and cached[0] == versions[0]:
            return cached[1]
        frame = spark.read.format("delta").load(table)
        records = tuple(row.asDict(recursive=True) for row in frame.collect())
        _PUBLICATION_RECORDS[table] = (versions[0], records)
        return records

    def require_published(self, spark: SparkSession, key: str, days: Iterable[str]) -> None:
        """Raise `UnpublishedPartition` naming `key`, every unpublished day and the job to run."""
        wanted = sorted(set(days))
        if not wanted:
            return
        published = set(self.published_days(spark, key, wanted[0], wanted[-1]))
        missing = [d for d in wanted if d not in published]
        if missing:
            raise UnpublishedPartition(unpublished_message(key, missing))

    def read_published(self, spark: SparkSession, key: str, ds: str) -> DataFrame:
        """Partition ds of `key`, after checking that its writer published that day."""
        self.require_published(spark, key, [ds])
        ledger.current().read(key, self.published_rows(spark, key, ds, ds))
        return self.read(spark, key, ds)

    def read_published_as_of(self, spark: SparkSession, key: str, ds: str) -> DataFrame:
        """Every partition from the writer's first published day through `ds`. Each of those days must be
        published: a day that was skipped or half written in between would otherwise read as empty."""
        rows = self.published_rows(spark, key, end=ds)
        first = min(rows) if rows else ds
        self.require_published(spark, key, days_between(first, ds))
        ledger.current().read(key, rows)
        return self.read_range(spark, key, first, ds)

    def read_published_range(self, spark: SparkSession, key: str, start: str, end: str,
                             required: Iterable[str] = ()) -> DataFrame:
        """The published partitions with start <= ds <= end; the `required` days must be among them.
        Unpublished days in the range are left out, never read half written."""
        self.require_published(spark, key, required)
        rows = self.published_rows(spark, key, start, end)
        ledger.current().read(key, rows)
        return self.read_or_empty(spark, key).where(F.col(DS).isin(sorted(rows)))

    def first_published_day(self, spark: SparkSession, key: str) -> str | None:
        published = self.published_days(spark, key)
        return published[0] if published else None

    def day_run(self, spark: SparkSession, job: str, days: Sequence[str]) -> DayRun:
        """Start `job`'s writes for `days`; see `DayRun`."""
        return DayRun(self, spark, job, tuple(sorted(set(days))))

    def publish_tables(self, spark: SparkSession, job: str, days: Sequence[str], keys: Sequence[str],
                       run_id: str | None = None) -> dict:
        """Publish tables already committed by other means (a backfill of a lake written before
        publications, or a test's hand-written inputs): each table's current version and rows per day."""
        entries = [PublishedTable(key, self.version(spark, key), self._rows_per_day(spark, key, days))
                   for key in keys]
        return self._write_publication(spark, job, days, entries, run_id or uuid.uuid4().hex)

    def version(self, spark: SparkSession, key: str) -> int:
        """The table's latest Delta version (its newest commit file)."""
        for version in _commit_versions(self.path(key))[:1]:
            return version
        raise MissingTable(f"{key}: no Delta commit under {self.path(key)}/_delta_log")

    def retract(self, spark: SparkSession, job: str, days: Sequence[str]) -> None:
        """Delete `job`'s publication of `days`: from now on readers treat those days as unpublished.

        Days the job has not published (the first run of a day, every scheduled run) are unpublished
        already, so there is nothing to commit: the records are looked up as of the table's newest commit
        instead, which a job has read anyway. A DELETE commit costs a second or two of driver time and
        makes every later access to the table build a new snapshot. A run of the same job and days that
        publishes between this lookup and the caller's first write is not retracted; two such runs
        already conflict on the tables they both replace. A lake without publications has none to look up."""
        wanted = set(days)
        if not any(r[JOB] == job and r[DS] in wanted for r in self._publication_records(spark)):
            return
        predicate = _publication_predicate(job, days)
        try:
            DeltaTable.forPath(spark, self.path(PUBLICATIONS)).delete(predicate)
        except DELTA_CONFLICTS as exc:
            raise PartitionWriteConflict(
                f"{PUBLICATIONS}: another writer committed to {predicate} first; re-run {job} "
                f"({type(exc).__name__})"
            ) from exc

    def _read_publications(self, spark: SparkSession) -> DataFrame:
        return spark.read.format("delta").load(self.path(PUBLICATIONS))

    def _rows_per_day(self, spark: SparkSession, key: str, days: Sequence[str]) -> dict[str, int]:
        counts = (self.read(spark, key).where(F.col(DS).isin(list(days))).groupBy(DS)
                  .agg(F.count(F.lit(1)).alias("rows")).collect())
        found = {r[DS]: int(r["rows"]) for r in counts}
        return {d: found.get(d, 0) for d in days}

    def _commit_of(self, spark: SparkSession, key: str, run_id: str
                   ) -> tuple[int, dict[str, int] | None] | None:
        """(version, rows it added per `ds`) of the newest commit of `key` tagged with `run_id`; None when
        the write committed nothing (Delta skips an empty overwrite of partitions that were already empty).
        The rows are None when a file the commit added has no record count in its statistics.

        Read from the newest commit files of the table's `_delta_log` (the protocol's `commitInfo` and
        `add` actions), not through `DeltaTable.history` or a count of the table: each of those builds a
        DataFrame and runs Spark jobs, about a second each on a small machine, for a few lines of JSON."""
        for version, actions in _newest_commits(self.path(key), HISTORY_DEPTH):
            info = next((a["commitInfo"] for a in actions if "commitInfo" in a), {})
            if info.get("userMetadata") == run_id:
                return version, _rows_added_per_day(actions)
        return None

    def _write_publication(self, spark: SparkSession, job: str, days: Sequence[str],
                           entries: Sequence[PublishedTable], run_id: str) -> dict:
        """Replace `job`'s publication records of `days` with one record per day."""
        table = spec(PUBLICATIONS)
        published_at = dt.datetime.now(dt.UTC)
        rows = [(run_id, [(e.key, e.version, e.rows[d]) for e in entries], published_at, job, d)
                for d in sorted(set(days))]
        frame = spark.createDataFrame(rows, table.full_schema)
        self._replace(frame, PUBLICATIONS, _publication_predicate(job, days), run_id)
        return {"run_id": run_id, "days": sorted(set(days)),
                "tables": {e.key: {"version": e.version, "rows": e.rows} for e in entries}}


@dataclass(frozen=True)
class PublishedTable:
    """One table of a publication: its committed Delta version and its rows per published day."""

    key: str
    version: int
    rows: dict[str, int]


@dataclass
class DayRun:
    """One run of `job` over `days`: table writes, then the publication, last.

    The first write retracts the job's earlier publication of those days, so from the first commit until
    `publish()` the days are unpublished and readers fail rather than see a mix of old and new tables. A
    crash in between leaves them unpublished; re-running the job writes every table again and publishes.
    """

    lake: Lake
    spark: SparkSession
    job: str
    days: tuple[str, ...]
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    written: list[str] = field(default_factory=list)
    _entries: dict[str, PublishedTable] = field(default_factory=dict, repr=False)

    def write_partition(self, df: DataFrame, key: str, ds: str) -> None:
        self._before_write(key, [ds])
        self.lake.write_partition(df, key, ds, self.run_id)
        self._wrote(key)

    def write_partitions(self, df: DataFrame, key: str) -> None:
        """Replace every day of the run in one commit of `key`."""
        self._before_write(key, self.days)
        self.lake.write_partitions(df, key, self.days, self.run_id)
        self._wrote(key)

    def write_partitions_at_once(self, writes: Sequence[tuple[DataFrame, str]], ds: str | None,
                                 threads: int = WRITE_THREADS) -> None:
        """Replace partition ds=`ds` of several tables, one atomic commit each, the commits running side by
        side in `threads` driver threads (Spark runs jobs of different threads concurrently). With `ds`
        None the frames carry their `ds` and every day of the run is replaced, as `write_partitions` does.

        Why: a small table's commit is mostly driver-side waiting (its Delta log listed, its commit file
        written, its checkpoint and checksum), a second or more each, while the executors idle; one
        after another, ingest's thirteen commits took half a minute. As with one write after another, a
        failure leaves the days unpublished (the first write retracted them) and a re-run replaces all.
        """
        keys = [key for _, key in writes]
        if len(set(keys)) != len(keys):
            raise IncompletePublication(f"{self.job}: a table is written twice at once: {keys}")
        for key in keys:
            self._before_write(key, self.days if ds is None else [ds])
        with ThreadPoolExecutor(max_workers=max(1, threads), thread_name_prefix=f"{self.job}-write") as pool:
            commits = [pool.submit(self.lake.write_partitions, df, key, self.days, self.run_id) if ds is None
                       else pool.submit(self.lake.write_partition, df, key, ds, self.run_id) for df, key in writes]
        for commit in commits:
            commit.result()
        for key in keys:
            self._wrote(key)

    def committed_rows(self, key: str) -> dict[str, int]:
        """Rows per day of `key` as this run committed them: the record counts of the files its commit
        added, per day, from the commit file (no re-read of the table); a count of the committed
        partitions only when a file has no record count. The publication records the same figures."""
        if key not in self.written:
            raise IncompletePublication(f"{self.job}: {key} has not been written by this run")
        if key not in self._entries:
            self._entries[key] = self._entry(key)
        return dict(self._entries[key].rows)

    def publish(self) -> dict:
        """Write the publication record of every day of the run; the job's last commit."""
        expected = tables_written_by(self.job)
        missing = [key for key in expected if key not in self.written]
        if missing:
            raise IncompletePublication(f"{self.job} {list(self.days)}: not publishing, tables not written: "
                                        f"{missing}")
        entries = [self._entries.get(key) or self._entry(key) for key in expected]
        published = self.lake._write_publication(self.spark, self.job, self.days, entries, self.run_id)
        for entry in entries:
            ledger.current().wrote(entry.key, entry.rows)
        return published

    def _wrote(self, key: str) -> None:
        self.written.append(key)
        self._entries.pop(key, None)

    def _before_write(self, key: str, days: Sequence[str]) -> None:
        if writer_of(key) != self.job:
            raise IncompletePublication(f"{self.job} may not write {key}: the registry says "
                                        f"{writer_of(key)} writes it")
        stray = sorted(set(days) - set(self.days))
        if stray:
            raise IncompletePublication(f"{self.job}: {key} {stray} is outside the run's days {list(self.days)}")
        if not self.written:
            self.lake.retract(self.spark, self.job, self.days)

    def _entry(self, key: str) -> PublishedTable:
        """The table's commit of this run (or, when the write committed nothing, the version it left
        standing) and its rows per day."""
        commit = self.lake._commit_of(self.spark, key, self.run_id)
        version, added = commit if commit is not None else (self.lake.version(self.spark, key), None)
        if added is None:
            per_day = self.lake._rows_per_day(self.spark, key, self.days)
        else:
            per_day = {day: added.get(day, 0) for day in self.days}
        return PublishedTable(key, version, per_day)


COMMIT_FILE = re.compile(r"^(\d{20})\.json$")
# table path -> (Delta version, every record as of it): see `Lake._publication_records`
_PUBLICATION_RECORDS: dict[str, tuple[int, tuple[dict, ...]]] = {}


def _commit_versions(table_uri: str) -> list[int]:
    """The versions of the commit files in the table's `_delta_log`, newest first ([] without a log)."""
    log = join_uri(table_uri, "_delta_log")
    try:
        files = list_files(log, ".json")
    except FileNotFoundError:
        return []
    return sorted((int(m.group(1)) for m in (COMMIT_FILE.match(posixpath.basename(f)) for f in files) if m),
                  reverse=True)


def _newest_commits(table_uri: str, depth: int) -> Iterator[tuple[int, list[dict]]]:
    """(version, actions) of the table's newest `depth` commits, newest first."""
    log = join_uri(table_uri, "_delta_log")
    for version in _commit_versions(table_uri)[:depth]:
        with open_input(join_uri(log, f"{version:020d}.json")) as commit:
            text = commit.read()  # whole: a pyarrow input file (a URI lake) has no line iteration
        yield version, [json.loads(line) for line in text.splitlines() if line.strip()]


def _rows_added_per_day(actions: Sequence[dict]) -> dict[str, int] | None:
    """ds -> records of the files a commit added (each `add` action's statistics, `numRecords`); None
    when an added file has no such statistic (a writer that collects none)."""
    rows: dict[str, int] = {}
    for action in actions:
        added = action.get("add")
        if not added:
            continue
        records = json.loads(added.get("stats") or "{}").get("numRecords")
        if records is None:
            return None
        day = (added.get("partitionValues") or {}).get(DS)
        rows[day] = rows.get(day, 0) + int(records)
    return rows


def _hadoop_fs(spark: SparkSession | None, uri: str):  # noqa: ANN202 - JVM objects through py4j
    """(Hadoop FileSystem of `uri`, a function making Hadoop Paths) from the session's JVM and configuration."""
    if spark is None:
        raise ValueError(f"{uri}: a folder that is not a plain path is reached through a Spark session's JVM")
    jvm = spark.sparkContext._jvm  # noqa: SLF001 - Hadoop's FileSystem is only reachable through the JVM
    conf = spark.sparkContext._jsc.hadoopConfiguration()  # noqa: SLF001
    path = jvm.org.apache.hadoop.fs.Path(uri)
    return path.getFileSystem(conf), jvm.org.apache.hadoop.fs.Path


def writer_of(key: str) -> str:
    """The job that publishes `key` (the registry's `writer`)."""
    writer = spec(key).writer
    if writer is None:
        raise IncompletePublication(f"{key} has no writer in the table registry; it is not published by a job")
    return writer


def days_between(first: str, last: str) -> list[str]:
    """Every day from `first` through `last` (YYYY-MM-DD), oldest first."""
    start, end = dt.date.fromisoformat(first), dt.date.fromisoformat(last)
    return [(start + dt.timedelta(days=n)).isoformat() for n in range((end - start).days + 1)]


def unpublished_message(key: str, days: Sequence[str]) -> str:
    """`<key> ds=D is not published: run `mutuals run <writer> --date D` first`, for one or more days."""
    job = writer_of(key)
    if len(days) == 1:
        return f"{key} ds={days[0]} is not published: run `mutuals run {job} --date {days[0]}` first"
    shown = ", ".join(f"ds={d}" for d in days[:LISTED_DAYS])
    more = f" ... ({len(days)} days in all)" if len(days) > LISTED_DAYS else ""
    return (f"{key} {shown}{more} are not published: run `mutuals run {job} --date D` for each of those "
            f"days first, oldest first (e.g. `mutuals run {job} --date {days[0]}`)")


def _publication_predicate(job: str, days: Iterable[str]) -> str:
    return f"{JOB} = '{job}' AND {_ds_predicate(days)}"


def _ds_predicate(ds_values: Iterable[str]) -> str:
    values = sorted(set(ds_values))
    if not values:
        raise ValueError("no partitions to write")
    if len(values) == 1:
        return f"{DS} = '{values[0]}'"
    return f"{DS} IN ({', '.join(repr(v) for v in values)})"
