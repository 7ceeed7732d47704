"""Graph snapshot semantics, idempotent re-runs, and the partition race (real Delta tables)."""

from __future__ import annotations

import argparse
import datetime as dt
import threading

import pytest
from pyspark.sql import Row
from pyspark.testing import assertDataFrameEqual

from mutuals.errors import Conflict, MissingInput, SchemaError
from mutuals.lake import Lake, MissingTable, PartitionWriteConflict, SchemaMismatch, UnpublishedPartition
from mutuals.tables import spec
from spark_jobs import graph

T0 = dt.datetime(2026, 1, 1, 8, 0)
T1 = dt.datetime(2026, 1, 2, 8, 0)


def _connections(spark, rows):
    return spark.createDataFrame(rows, spec("raw/connections").schema)


@pytest.fixture(scope="module")
def graph_lake(spark, tmp_path_factory):
    lake = Lake(str(tmp_path_factory.mktemp("lake")))
    lake.write_partition(_connections(spark, [(1, 2, T0), (2, 1, T0), (3, 3, T0), (1, 3, T0)]),
                         "raw/connections", "2026-01-01")
    lake.write_partition(_connections(spark, [(3, 1, T1), (2, 4, T1)]), "raw/connections", "2026-01-02")
    lake.write_partition(_connections(spark, [(4, 5, T1)]), "raw/connections", "2026-01-03")  # after D
    lake.publish_tables(spark, "ingest", ["2026-01-01", "2026-01-02", "2026-01-03"], ["raw/connections"])
    graph.run(spark, argparse.Namespace(date="2026-01-02", lake=lake.root))
    return lake


def test_edges_are_symmetric_deduplicated_loop_free_as_of_d(spark, graph_lake):
    edges = graph_lake.read(spark, "graph/edges", "2026-01-02").select("src", "dst", "connected_at")
    assertDataFrameEqual(edges, [
        Row(src=1, dst=2, connected_at=T0), Row(src=2, dst=1, connected_at=T0),
        Row(src=1, dst=3, connected_at=T0), Row(src=3, dst=1, connected_at=T0),  # earliest of two
        Row(src=2, dst=4, connected_at=T1), Row(src=4, dst=2, connected_at=T1),
    ])


def test_degrees_and_hubs(spark, graph_lake):
    degrees = graph_lake.read(spark, "graph/degrees", "2026-01-02").select("member_id", "degree", "is_hub")
    # 3 undirected edges -> hub cut sqrt(3) = 1.73: degree 2 members are hubs.
    assertDataFrameEqual(degrees, [
        Row(member_id=1, degree=2, is_hub=True), Row(member_id=2, degree=2, is_hub=True),
        Row(member_id=3, degree=1, is_hub=False), Row(member_id=4, degree=1, is_hub=False),
    ])


def test_graph_rerun_gives_identical_tables(spark, graph_lake):
    before = sorted(graph_lake.read(spark, "graph/edges").collect())
    graph.run(spark, argparse.Namespace(date="2026-01-02", lake=graph_lake.root))
    after = sorted(graph_lake.read(spark, "graph/edges").collect())
    assert before == after
    assert graph_lake.partitions(spark, "graph/edges") == ["2026-01-02"]


def test_write_rejects_a_schema_mismatch(spark, tmp_path):
    lake = Lake(str(tmp_path))
    wrong = spark.createDataFrame([(1, "2")], "src long, dst string")
    with pytest.raises(SchemaMismatch, match=r"missing=\['connected_at'\].*dst: expected bigint, found string"):
        lake.write_partition(wrong, "graph/edges", "2026-01-01")


def test_write_partition_touches_only_its_day(spark, tmp_path):
    lake = Lake(str(tmp_path))
    lake.write_partition(_connections(spark, [(1, 2, T0)]), "raw/connections", "2026-01-01")
    lake.write_partition(_connections(spark, [(3, 4, T1)]), "raw/connections", "2026-01-02")
    lake.write_partition(_connections(spark, [(5, 6, T1)]), "raw/connections", "2026-01-02")
    rows = lake.read(spark, "raw/connections").select("src", "ds")
    assertDataFrameEqual(rows, [Row(src=1, ds="2026-01-01"), Row(src=5, ds="2026-01-02")])
    assert [r.src for r in lake.read_as_of(spark, "raw/connections", "2026-01-01").collect()] == [1]


def test_racing_writers_never_double_a_partition(spark, tmp_path):
    """Two writers replace the same (existing, then empty) partition at once: rows never double."""
    lake = Lake(str(tmp_path))
    lake.write_partition(_connections(spark, [(0, 1, T0)]), "raw/connections", "2026-01-01")
    rows = [(i, i + 1, T1) for i in range(200)]
    for day in ("2026-01-01", "2026-01-02"):  # replacing an existing partition, then a new empty one
        for _ in range(3):
            outcomes: list[str] = []
            barrier = threading.Barrier(2)

            def write(day=day, outcomes=outcomes, barrier=barrier):
                frame = _connections(spark, rows)
                barrier.wait()
                try:
                    lake.write_partition(frame, "raw/connections", day)
                    outcomes.append("ok")
                except PartitionWriteConflict:
                    outcomes.append("conflict")

            threads = [threading.Thread(target=write) for _ in range(2)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            assert "ok" in outcomes
            assert lake.read(spark, "raw/connections", day).count() == len(rows), outcomes


def test_lake_errors_belong_to_their_families():
    assert issubclass(MissingTable, MissingInput) and MissingTable("x").exit_code == 10
    assert issubclass(UnpublishedPartition, MissingInput) and UnpublishedPartition("x").exit_code == 10
    assert issubclass(SchemaMismatch, SchemaError) and SchemaMismatch("x").exit_code == 4
    assert issubclass(PartitionWriteConflict, Conflict) and PartitionWriteConflict("x").exit_code == 6


def test_graph_for_a_day_never_ingested_fails_and_writes_nothing(spark, tmp_path):
    lake = Lake(str(tmp_path))
    with pytest.raises(UnpublishedPartition, match=r"^raw/connections ds=2026-01-02 is not published: "
                                                   r"run `mutuals run ingest --date 2026-01-02` first$"):
        graph.run(spark, argparse.Namespace(date="2026-01-02", lake=lake.root))
    assert not lake.exists(spark, "graph/edges")


def test_graph_does_not_republish_an_older_snapshot_for_a_later_day(spark, graph_lake):
    """Days 01-04 and 01-05 were never ingested: graph for 01-05 names both, it never reuses 01-03's edges."""
    with pytest.raises(UnpublishedPartition, match=r"^raw/connections ds=2026-01-04, ds=2026-01-05 are not "
                                                   r"published: run `mutuals run ingest --date D` for each"):
        graph.run(spark, argparse.Namespace(date="2026-01-05", lake=graph_lake.root))
    assert graph_lake.partitions(spark, "graph/edges") == ["2026-01-02"]


def test_an_as_of_read_skips_no_day_half_written(spark, tmp_path):
    """A raw/connections partition written without its ingest publication is a hole, not a day."""
    lake = Lake(str(tmp_path))
    for day in ("2026-01-01", "2026-01-02", "2026-01-03"):
        lake.write_partition(_connections(spark, [(1, 2, T0)]), "raw/connections", day)
    lake.publish_tables(spark, "ingest", ["2026-01-01"], ["raw/connections"])
    lake.publish_tables(spark, "ingest", ["2026-01-03"], ["raw/connections"])
    with pytest.raises(UnpublishedPartition, match=r"^raw/connections ds=2026-01-02 is not published"):
        lake.read_published_as_of(spark, "raw/connections", "2026-01-03")
    assert lake.read_published_as_of(spark, "raw/connections", "2026-01-01").count() == 1
