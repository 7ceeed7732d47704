"""Co-worker / schoolmate overlap semantics and the hub (blocked) path, on tiny hand-built stints."""

from __future__ import annotations

import datetime as dt

import pytest
from pyspark.sql.types import DateType, LongType, StringType, StructField, StructType
from pyspark.testing import assertDataFrameEqual

from joins.economic import (
    latest_records_as_of,
    overlap_candidates,
    overlapping_tenure_pairs,
    tenure_intervals,
)
from mutuals.checks import MissingColumns

D = "2024-06-30"
POSITIONS = StructType([
    StructField("member_id", LongType(), False), StructField("company_id", LongType(), False),
    StructField("start_date", DateType(), False), StructField("end_date", DateType()),
])
EDGES = StructType([StructField("src", LongType(), False), StructField("dst", LongType(), False)])
PAIRS = "member_id long, candidate_id long, overlap_days int"


def day(text: str | None) -> dt.date | None:
    return dt.date.fromisoformat(text) if text else None


def positions(spark, rows):
    return spark.createDataFrame([(m, c, day(s), day(e)) for m, c, s, e in rows], POSITIONS)


def no_edges(spark):
    return spark.createDataFrame([], EDGES)


def test_overlap_touching_disjoint_and_open_ended(spark):
    stints = positions(spark, [
        (1, 10, "2024-01-01", "2024-01-10"),
        (2, 10, "2024-01-10", "2024-02-01"),   # touches member 1 on 2024-01-10: 1 day
        (3, 10, "2024-01-11", "2024-01-20"),   # disjoint from 1 (ends the day before), overlaps 2 by 10 days
        (4, 10, "2024-06-21", None),           # current: ends on D, 10 days as of D
        (5, 10, "2024-06-01", "2030-01-01"),   # end after D is clamped to D: overlaps 4 by 10 days
        (6, 10, "2024-07-01", None),           # starts after D: empty as of D
        (7, 11, "2024-01-01", "2024-01-10"),   # other company: no pairs with 1
    ])
    result = stints.transform(overlap_candidates("company_id", D, 10, no_edges(spark)))
    expected = spark.createDataFrame(
        [(1, 2, 1), (2, 1, 1), (2, 3, 10), (3, 2, 10), (4, 5, 10), (5, 4, 10)], PAIRS)
    assertDataFrameEqual(result, expected)


def test_max_over_stints_exclusion_and_cap(spark):
    stints = positions(spark, [
        (1, 10, "2024-01-01", "2024-01-31"),
        (2, 10, "2024-01-01", "2024-01-05"),   # 5 days at company 10
        (2, 20, "2024-03-01", "2024-03-20"),   # and 20 days at company 20 -> max is 20
        (1, 20, "2024-03-01", "2024-03-31"),
        (3, 10, "2024-01-01", "2024-01-31"),   # 31 days with 1, but already connected to 1
        (4, 10, "2024-01-21", "2024-01-31"),   # 11 days with 1 and with 3
        (5, 10, "2024-01-22", "2024-01-31"),   # 10 days with 1 and with 3
    ])
    edges = spark.createDataFrame([(1, 3), (3, 1)], EDGES)
    result = stints.transform(overlap_candidates("company_id", D, 2, edges)).where("member_id IN (1, 2)")
    expected = spark.createDataFrame([(1, 2, 20), (1, 4, 11), (2, 1, 20), (2, 3, 5)], PAIRS)
    assertDataFrameEqual(result, expected)


def test_hub_blocked_path_equals_plain_path(spark):
    rows = []
    for member in range(1, 41):
        start = dt.date(2020, 1, 1) + dt.timedelta(days=(member * 37) % 400)
        end = None if member % 5 == 0 else start + dt.timedelta(days=(member * 53) % 300)
        rows.append((member, 10, start.isoformat(), end.isoformat() if end else None))
    rows += [(41, 10, "2020-03-01", "2020-03-01"), (42, 11, "2020-01-01", None), (43, 11, "2021-01-01", None)]
    stints = positions(spark, rows).transform(tenure_intervals("company_id", D)).cache()
    plain = stints.transform(overlapping_tenure_pairs(hub_threshold=1_000, block_size=500))
    blocked = stints.transform(overlapping_tenure_pairs(hub_threshold=3, block_size=4))
    plain_rows = plain.collect()
    assert len(plain_rows) > 100
    assertDataFrameEqual(blocked, plain_rows)
    # the hand-checkable corner of the answer: company 11 is a hub too (2 stints > threshold 1)
    small = stints.where("org_id = 11").transform(overlapping_tenure_pairs(hub_threshold=1, block_size=1))
    current_together = (dt.date(2024, 6, 30) - dt.date(2021, 1, 1)).days + 1
    assertDataFrameEqual(small, spark.createDataFrame(
        [(42, 43, current_together), (43, 42, current_together)], PAIRS))
    stints.unpersist()


def test_latest_record_wins_as_of(spark):
    schema = "member_id long, company_id long, start_date date, end_date date, ds string"
    records = spark.createDataFrame([
        (1, 10, day("2024-01-01"), None, "2024-01-01"),
        (1, 10, day("2024-01-01"), day("2024-03-01"), "2024-03-02"),   # the same stint, now closed
        (2, 10, day("2024-02-01"), day("2024-04-01"), "2024-02-01"),
    ], schema)
    result = records.transform(latest_records_as_of(["member_id", "company_id", "start_date"]))
    expected = spark.createDataFrame([
        (1, 10, day("2024-01-01"), day("2024-03-01")), (2, 10, day("2024-02-01"), day("2024-04-01")),
    ], "member_id long, company_id long, start_date date, end_date date")
    assertDataFrameEqual(result, expected)


def test_kernel_names_missing_columns(spark):
    bad = spark.createDataFrame([(1, "x")], StructType([
        StructField("member_id", LongType()), StructField("school", StringType())]))
    with pytest.raises(MissingColumns, match="school_id"):
        bad.transform(tenure_intervals("school_id", D))
