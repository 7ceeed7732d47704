"""A day is published whole or not at all: a crash between two table commits leaves it unpublished,
downstream jobs refuse it naming the job to re-run, and re-running that job completes the day."""

from __future__ import annotations

import argparse
import datetime as dt

import pytest
from delta.tables import DeltaTable
from pyspark.sql import Row
from pyspark.testing import assertDataFrameEqual

from mutuals.lake import IncompletePublication, Lake, UnpublishedPartition
from mutuals.tables import spec
from spark_jobs import candidates, graph, recs

D = "2026-01-02"
T0 = dt.datetime(2026, 1, 2, 8, 0)
GRAPH_UNPUBLISHED = (r"^graph/edges ds=2026-01-02 is not published: "
                     r"run `mutuals run graph --date 2026-01-02` first$")


def ingested_path_lake(spark, root) -> Lake:
    """Ingest of D published by hand: the path 1 - 2 - 3, nobody's positions or educations."""
    lake = Lake(str(root))
    connections = spark.createDataFrame([(1, 2, T0), (3, 2, T0)], spec("raw/connections").schema)
    lake.write_partition(connections, "raw/connections", D)
    for key in ("raw/positions", "raw/educations"):
        lake.write_partition(spark.createDataFrame([], spec(key).schema), key, D)
    lake.publish_tables(spark, "ingest", [D], ["raw/connections", "raw/positions", "raw/educations"])
    return lake


def run_graph(lake: Lake, spark) -> dict:
    return graph.run(spark, argparse.Namespace(date=D, lake=lake.root))


def run_candidates(lake: Lake) -> object:
    return candidates.main(["--date", D, "--lake", lake.root, "--ppr-walks", "20", "--seed", "3"])


def delta_version(spark, lake: Lake, key: str) -> int:
    """The table's latest version as Delta's own history reports it."""
    return int(DeltaTable.forPath(spark, lake.path(key)).history(1).first()["version"])


def half_written_edges(spark):
    return spark.createDataFrame([(1, 2, T0), (2, 1, T0)], spec("graph/edges").schema)


def test_a_crash_between_graph_commits_leaves_the_day_unpublished_and_a_rerun_completes_it(spark, tmp_path):
    lake = ingested_path_lake(spark, tmp_path / "lake")
    # the graph job committed graph/edges and died before graph/degrees and its publication
    lake.write_partition(half_written_edges(spark), "graph/edges", D)

    with pytest.raises(UnpublishedPartition, match=GRAPH_UNPUBLISHED):
        run_candidates(lake)
    assert not lake.exists(spark, "candidates/pairs")
    with pytest.raises(UnpublishedPartition, match=r"^features/pairs ds=2026-01-02 is not published: "
                                                   r"run `mutuals run features --date 2026-01-02` first$"):
        recs.main(["--date", D, "--lake", lake.root])

    summary = run_graph(lake, spark)
    record = lake.publication(spark, "graph", D)
    assert record["run_id"] == summary["run_id"]
    assert record["tables"] == [
        {"table": "graph/edges", "version": delta_version(spark, lake, "graph/edges"), "rows": 4},
        {"table": "graph/degrees", "version": delta_version(spark, lake, "graph/degrees"), "rows": 3},
    ]
    run_candidates(lake)
    pairs = lake.read_published(spark, "candidates/pairs", D).select("member_id", "candidate_id")
    assertDataFrameEqual(pairs, [Row(member_id=1, candidate_id=3), Row(member_id=3, candidate_id=1)])


def test_a_crash_while_rerunning_a_published_day_unpublishes_it_until_the_rerun_completes(spark, tmp_path):
    lake = ingested_path_lake(spark, tmp_path / "lake")
    first = run_graph(lake, spark)
    assert lake.read_published(spark, "graph/edges", D).count() == 4

    # a re-run of graph commits graph/edges again, then dies before graph/degrees
    rerun = lake.day_run(spark, "graph", [D])
    rerun.write_partition(half_written_edges(spark), "graph/edges", D)

    assert lake.publication(spark, "graph", D) is None
    with pytest.raises(UnpublishedPartition, match=GRAPH_UNPUBLISHED):
        run_candidates(lake)
    with pytest.raises(UnpublishedPartition, match=r"^graph/degrees ds=2026-01-02 is not published"):
        lake.read_published(spark, "graph/degrees", D)

    second = run_graph(lake, spark)
    assert second["run_id"] != first["run_id"]
    assert lake.read_published(spark, "graph/edges", D).count() == 4
    assert lake.published_days(spark, "graph/degrees") == [D]


def test_a_job_cannot_publish_a_day_without_all_its_tables_or_write_another_jobs_table(spark, tmp_path):
    lake = ingested_path_lake(spark, tmp_path / "lake")
    day = lake.day_run(spark, "graph", [D])
    with pytest.raises(IncompletePublication, match=r"^graph: graph/edges has not been written by this run$"):
        day.committed_rows("graph/edges")
    day.write_partition(half_written_edges(spark), "graph/edges", D)
    assert day.committed_rows("graph/edges") == {D: 2}  # the two rows of half_written_edges
    with pytest.raises(IncompletePublication, match=r"tables not written: \['graph/degrees'\]"):
        day.publish()
    assert lake.publication(spark, "graph", D) is None
    with pytest.raises(IncompletePublication, match=r"graph may not write raw/connections: the registry says "
                                                    r"ingest writes it"):
        day.write_partition(half_written_edges(spark), "raw/connections", D)


def test_jobs_publishing_the_same_day_keep_their_own_records(spark, tmp_path):
    lake = ingested_path_lake(spark, tmp_path / "lake")
    run_graph(lake, spark)
    run_graph(lake, spark)  # a re-run replaces graph's record and leaves ingest's alone
    assert [t["table"] for t in lake.publication(spark, "ingest", D)["tables"]] == [
        "raw/connections", "raw/positions", "raw/educations"]
    assert [t["table"] for t in lake.publication(spark, "graph", D)["tables"]] == ["graph/edges", "graph/degrees"]
    assert lake.read(spark, "meta/publications").count() == 2


def test_a_publication_or_retraction_by_another_lake_object_is_seen_by_the_next_lookup(spark, tmp_path):
    reader = ingested_path_lake(spark, tmp_path / "lake")
    assert reader.published_rows(spark, "raw/connections", D, D) == {D: 2}
    assert reader.published_rows(spark, "graph/edges", D, D) == {}

    writer = Lake(reader.root)  # another process's view of the same lake
    run_graph(writer, spark)
    assert reader.published_rows(spark, "graph/edges", D, D) == {D: 4}
    assert reader.publication(spark, "graph", D)["tables"][0]["table"] == "graph/edges"

    writer.retract(spark, "graph", [D])
    assert reader.published_rows(spark, "graph/edges", D, D) == {}
    assert reader.publication(spark, "graph", D) is None


def test_tables_written_at_once_are_each_committed_with_the_run_and_published_together(spark, tmp_path):
    lake = ingested_path_lake(spark, tmp_path / "lake")
    run_graph(lake, spark)
    day = lake.day_run(spark, "graph", [D])
    degrees = spark.createDataFrame([(1, 1, False), (2, 2, False), (3, 1, False)], spec("graph/degrees").schema)
    with pytest.raises(IncompletePublication, match=r"^graph: a table is written twice at once"):
        day.write_partitions_at_once([(half_written_edges(spark), "graph/edges"),
                                      (half_written_edges(spark), "graph/edges")], D)
    day.write_partitions_at_once([(half_written_edges(spark), "graph/edges"), (degrees, "graph/degrees")], D)
    assert lake.publication(spark, "graph", D) is None  # written, not yet published
    published = day.publish()
    assert {key: entry["rows"] for key, entry in published["tables"].items()} == {
        "graph/edges": {D: 2}, "graph/degrees": {D: 3}}
    assert {key: entry["version"] for key, entry in published["tables"].items()} == {
        "graph/edges": delta_version(spark, lake, "graph/edges"),
        "graph/degrees": delta_version(spark, lake, "graph/degrees")}
    assert sorted(lake.read_published(spark, "graph/degrees", D).select("member_id").collect()) == [
        Row(member_id=1), Row(member_id=2), Row(member_id=3)]


def test_a_pair_table_keeps_file_statistics_of_its_key_columns_only_and_counts_rows_per_day(spark, tmp_path):
    import json

    lake = Lake(str(tmp_path / "lake"))
    rows = [(1, 2, ["triangle"], 1, 0, 0, 0.0), (1, 3, ["coworker"], 0, 30, 0, 0.0)]
    day = lake.day_run(spark, "candidates", [D])
    day.write_partition(spark.createDataFrame(rows, spec("candidates/pairs").schema), "candidates/pairs", D)
    log = sorted((tmp_path / "lake" / "candidates" / "pairs" / "_delta_log").glob("*.json"))[-1]
    adds = [json.loads(line)["add"] for line in log.read_text().splitlines() if '"add"' in line]
    stats = [json.loads(a["stats"]) for a in adds]
    assert {name for s in stats for name in s["minValues"]} == {"member_id", "candidate_id"}
    assert sum(s["numRecords"] for s in stats) == 2
    assert day.committed_rows("candidates/pairs") == {D: 2}
