"""Co-worker / schoolmate candidates: overlap semantics, the kernel path for large organisations and the
plain path for small ones, each checked against hand-computed rows and an independent brute force.

The brute force (`reference`) shares no code with `joins.economic`: it takes the raw records, clamps
tenures to D with `datetime`, compares every pair of stints directly, keeps the max per pair, removes
connections and sorts each member's list by (overlap desc, candidate asc) before cutting at K.
"""

from __future__ import annotations

import datetime as dt
import random
from collections import defaultdict

import numpy as np
import pytest
from pyspark.sql import functions as F
from pyspark.sql.types import DateType, LongType, StringType, StructField, StructType
from pyspark.testing import assertDataFrameEqual

from joins.csr import collect_csr
from joins.economic import (
    EconomicStrategyUnknown,
    latest_records_as_of,
    overlap_candidates,
    partition_keys,
    plan_kernel_units,
    spark_hash_int,
    tenure_intervals,
)
from joins.economic_kernel import EconomicKernelInputInvalid, top_overlaps_in_org, top_overlaps_local
from mutuals.checks import MissingColumns

D = "2024-06-30"
POSITIONS = StructType([
    StructField("member_id", LongType(), False), StructField("company_id", LongType(), False),
    StructField("start_date", DateType(), False), StructField("end_date", DateType()),
])
EDGES = StructType([StructField("src", LongType(), False), StructField("dst", LongType(), False)])
PAIRS = "member_id long, candidate_id long, overlap_days int"
# Every organisation through the kernel, in blocks of 2 stints (so even tiny ones are cut); a mix where
# organisations above 3 stints take the kernel and the rest the plain join; the plain join everywhere.
KERNEL_EVERYWHERE = {"hub_threshold": 0, "block_size": 2}
MIXED = {"hub_threshold": 3, "block_size": 2}
NAIVE = {"strategy": "naive"}
CONFIGS = {"kernel": KERNEL_EVERYWHERE, "mixed": MIXED, "naive": NAIVE}


def overlaps(config: str, k: int, edges):
    """overlap_candidates for co-workers as of D with a config's options; "mixed_csr": the mixed config
    with the connections looked up in the graph's CSR instead of joined."""
    if config == "mixed_csr":
        return overlap_candidates("company_id", D, k, edges, **MIXED, csr=collect_csr(edges))
    return overlap_candidates("company_id", D, k, edges, **CONFIGS[config])


def day(text: str | None) -> dt.date | None:
    return dt.date.fromisoformat(text) if text else None


def positions(spark, rows):
    return spark.createDataFrame([(m, c, day(s), day(e)) for m, c, s, e in rows], POSITIONS)


def edges_of(spark, pairs):
    return spark.createDataFrame([*pairs, *((b, a) for a, b in pairs)], EDGES)


def reference(rows, as_of: str, k: int, connections) -> list[tuple[int, int, int]]:
    """Brute force over all stint pairs: (member, candidate, overlap days) ordered per member, best first."""
    until = dt.date.fromisoformat(as_of)
    stints = []
    for member, org, start, end in rows:
        start = dt.date.fromisoformat(start) if isinstance(start, str) else start
        end = dt.date.fromisoformat(end) if isinstance(end, str) else end
        last = min(end or until, until)
        if last >= start:
            stints.append((member, org, start, last))
    connected = {(a, b) for a, b in connections} | {(b, a) for a, b in connections}
    best: dict[tuple[int, int], int] = {}
    for member, org, start, end in stints:
        for other, other_org, other_start, other_end in stints:
            if org != other_org or member == other or (member, other) in connected:
                continue
            days = (min(end, other_end) - max(start, other_start)).days + 1
            if days >= 1:
                best[member, other] = max(best.get((member, other), 0), days)
    per_member = defaultdict(list)
    for (member, other), days in best.items():
        per_member[member].append((-days, other))
    return [(member, other, -neg) for member in sorted(per_member)
            for neg, other in sorted(per_member[member])[:k]]


def ranked(result) -> list[tuple[int, int, int]]:
    """Spark rows in the reference's order: by member, then overlap desc, then candidate asc."""
    rows = [(r.member_id, r.candidate_id, r.overlap_days) for r in result.collect()]
    return sorted(rows, key=lambda r: (r[0], -r[2], r[1]))


def boundary_ties(rows, as_of: str, k: int, connections) -> int:
    """How many members have a tie between their K-th and (K+1)-th candidate (the test data must have some)."""
    uncut = reference(rows, as_of, 10**9, connections)
    lists = defaultdict(list)
    for member, _, days in uncut:
        lists[member].append(days)
    return sum(1 for days in lists.values() if len(days) > k and days[k - 1] == days[k])


# ---------------------------------------------------------------- hand-computed cases


@pytest.mark.parametrize("config", ["kernel", "naive"])
def test_overlap_touching_disjoint_and_open_ended(spark, config):
    stints = positions(spark, [
        (1, 10, "2024-01-01", "2024-01-10"),
        (2, 10, "2024-01-10", "2024-02-01"),   # touches member 1 on 2024-01-10: 1 day
        (3, 10, "2024-01-11", "2024-01-20"),   # disjoint from 1 (ends the day before), overlaps 2 by 10 days
        (4, 10, "2024-06-21", None),           # current: ends on D, 10 days as of D
        (5, 10, "2024-06-01", "2030-01-01"),   # end after D is clamped to D: overlaps 4 by 10 days
        (6, 10, "2024-07-01", None),           # starts after D: empty as of D
        (7, 11, "2024-01-01", "2024-01-10"),   # other company: no pairs with 1
    ])
    result = stints.transform(overlap_candidates("company_id", D, 10, edges_of(spark, []), **CONFIGS[config]))
    expected = spark.createDataFrame(
        [(1, 2, 1), (2, 1, 1), (2, 3, 10), (3, 2, 10), (4, 5, 10), (5, 4, 10)], PAIRS)
    assertDataFrameEqual(result, expected)


@pytest.mark.parametrize("config", ["kernel", "mixed", "mixed_csr"])
def test_max_over_stints_and_organisations_exclusion_and_cap(spark, config):
    stints = positions(spark, [
        (1, 10, "2024-01-01", "2024-01-31"),
        (2, 10, "2024-01-01", "2024-01-05"),   # 5 days at company 10
        (2, 20, "2024-03-01", "2024-03-20"),   # and 20 days at company 20 -> max is 20
        (1, 20, "2024-03-01", "2024-03-31"),
        (3, 10, "2024-01-01", "2024-01-31"),   # 31 days with 1, but already connected to 1
        (4, 10, "2024-01-21", "2024-01-31"),   # 11 days with 1 and with 3
        (5, 10, "2024-01-22", "2024-01-31"),   # 10 days with 1 and with 3
        (5, 10, "2024-01-02", "2024-01-08"),   # a second stint of 5: 7 days with 1, 4 with 2 (max with 1 stays 10)
    ])
    edges = edges_of(spark, [(1, 3)])
    result = stints.transform(overlaps(config, 2, edges))
    expected = spark.createDataFrame(
        [(1, 2, 20), (1, 4, 11), (2, 1, 20), (2, 3, 5), (5, 1, 10), (5, 3, 10)], PAIRS)
    assertDataFrameEqual(result.where("member_id IN (1, 2, 5)"), expected)


# A company that employs a third of all members (8 of 24), a school with a hub (member 50, enrolled since
# 2010 and still there, overlaps every other student), small companies where pairs meet again.
COMPANY_THIRD = [(m, 100, (dt.date(2020, 1, 1) + dt.timedelta(days=10 * (m - 1))).isoformat(),
                  (dt.date(2020, 1, 1) + dt.timedelta(days=10 * (m - 1) + 99)).isoformat()) for m in range(1, 9)]
SMALL_COMPANIES = [
    (1, 300, "2022-01-01", "2022-05-01"), (2, 300, "2022-01-01", "2022-05-01"),   # 121 days, beats 90 at 100
    (1, 301, "2023-01-01", "2023-01-05"), (8, 301, "2023-01-01", "2023-01-05"),   # 5 days, loses to 30 at 100
    *((m, 400 + m, "2021-01-01", None) for m in range(9, 18)),                    # alone at their company
]
SCHOOL_HUB = [
    (50, 200, "2010-01-01", None),
    (51, 200, "2015-01-01", "2015-01-10"), (51, 200, "2020-01-01", "2020-01-30"),   # 10 and 30 days: max 30
    (52, 200, "2016-01-01", "2016-01-20"),   # 20 days, but connected to 50
    (53, 200, "2017-01-01", "2017-01-20"), (54, 200, "2018-01-01", "2018-01-20"),
    (55, 200, "2019-01-01", "2019-01-05"), (56, 200, "2020-06-01", "2020-06-20"),   # 56 loses the 20-day tie
]
NAMED = COMPANY_THIRD + SMALL_COMPANIES + SCHOOL_HUB
NAMED_CONNECTIONS = [(50, 52)]


@pytest.mark.parametrize("config", ["kernel", "mixed", "mixed_csr"])
def test_named_company_with_a_third_of_members_and_school_hub(spark, config):
    assert len({m for m, *_ in NAMED}) == 24 and len(COMPANY_THIRD) == 8
    result = positions(spark, NAMED).transform(
        overlaps(config, 3, edges_of(spark, NAMED_CONNECTIONS)))
    rows = ranked(result)
    by_member = defaultdict(list)
    for member, candidate, days in rows:
        by_member[member].append((candidate, days))
    # company 100: stints 10 days apart, 100 days long -> overlap 100 - 10 * distance
    assert by_member[1] == [(2, 121), (3, 80), (4, 70)]   # max over companies 100 and 300
    assert by_member[4] == [(3, 90), (5, 90), (2, 80)]    # 2 beats 6 on the 80-day tie
    assert by_member[8] == [(7, 90), (6, 80), (5, 70)]    # 30 days at 100 beat 5 at 301, and fall out anyway
    # the school hub: 52 is excluded before the cut, so 53 and 54 fill the list and 56 loses the tie
    assert by_member[50] == [(51, 30), (53, 20), (54, 20)]
    assert by_member[51] == [(50, 30)] and by_member[56] == [(50, 20)] and 52 not in by_member
    assert rows == reference(NAMED, D, 3, NAMED_CONNECTIONS)


# ---------------------------------------------------------------- random careers against the brute force


def random_careers(seed: int, member_base: int, org_base: int) -> tuple[list, list]:
    """Members with 1-3 stints on coarse (30-day) dates so overlaps tie often, one organisation holding about
    a third of the stints, open-ended stints, ends after D, starts after D; random connections."""
    rng = random.Random(seed)
    first = dt.date(2023, 1, 1)
    rows = []
    for m in range(member_base, member_base + 30):
        for _ in range(rng.randint(1, 3)):
            org = org_base if rng.random() < 0.35 else org_base + rng.randint(1, 5)
            start = first + dt.timedelta(days=30 * rng.randint(0, 19))
            kind = rng.random()
            end = None if kind < 0.25 else start + dt.timedelta(days=30 * rng.randint(0, 12) + rng.choice((0, 29)))
            rows.append((m, org, start.isoformat(), end.isoformat() if end else None))
    members = range(member_base, member_base + 30)
    connections = {tuple(sorted(rng.sample(members, 2))) for _ in range(25)}
    return rows, sorted(connections)


@pytest.fixture(scope="module")
def careers():
    """Three seeds in disjoint member and organisation ranges, so one Spark run checks all three."""
    rows, connections = [], []
    for seed in (1, 2, 3):
        more_rows, more_connections = random_careers(seed, member_base=1000 * seed, org_base=100 * seed)
        rows += more_rows
        connections += more_connections
    return rows, connections


@pytest.mark.parametrize("config", ["kernel", "mixed", "mixed_csr", "naive"])
def test_random_careers_equal_brute_force(spark, careers, config):
    rows, connections = careers
    k = 3
    assert boundary_ties(rows, D, k, connections) >= 5   # the data exercises the tie-break at the cut
    assert sum(1 for _, _, _, end in rows if end is None) >= 20
    result = positions(spark, rows).transform(
        overlaps(config, k, edges_of(spark, connections)))
    assert ranked(result) == reference(rows, D, k, connections)


def test_kernel_equals_brute_force_without_spark():
    """The id-level kernel on random organisations (many seeds): one organisation, some row members."""
    for seed in range(40):
        rng = np.random.default_rng(seed)
        n = int(rng.integers(1, 80))
        member = rng.integers(0, 30, n) * 7 + 3
        start = rng.integers(0, 60, n) * 10
        end = start + rng.integers(0, 40, n) * 5
        is_row = np.isin(member, member[rng.random(n) < 0.5])
        src, dst = rng.integers(0, 30, 40) * 7 + 3, rng.integers(0, 35, 40) * 7 + 3
        k = int(rng.integers(1, 6))
        found = top_overlaps_in_org(member, start, end, is_row, src, dst, k)
        days = lambda d: dt.date(2000, 1, 1) + dt.timedelta(days=int(d))  # noqa: E731
        records = [(int(m), 1, days(s), days(e)) for m, s, e in zip(member, start, end, strict=True)]
        wanted = set(member[is_row].tolist())
        # connections are directed here (only src's list loses dst), so cut the uncut reference by hand
        connected = set(zip(src.tolist(), dst.tolist(), strict=True))
        uncut = reference(records, "2100-01-01", 10**9, [])
        expected = []
        for m in sorted(wanted):
            mine = [r for r in uncut if r[0] == m and (m, r[1]) not in connected]
            expected += mine[:k]
        got = list(zip(*(a.tolist() for a in found), strict=True))
        assert got == expected, seed


def test_kernel_checks_its_inputs():
    i32, i64 = np.int32, np.int64
    good = dict(col_start=np.array([0, 5], i32), col_end=np.array([9, 9], i32), col_member=np.array([0, 1], i32),
                row_ptr=np.array([0, 1], i64), row_start=np.array([0], i32), row_end=np.array([9], i32),
                row_self=np.array([0], i32), excl_ptr=np.array([0, 0], i64), excl=np.array([], i32),
                n_members=2, k=1)
    row, cand, days = top_overlaps_local(**good)
    assert (row.tolist(), cand.tolist(), days.tolist()) == ([0], [1], [5])
    with pytest.raises(EconomicKernelInputInvalid, match="sorted"):
        top_overlaps_local(**{**good, "col_start": np.array([5, 0], i32)})
    with pytest.raises(EconomicKernelInputInvalid, match="int32"):
        top_overlaps_local(**{**good, "col_member": np.array([0, 1], i64)})
    with pytest.raises(EconomicKernelInputInvalid, match="outside"):
        top_overlaps_local(**{**good, "col_member": np.array([0, 2], i32)})


# ---------------------------------------------------------------- planning


def test_plan_spreads_a_hub_over_every_unit_and_balances_work():
    org = np.array([1, 2, 3, *range(10, 60)])
    stints = np.array([15_000, 12_000, 4_000, *([600] * 50)])
    plan = plan_kernel_units(org, stints, block_size=500, max_units=8)
    assert plan.n_units == 8
    assert plan.n_blocks.tolist()[:3] == [30, 24, 8]
    hub_units = set(plan.piece_unit[plan.piece_org == 1].tolist())
    assert hub_units == set(range(8))                      # the 15,000-stint company is split over all tasks
    total = float((stints.astype(float) ** 2).sum())
    assert plan.unit_work.sum() == pytest.approx(total)
    largest_piece = 15_000**2 / 30
    assert plan.unit_work.max() <= total / 8 + largest_piece  # no task carries more than its share + one piece
    assert plan.unit_work.min() >= total / 8 - largest_piece
    pieces = set(zip(plan.piece_org.tolist(), plan.piece_block.tolist(), strict=True))
    assert len(pieces) == int(plan.n_blocks.sum())         # every (organisation, block) exactly once


def test_partition_keys_land_one_unit_per_spark_partition(spark):
    values = [-(2**31), -7, 0, 1, 42, 2**31 - 1]
    hashed = spark.createDataFrame([(v,) for v in values], "v int").select("v", F.hash("v").alias("h"))
    assert {r.v: r.h for r in hashed.collect()} == {v: spark_hash_int(v) for v in values}
    keys = partition_keys(7)
    placed = (spark.createDataFrame([(int(k),) for k in keys], "key int").repartition(7, "key")
              .select("key", F.spark_partition_id().alias("partition")).collect())
    assert sorted((r.partition, r.key) for r in placed) == [(p, int(keys[p])) for p in range(7)]


# ---------------------------------------------------------------- records and arguments


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


def test_unknown_strategy_and_bad_sizes_are_refused(spark):
    with pytest.raises(EconomicStrategyUnknown, match="naive"):
        overlap_candidates("company_id", D, 3, edges_of(spark, []), strategy="blocked")
    with pytest.raises(ValueError, match="block_size"):
        overlap_candidates("company_id", D, 3, edges_of(spark, []), block_size=0)
