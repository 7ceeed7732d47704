"""Writing one landing table's day: good rows, injected bad rows, LF or CRLF, split into part files.

Why the columns arrive as token lists: formatting tens of millions of rows is the slow part, so each column
is rendered once (vectorised where numpy can) and lines are joined in one pass. Bad rows are inserted at
random places among the good rows and their physical line numbers are recorded (1-based, header = line 1
in CSV, as the ingest numbers them). Files are written to a hidden temporary name and renamed, so a reader
never sees half a file. Every table's folder is written every day (a day with no rows still gets its
header-only part file) and ends with a `_SUCCESS` marker once all its parts are in place.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from synthetic.badrows import BAD_KINDS, Tokens

EXTENSIONS = {"csv": "csv", "jsonl": "jsonl"}
SUCCESS_MARKER = "_SUCCESS"  # written last in every table's day folder, even a day with no rows


@dataclass
class TableDay:
    """What was written for one table and day."""

    files: list[str] = field(default_factory=list)
    rows: int = 0  # data lines written (good + bad)
    good_rows: int = 0
    bad: dict[str, int] = field(default_factory=dict)  # "reason:field" -> count
    bad_lines: list[tuple[str, int, str]] = field(default_factory=list)  # (file, line, "reason:field")
    crlf: bool = False
    extra: dict[str, int] = field(default_factory=dict)  # e.g. duplicate events, late events

    def summary(self) -> dict:
        return {"rows": self.rows, "good_rows": self.good_rows, "bad_rows": sum(self.bad.values()),
                "bad": dict(sorted(self.bad.items())), "crlf": self.crlf, "files": len(self.files), **self.extra}


def csv_line(names: list[str], tokens: Tokens) -> str:
    return ",".join("" if tokens.get(name) is None else tokens[name] for name in names)


def json_line(names: list[str], tokens: Tokens) -> str:
    return "{" + ",".join(f'"{name}":{tokens[name]}' for name in names if tokens.get(name) is not None) + "}"


def good_lines(fmt: str, names: list[str], columns: dict[str, list[str]]) -> list[str]:
    if fmt == "csv":
        return [",".join(row) for row in zip(*(columns[n] for n in names), strict=True)]
    template = "{{" + ",".join(f'"{n}":{{}}' for n in names) + "}}"
    return [template.format(*row) for row in zip(*(columns[n] for n in names), strict=True)]


RENDER_CHUNK = 100_000  # rows rendered at a time: bounds memory at 1M+ members (and fixes the draw order)


def write_table_day(root: Path, table: str, ds: str, day_start: int, fmt: str, names: list[str], rows: int,
                    render: Callable[[int, int], dict[str, list[str]]], rng: np.random.Generator,
                    bad_share: float, crlf: bool, rows_per_file: int) -> TableDay:
    """Render rows [0, rows) chunk by chunk, corrupt a share of them, write `part-NNNNN.<ext>` files."""
    report = TableDay(crlf=crlf, good_rows=rows)
    kinds = BAD_KINDS[table]
    first_line = 2 if fmt == "csv" else 1
    with _Parts(root / "landing" / table / f"ds={ds}", fmt, names, crlf, rows_per_file) as parts:
        for low in range(0, rows, RENDER_CHUNK):
            columns = render(low, min(low + RENDER_CHUNK, rows))
            lines = good_lines(fmt, names, columns)
            bad_count = int(rng.binomial(len(lines), bad_share)) if bad_share > 0 else 0
            sources = np.sort(rng.integers(0, len(lines), bad_count))
            chosen = rng.integers(0, len(kinds), bad_count).tolist()
            slots = np.sort(rng.integers(0, len(lines) + 1, bad_count)).tolist()
            bad_lines = []
            for source, which in zip(sources.tolist(), chosen, strict=True):
                tokens = kinds[which].corrupt({n: columns[n][source] for n in names}, fmt, day_start, rng)
                bad_lines.append(csv_line(names, tokens) if fmt == "csv" else json_line(names, tokens))
            merged, bad_index = _insert(lines, bad_lines, slots)
            offset = parts.write(merged)
            for index, which in zip(bad_index, chosen, strict=True):
                label = kinds[which].label
                report.bad[label] = report.bad.get(label, 0) + 1
                part, line = divmod(offset + index, rows_per_file)
                report.bad_lines.append((parts.name(part), line + first_line, label))
    report.files = parts.files
    report.rows = parts.written
    return report


def _insert(lines: list[str], extra: list[str], slots: list[int]) -> tuple[list[str], list[int]]:
    """`lines` with `extra[i]` inserted before original line `slots[i]` (slots sorted); new indices of extras."""
    merged: list[str] = []
    where: list[int] = []
    previous = 0
    for slot, line in zip(slots, extra, strict=True):
        merged.extend(lines[previous:slot])
        where.append(len(merged))
        merged.append(line)
        previous = slot
    merged.extend(lines[previous:])
    return merged, where


class _Parts:
    """Sequential part files of at most `rows_per_file` data lines, each written to a temporary name and
    renamed when complete. Stale parts of an earlier run in the same folder are removed first."""

    def __init__(self, folder: Path, fmt: str, names: list[str], crlf: bool, rows_per_file: int) -> None:
        self.folder, self.extension, self.rows_per_file = folder, EXTENSIONS[fmt], rows_per_file
        self._prefix = str(folder / "part-")
        self.end = "\r\n" if crlf else "\n"
        self.header = ",".join(names) + self.end if fmt == "csv" else ""
        self.files: list[str] = []
        self.written = 0
        self._out = None
        self._in_part = 0

    def name(self, part: int) -> str:
        """The part file's path (a plain string join: it is asked once per bad line)."""
        return f"{self._prefix}{part:05d}.{self.extension}"

    def __enter__(self) -> _Parts:
        self.folder.mkdir(parents=True, exist_ok=True)
        (self.folder / SUCCESS_MARKER).unlink(missing_ok=True)
        for stale in self.folder.glob(f"part-*.{self.extension}"):
            stale.unlink()
        self._open()
        return self

    def _open(self) -> None:
        path = Path(self.name(len(self.files)))
        self._temporary = path.with_name(f".{path.name}.tmp")
        self._out = open(self._temporary, "w", encoding="utf-8", newline="")  # noqa: SIM115
        self._out.write(self.header)
        self.files.append(str(path))
        self._in_part = 0

    def _close(self) -> None:
        self._out.close()
        os.replace(self._temporary, self.files[-1])

    def write(self, lines: list[str]) -> int:
        """Append lines; returns the overall index of the first one."""
        first = self.written
        position = 0
        while position < len(lines):
            if self._in_part == self.rows_per_file:
                self._close()
                self._open()
            take = min(len(lines) - position, self.rows_per_file - self._in_part)
            self._out.write(self.end.join(lines[position:position + take]) + self.end)
            position += take
            self._in_part += take
            self.written += take
        return first

    def __exit__(self, error_type, error, traceback) -> None:
        if error_type is None:
            self._close()
            (self.folder / SUCCESS_MARKER).write_bytes(b"")
        else:  # never leave a half-written part under its real name
            self._out.close()
            self._temporary.unlink(missing_ok=True)
