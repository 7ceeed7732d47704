"""Reading landing files line by line, keeping the source file and line number of every row.

Why not `spark.read.csv`: a quarantined row must name its file and line, and a file that cannot be read
at all (wrong header, not UTF-8) must fail the ingest naming the file. Spark's CSV/JSON readers drop both
facts. Files are read as text in parallel splits (a big file is read by many tasks, all on the JVM), split
on LF with an optional CR, so LF and CRLF both work, and checked as strict UTF-8. Line numbers come from
one small count per split, taken in a first pass over the text (`read_lines`).

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
  than read because Spark's file readers treat hidden names as absent (the DataFrame sources read them
  as empty), and because a data file under a hidden
  name is either a half-written upload or a producer's mistake: guessing is worse than asking the
  producer to rename it. Pattern characters are refused because Spark's file
  sources would expand them as a glob.

Whether a day has landed at all (`check_landed`): every table's folder for the day must exist (a folder with
only a `_SUCCESS` marker is that table's empty day), and at least one table must hold a data file.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import unquote

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import IntegerType, LongType, StringType, StructField, StructType

from mutuals.errors import BadInput, MissingInput
from mutuals.tables import LANDING_FORMATS

LINE_SCHEMA = StructType([
    StructField("source_file", StringType(), False),
    StructField("line_number", LongType(), False),
    StructField("raw_line", StringType()),
    StructField("field_count", IntegerType()),
])

EXTENSIONS = {"csv": ".csv", "jsonl": ".jsonl"}
HIDDEN_PREFIXES = ("_", ".")
HADOOP_PATTERN_CHARACTERS = frozenset("{}[]*?\\,")


class LandingFileError(BadInput):
    """A landing file that cannot be read at all; the message names every such file."""


class LandingFilesChanged(LandingFileError):
    """The second pass over a table's landing files found other lines than the first pass counted."""


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


QUOTED_FIELD = r'(^|,)"(?:[^"]|"")*("|$)'
# A line that holds nothing but whitespace is not a row. Java's `\s` and `$` (which also matches before
# one final line terminator); `is_blank` is its Python twin, for the first lines the driver looks at.
BLANK_LINE = r"^\s*$"
BLANK_AFTER_BYTE_ORDER_MARK = r"^\ufeff\s*$"
BLANK_LINE_STARTS = (" ", "\t", "\x0b", "\f", "\r", "\u0085", "\u2028", "\u2029")
_BLANK_LINE_PY = re.compile(r"[ \t\n\x0b\f\r]*(?:\r\n|[\n\r\u0085\u2028\u2029])?")


def is_blank(line: str) -> bool:
    """What `blank_line` says of `line`, in Python."""
    return _BLANK_LINE_PY.fullmatch(line) is not None


def blank_line(line: Column) -> Column:
    """`line` holds nothing but whitespace. The regular expression runs only on a line that is empty or
    starts with a character it could match: it decodes the whole line to a Java string, and almost every
    line starts with data."""
    could_be_blank = F.lit(False)
    for start in BLANK_LINE_STARTS:
        could_be_blank = could_be_blank | line.startswith(start)
    return (line == "") | (could_be_blank & line.rlike(BLANK_LINE))


@dataclass(frozen=True)
class FileBlock:
    """What one pass over a file split says about it: enough to number its lines and check its file."""

    file_uri: str
    block_start: int
    lines: int
    blank_lines: int
    first_row_id: int
    first_line: str | None
    first_invalid_row_id: int | None


@dataclass(frozen=True)
class LandingLines:
    """The data lines of a table's landing files (LINE_SCHEMA), and how many there are by the first pass's
    count: the routing checks its own count against it (`require_lines_unchanged`)."""

    lines: DataFrame
    data_lines: int


def field_count(line: Column) -> Column:
    """CSV fields on `line`, the way Python's csv module counts them: a field that starts with a quote runs
    to its closing quote ("" inside is a quote) or to the end of the line, and its commas do not count."""
    unquoted = F.when(line.contains('"'), F.regexp_replace(line, QUOTED_FIELD, "$1")).otherwise(line)
    return F.size(F.split(unquoted, ",", -1))


def scan_splits(spark: SparkSession, files: list[str]) -> DataFrame:
    """Every physical line of `files` (split on LF only) with its file, split and scan-order row id.

    Spark's text source splits big files across tasks; `monotonically_increasing_id` is contiguous and
    ordered within a split, so a line's number is the lines of the file's earlier splits plus its place in
    its own split. Both passes of `read_lines` run this one DataFrame, whose file listing and split plan
    are fixed when it is built, so the row ids of the second pass are the ones the split counts were taken
    from (Spark recomputes a lost partition the same way). Keeping the scan in memory between the passes
    instead cost more than reading the files again, and a file rewritten in between is caught by
    `require_lines_unchanged`.
    """
    scan = spark.read.option("lineSep", "\n").text(files)
    return scan.select(
        F.col("_metadata.file_path").alias("file_uri"),
        F.col("_metadata.file_block_start").alias("block_start"),
        F.monotonically_increasing_id().alias("row_id"),
        F.col("value").alias("line"),
    )


def file_blocks(scanned: DataFrame) -> list[FileBlock]:
    """One small row per file split: its line and blank-line counts, first row id, first line and first
    non-UTF-8 row."""
    rows = scanned.groupBy("file_uri", "block_start").agg(
        F.count(F.lit(1)).alias("lines"),
        F.sum(blank_line(F.col("line")).cast("long")).alias("blank_lines"),
        F.min("row_id").alias("first_row_id"),
        F.min_by("line", "row_id").alias("first_line"),
        F.min(F.when(~F.is_valid_utf8("line"), F.col("row_id"))).alias("first_invalid_row_id"),
    ).collect()
    return [FileBlock(r.file_uri, r.block_start, r.lines, r.blank_lines, r.first_row_id, r.first_line,
                      r.first_invalid_row_id) for r in rows]


def data_line_count(blocks: list[FileBlock], header: str | None) -> int:
    """The lines `read_lines` keeps, from the first pass's counts: all lines but the blank ones, the CSV
    header line, and a JSON Lines file's first line that is blank once its byte-order mark is dropped."""
    kept = sum(block.lines - block.blank_lines for block in blocks)
    for block in blocks:
        first = block.first_line or ""
        if block.block_start != 0 or not block.lines or is_blank(first):
            continue
        if header is not None or is_blank(first.removeprefix("\ufeff")):
            kept -= 1
    return kept


def require_lines_unchanged(files: list[str], counted: int, read: int) -> None:
    """The lines routed are the lines the first pass counted; otherwise a file changed under the read and
    its line numbers cannot be trusted."""
    if counted != read:
        raise LandingFilesChanged(
            f"the landing files changed while they were read: the first pass counted {counted} data lines, "
            f"the second read {read}; re-run once the producer has finished writing ({', '.join(files)})"
        )


def line_offsets(blocks: list[FileBlock]) -> dict[tuple[str, int], int]:
    """(file, split start) -> lines in the file's earlier splits."""
    offsets: dict[tuple[str, int], int] = {}
    before: dict[str, int] = {}
    for block in sorted(blocks, key=lambda b: (b.file_uri, b.block_start)):
        offsets[(block.file_uri, block.block_start)] = before.get(block.file_uri, 0)
        before[block.file_uri] = before.get(block.file_uri, 0) + block.lines
    return offsets


def listed_names(file_uris: set[str], files: list[str]) -> dict[str, str]:
    """Scan URI -> the path as the landing listing spells it (the scan gives `%20` for a space)."""
    by_uri = {unquote(f): f for f in files}
    return {uri: by_uri.get(unquote(uri), unquote(uri)) for uri in file_uris}


def file_errors(blocks: list[FileBlock], offsets: dict[tuple[str, int], int], names: dict[str, str],
                files: list[str], header: str | None) -> list[str]:
    """Why each unreadable file cannot be read: not UTF-8 (naming the first bad line), a wrong or missing
    CSV header. Sorted by file."""
    errors: dict[str, str] = {}
    first_lines = {names[b.file_uri]: b.first_line for b in blocks if b.block_start == 0}
    for block in sorted(blocks, key=lambda b: (b.file_uri, b.block_start)):
        name = names[block.file_uri]
        if block.first_invalid_row_id is not None and name not in errors:
            line = offsets[(block.file_uri, block.block_start)] + block.first_invalid_row_id - block.first_row_id + 1
            errors[name] = f"not valid UTF-8 (line {line})"
    if header is not None:
        for name in files:
            found = (first_lines.get(name) or "").removeprefix("\ufeff").rstrip("\r")
            if name not in errors and found != header:
                errors[name] = f"wrong header: expected {header!r}, found {found[:200]!r}"
    return [f"{name}: {why}" for name, why in sorted(errors.items())]


def read_lines(spark: SparkSession, files: list[str], header: str | None) -> LandingLines:
    """All non-blank data lines of `files` in LINE_SCHEMA, with their count by the first pass.

    Two passes over the text, both on the JVM in parallel splits (no per-line Python): the first counts
    each split's lines and checks the files, the second numbers the lines from those counts. Fails with
    `LandingFileError` naming every unreadable file before anything is written. Line numbers are 1-based
    physical lines, so an operator can open the file at that line; the CSV header is line 1 and is
    checked, not emitted; a trailing CR and a leading byte-order mark are dropped.
    """
    if not files:
        return LandingLines(spark.createDataFrame([], LINE_SCHEMA), 0)
    scanned = scan_splits(spark, files)
    blocks = file_blocks(scanned)
    offsets = line_offsets(blocks)
    names = listed_names({b.file_uri for b in blocks}, files)
    errors = file_errors(blocks, offsets, names, files, header)
    if errors:
        raise LandingFileError(f"{len(errors)} landing file(s) cannot be read: {'; '.join(errors)}")
    split_rows = [(b.file_uri, b.block_start, b.first_row_id, offsets[(b.file_uri, b.block_start)],
                   names[b.file_uri]) for b in blocks]
    splits = spark.createDataFrame(split_rows, "file_uri string, block_start long, first_row_id long, "
                                               "lines_before long, source_file string")
    numbered = scanned.join(F.broadcast(splits), ["file_uri", "block_start"]).select(
        "source_file",
        (F.col("lines_before") + F.col("row_id") - F.col("first_row_id") + 1).alias("line_number"),
        "line",
    )
    # The filters read the physical line, and the CR and byte-order mark come off after them: an
    # expression that a filter and a projection both use is evaluated twice a row.
    line, is_first = F.col("line"), F.col("line_number") == 1
    is_blank_first = is_first & line.startswith("\ufeff") & line.rlike(BLANK_AFTER_BYTE_ORDER_MARK)
    kept = numbered.where(~blank_line(line) & ~is_blank_first)
    if header is not None:
        kept = kept.where(~is_first)
    # The CR comes off by byte offset (a character substring counts the characters of the whole line;
    # it was a fifth of the events read's CPU with CRLF files), then line 1's byte-order mark.
    cut_cr = F.expr("CAST(substring(CAST(line AS BINARY), 1, octet_length(line) - 1) AS STRING)")
    without_cr = F.when(line.endswith("\r"), cut_cr).otherwise(line)
    text = kept.select("source_file", "line_number", without_cr.alias("line")).select(
        "source_file", "line_number",
        F.when(is_first, F.regexp_replace(line, "^\ufeff", "")).otherwise(line).alias("raw_line"),
    )
    counts = field_count(F.col("raw_line")) if header is not None else F.lit(None)
    lines = text.select("source_file", "line_number", "raw_line", counts.cast("int").alias("field_count"))
    return LandingLines(lines, data_line_count(blocks, header))


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
