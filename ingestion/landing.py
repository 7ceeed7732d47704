"""Reading landing files line by line, keeping the source file and line number of every row.

Why not `spark.read.csv`: a quarantined row must name its file and line, and a file that cannot be read
at all (wrong header, not UTF-8) must fail the ingest naming the file. Spark's CSV/JSON readers drop both
facts. Files are read whole with `binaryFiles` (one task per file; landing producers split big days into
`part-*` files), decoded strictly as UTF-8 and split on LF with an optional CR, so LF and CRLF both work.

Which files of a landing partition are read: every entry is either read or reported by name, never
dropped quietly (a skipped data file would still leave the counts balanced).

* Read: a visible file whose extension is the table's (`.csv` or `.jsonl`), compared case-insensitively,
  so `part-00001.CSV` is data.
* Skipped on purpose: hidden entries, whose name starts with `_` or `.`, unless they look like data (next
  point). These are readiness markers (`_SUCCESS`, `_committed_*`), checksums (`.part-0.csv.crc`), files
  still being written under a temporary name (`.part-0.csv.tmp`) and committer folders (`_temporary/`).
* Refused, failing the ingest with `UnexpectedLandingFile` naming each one: a visible file with any other
  extension (`notes.txt`, `part-1.json` in a CSV table, `part-0.csv.gz`); a visible sub-folder; a hidden
  file whose name ends with a landing extension (`_part-0.csv`, `.part-0.jsonl`); a name holding one of
  Hadoop's path-pattern characters (`{ } [ ] * ? \\ ,`). Hidden data-looking files are refused rather
  than read because Spark's file readers treat hidden names as absent (`binaryFiles` fails with "path
  does not exist", the DataFrame sources read them as empty), and because a data file under a hidden
  name is either a half-written upload or a producer's mistake: guessing is worse than asking the
  producer to rename it. Pattern characters are refused because `binaryFiles` would expand them as a
  glob or split its path list on a comma.

Whether a day has landed at all (`check_landed`): every table's folder for the day must exist (a folder with
only a `_SUCCESS` marker is that table's empty day), and at least one table must hold a data file.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql.types import IntegerType, LongType, StringType, StructField, StructType

from mutuals.errors import BadInput, MissingInput
from mutuals.tables import LANDING_FORMATS

LINE_SCHEMA = StructType([
    StructField("source_file", StringType(), False),
    StructField("line_number", LongType(), False),
    StructField("raw_line", StringType()),
    StructField("field_count", IntegerType()),
    StructField("file_error", StringType()),
])

EXTENSIONS = {"csv": ".csv", "jsonl": ".jsonl"}
HIDDEN_PREFIXES = ("_", ".")
HADOOP_PATTERN_CHARACTERS = frozenset("{}[]*?\\,")


class LandingFileError(BadInput):
    """A landing file that cannot be read at all; the message names every such file."""


class UnexpectedLandingFile(LandingFileError):
    """A landing partition holds entries that are neither data of the table nor a hidden marker."""


class MissingLandingFolder(MissingInput):
    """A table's landing partition folder for the day does not exist."""


class NoLandingData(MissingInput):
    """Not one landing data file for the day across all tables: the day has not landed."""


@dataclass(frozen=True)
class LandingEntry:
    """One entry of a landing partition as the Hadoop FileSystem lists it."""

    path: str
    name: str
    is_file: bool


@dataclass(frozen=True)
class LandingListing:
    """A landing partition split into the files to read, the hidden entries skipped on purpose, and the
    entries refused with the reason (see the module docstring for the rules)."""

    data: tuple[str, ...]
    skipped: tuple[str, ...]
    refused: tuple[tuple[str, str], ...]


def landing_dir(root: str, table: str, ds: str) -> str:
    return f"{root.rstrip('/')}/landing/{table}/ds={ds}"


def refusal(entry: LandingEntry, extension: str) -> str | None:
    """Why `entry` can be neither read nor skipped, or None when it is data or a hidden marker."""
    lowered = entry.name.lower()
    looks_like_data = entry.is_file and lowered.endswith(tuple(EXTENSIONS.values()))
    if entry.name.startswith(HIDDEN_PREFIXES):
        return "a hidden name (leading '_' or '.') on a data file; rename it" if looks_like_data else None
    if not entry.is_file:
        return "a sub-folder; landing data files sit directly in the partition"
    if not lowered.endswith(extension.lower()):
        return f"not a {extension} file"
    pattern = sorted(HADOOP_PATTERN_CHARACTERS & set(entry.name))
    if pattern:
        return f"the name holds Hadoop path-pattern characters {''.join(pattern)!r}; rename it"
    return None


def classify_entries(entries: list[LandingEntry], extension: str) -> LandingListing:
    """Split a partition's entries into data, skipped and refused; paths are sorted within each group."""
    data, skipped, refused = [], [], []
    for entry in sorted(entries, key=lambda e: e.path):
        why = refusal(entry, extension)
        if why is not None:
            refused.append((entry.path, why))
        elif entry.name.startswith(HIDDEN_PREFIXES):
            skipped.append(entry.path)
        else:
            data.append(entry.path)
    return LandingListing(tuple(data), tuple(skipped), tuple(refused))


def list_entries(spark: SparkSession, folder: str) -> list[LandingEntry]:
    """Every entry of `folder`, through Hadoop's FileSystem so S3/HDFS lake roots work too ([] if absent)."""
    jvm = spark.sparkContext._jvm
    path = jvm.org.apache.hadoop.fs.Path(folder)
    fs = path.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())
    if not fs.exists(path):
        return []
    return [LandingEntry(str(status.getPath().toString()), str(status.getPath().getName()), status.isFile())
            for status in fs.listStatus(path)]


def list_files(spark: SparkSession, folder: str, extension: str) -> list[str]:
    """The data files of a landing partition; raises `UnexpectedLandingFile` naming every entry that is
    neither data nor a hidden marker, so no file is left out of the counts without a word."""
    listing = classify_entries(list_entries(spark, folder), extension)
    if listing.refused:
        detail = "; ".join(f"{path}: {why}" for path, why in listing.refused)
        raise UnexpectedLandingFile(
            f"{len(listing.refused)} unexpected entr{'y' if len(listing.refused) == 1 else 'ies'} in {folder} "
            f"(expected {extension} data files and hidden markers such as _SUCCESS): {detail}"
        )
    return list(listing.data)


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
    folders = {table: landing_dir(root, table, ds) for table in LANDING_FORMATS}
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
