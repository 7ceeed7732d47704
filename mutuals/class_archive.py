"""Setup step run by `make setup`: dump the JVM class-data-sharing archive every local driver JVM maps.

    python -m mutuals.class_archive

Why: each `mutuals run` is a new JVM that loads and verifies some twenty thousand classes of Spark, Delta,
Parquet and Jackson before its first row, a fixed 8-10 s of every job on this kind of machine. Java's
class data sharing maps them ready-made from an archive instead (`-XX:SharedArchiveFile`, used by
`mutuals.session.build_session`). The archive is dumped by a JVM that runs a small workload touching what
the jobs touch (Delta writes and reads, text and JSON and CSV parsing, shuffles, joins, windows, Arrow
Python UDFs, MLlib), with `-XX:ArchiveClassesAtExit`, on the same class path the jobs use. It is written
to a temporary name and renamed once the JVM has exited, so a crash leaves no half archive; a stale
archive (other jars, other Java) is ignored by the JVM, so it costs speed, never correctness.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pyarrow as pa
from pyspark import SparkContext
from pyspark.sql import SparkSession
from pyspark.sql import functions as F
from pyspark.sql.window import Window

from mutuals.session import build_session, class_archive

JVM_EXIT_TIMEOUT_S = 300


def _plus_one(batches):
    for batch in batches:
        yield pa.RecordBatch.from_arrays([pa.compute.add(batch.column(0), 1)], ["id"])


def exercise(spark: SparkSession, folder: Path) -> None:
    """Touch the kinds of plans the daily jobs run, at a few rows each."""
    from pyspark.ml.classification import LogisticRegression
    from pyspark.ml.feature import VectorAssembler

    rows = spark.range(2000).select(
        (F.col("id") % 97).alias("member_id"), (F.col("id") % 89).alias("candidate_id"),
        F.lit("2026-01-01").alias("ds"), (F.col("id") % 2).cast("double").alias("label"),
    )
    table = str(folder / "pairs")
    rows.write.format("delta").partitionBy("ds").save(table)
    (rows.write.format("delta").mode("overwrite").option("replaceWhere", "ds = '2026-01-01'").save(table))
    pairs = spark.read.format("delta").load(table).where(F.col("ds") == "2026-01-01")
    counts = pairs.groupBy("member_id").agg(F.count(F.lit(1)).alias("n"), F.max("candidate_id").alias("top"))
    joined = pairs.join(counts, "member_id").join(F.broadcast(counts.select("member_id")), "member_id")
    ranked = joined.withColumn("rank", F.row_number().over(Window.partitionBy("member_id").orderBy("candidate_id")))
    ranked.repartition(4, "member_id").sortWithinPartitions("member_id").mapInArrow(
        _plus_one, "id long").count()
    ranked.write.mode("overwrite").parquet(str(folder / "ranked"))
    text = folder / "lines.jsonl"
    text.write_text('{"a": "1", "b": "x"}\n{"a": "2", "b": "y"}\n')
    lines = spark.read.option("lineSep", "\n").text(str(text)).select(
        F.col("_metadata.file_path"), F.monotonically_increasing_id().alias("row_id"), "value")
    lines.select(F.from_json("value", "a STRING, b STRING").alias("j"),
                 F.from_csv(F.lit("1,2"), "x STRING, y STRING").alias("c")).collect()
    assembled = VectorAssembler(inputCols=["member_id", "candidate_id"], outputCol="features").transform(pairs)
    LogisticRegression(maxIter=2).fit(assembled).transform(assembled).count()
    spark.createDataFrame([(1, "a")], "k long, v string").toPandas()


def dump(target: Path) -> Path:
    """Run the workload in a JVM that writes its loaded classes to `target` when it exits."""
    partial = target.with_name(target.name + ".partial")
    partial.unlink(missing_ok=True)
    spark = build_session("mutuals-class-archive", master="local[2]", dump_classes_to=partial,
                          conf={"spark.ui.enabled": "false"})
    with tempfile.TemporaryDirectory(prefix="mutuals-class-archive-") as folder:
        exercise(spark, Path(folder))
    gateway_process = SparkContext._gateway.proc
    spark.stop()
    gateway_process.stdin.close()  # the JVM exits when its launcher's stdin closes, and dumps the archive then
    gateway_process.wait(timeout=JVM_EXIT_TIMEOUT_S)
    if not partial.exists():
        raise SystemExit(f"the JVM wrote no class archive at {partial}")
    os.replace(partial, target)
    return target


def main() -> None:
    target = class_archive()
    print(f"wrote {dump(target)} ({target.stat().st_size // 2**20} MiB)")


if __name__ == "__main__":
    main()
