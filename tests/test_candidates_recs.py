"""candidates and recs jobs end to end on a tiny lake, plus the recs ordering and tie-breaks."""

from __future__ import annotations

import datetime as dt

import pytest
from pyspark.sql import functions as F
from pyspark.testing import assertDataFrameEqual

from joins.candidates import (
    CandidateOptions,
    cold_members,
    complete_candidates,
    propose_candidates,
    with_exact_common_connections,
)
from joins.csr import collect_csr
from joins.naive import TopKInvalid
from mutuals.errors import UsageError
from mutuals.lake import Lake, UnpublishedPartition
from mutuals.tables import CANDIDATE_PAIRS, EDUCATIONS, EVENTS, FEATURES_PAIRS, GRAPH_DEGREES, GRAPH_EDGES, POSITIONS
from ranking.heuristic import top_k_recommendations
from ranking.scorer import broadcast_when_small, top_k_by_score
from spark_jobs import candidates, recs

D = "2024-06-30"
BEFORE, AFTER = "2024-06-29", "2024-07-01"
# Graph: 1-2, 1-3, 2-4, 3-4, 4-5 and a separate 6-7.
UNDIRECTED = [(1, 2), (1, 3), (2, 4), (3, 4), (4, 5), (6, 7)]
# As the graph job publishes them: 6 undirected edges, hub cut sqrt(6) = 2.45, so only member 4 is a hub.
DEGREES = [(1, 2, False), (2, 2, False), (3, 2, False), (4, 3, True), (5, 1, False), (6, 1, False), (7, 1, False)]
SCHOOL_900_OVERLAP = (dt.date(2014, 6, 30) - dt.date(2012, 9, 1)).days + 1   # members 1 and 4: 668
SCHOOL_901_OVERLAP = (dt.date(2022, 6, 30) - dt.date(2021, 9, 1)).days + 1   # members 5 and 7: 303
DETERMINISTIC = "member_id long, candidate_id long, sources array<string>, common_connections int, " \
                "coworker_overlap_days int, schoolmate_overlap_days int"


def day(text):
    return dt.date.fromisoformat(text) if text else None


@pytest.fixture(scope="module")
def tiny_lake(spark, tmp_path_factory):
    lake = Lake(str(tmp_path_factory.mktemp("lake")))
    connected = dt.datetime(2024, 1, 1)
    both_ways = [(a, b, connected) for a, b in UNDIRECTED] + [(b, a, connected) for a, b in UNDIRECTED]
    lake.write_partition(spark.createDataFrame(both_ways, GRAPH_EDGES), "graph/edges", D)
    lake.write_partition(spark.createDataFrame(DEGREES, GRAPH_DEGREES), "graph/degrees", D)

    def records(rows, schema):
        return spark.createDataFrame([(m, o, day(s), day(e)) for m, o, s, e in rows], schema)

    # company 100: member 5's stint first landed open, then closed on D; member 7's lands after D.
    lake.write_partition(records([(2, 100, "2024-01-01", None), (5, 100, "2024-05-01", None),
                                  (6, 100, "2023-01-01", "2024-01-01")], POSITIONS), "raw/positions", BEFORE)
    lake.write_partition(records([(5, 100, "2024-05-01", "2024-05-31")], POSITIONS), "raw/positions", D)
    lake.write_partition(records([(7, 100, "2024-01-01", None)], POSITIONS), "raw/positions", AFTER)
    lake.write_partition(records([
        (1, 900, "2010-09-01", "2014-06-30"), (4, 900, "2012-09-01", "2016-06-30"),
        (3, 900, "2013-01-01", "2013-01-31"),                    # overlaps 1 and 4, but knows both
        (5, 901, "2020-09-01", "2022-06-30"), (7, 901, "2021-09-01", None),
    ], EDUCATIONS), "raw/educations", D)
    lake.publish_tables(spark, "graph", [D], ["graph/edges", "graph/degrees"])
    lake.publish_tables(spark, "ingest", [BEFORE], ["raw/positions"])
    lake.write_partition(spark.createDataFrame([], EVENTS), "raw/events", D)
    lake.publish_tables(spark, "ingest", [D], ["raw/positions", "raw/educations", "raw/events"])
    lake.publish_tables(spark, "ingest", [AFTER], ["raw/positions"])
    candidates.main(["--date", D, "--lake", lake.root, "--max-per-source", "1", "--cold-threshold", "2",
                     "--ppr-walks", "200", "--ppr-max-length", "3", "--seed", "5"])
    return lake


def publish_pair_columns_as_features(spark, lake: Lake) -> None:
    """features/pairs ds=D carrying the candidate-pair columns (the rest null), published as the features
    job would: what recs reads; the features job itself is tested in its own module."""
    pairs = lake.read(spark, "candidates/pairs", ds=D).drop("ds")
    missing = [F.lit(None).cast(f.dataType).alias(f.name) for f in FEATURES_PAIRS.fields if f.name not in pairs.columns]
    lake.write_partition(pairs.select(*pairs.columns, *missing), "features/pairs", D)
    lake.publish_tables(spark, "features", [D], ["features/pairs"])


def test_candidates_end_to_end(spark, tiny_lake):
    pairs = tiny_lake.read(spark, "candidates/pairs", ds=D).drop("ds").cache()
    assert pairs.schema.simpleString() == CANDIDATE_PAIRS.simpleString()
    expected = spark.createDataFrame([
        (1, 4, ["triangle", "schoolmate", "ppr"], 2, 0, SCHOOL_900_OVERLAP),
        (2, 3, ["triangle"], 2, 0, 0),
        (2, 5, ["coworker"], 1, 31, 0),          # friend-of-friend beyond the triangle cap: true count 1
        (3, 2, ["triangle", "ppr"], 2, 0, 0),
        (4, 1, ["triangle", "schoolmate", "ppr"], 2, 0, SCHOOL_900_OVERLAP),
        (5, 2, ["triangle", "coworker"], 1, 31, 0),
        (5, 7, ["schoolmate"], 0, 0, SCHOOL_901_OVERLAP),
        (6, 2, ["coworker"], 0, 1, 0),           # touching on 2024-01-01: one day
        (7, 5, ["schoolmate"], 0, 0, SCHOOL_901_OVERLAP),
    ], DETERMINISTIC)
    assertDataFrameEqual(pairs.drop("ppr_score"), expected)
    has_ppr = F.array_contains("sources", "ppr")
    ppr_scores = [r.ppr_score for r in pairs.where(has_ppr).collect()]
    assert all(0.0 < s < 1.0 for s in ppr_scores)
    assert pairs.where(~has_ppr & (F.col("ppr_score") != 0.0)).count() == 0
    pairs.unpersist()


def test_recs_end_to_end_and_rerun_is_idempotent(spark, tiny_lake):
    publish_pair_columns_as_features(spark, tiny_lake)
    for _ in range(2):
        recs.main(["--date", D, "--lake", tiny_lake.root, "--top-k", "1"])
    top = tiny_lake.read(spark, "recs/topk", ds=D).select("member_id", "candidate_id", "rank", "model_version")
    expected = spark.createDataFrame(
        [(1, 4, 1), (2, 3, 1), (3, 2, 1), (4, 1, 1), (5, 2, 1), (6, 2, 1), (7, 5, 1)],
        "member_id long, candidate_id long, rank int",
    ).withColumn("model_version", F.lit("heuristic-v1"))
    assertDataFrameEqual(top, expected)


def test_recs_without_features_for_the_day_fails_naming_the_features_job(spark, tmp_path):
    """The graph of D is published but features never ran for D: recs fails, it never writes an empty day."""
    lake = Lake(str(tmp_path))
    edges = spark.createDataFrame([(1, 2, None), (2, 1, None)], GRAPH_EDGES)
    lake.write_partition(edges, "graph/edges", D)
    lake.publish_tables(spark, "graph", [D], ["graph/edges"])
    with pytest.raises(UnpublishedPartition, match=r"^features/pairs ds=2024-06-30 is not published: "
                                                   r"run `mutuals run features --date 2024-06-30` first$"):
        recs.main(["--date", D, "--lake", lake.root])
    assert not lake.exists(spark, "recs/topk")
    assert lake.publication(spark, "recs", D) is None


def test_recs_ordering_and_tie_breaks(spark):
    step = 2 * 36_500 + 1
    rows = [  # member, candidate, sources, common, coworker days, schoolmate days, ppr
        (1, 10, ["triangle"], 3, 0, 0, 0.0),
        (1, 12, ["schoolmate"], 2, 0, 1000, 0.0),          # ties with 11 on score: 11 first by id
        (1, 11, ["coworker"], 2, 1000, 0, 0.0),
        (1, 13, ["coworker", "ppr"], 2, 10, 0, 0.9),
        (1, 14, ["coworker", "ppr"], 2, 10, 0, 0.1),
        (1, 15, ["ppr"], 0, 0, 0, 0.5),
        (1, 9, ["ppr"], 0, 0, 0, 0.5),                     # ties with 15: 9 first by id
        (1, 16, ["triangle"], 9, 0, 0, 0.0),               # already connected to 1: never recommended
        (1, 17, ["coworker"], 0, 99_999, 0, 0.0),          # overlap is capped: cannot beat one connection
        (2, 1, ["ppr"], 0, 0, 0, 0.25),
    ]
    pairs = spark.createDataFrame(rows, CANDIDATE_PAIRS)
    edges = spark.createDataFrame([(1, 16), (16, 1)], "src long, dst long")
    result = pairs.transform(top_k_recommendations(7, edges)).drop("model_version")
    expected = spark.createDataFrame([
        (1, 10, 1, 3.0, ["triangle"], 3, 0, 0, 0.0),
        (1, 11, 2, 2 + 1000 / step, ["coworker"], 2, 1000, 0, 0.0),
        (1, 12, 3, 2 + 1000 / step, ["schoolmate"], 2, 0, 1000, 0.0),
        (1, 13, 4, 2 + 10 / step + 0.9 / (2 * step), ["coworker", "ppr"], 2, 10, 0, 0.9),
        (1, 14, 5, 2 + 10 / step + 0.1 / (2 * step), ["coworker", "ppr"], 2, 10, 0, 0.1),
        (1, 17, 6, 36_500 / step, ["coworker"], 0, 99_999, 0, 0.0),
        (1, 9, 7, 0.5 / (2 * step), ["ppr"], 0, 0, 0, 0.5),
        (2, 1, 1, 0.25 / (2 * step), ["ppr"], 0, 0, 0, 0.25),
    ], "member_id long, candidate_id long, rank int, score double, sources array<string>, "
       "common_connections int, coworker_overlap_days int, schoolmate_overlap_days int, ppr_score double")
    assertDataFrameEqual(result, expected, rtol=1e-12, atol=0.0)


def test_excluded_pairs_are_removed_whether_broadcast_or_shuffled(spark):
    """Member 1's best three candidates are 10 (connected), 11 (dismissed) and 12: with K = 2 the top two
    left are 12 and 13, whether the exclusions are broadcast (they fit) or joined by a shuffle (they do
    not fit a zero-byte limit)."""
    scored = spark.createDataFrame(
        [(1, c, ["triangle"], 9 - i, 0, 0, 0.0, float(9 - i)) for i, c in enumerate([10, 11, 12, 13, 14])],
        "member_id long, candidate_id long, sources array<string>, common_connections int, "
        "coworker_overlap_days int, schoolmate_overlap_days int, ppr_score double, score double")
    connected = spark.createDataFrame([(1, 10)], "member_id long, candidate_id long")
    acted = spark.createDataFrame([(1, 11)], "member_id long, candidate_id long")
    for limit_bytes, is_broadcast in ((1 << 20, True), (0, False)):
        excluded = [broadcast_when_small(pairs, 1, limit_bytes) for pairs in (connected, acted)]
        hints = [str(pairs._jdf.queryExecution().analyzed()).lower().count("broadcast") for pairs in excluded]
        assert all(bool(h) == is_broadcast for h in hints)
        top = scored.transform(top_k_by_score(2, "m", excluded)).select("candidate_id", "rank").collect()
        assert sorted((r.rank, r.candidate_id) for r in top) == [(1, 12), (2, 13)]


def test_candidates_read_the_published_degrees_of_the_graph(spark, tmp_path):
    """graph/edges of D is published but graph/degrees is not: candidates fails naming it and writes nothing."""
    lake = Lake(str(tmp_path))
    edges = spark.createDataFrame([(1, 2, None), (2, 1, None)], GRAPH_EDGES)
    lake.write_partition(edges, "graph/edges", D)
    lake.publish_tables(spark, "graph", [D], ["graph/edges"])
    for key, schema in (("raw/positions", POSITIONS), ("raw/educations", EDUCATIONS)):
        lake.write_partition(spark.createDataFrame([], schema), key, D)
    lake.publish_tables(spark, "ingest", [D], ["raw/positions", "raw/educations"])
    with pytest.raises(UnpublishedPartition, match=r"^graph/degrees ds=2024-06-30 is not published"):
        candidates.main(["--date", D, "--lake", lake.root])
    assert not lake.exists(spark, "candidates/pairs")


@pytest.mark.parametrize("broadcast_graph", [False, True])
def test_exact_common_connections_for_pairs_without_a_known_count(spark, broadcast_graph):
    # hub 1 knows 2..5; 6 knows 2 and 3; 7 knows 5; 8 knows nobody. Degrees: 1:4, 2:2, 3:2, 4:1, 5:2, 6:2, 7:1.
    undirected = [(1, 2), (1, 3), (1, 4), (1, 5), (6, 2), (6, 3), (7, 5)]
    edges = spark.createDataFrame(undirected + [(b, a) for a, b in undirected], "src long, dst long")
    degrees = spark.createDataFrame([(1, 4), (2, 2), (3, 2), (4, 1), (5, 2), (6, 2), (7, 1)],
                                    "member_id long, degree long")
    pairs = spark.createDataFrame([(1, 6, None), (6, 1, None), (1, 7, None), (6, 7, None), (2, 3, 9), (8, 1, None)],
                                  "member_id long, candidate_id long, known int")
    csr = collect_csr(edges) if broadcast_graph else None
    result = pairs.transform(with_exact_common_connections(edges, degrees, "known", csr=csr))
    assertDataFrameEqual(result, spark.createDataFrame(
        [(1, 6, None, 2), (6, 1, None, 2), (1, 7, None, 1), (6, 7, None, 0), (2, 3, 9, 9), (8, 1, None, 0)],
        "member_id long, candidate_id long, known int, common_connections int"))


def test_recs_top_k_below_one_is_a_usage_error(spark):
    edges = spark.createDataFrame([(1, 2), (2, 1)], "src long, dst long")
    with pytest.raises(TopKInvalid, match="found 0") as raised:
        top_k_recommendations(0, edges)
    assert isinstance(raised.value, UsageError) and raised.value.exit_code == 2


def test_the_merge_reads_the_persisted_proposals_instead_of_running_every_source_again(spark, tiny_lake):
    lake = tiny_lake
    edges = lake.read_published(spark, "graph/edges", D)
    degrees = lake.read_published(spark, "graph/degrees", D)
    positions = lake.read_published_as_of(spark, "raw/positions", D)
    educations = lake.read_published_as_of(spark, "raw/educations", D)
    options = CandidateOptions(as_of=D, max_per_source=1, cold_threshold=2, ppr_walks=20, ppr_max_length=3)
    proposed = propose_candidates(edges, positions, educations, options).persist()
    cold = degrees.transform(cold_members(options.cold_threshold, proposed)).persist()
    try:
        merged = complete_candidates(edges, degrees, proposed, cold, options)
        plan = merged._jdf.queryExecution().optimizedPlan().toString()
        # every read of the proposals and of the cold members is a read of a persisted copy: the
        # proposals three times (the warm members' rows with a triangle count, those without, the rows
        # of cold members merged again with their PPR rows), the cold members four times (the seeds of
        # the walks, and the three splits of the proposals), each printing its own cached plan, which
        # reads the persisted proposals once: 3 + 4 x 2
        assert plan.count("InMemoryRelation") == 11
        assert plan.count("MapInArrow") == 7  # the triangle kernel, once inside each cached plan printed
    finally:
        cold.unpersist()
        proposed.unpersist()


def test_the_merge_of_the_sources_adds_no_shuffle_of_its_own(spark, tiny_lake):
    """The sources arrive partitioned by member; the one aggregation per (member, candidate) that merges
    them runs where the rows are: no exchange between the union of the sources and the aggregation."""
    lake = tiny_lake
    edges = lake.read_published(spark, "graph/edges", D)
    positions = lake.read_published_as_of(spark, "raw/positions", D)
    educations = lake.read_published_as_of(spark, "raw/educations", D)
    options = CandidateOptions(as_of=D, max_per_source=1)
    plan = propose_candidates(edges, positions, educations, options)._jdf.queryExecution().executedPlan()
    text = plan.toString()
    top = text[:text.index("Union")]
    assert "HashAggregate" in top and "Exchange" not in top


def test_cold_members_are_those_with_fewer_distinct_candidates_than_the_threshold(spark):
    """Threshold 2, one proposal row per (member, candidate). Member 1: one candidate (cold); 2: two
    (warm); 3: three (warm); 4: nothing proposed (cold); 5: one candidate (cold)."""
    proposed = spark.createDataFrame(
        [(1, 10), (2, 10), (2, 11), (3, 10), (3, 11), (3, 12), (5, 10)], "member_id long, candidate_id long")
    members = spark.createDataFrame([(m,) for m in range(1, 6)], "member_id long")
    cold = members.transform(cold_members(2, proposed))
    assert sorted(r.member_id for r in cold.collect()) == [1, 4, 5]
