"""Writing one landing table's day: good rows, injected bad rows, LF or CRLF, split into part files.

Why the columns arrive as token lists: formatting tens of millions of rows is the slow part, so each column
is rendered once (vectorised where numpy can) and lines are joined in one pass. Bad rows are inserted at
random places among the good rows and their physical line numbers are recorded (1-based, header = line 1
in CSV, as the ingest numbers them). Files are written to a hidden temporary name and renamed, so a reader
never sees half a file.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from spark_jobs.synthetic.badrows import BAD_KINDS, Tokens

EXTENSIONS = {"csv": "csv", "jsonl": "jsonl"}


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


def write_table_day(root: Path, table: str, ds: str, day_start: int, fmt: str, names: list[str],
                    columns: dict[str, list[str]], rng: np.random.Generator, bad_share: float, crlf: bool,
                    rows_per_file: int) -> TableDay:
    """Render, corrupt a share of rows, and write `landing/<table>/ds=<ds>/part-NNNNN.<ext>`."""
    lines = good_lines(fmt, names, columns)
    report = TableDay(crlf=crlf, good_rows=len(lines))
    kinds = BAD_KINDS[table]
    bad_count = int(rng.binomial(len(lines), bad_share)) if lines and bad_share > 0 else 0
    sources = np.sort(rng.integers(0, max(len(lines), 1), bad_count))
    chosen = rng.integers(0, len(kinds), bad_count)
    slots = np.sort(rng.integers(0, len(lines) + 1, bad_count))
    bad_lines: list[str] = []
    for source, which in zip(sources.tolist(), chosen.tolist(), strict=True):
        kind = kinds[which]
        tokens = kind.corrupt({n: columns[n][source] for n in names}, fmt, day_start, rng)
        bad_lines.append(csv_line(names, tokens) if fmt == "csv" else json_line(names, tokens))
        report.bad[kind.label] = report.bad.get(kind.label, 0) + 1
    merged, bad_index = _insert(lines, bad_lines, slots.tolist())
    labels = [kinds[w].label for w in chosen.tolist()]
    report.rows = len(merged)
    report.files = _write_parts(root, table, ds, fmt, names, merged, crlf, rows_per_file)
    first_line = 2 if fmt == "csv" else 1
    for index, label in zip(bad_index, labels, strict=True):
        part, offset = divmod(index, rows_per_file)
        report.bad_lines.append((report.files[part], offset + first_line, label))
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


def _write_parts(root: Path, table: str, ds: str, fmt: str, names: list[str], lines: list[str], crlf: bool,
                 rows_per_file: int) -> list[str]:
    folder = root / "landing" / table / f"ds={ds}"
    folder.mkdir(parents=True, exist_ok=True)
    extension = EXTENSIONS[fmt]
    for stale in folder.glob(f"part-*.{extension}"):
        stale.unlink()
    end = "\r\n" if crlf else "\n"
    header = [",".join(names)] if fmt == "csv" else []
    written = []
    chunks = range(0, max(len(lines), 1), rows_per_file)
    for number, offset in enumerate(chunks):
        path = folder / f"part-{number:05d}.{extension}"
        body = header + lines[offset: offset + rows_per_file]
        temporary = folder / f".{path.name}.tmp"
        with open(temporary, "w", encoding="utf-8", newline="") as out:
            out.write(end.join(body) + end if body else "")
        os.replace(temporary, path)
        written.append(str(path))
    return written
