"""Reading landing files line by line, keeping the source file and line number of every row.

Why not `spark.read.csv`: a quarantined row must name its file and line, and a file that cannot be read
at all (wrong header, not UTF-8) must fail the ingest naming the file. Spark's CSV/JSON readers drop both
facts. Files are read whole with `binaryFiles` (one task per file; landing producers split big days into
`part-*` files), decoded strictly as UTF-8 and split on LF with an optional CR, so LF and CRLF both work.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql.types import IntegerType, LongType, StringType, StructField, StructType

LINE_SCHEMA = StructType([
    StructField("source_file", StringType(), False),
    StructField("line_number", LongType(), False),
    StructField("raw_line", StringType()),
    StructField("field_count", IntegerType()),
    StructField("file_error", StringType()),
])

EXTENSIONS = {"csv": ".csv", "jsonl": ".jsonl"}


class LandingFileError(Exception):
    """A landing file that cannot be read at all; the message names every such file."""


def landing_dir(root: str, table: str, ds: str) -> str:
    return f"{root.rstrip('/')}/landing/{table}/ds={ds}"


def list_files(spark: SparkSession, folder: str, extension: str) -> list[str]:
    """Files in `folder` with the extension, through Hadoop's FileSystem so S3/HDFS lake roots work too."""
    jvm = spark.sparkContext._jvm
    path = jvm.org.apache.hadoop.fs.Path(folder)
    fs = path.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())
    if not fs.exists(path):
        return []
    names = [str(status.getPath().toString()) for status in fs.listStatus(path) if status.isFile()]
    return sorted(n for n in names if n.endswith(extension))


def _count_fields(line: str) -> int:
    if '"' not in line:
        return line.count(",") + 1
    return len(next(csv.reader([line])))


def split_file(path: str, content: bytes, header: str | None) -> Iterator[tuple]:
    """Yield (file, line_number, raw_line, field_count, file_error) for every non-blank data line.

    Line numbers are 1-based physical lines, so an operator can open the file at that line. The header
    (CSV only) is line 1 and is checked, not emitted. A file error is emitted as a single record.
    """
    try:
        text = bytes(content).decode("utf-8")
    except UnicodeDecodeError as exc:
        yield (path, 0, None, None, f"not valid UTF-8 (byte {exc.start}: {exc.reason})")
        return
    if text.startswith("\ufeff"):
        text = text[1:]
    lines = text.split("\n")
    first = 0
    if header is not None:
        found = lines[0].rstrip("\r") if lines else ""
        if found != header:
            yield (path, 1, found[:500], None, f"wrong header: expected {header!r}, found {found[:200]!r}")
            return
        first = 1
    for index in range(first, len(lines)):
        line = lines[index].rstrip("\r")
        if not line.strip():
            continue
        yield (path, index + 1, line, _count_fields(line) if header is not None else None, None)


def read_lines(spark: SparkSession, files: list[str], header: str | None) -> DataFrame:
    """All data lines of `files` as a DataFrame in LINE_SCHEMA (empty when there are no files)."""
    if not files:
        return spark.createDataFrame([], LINE_SCHEMA)
    rdd = spark.sparkContext.binaryFiles(",".join(files), minPartitions=len(files))
    return spark.createDataFrame(rdd.flatMap(lambda kv: split_file(kv[0], kv[1], header)), LINE_SCHEMA)


def raise_on_file_errors(lines: DataFrame) -> None:
    """Fail naming every unreadable file (and why) before anything is written."""
    errors = lines.where(lines.file_error.isNotNull()).select("source_file", "file_error").distinct().collect()
    if errors:
        detail = "; ".join(f"{row.source_file}: {row.file_error}" for row in sorted(errors))
        raise LandingFileError(f"{len(errors)} landing file(s) cannot be read: {detail}")
