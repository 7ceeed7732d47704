"""Edge-list CSV files (`src,dst` longs): the input of `mutuals fof`, read on the driver into numpy arrays.

Why pyarrow on the driver: the file is read once, fast, straight into the arrays the CSR builder needs;
sending it through the JVM only to collect it back would double the end-to-end time on the graphs `fof`
is for. A malformed line is reported with file, line number and field, found by a line-tracking re-read
that only runs when the fast read fails. Nothing here needs Spark, so a bad file fails in well under a
second.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

from mutuals.errors import BadInput, MissingInput

HEADER = ("src", "dst")
LONG_MIN, LONG_MAX = -(2**63), 2**63 - 1
LONG_TEXT = re.compile(r"\s*[+-]?\d+\s*")


class EdgeListError(ValueError):
    """Base of the edge-file errors: each names the file (and line and field when there is one)."""


class EdgeFileMissing(EdgeListError, MissingInput):
    """The edge file does not exist."""


class EdgeFileUnreadable(EdgeListError, BadInput):
    """The edge file is a folder, cannot be opened, or is not UTF-8 text."""


class EdgeHeaderInvalid(EdgeListError, BadInput):
    """The first line is not `src,dst`."""


class EdgeRowMalformed(EdgeListError, BadInput):
    """A data line has the wrong number of fields or a field that is not a long."""


@dataclass(frozen=True)
class EdgeList:
    src: np.ndarray
    dst: np.ndarray
    skipped: int
    first_skip: str | None


def check_edge_file(path: Path) -> None:
    """The file is there and is not a folder: checked before the output target, the whole read after."""
    if not path.exists():
        raise EdgeFileMissing(f"{path}: edge file does not exist")
    if path.is_dir():
        raise EdgeFileUnreadable(f"{path}: is a folder, not an edge file")


def _check_header(path: Path) -> None:
    check_edge_file(path)
    try:
        with path.open("rb") as handle:
            first = handle.readline()
        header = first.decode("utf-8-sig").rstrip("\r\n")
    except (OSError, UnicodeDecodeError) as err:
        raise EdgeFileUnreadable(f"{path}: cannot read the edge file: {err}") from None
    found = tuple(name.strip() for name in header.split(","))
    if found != HEADER:
        raise EdgeHeaderInvalid(f"{path}: header must be {','.join(HEADER)!r}, found {header!r}")


def _parse_long(text: str) -> int | None:
    if not LONG_TEXT.fullmatch(text):
        return None
    value = int(text)
    return value if LONG_MIN <= value <= LONG_MAX else None


def _row_problem(path: Path, line: int, row: list[str]) -> str | None:
    if len(row) != len(HEADER):
        return f"{path} line {line}: expected {len(HEADER)} fields ({','.join(HEADER)}), found {len(row)}"
    for name, text in zip(HEADER, row, strict=True):
        if _parse_long(text) is None:
            return f"{path} line {line}, field {name}: {text!r} is not a long"
    return None


def _read_tracking_lines(path: Path, skip_bad_rows: bool) -> EdgeList:
    """Slow, exact re-read: csv.reader knows the line number of every record (CRLF or LF)."""
    src: list[int] = []
    dst: list[int] = []
    skipped, first_skip = 0, None
    try:
        with path.open("r", encoding="utf-8-sig", newline="") as handle:
            reader = csv.reader(handle)
            next(reader, None)
            for row in reader:
                if not row:
                    continue  # blank line, as the fast reader does
                problem = _row_problem(path, reader.line_num, row)
                if problem is None:
                    src.append(int(row[0]))
                    dst.append(int(row[1]))
                    continue
                if not skip_bad_rows:
                    raise EdgeRowMalformed(problem)
                skipped += 1
                first_skip = first_skip or problem
    except UnicodeDecodeError as err:
        raise EdgeFileUnreadable(f"{path}: not UTF-8 text: {err}") from None
    return EdgeList(np.array(src, dtype=np.int64), np.array(dst, dtype=np.int64), skipped, first_skip)


def read_edge_csv(path: Path, skip_bad_rows: bool = False) -> EdgeList:
    """Parse `src,dst` longs; fast with pyarrow, exact line numbers only when something is wrong."""
    _check_header(path)
    convert = pacsv.ConvertOptions(column_types={name: pa.int64() for name in HEADER}, null_values=[],
                                   strings_can_be_null=False)
    read = pacsv.ReadOptions(skip_rows=1, column_names=list(HEADER), block_size=16 << 20)
    try:
        table = pacsv.read_csv(path, read_options=read, convert_options=convert)
    except pa.ArrowInvalid:
        return _read_tracking_lines(path, skip_bad_rows)
    return EdgeList(table["src"].to_numpy(), table["dst"].to_numpy(), 0, None)


def member_count(edges: EdgeList) -> int:
    """Distinct ids in the file: an upper bound on the candidates any member can have."""
    return int(np.unique(np.concatenate([edges.src, edges.dst])).size)
