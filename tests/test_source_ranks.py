"""Source ranks in one pass: member-sorted Arrow batches regrouped into whole members, ranked by the numba
kernel, against a plain-Python sort of each member's proposals (key descending with NaN first, as Spark
sorts it; ties by candidate_id ascending)."""

from __future__ import annotations

import math
import random

import pyarrow as pa

from mutuals.session import sql_conf
from mutuals.tables import FEATURE_SOURCES
from ranking.pair_features import with_ranks_and_graph
from ranking.source_ranks import RANK_KEYS, proposed_by, source_rank_arrays, whole_members


def python_ranks(rows: list[dict], source: str) -> dict[tuple[int, int], int | None]:
    """Rank of every row by a plain sort per member; None where `source` did not propose the row."""
    key = RANK_KEYS[source]

    def descending(row: dict) -> tuple:
        value = row[key]
        is_nan = isinstance(value, float) and math.isnan(value)
        return (0 if is_nan else 1, 0.0 if is_nan else -value, row["candidate_id"])

    ranks: dict[tuple[int, int], int | None] = {}
    for member in {r["member_id"] for r in rows}:
        mine = [r for r in rows if r["member_id"] == member]
        proposed = sorted((r for r in mine if source in r["sources"]), key=descending)
        for position, row in enumerate(proposed, start=1):
            ranks[(member, row["candidate_id"])] = position
        for row in mine:
            ranks.setdefault((member, row["candidate_id"]), None)
    return ranks


def random_pairs(seed: int, members: int, most_candidates: int) -> list[dict]:
    """Pairs with many ties in every key (small value ranges), NaN ppr scores and members of any size."""
    rng = random.Random(seed)
    rows = []
    for member in range(members):
        for candidate in rng.sample(range(1000), rng.randint(1, most_candidates)):
            sources = [s for s in FEATURE_SOURCES if rng.random() < 0.5] or ["ppr"]
            ppr = rng.choice([0.0, 0.25, 0.5, float("nan")]) if "ppr" in sources else 0.0
            rows.append({"member_id": member * 7, "candidate_id": candidate, "sources": sources,
                         "common_connections": rng.randint(0, 3), "coworker_overlap_days": rng.randint(0, 2),
                         "schoolmate_overlap_days": rng.randint(0, 2), "ppr_score": ppr})
    return rows


def test_source_ranks_match_a_plain_sort_with_ties_and_nan():
    rows = random_pairs(seed=3, members=30, most_candidates=25)
    rows.sort(key=lambda r: r["member_id"])
    columns = {name: pa.array([r[name] for r in rows]) for name in rows[0]}
    found = source_rank_arrays(columns)
    for source in FEATURE_SOURCES:
        proposed = proposed_by(columns["sources"], source)
        assert proposed.tolist() == [source in r["sources"] for r in rows]
        expected = python_ranks(rows, source)
        assert found[f"{source}_rank"].to_pylist() == [expected[(r["member_id"], r["candidate_id"])] for r in rows]


def test_a_member_s_rows_need_only_be_next_to_each_other_not_sorted():
    rows = random_pairs(seed=5, members=12, most_candidates=20)
    rows.sort(key=lambda r: (-(r["member_id"] % 5), r["member_id"], -r["candidate_id"]))
    columns = {name: pa.array([r[name] for r in rows]) for name in rows[0]}
    found = source_rank_arrays(columns)
    for source in FEATURE_SOURCES:
        expected = python_ranks(rows, source)
        assert found[f"{source}_rank"].to_pylist() == [expected[(r["member_id"], r["candidate_id"])] for r in rows]


def test_whole_members_never_splits_a_member_and_keeps_every_row():
    member = [1, 1, 2, 2, 2, 2, 2, 3, 4, 4]
    table = pa.table({"member_id": member, "row": list(range(len(member)))})
    whole = table.to_batches()[0]
    batches = [whole.slice(0, 3), whole.slice(3, 2), whole.slice(5, 0), whole.slice(5, 3), whole.slice(8, 2)]
    chunks = list(whole_members(iter(batches)))
    assert [c.column("row").to_pylist() for c in chunks] == [[0, 1], [2, 3, 4, 5, 6], [7, 8, 9]]


def test_ranks_in_spark_equal_the_plain_sort_when_members_span_arrow_batches(spark):
    rows = random_pairs(seed=11, members=40, most_candidates=30)
    schema = ("member_id long, candidate_id long, sources array<string>, common_connections int, "
              "coworker_overlap_days int, schoolmate_overlap_days int, ppr_score double")
    pairs = spark.createDataFrame([tuple(r.values()) for r in rows], schema)
    with sql_conf(spark, {"spark.sql.execution.arrow.maxRecordsPerBatch": "7"}):
        found = pairs.transform(with_ranks_and_graph(None)).collect()
    assert len(found) == len(rows)
    by_pair = {(r.member_id, r.candidate_id): r for r in found}
    for source in FEATURE_SOURCES:
        expected = python_ranks(rows, source)
        assert {pair: getattr(r, f"{source}_rank") for pair, r in by_pair.items()} == expected
    assert {(r.member_id, r.candidate_id): r.sources for r in found} == {
        (r["member_id"], r["candidate_id"]): r["sources"] for r in rows}


def test_sources_out_of_canonical_order_repeated_or_unknown_come_back_as_they_were(spark):
    odd = [["ppr", "triangle"], ["coworker", "coworker"], ["manual"], [], ["triangle", "manual", "ppr"]]
    rows = [{"member_id": 1, "candidate_id": 10 + i, "sources": sources, "common_connections": i,
             "coworker_overlap_days": 3, "schoolmate_overlap_days": 0, "ppr_score": 0.5}
            for i, sources in enumerate(odd)]
    rows.append({"member_id": 1, "candidate_id": 99, "sources": ["triangle", "coworker", "schoolmate", "ppr"],
                 "common_connections": 2, "coworker_overlap_days": 1, "schoolmate_overlap_days": 4,
                 "ppr_score": 0.25})
    schema = ("member_id long, candidate_id long, sources array<string>, common_connections int, "
              "coworker_overlap_days int, schoolmate_overlap_days int, ppr_score double")
    pairs = spark.createDataFrame([tuple(r.values()) for r in rows], schema)
    found = {r.candidate_id: r for r in pairs.transform(with_ranks_and_graph(None)).collect()}
    assert {c: r.sources for c, r in found.items()} == {r["candidate_id"]: r["sources"] for r in rows}
    # triangle: 14 (common 4), 99 (2), 10 (0); ppr: 10 and 14 tie at 0.5 (by id), then 99; coworker: 11, 99
    assert {c: r.triangle_rank for c, r in found.items()} == {10: 3, 11: None, 12: None, 13: None, 14: 1, 99: 2}
    assert {c: r.ppr_rank for c, r in found.items()} == {10: 1, 11: None, 12: None, 13: None, 14: 2, 99: 3}
    assert {c: r.coworker_rank for c, r in found.items()} == {10: None, 11: 1, 12: None, 13: None, 14: None, 99: 2}
