"""Incremental triangle closing (joins.incremental) equals a full recompute, row for row.

The reference is a plain-Python brute force over adjacency sets (`brute_top_k`), never the code under
test; D-1's rows handed to the incremental path come from that reference too, except on ego-Facebook,
where they are the full kernel's (what the job would have published) and the day-two answer is checked
against the figures published in data/README.md as well.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from joins.csr import build_csr
from joins.incremental import TopKRows, full_top_k, incremental_top_k
from mutuals.lake import Lake
from mutuals.tables import CANDIDATE_PAIRS, EDUCATIONS, GRAPH_DEGREES, GRAPH_EDGES, POSITIONS
from spark_jobs import candidates
from tests.conftest import EGO_FACEBOOK

Row = tuple[int, int, int]


def brute_top_k(edges: list[tuple[int, int]], k: int) -> list[Row]:
    """Every member's top K by common desc, candidate id asc, from adjacency sets, in member order."""
    adjacency: dict[int, set[int]] = {}
    for a, b in edges:
        if a != b:
            adjacency.setdefault(a, set()).add(b)
            adjacency.setdefault(b, set()).add(a)
    rows: list[Row] = []
    for member in sorted(adjacency):
        counts: dict[int, int] = {}
        for middle in adjacency[member]:
            for cand in adjacency[middle]:
                if cand != member and cand not in adjacency[member]:
                    counts[cand] = counts.get(cand, 0) + 1
        best = sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:k]
        rows.extend((member, cand, common) for cand, common in best)
    return rows


def as_arrays(rows: list[Row]) -> TopKRows:
    table = np.array(rows, dtype=np.int64).reshape(-1, 3)
    return TopKRows(table[:, 0].copy(), table[:, 1].copy(), table[:, 2].astype(np.int32))


def as_rows(rows: TopKRows) -> list[Row]:
    return list(zip(rows.member.tolist(), rows.candidate.tolist(), rows.common.tolist(), strict=True))


def csr_of(edges: list[tuple[int, int]]):
    pairs = np.array(edges, dtype=np.int64).reshape(-1, 2)
    return build_csr(pairs[:, 0], pairs[:, 1])


def incremental_rows(before: list[tuple[int, int]], after: list[tuple[int, int]], k: int) -> tuple[list[Row], dict]:
    pairs = np.array(before, dtype=np.int64).reshape(-1, 2)
    rows, stats = incremental_top_k(pairs[:, 0], pairs[:, 1], csr_of(after), as_arrays(brute_top_k(before, k)), k)
    return as_rows(rows), stats


def random_day_pair(rng: np.random.Generator, flavour: str) -> tuple[list, list, int]:
    """A small random graph, and the next day's: some edges removed, some added (also to new members)."""
    n = int(rng.integers(4, 36))
    m = int(rng.integers(1, 3 * n))
    before = [(int(a), int(b)) for a, b in rng.integers(0, n, size=(m, 2))]
    keep = rng.random(m) >= (0.25 if flavour in ("remove", "both") else 0.0)
    after = [edge for edge, kept in zip(before, keep, strict=True) if kept]
    if flavour in ("add", "both"):
        added = int(rng.integers(1, 8))
        after += [(int(a), int(b)) for a, b in rng.integers(0, n + 3, size=(added, 2))]  # n..n+2: new members
    return before, after, int(rng.integers(1, 5))


@pytest.mark.parametrize("case", range(36))
def test_incremental_equals_brute_force_on_random_graphs(case):
    rng = np.random.default_rng(1500 + case)
    before, after, k = random_day_pair(rng, ("add", "remove", "both")[case % 3])
    got, _ = incremental_rows(before, after, k)
    assert got == brute_top_k(after, k)


def test_random_cases_exercise_every_path():
    """The seeded cases above recompute, merge and keep members, and include members' first connections."""
    totals = {"members_recomputed": 0, "members_merged": 0, "changed_pairs": 0}
    first_connections = 0
    for case in range(36):
        rng = np.random.default_rng(1500 + case)
        before, after, k = random_day_pair(rng, ("add", "remove", "both")[case % 3])
        _, stats = incremental_rows(before, after, k)
        for key in totals:
            totals[key] += stats[key]
        old = {x for edge in before for x in edge if edge[0] != edge[1]}
        first_connections += len({x for edge in after for x in edge if edge[0] != edge[1]} - old)
    assert min(totals.values()) > 0 and first_connections > 0, (totals, first_connections)


def test_member_ids_beyond_31_bits():
    """Ids too wide for the merge kernel's packed key go through dense indices instead."""
    rng = np.random.default_rng(4242)
    before, after, k = random_day_pair(rng, "add")
    wide = 1 << 40
    shift = [(a + wide, b + wide) for a, b in before], [(a + wide, b + wide) for a, b in after]
    got, stats = incremental_rows(*shift, k)
    assert got == brute_top_k(shift[1], k) and stats["members_merged"] > 0


def test_full_kernel_path_equals_brute_force():
    rng = np.random.default_rng(77)
    edges = [(int(a), int(b)) for a, b in rng.integers(0, 60, size=(240, 2))]
    assert as_rows(full_top_k(csr_of(edges), 3)) == brute_top_k(edges, 3)


# 1 knows 2 and 3; 2-5 and 3-9 give 1 two candidates at one common each; with K = 1 the id tie-break keeps 5.
TIE_BEFORE = [(1, 2), (1, 3), (2, 5), (3, 9)]


def test_a_new_member_ties_at_the_k_boundary_and_wins_on_id():
    """Day two: 4 joins with its first connection, 3-4. Member 1 is merged (next to endpoint 3), and 4 now
    ties 5 at one common: 4 < 5 takes the one slot."""
    after = [*TIE_BEFORE, (3, 4)]
    got, stats = incremental_rows(TIE_BEFORE, after, 1)
    assert brute_top_k(TIE_BEFORE, 1)[0] == (1, 5, 1)
    assert got[0] == (1, 4, 1)
    assert (4, 1, 1) in got  # the new member's own candidates, recomputed in full
    assert got == brute_top_k(after, 1)
    assert stats["members_merged"] >= 1


def test_a_kept_candidate_rises_and_a_removed_edge_lowers_counts():
    after_rise = [*TIE_BEFORE, (2, 9)]  # 9 reaches two common with 1 and passes 5
    got, _ = incremental_rows(TIE_BEFORE, after_rise, 1)
    assert got[0] == (1, 9, 2) and got == brute_top_k(after_rise, 1)
    after_fall = [(1, 2), (1, 3), (3, 9)]  # 2-5 removed: 1's count with 5 falls to 0, 9 comes in
    got, stats = incremental_rows(TIE_BEFORE, after_fall, 1)
    assert got[0] == (1, 9, 1) and got == brute_top_k(after_fall, 1)
    assert stats["edges_removed"] == 1


def checksum(rows: TopKRows) -> int:
    modulus = (1 << 61) - 1
    keys = (rows.member.astype(object) * 1000003 + rows.candidate.astype(object)) * rows.common.astype(object)
    return int(sum(keys) % modulus)


def test_ego_facebook_one_percent_added_on_day_two():
    """1% of the real graph's edges held back on day one and added on day two: the incremental answer
    equals the full kernel's and the published reference figures (K = 50)."""
    edges = np.loadtxt(EGO_FACEBOOK, delimiter=",", skiprows=1, dtype=np.int64)
    held_back = np.random.default_rng(15).random(edges.shape[0]) < 0.01
    before = build_csr(edges[~held_back, 0], edges[~held_back, 1])
    after = build_csr(edges[:, 0], edges[:, 1])
    rows, stats = incremental_top_k(edges[~held_back, 0], edges[~held_back, 1], after, full_top_k(before, 50), 50)
    full = full_top_k(after, 50)
    for column in ("member", "candidate", "common"):
        assert np.array_equal(getattr(rows, column), getattr(full, column)), column
    assert stats["edges_added"] == int(held_back.sum()) and stats["edges_removed"] == 0
    assert rows.size == 201_854
    assert int(rows.common.sum()) == 3_588_819
    assert checksum(rows) == 5_584_582_348_461_794


# ------------------------------------------------------------------ the candidates job, two days

D1, D2 = "2024-06-29", "2024-06-30"
DAY_ONE = [(1, 2), (1, 3), (2, 5), (3, 9), (2, 6), (6, 7), (7, 8), (8, 5), (9, 10), (10, 11)]
DAY_TWO = [*DAY_ONE[:-1], (3, 4), (5, 9)]  # 10-11 removed; 3-4 (4's first connection) and 5-9 added


def write_graph_day(spark, lake: Lake, ds: str, undirected: list[tuple[int, int]]) -> None:
    at = dt.datetime(2024, 1, 1)
    both_ways = [(a, b, at) for a, b in undirected] + [(b, a, at) for a, b in undirected]
    degree: dict[int, int] = {}
    for a, b in undirected:
        degree[a], degree[b] = degree.get(a, 0) + 1, degree.get(b, 0) + 1
    hub_cut = len(undirected) ** 0.5
    lake.write_partition(spark.createDataFrame(both_ways, GRAPH_EDGES), "graph/edges", ds)
    lake.write_partition(spark.createDataFrame([(m, d, d >= hub_cut) for m, d in sorted(degree.items())],
                                               GRAPH_DEGREES), "graph/degrees", ds)
    lake.publish_tables(spark, "graph", [ds], ["graph/edges", "graph/degrees"])
    for key, schema in (("raw/positions", POSITIONS), ("raw/educations", EDUCATIONS)):
        lake.write_partition(spark.createDataFrame([], schema), key, ds)
    lake.publish_tables(spark, "ingest", [ds], ["raw/positions", "raw/educations"])


def test_candidates_job_goes_incremental_on_day_two_and_equals_the_full_answer(spark, tmp_path):
    """D-1's candidates/pairs are written by hand as a full run publishes them (the brute-force top K),
    so the test runs the job once. No PPR (cold threshold 0) and no careers, so candidates/pairs of D
    holds exactly the triangle top K."""
    assert not candidates.is_scheduled_full(D2, candidates.FULL_EVERY_DAYS)
    lake = Lake(str(tmp_path))
    write_graph_day(spark, lake, D1, DAY_ONE)
    write_graph_day(spark, lake, D2, DAY_TWO)
    day_one = [(m, c, ["triangle"], n, 0, 0, 0.0) for m, c, n in brute_top_k(DAY_ONE, 2)]
    lake.write_partition(spark.createDataFrame(day_one, CANDIDATE_PAIRS), "candidates/pairs", D1)
    lake.publish_tables(spark, "candidates", [D1], ["candidates/pairs"])
    summary = candidates.main(["--date", D2, "--lake", lake.root, "--max-per-source", "2", "--cold-threshold", "0",
                               "--incremental-max-share", "0.5"])
    assert summary["triangles"]["mode"] == "incremental", summary["triangles"]
    assert summary["triangles"]["edges_added"] == 2 and summary["triangles"]["edges_removed"] == 1
    pairs = lake.read(spark, "candidates/pairs", ds=D2).collect()
    got = sorted((r.member_id, r.candidate_id, r.common_connections, tuple(r.sources)) for r in pairs)
    assert got == sorted((m, c, n, ("triangle",)) for m, c, n in brute_top_k(DAY_TWO, 2))


def test_full_runs_are_forced_or_scheduled_from_a_fixed_epoch():
    assert candidates.is_scheduled_full("1970-01-08", 7) and candidates.is_scheduled_full("2024-07-04", 7)
    assert not candidates.is_scheduled_full("2024-07-05", 7)
    assert not candidates.is_scheduled_full("2024-07-04", 0)
    args = candidates.build_parser().parse_args(["--date", "2024-07-04", "--full"])
    assert candidates.why_not_incremental(None, Lake("unused"), args) == "--full"
    args = candidates.build_parser().parse_args(["--date", "2024-07-04"])
    assert candidates.why_not_incremental(None, Lake("unused"), args).startswith("scheduled: every 7 days")
