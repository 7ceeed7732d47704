"""The landing reader: line numbers across parallel splits, CSV field counts, unreadable files named."""

from __future__ import annotations

import csv
import random

import pytest
from pyspark.sql import functions as F

from ingestion.landing import (
    LandingFileError,
    LandingFilesChanged,
    field_count,
    read_lines,
    require_lines_unchanged,
)
from mutuals.session import sql_conf

HEADER = "member_id,industry,region,joined_on"


def small_splits(spark, split_bytes: int):
    """Make Spark cut every landing file into many splits, as it does with big files on a cluster."""
    return sql_conf(spark, {"spark.sql.files.maxPartitionBytes": str(split_bytes),
                            "spark.sql.files.openCostInBytes": "0"})


def numbered_file(path, lines: int, seed: int) -> dict[int, str]:
    """A CSV whose rows carry their own physical line number, with blank lines and CRLF mixed in."""
    rng = random.Random(seed)
    physical = [HEADER]
    expected = {}
    while len(physical) < lines:
        number = len(physical) + 1
        if rng.random() < 0.05:
            physical.append("" if rng.random() < 0.5 else "   ")
            continue
        row = f"{number},{'x' * rng.randrange(1, 60)},eu,2026-01-02"
        physical.append(row + ("\r" if rng.random() < 0.3 else ""))
        expected[number] = row
    path.write_bytes(("\n".join(physical) + "\n").encode())
    return expected


def test_line_numbers_survive_splitting_a_file_across_many_tasks(spark, tmp_path):
    files = {tmp_path / "part-00000.csv": numbered_file(tmp_path / "part-00000.csv", 3000, 1),
             tmp_path / "part-00001.csv": numbered_file(tmp_path / "part-00001.csv", 1700, 2)}
    uris = [f"file:{p}" for p in sorted(files)]
    with small_splits(spark, 4096):
        assert spark.read.text(uris).rdd.getNumPartitions() >= 20
        landing = read_lines(spark, uris, HEADER)
        found = landing.lines.collect()
    by_file = {}
    for row in found:
        by_file.setdefault(row.source_file, {})[row.line_number] = row.raw_line
    assert by_file == {f"file:{path}": expected for path, expected in files.items()}
    assert {row.field_count for row in found} == {4}
    assert landing.data_lines == len(found) == sum(len(expected) for expected in files.values())


def test_a_non_utf8_line_is_named_by_file_and_line_even_in_a_later_split(spark, tmp_path):
    path = tmp_path / "part-00000.csv"
    body = [HEADER.encode()] + [f"{n},tech,eu,2026-01-02".encode() for n in range(2, 2001)]
    body[1499] = b"1500,t\xffch,eu,2026-01-02"
    path.write_bytes(b"\n".join(body) + b"\n")
    with small_splits(spark, 2048), pytest.raises(
            LandingFileError, match=r"part-00000\.csv: not valid UTF-8 \(line 1500\)"):
        read_lines(spark, [f"file:{path}"], HEADER)


def test_an_empty_csv_file_has_a_wrong_header_and_a_byte_order_mark_is_dropped(spark, tmp_path):
    (tmp_path / "part-00000.csv").write_bytes(b"")
    (tmp_path / "part-00001.csv").write_bytes(("\ufeff" + HEADER + "\r\n1,tech,eu,2026-01-02\r\n").encode())
    with pytest.raises(LandingFileError, match=r"1 landing file\(s\) cannot be read: .*part-00000\.csv: wrong "
                                               r"header: expected .*, found ''$"):
        read_lines(spark, [f"file:{tmp_path}/part-00000.csv", f"file:{tmp_path}/part-00001.csv"], HEADER)
    landing = read_lines(spark, [f"file:{tmp_path}/part-00001.csv"], HEADER)
    assert [(r.line_number, r.raw_line, r.field_count) for r in landing.lines.collect()] == [
        (2, "1,tech,eu,2026-01-02", 4)]
    assert landing.data_lines == 1


def test_jsonl_keeps_line_one_and_a_leading_byte_order_mark_is_dropped(spark, tmp_path):
    path = tmp_path / "part-00000.jsonl"
    path.write_bytes('\ufeff{"a": 1}\n\n{"a": 2}'.encode())
    landing = read_lines(spark, [f"file:{path}"], None)
    assert [(r.line_number, r.raw_line, r.field_count) for r in landing.lines.orderBy("line_number").collect()] == [
        (1, '{"a": 1}', None), (3, '{"a": 2}', None)]
    assert landing.data_lines == 2


@pytest.mark.parametrize("body, kept", [
    ("\ufeff  \n{\"a\": 1}\n", [(2, '{"a": 1}')]),                 # only a BOM and spaces on line 1
    (" \t\r\n\n{\"a\": 1}\r\n \u2028\n", [(3, '{"a": 1}')]),          # whitespace, CRLF, a final separator
    ("\ufeff{\"a\": 1}\n\ufeff\n", [(1, '{"a": 1}'), (2, "\ufeff")]),      # a BOM later is text, not blank
    ("", []),
])
def test_the_first_pass_counts_exactly_the_lines_the_second_keeps(spark, tmp_path, body, kept):
    path = tmp_path / "part-00000.jsonl"
    path.write_bytes(body.encode())
    landing = read_lines(spark, [f"file:{path}"], None)
    found = [(r.line_number, r.raw_line) for r in landing.lines.orderBy("line_number").collect()]
    assert found == kept
    assert landing.data_lines == len(kept)


def test_a_file_rewritten_between_the_two_passes_is_caught(spark, tmp_path):
    path = tmp_path / "part-00000.csv"
    path.write_text(HEADER + "\n" + "".join(f"{n},tech,eu,2026-01-02\n" for n in range(2, 5)))
    landing = read_lines(spark, [f"file:{path}"], HEADER)
    assert landing.data_lines == 3
    path.write_text(HEADER + "\n" + "".join(f"{n},tech,eu,2026-01-02\n" for n in range(2, 12)))
    read = landing.lines.count()
    assert read != 3
    with pytest.raises(LandingFilesChanged, match=r"first pass counted 3 data lines, the second read \d+"):
        require_lines_unchanged([f"file:{path}"], landing.data_lines, read)


CSV_LINES = ['a,b,c', 'a,"b,c",d', '"a","b"', 'a,"b"c,d', 'a,b"c,d"', 'a,"b,c', '"x ""y"", z",2', ',,',
             '', '"",""', 'a,"b""c,d",e', '"a,b', 'plain']


def test_csv_field_counts_match_the_python_csv_module(spark):
    frame = spark.createDataFrame([(line,) for line in CSV_LINES], "line string")
    found = dict(frame.select("line", field_count(F.col("line")).alias("n")).collect())
    assert found == {line: len(next(csv.reader([line]), [""])) or 1 for line in CSV_LINES}
