"""Which files of a landing partition ingest reads, skips or refuses, by name (real files, real Spark)."""

from __future__ import annotations

from pathlib import Path

import pytest
from pyspark.sql import Row
from pyspark.testing import assertDataFrameEqual

from ingestion.landing import LandingEntry, LandingFileError, UnexpectedLandingFile, classify_entries
from ingestion.routing import ingest_table
from mutuals.errors import BadInput
from mutuals.lake import Lake
from tests.landing_files import HEADERS

DS = "2026-01-02"
FOLDER = "file:/lake/landing/members/ds=2026-01-02"


def members_partition(root: Path, files: dict[str, str]) -> Path:
    """Write `files` (name -> body) into the members landing partition of DS."""
    folder = root / "landing" / "members" / f"ds={DS}"
    folder.mkdir(parents=True)
    for name, body in files.items():
        (folder / name).write_text(body, encoding="utf-8")
    return folder


def member_file(*lines: str) -> str:
    return "\n".join([HEADERS["members"], *lines]) + "\n"


def entry(name: str, is_file: bool = True) -> LandingEntry:
    return LandingEntry(f"{FOLDER}/{name}", name, is_file)


def test_landing_file_errors_are_bad_input():
    assert issubclass(LandingFileError, BadInput)
    assert issubclass(UnexpectedLandingFile, LandingFileError)
    assert UnexpectedLandingFile("x").exit_code == 3


def test_names_are_read_skipped_or_refused():
    entries = [entry(n) for n in ("part-00000.csv", "part-00001.CSV", "_SUCCESS", ".part-00000.csv.crc",
                                  ".part-00002.csv.tmp", "_committed_123", "notes.txt", "part-1.json",
                                  "part-2.jsonl", "part-3.csv.gz", "_part-0.csv", ".part-4.CSV", "p,1.csv",
                                  "p[1].csv")]
    entries += [entry("_temporary", is_file=False), entry("more", is_file=False)]
    listing = classify_entries(entries, ".csv")
    assert listing.data == (f"{FOLDER}/part-00000.csv", f"{FOLDER}/part-00001.CSV")
    assert listing.skipped == tuple(f"{FOLDER}/{n}" for n in (
        ".part-00000.csv.crc", ".part-00002.csv.tmp", "_SUCCESS", "_committed_123", "_temporary"))
    refused = {path.rsplit("/", 1)[1]: why for path, why in listing.refused}
    assert refused == {
        ".part-4.CSV": "a hidden name (leading '_' or '.') on a data file; rename it",
        "_part-0.csv": "a hidden name (leading '_' or '.') on a data file; rename it",
        "more": "a sub-folder; landing data files sit directly in the partition",
        "notes.txt": "not a .csv file",
        "part-1.json": "not a .csv file",
        "part-2.jsonl": "not a .csv file",
        "part-3.csv.gz": "not a .csv file",
        "p,1.csv": "the name holds Hadoop path-pattern characters ','; rename it",
        "p[1].csv": "the name holds Hadoop path-pattern characters '[]'; rename it",
    }


def test_markers_are_skipped_and_upper_case_extensions_are_read(spark, tmp_path):
    members_partition(tmp_path, {
        "_SUCCESS": "",
        ".part-00000.csv.crc": "not a csv file",
        "part-00000.csv": member_file("1,tech,eu,2026-01-02", "2,finance,us,2026-01-02"),
        "part-00001.CSV": member_file("3,tech,us,2026-01-02", "x4,tech,eu,2026-01-02"),
    })
    ingested = ingest_table(spark, Lake(str(tmp_path)), "members", DS, 3)
    counts = ingested.counts
    assert (counts.files, counts.rows_read, counts.rows_accepted, counts.rows_quarantined) == (2, 4, 3, 1)
    assertDataFrameEqual(ingested.accepted.select("member_id"), [Row(member_id=1), Row(member_id=2),
                                                                 Row(member_id=3)])
    bad = ingested.quarantined.first()
    assert bad.source_file.endswith("/part-00001.CSV") and (bad.line_number, bad.field) == (3, "member_id")
    ingested.cached.unpersist()


def test_a_stray_file_fails_the_ingest_naming_it(spark, tmp_path):
    members_partition(tmp_path, {"part-00000.csv": member_file("1,tech,eu,2026-01-02"),
                                 "notes.txt": "loaded by hand, ask Sam", "part-1.json": "{}"})
    with pytest.raises(UnexpectedLandingFile,
                       match=r"2 unexpected entries in .*members/ds=2026-01-02 .*/notes\.txt: not a \.csv file; "
                             r".*/part-1\.json: not a \.csv file"):
        ingest_table(spark, Lake(str(tmp_path)), "members", DS, 3)


@pytest.mark.parametrize("name", ["_weird.csv", "p,1.csv"])
def test_a_data_file_spark_cannot_open_by_name_fails_clearly(spark, tmp_path, name):
    members_partition(tmp_path, {"part-00000.csv": member_file("1,tech,eu,2026-01-02"),
                                 name: member_file("2,tech,eu,2026-01-02")})
    with pytest.raises(UnexpectedLandingFile, match=rf"1 unexpected entry in .*/{name}: .*rename it"):
        ingest_table(spark, Lake(str(tmp_path)), "members", DS, 3)
