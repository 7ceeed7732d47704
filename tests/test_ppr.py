"""Personalized PageRank by Monte Carlo walks: exclusions, cap, and determinism across partitionings."""

from __future__ import annotations

import pytest
from pyspark.sql.types import LongType, StructField, StructType
from pyspark.testing import assertDataFrameEqual

from joins.ppr import personalized_pagerank
from mutuals.checks import MissingColumns
from mutuals.session import sql_conf

EDGES = StructType([StructField("src", LongType(), False), StructField("dst", LongType(), False)])


def graph(spark, undirected):
    """Both directions of each undirected edge, as graph/edges stores them."""
    return spark.createDataFrame([(a, b) for a, b in undirected] + [(b, a) for a, b in undirected], EDGES)


def seeds(spark, members):
    return spark.createDataFrame([(m,) for m in members], "member_id long")


def test_path_excludes_self_and_neighbours(spark):
    edges = graph(spark, [(1, 2), (2, 3), (3, 4)])
    ppr = personalized_pagerank(edges, walks_per_member=40, max_length=5, restart_prob=0.15, seed=7, top_k=5)
    rows = seeds(spark, [1, 9]).transform(ppr).collect()  # 9 has no connection: it cannot walk
    assert sorted((r.member_id, r.candidate_id) for r in rows) == [(1, 3), (1, 4)]
    scores = {r.candidate_id: r.ppr_score for r in rows}
    assert 0.0 < scores[4] < scores[3] < 1.0  # the nearer stranger is visited more often
    # every score is visits / (walks * length): a whole number of the 200 steps
    assert all(abs(s * 200 - round(s * 200)) < 1e-9 for s in scores.values())


def test_same_seed_same_output_whatever_the_partitioning(spark):
    ring = [(i, i % 12 + 1) for i in range(1, 13)]
    chords = [(1, 5), (2, 9), (3, 7), (6, 11), (4, 10)]
    edges = graph(spark, ring + chords)
    members = list(range(1, 13))
    options = dict(walks_per_member=20, max_length=5, restart_prob=0.2, top_k=4)

    first = seeds(spark, members).coalesce(1).transform(personalized_pagerank(edges.coalesce(1), seed=11, **options))
    expected = first.collect()
    with sql_conf(spark, {"spark.sql.shuffle.partitions": "7"}):
        reshuffled = seeds(spark, members).repartition(3).transform(
            personalized_pagerank(edges.repartition(5, "dst"), seed=11, **options))
        assertDataFrameEqual(reshuffled, expected, rtol=0.0, atol=0.0)

    assert len(expected) == 12 * 4  # capped at top_k=4 per member
    neighbours = {(a, b) for a, b in ring + chords} | {(b, a) for a, b in ring + chords}
    assert not [r for r in expected if (r.member_id, r.candidate_id) in neighbours or r.member_id == r.candidate_id]
    other_seed = seeds(spark, members).transform(personalized_pagerank(edges, seed=12, **options)).collect()
    assert sorted(other_seed) != sorted(expected)


def test_rejects_bad_inputs(spark):
    edges = graph(spark, [(1, 2)])
    with pytest.raises(ValueError, match="restart_prob"):
        personalized_pagerank(edges, restart_prob=1.0, seed=1, top_k=3)
    with pytest.raises(MissingColumns, match="member_id"):
        spark.createDataFrame([(1,)], "id long").transform(personalized_pagerank(edges, seed=1, top_k=3))
