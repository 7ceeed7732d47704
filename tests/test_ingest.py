"""Ingest: quarantine reasons, balanced counts, bad files, idempotent re-runs (real Delta tables)."""

from __future__ import annotations

import argparse
import datetime as dt
import json

import pytest
from pyspark.sql import Row
from pyspark.testing import assertDataFrameEqual

from ingestion.landing import LandingFileError, MissingLandingFolder, NoLandingData
from ingestion.routing import LandingSuiteFailed, gate_accepted
from mutuals.errors import GateFailed
from mutuals.lake import Lake
from mutuals.tables import LANDING_SCHEMAS, spec, tables_written_by
from quality.landing_rules import RULES
from spark_jobs import ingest
from tests.landing_files import write_landing

DS = "2026-01-02"


def mark_empty(root, ds: str, *tables: str) -> None:
    """Land `tables` for `ds` as legitimately empty: the folder with only a `_SUCCESS` marker."""
    for table in tables:
        folder = root / "landing" / table / f"ds={ds}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "_SUCCESS").write_bytes(b"")


def others(*tables: str) -> list[str]:
    return [t for t in LANDING_SCHEMAS if t not in tables]


def _run(spark, root):
    return ingest.run(spark, argparse.Namespace(date=DS, lake=str(root), lateness_days=3))


def _event(**overrides) -> str:
    event = {"event_id": "e1", "member_id": 1, "ts": "2026-01-02T10:00:00Z", "event_type": "impression",
             "candidate_id": 2, "request_id": "r1", "surface": "pymk_page", "position": 1, "dwell_ms": None}
    event.update(overrides)
    return json.dumps({k: v for k, v in event.items() if v != "__drop__"})


@pytest.fixture(scope="module")
def crafted_lake(spark, tmp_path_factory):
    root = tmp_path_factory.mktemp("lake")
    write_landing(root, "members", DS, ["1,tech,eu,2026-01-02", "2,finance,us,2026-01-02",
                                        "x3,tech,eu,2026-01-02",          # line 4: bad long
                                        ",tech,eu,2026-01-02",            # line 5: missing member_id
                                        "5,tech,eu,2026-13-45",           # line 6: bad date
                                        "6,tech,eu"], crlf=True)          # line 7: wrong field count
    write_landing(root, "connections", DS, ["1,2,2026-01-02T08:00:00Z",
                                            "2,1,2026-01-02T08:00:00Z",   # same edge reversed: valid
                                            "3,3,2026-01-02T09:00:00Z",   # line 4: self-loop
                                            "1,4,2025-12-01T00:00:00Z",   # line 5: too old
                                            "1,5,2026-01-03T00:00:00Z",   # line 6: tomorrow
                                            "1,6,2025-12-30T23:00:00Z"])  # line 7: late, within 3 days
    write_landing(root, "positions", DS, ["1,10,2020-01-01,", "2,10,2021-01-01,2020-01-01"])  # line 3 bad range
    write_landing(root, "educations", DS, ["1,20,2010-09-01,2014-06-30"])
    write_landing(root, "events", DS, [
        _event(),
        _event(),                                         # duplicate event: valid
        _event(event_id="e2", event_type="purchase"),     # line 3: unknown enum
        _event(event_id="e3", member_id="__drop__"),      # line 4: missing member_id
        _event(event_id="e4", member_id="abc"),           # line 5: bad long
        "{not json",                                      # line 6
        _event(event_id="e5", ts="2026-01-05T00:00:00Z"),  # line 7: future
        "",                                               # blank line: not a row
        _event(event_id="e6", event_type="click", dwell_ms=4200, request_id=None),
    ])
    write_landing(root, "experiment_assignments", DS, [json.dumps(
        {"member_id": 1, "experiment": "pymk_ranker_v2", "variant": "treatment",
         "assigned_at": "2026-01-02T00:00:00Z"})])
    counts = _run(spark, root)
    return root, {c.table: c for c in counts}


def test_counts_balance_for_every_table(crafted_lake):
    _, counts = crafted_lake
    expected = {  # table: (read, accepted, quarantined)
        "members": (6, 2, 4), "connections": (6, 3, 3), "positions": (2, 1, 1), "educations": (1, 1, 0),
        "events": (8, 3, 5), "experiment_assignments": (1, 1, 0),
    }
    found = {t: (c.rows_read, c.rows_accepted, c.rows_quarantined) for t, c in counts.items()}
    assert found == expected


def test_quarantine_names_file_line_field_and_reason(spark, crafted_lake):
    root, _ = crafted_lake
    lake = Lake(str(root))
    members = lake.read(spark, "quarantine/members", DS).select("line_number", "field", "reason")
    assertDataFrameEqual(members, [
        Row(line_number=4, field="member_id", reason="bad_type"),
        Row(line_number=5, field="member_id", reason="missing_field"),
        Row(line_number=6, field="joined_on", reason="bad_type"),
        Row(line_number=7, field=None, reason="wrong_field_count"),
    ])
    connections = lake.read(spark, "quarantine/connections", DS).select("line_number", "field", "reason")
    assertDataFrameEqual(connections, [
        Row(line_number=4, field="dst", reason="self_loop"),
        Row(line_number=5, field="connected_at", reason="out_of_window"),
        Row(line_number=6, field="connected_at", reason="out_of_window"),
    ])
    events = lake.read(spark, "quarantine/events", DS).select("line_number", "field", "reason")
    assertDataFrameEqual(events, [
        Row(line_number=3, field="event_type", reason="unknown_enum"),
        Row(line_number=4, field="member_id", reason="missing_field"),
        Row(line_number=5, field="member_id", reason="bad_type"),
        Row(line_number=6, field=None, reason="unparseable_json"),
        Row(line_number=7, field="ts", reason="out_of_window"),
    ])
    row = lake.read(spark, "quarantine/members", DS).where("line_number = 4").first()
    assert row.raw_line == "x3,tech,eu,2026-01-02"  # CRLF stripped, raw text kept
    assert row.source_file.endswith("landing/members/ds=2026-01-02/part-00000.csv")
    position = lake.read(spark, "quarantine/positions", DS).first()
    assert (position.line_number, position.field, position.reason) == (3, "end_date", "invalid_range")


def test_accepted_rows_are_typed(spark, crafted_lake):
    root, _ = crafted_lake
    lake = Lake(str(root))
    members = lake.read(spark, "raw/members", DS).select("member_id", "industry", "region")
    assertDataFrameEqual(members, [Row(member_id=1, industry="tech", region="eu"),
                                   Row(member_id=2, industry="finance", region="us")])
    edges = lake.read(spark, "raw/connections", DS).select("src", "dst")
    assertDataFrameEqual(edges, [Row(src=1, dst=2), Row(src=2, dst=1), Row(src=1, dst=6)])
    click = lake.read(spark, "raw/events", DS).where("event_id = 'e6'").first()
    assert (click.event_type, click.dwell_ms, click.request_id) == ("click", 4200, None)
    current = lake.read(spark, "raw/positions", DS).first()
    assert current.end_date is None


def test_rerun_replaces_the_day_and_nothing_else(spark, crafted_lake):
    root, _ = crafted_lake
    lake = Lake(str(root))
    other_day = "2026-01-01"
    # another day's rows, written straight to the table (an ingest run of that day costs a whole job and a GX
    # suite, and what matters here is only that the re-run of DS leaves them alone)
    other_member = spark.createDataFrame([(9, "tech", "eu", dt.date(2026, 1, 1), other_day)],
                                         spec("raw/members").full_schema)
    lake.write_partition(other_member, "raw/members", other_day)
    before = {t: lake.read(spark, t).collect() for t in ("raw/members", "raw/events", "quarantine/events")}
    _run(spark, root)
    after = {t: lake.read(spark, t).collect() for t in before}
    for table in before:
        assert sorted(before[table]) == sorted(after[table]), table
    assert lake.read(spark, "raw/members", other_day).count() == 1
    assert lake.read(spark, "raw/members", DS).count() == 2


def test_wrong_header_fails_naming_the_file_and_writes_nothing(spark, tmp_path):
    write_landing(tmp_path, "members", DS, ["1,tech,eu,2026-01-02"])
    bad = write_landing(tmp_path, "connections", DS, ["src,target,connected_at", "1,2,2026-01-02T00:00:00Z"],
                        header=False)
    mark_empty(tmp_path, DS, *others("members", "connections"))
    with pytest.raises(LandingFileError, match=r"connections/ds=2026-01-02/part-00000\.csv.*wrong header"):
        _run(spark, tmp_path)
    assert bad.exists()
    assert not Lake(str(tmp_path)).exists(spark, "raw/members")


def test_non_utf8_file_fails_naming_the_file(spark, tmp_path):
    write_landing(tmp_path, "events", DS, [], raw=b'{"event_id": "\xff\xfe"}\n')
    mark_empty(tmp_path, DS, *others("events"))
    with pytest.raises(LandingFileError, match=r"events/ds=2026-01-02/part-00000\.jsonl: not valid UTF-8"):
        _run(spark, tmp_path)


def test_with_two_bad_tables_read_side_by_side_the_first_in_table_order_is_the_error(spark, tmp_path):
    assert list(RULES).index("connections") < list(RULES).index("events")
    write_landing(tmp_path, "events", DS, [], raw=b'{"event_id": "\xff\xfe"}\n')
    write_landing(tmp_path, "connections", DS, ["src,target,connected_at", "1,2,2026-01-02T00:00:00Z"],
                  header=False)
    mark_empty(tmp_path, DS, *others("events", "connections"))
    with pytest.raises(LandingFileError, match=r"connections/ds=2026-01-02/part-00000\.csv.*wrong header"):
        _run(spark, tmp_path)
    assert not Lake(str(tmp_path)).exists(spark, "raw/members")


def test_the_day_is_published_last_with_every_table_and_its_rows(spark, crafted_lake):
    root, _ = crafted_lake
    record = Lake(str(root)).publication(spark, "ingest", DS)
    rows = {t["table"]: t["rows"] for t in record["tables"]}
    assert sorted(rows) == sorted(tables_written_by("ingest")) and len(rows) == 13
    assert (rows["raw/members"], rows["quarantine/members"], rows["raw/events"], rows["quarantine/events"]) == \
        (2, 4, 3, 5)
    assert rows["quarantine/ingest_counts"] == 6


def test_a_lake_path_with_no_landing_files_fails_and_creates_nothing(spark, tmp_path):
    typo = tmp_path / "typo" / "lake"
    with pytest.raises(NoLandingData, match=r"ingest ds=2026-01-02: no landing data files for any table "
                                                   r"under .*/typo/lake/landing/<table>/ds=2026-01-02"):
        _run(spark, typo)
    assert not typo.exists()
    assert NoLandingData("x").exit_code == 10


def test_a_day_of_markers_only_is_not_an_empty_day(spark, tmp_path):
    mark_empty(tmp_path, DS, *LANDING_SCHEMAS)
    with pytest.raises(NoLandingData):
        _run(spark, tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["landing"]


def test_a_missing_table_folder_fails_naming_it_and_writes_nothing(spark, tmp_path):
    write_landing(tmp_path, "members", DS, ["1,tech,eu,2026-01-02"])
    mark_empty(tmp_path, DS, *others("members", "positions"))
    with pytest.raises(MissingLandingFolder,
                       match=r"landing folder .*/landing/positions/ds=2026-01-02 does not exist"):
        _run(spark, tmp_path)
    assert MissingLandingFolder("x").exit_code == 10
    assert sorted(p.name for p in tmp_path.iterdir()) == ["landing"]


def test_a_folder_with_only_a_marker_is_an_empty_table(spark, tmp_path):
    write_landing(tmp_path, "members", DS, ["1,tech,eu,2026-01-02", "2,tech,eu,2026-01-02"])
    mark_empty(tmp_path, DS, *others("members"))
    counts = {c.table: (c.files, c.rows_read) for c in _run(spark, tmp_path)}
    assert counts == {"members": (1, 2), "connections": (0, 0), "positions": (0, 0), "educations": (0, 0),
                      "events": (0, 0), "experiment_assignments": (0, 0)}
    lake = Lake(str(tmp_path))
    record = lake.publication(spark, "ingest", DS)
    rows = {t["table"]: t["rows"] for t in record["tables"]}
    assert rows["raw/members"] == 2 and rows["raw/positions"] == 0 and rows["quarantine/events"] == 0
    assert lake.published_days(spark, "raw/positions") == [DS]


def test_generate_lands_every_table_folder_every_day_ending_with_a_marker(tmp_path):
    from synthetic.generate import generate

    generate(tmp_path, DS, 2, 10, seed=1, events_per_member=0.0)
    for day in (DS, "2026-01-03"):
        for table in LANDING_SCHEMAS:
            names = sorted(p.name for p in (tmp_path / "landing" / table / f"ds={day}").iterdir())
            assert names[0] == "_SUCCESS" and names[1].startswith("part-00000."), (table, day, names)


def test_an_accepted_row_the_landing_suite_refuses_fails_as_a_gate(spark):
    """The GX suite is the second line behind the routing: a null key among accepted rows stops the day."""
    accepted = spark.createDataFrame([(1, "tech", "eu", None), (None, "tech", "eu", None)],
                                     "member_id long, industry string, region string, joined_on date")
    with pytest.raises(LandingSuiteFailed, match=r"raw/members 2026-01-02: accepted rows fail the landing suite: "
                                                 r"expect_column_values_to_not_be_null on member_id: 1 unexpected"):
        gate_accepted("members", DS, accepted, 3)
    assert issubclass(LandingSuiteFailed, GateFailed) and LandingSuiteFailed("x").exit_code == 5
