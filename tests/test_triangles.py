"""close_triangles on named graphs with hand-written answers, and every strategy against the self-join."""

from __future__ import annotations

import datetime as dt
from collections import Counter

import numpy as np
import pytest
from pyspark.sql import Row
from pyspark.testing import assertDataFrameEqual

from joins.csr import build_csr
from joins.edges import member_degrees, symmetric_edges
from joins.naive import EdgeColumnsMissing, TopKInvalid
from joins.triangle_kernel import top_k_for_source_range
from joins.triangles import StrategyUnknown, close_triangles, plan_broadcast, plan_work_units
from tests.graphs import STAR_LEAVES, edges_frame, result_frame

# Tiny budgets force several candidate shards and source blocks on these small graphs.
PARTITIONED_TINY = {"strategy": "partitioned", "max_task_bytes": 6000}
STRATEGY_OPTIONS = {
    "broadcast": {"strategy": "broadcast"},
    "partitioned": PARTITIONED_TINY,
    "naive": {"strategy": "naive"},
}


def test_triangle_has_no_candidates(spark):
    result = close_triangles(edges_frame(spark, "triangle"), 5)
    assertDataFrameEqual(result, result_frame(spark, []))


def test_path_closes_two_steps_only(spark):
    expected = [(1, 3, 1), (3, 1, 1), (2, 4, 1), (4, 2, 1)]
    result = close_triangles(edges_frame(spark, "path"), 5)
    assertDataFrameEqual(result, result_frame(spark, expected))


def test_two_cliques_meet_only_through_the_shared_member(spark):
    expected = [(a, c, 1) for a in (1, 2, 3) for c in (5, 6)] + [(a, c, 1) for a in (5, 6, 7) for c in (1, 2)]
    result = close_triangles(edges_frame(spark, "two_cliques"), 2)
    assertDataFrameEqual(result, result_frame(spark, expected))


@pytest.mark.parametrize("strategy", sorted(STRATEGY_OPTIONS))
def test_star_leaves_get_the_smallest_other_leaves(spark, strategy):
    # the hub 100 knows everyone; each leaf shares only the hub with every other leaf: common 1,
    # so the tie-break (candidate id ascending) alone picks the three smallest other leaves.
    expected = [(1, 2, 1), (1, 3, 1), (1, 4, 1), (2, 1, 1), (2, 3, 1), (2, 4, 1), (3, 1, 1), (3, 2, 1),
                (3, 4, 1)]
    expected += [(leaf, c, 1) for leaf in range(4, STAR_LEAVES + 1) for c in (1, 2, 3)]
    result = close_triangles(edges_frame(spark, "star"), 3, **STRATEGY_OPTIONS[strategy])
    assertDataFrameEqual(result, result_frame(spark, expected))


@pytest.mark.parametrize("strategy", sorted(STRATEGY_OPTIONS))
def test_shared_triple_orders_by_common_then_id(spark, strategy):
    expected = [(1, 5, 3), (1, 6, 1), (5, 1, 3), (5, 6, 1), (6, 1, 1), (6, 5, 1),
                (2, 3, 2), (2, 4, 2), (3, 2, 2), (3, 4, 2), (4, 2, 2), (4, 3, 2)]
    result = close_triangles(edges_frame(spark, "shared_triple"), 2, **STRATEGY_OPTIONS[strategy])
    assertDataFrameEqual(result, result_frame(spark, expected))


def _random_graphs(seed: int) -> list[tuple[int, int]]:
    """Three disjoint random graphs (sparse, dense, one hub) in one edge list, with dups and loops."""
    rng = np.random.default_rng(seed)
    rows: list[tuple[int, int]] = []
    for offset, (n, m) in zip((0, 1000, 2000), ((30, 45), (12, 50), (25, 40)), strict=True):
        src, dst = rng.integers(0, n, m), rng.integers(0, n, m)
        if offset == 2000:
            src[: m // 2] = 0  # a hub
        rows += [(int(a) * 3 + offset, int(b) * 3 + offset) for a, b in zip(src, dst, strict=True)]
    return rows


def test_kernel_strategies_match_the_self_join_on_random_graphs(spark):
    edges = spark.createDataFrame(_random_graphs(11), "src long, dst long")
    reference = close_triangles(edges, 3, strategy="naive").localCheckpoint()
    assertDataFrameEqual(close_triangles(edges, 3, strategy="broadcast"), reference)
    assertDataFrameEqual(close_triangles(edges, 3, **PARTITIONED_TINY), reference)
    assertDataFrameEqual(close_triangles(edges, 3, broadcast_limit_bytes=64, max_task_bytes=6000), reference)


def test_tiny_budget_really_makes_several_shards_and_blocks():
    rows = np.array(_random_graphs(11))
    csr = build_csr(rows[:, 0], rows[:, 1])
    units = plan_work_units(csr.ids, csr.degrees(), csr.wedges(), 3, PARTITIONED_TINY["max_task_bytes"], 2)
    assert units.n_shards >= 2 and units.n_blocks >= 2


def _brute_force(rows: list[tuple[int, int]], k: int) -> set[tuple[int, int, int]]:
    """Independent reference in plain Python sets: count common neighbours of every non-adjacent pair."""
    adj: dict[int, set[int]] = {}
    for a, b in rows:
        if a != b:
            adj.setdefault(a, set()).add(b)
            adj.setdefault(b, set()).add(a)
    out = set()
    for a, nbrs in adj.items():
        counts = Counter(c for b in nbrs for c in adj[b] if c != a and c not in nbrs)
        out |= {(a, c, n) for c, n in sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:k]}
    return out


def test_kernel_matches_brute_force_on_many_small_graphs():
    rng = np.random.default_rng(5)
    for _ in range(150):
        n, m, k = int(rng.integers(2, 25)), int(rng.integers(1, 70)), int(rng.integers(1, 5))
        rows = [(int(a) * 5 - 40, int(b) * 5 - 40) for a, b in rng.integers(0, n, (m, 2))]
        csr = build_csr(np.array([r[0] for r in rows]), np.array([r[1] for r in rows]))
        a, c, common = top_k_for_source_range(csr.indptr, csr.indices, 0, csr.n_nodes, k)
        found = set(zip(csr.ids[a].tolist(), csr.ids[c].tolist(), common.tolist(), strict=True))
        assert found == _brute_force(rows, k)


def test_blocks_are_cut_by_wedges_so_the_hub_is_not_packed_with_members():
    # hub 0 with 300 leaves, plus a long path: by member count the hub's block would hold ~1/8 of all
    # members; by wedge count it holds few, since its wedges alone are a large share of the total.
    src = np.array([0] * 300 + list(range(1000, 1999)))
    dst = np.array(list(range(1, 301)) + list(range(1001, 2000)))
    csr = build_csr(src, dst)
    plan = plan_broadcast(csr, 5, 256 << 20, parallelism=2)
    hub_block = int(np.searchsorted(plan.bounds, 0, side="right") - 1)
    members_in_hub_block = int(plan.bounds[hub_block + 1] - plan.bounds[hub_block])
    assert members_in_hub_block < csr.n_nodes / len(plan.task_blocks) / 4
    assert plan.task_blocks[0] == hub_block  # heaviest block runs first


def test_missing_columns_are_named(spark):
    edges = spark.createDataFrame([(1, 2)], "from_id long, dst long")
    with pytest.raises(EdgeColumnsMissing, match=r"missing \['src'\], present \['from_id', 'dst'\]"):
        close_triangles(edges, 5)


def test_bad_arguments_are_rejected(spark):
    edges = edges_frame(spark, "path")
    with pytest.raises(StrategyUnknown, match="found 'fast'"):
        close_triangles(edges, 5, strategy="fast")
    with pytest.raises(TopKInvalid, match="found 0"):
        close_triangles(edges, 0)


def test_the_one_normaliser_merges_directions_drops_loops_and_keeps_the_earliest_time(spark):
    early, late = dt.datetime(2026, 1, 1, 8, 0), dt.datetime(2026, 1, 2, 8, 0)
    rows = [(7, 100, late), (100, 7, early), (100, 100, early), (1, 2, None), (None, 3, early)]
    timed = spark.createDataFrame(rows, "src long, dst long, connected_at timestamp")
    assertDataFrameEqual(symmetric_edges(timed), [
        Row(src=7, dst=100, connected_at=early), Row(src=100, dst=7, connected_at=early),
        Row(src=1, dst=2, connected_at=None), Row(src=2, dst=1, connected_at=None),
    ])
    untimed = symmetric_edges(edges_frame(spark, "star"))
    assert untimed.columns == ["src", "dst"]
    expected = [(100, leaf) for leaf in range(1, STAR_LEAVES + 1)] + [(leaf, 100) for leaf in range(1, STAR_LEAVES + 1)]
    assertDataFrameEqual(untimed, spark.createDataFrame(expected, "src long, dst long"))


def test_degrees_and_hubs_of_the_path(spark):
    # 1 - 2 - 3 - 4: three undirected edges, hub cut sqrt(3) = 1.73, so the two middle members are hubs
    degrees = member_degrees(symmetric_edges(edges_frame(spark, "path")))
    assertDataFrameEqual(degrees, [
        Row(member_id=1, degree=1, is_hub=False), Row(member_id=2, degree=2, is_hub=True),
        Row(member_id=3, degree=2, is_hub=True), Row(member_id=4, degree=1, is_hub=False),
    ])
