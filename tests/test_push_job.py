"""spark_jobs/push.py on a tiny hand-made recs/topk partition: Avro layout, determinism, push and readback."""

from __future__ import annotations

import argparse

import fastavro
import pytest
from pyspark.sql import Row

from demo.served import print_served_sample
from mutuals.lake import Lake, UnpublishedPartition
from mutuals.tables import RECS_TOPK
from push.push_input import write_push_input
from push.schemas import load_value_schema
from push.stores import open_store
from spark_jobs import push as push_job

DS = "2026-01-03"


def rec(member, cand, rank, score, sources, common=1, cow=0, school=0, ppr=0.0):
    return Row(member_id=member, candidate_id=cand, rank=rank, score=score, sources=sources,
               common_connections=common, coworker_overlap_days=cow, schoolmate_overlap_days=school,
               ppr_score=ppr, model_version="m1")


ROWS = [  # ranks deliberately out of order in the input
    rec(1, 30, 2, 0.4, ["ppr"], common=0, ppr=0.02),
    rec(1, 20, 1, 0.9, ["triangle", "coworker"], common=3, cow=120),
    rec(2, 10, 1, 0.7, ["schoolmate"], school=400),
    rec(3, 10, 1, 0.5, ["triangle"], common=2),
]


def candidate(cand, rank, score, sources, common=1, cow=0, school=0, ppr=0.0):
    return {"candidate_id": cand, "rank": rank, "score": score, "common_connections": common, "sources": sources,
            "coworker_overlap_days": cow, "schoolmate_overlap_days": school, "ppr_score": ppr}


SERVED = {  # ROWS as served values, written out by hand
    1: {"generated_ds": DS, "model_version": "m1", "candidates": [
        candidate(20, 1, 0.9, ["triangle", "coworker"], common=3, cow=120),
        candidate(30, 2, 0.4, ["ppr"], common=0, ppr=0.02)]},
    2: {"generated_ds": DS, "model_version": "m1", "candidates": [candidate(10, 1, 0.7, ["schoolmate"], school=400)]},
    3: {"generated_ds": DS, "model_version": "m1", "candidates": [candidate(10, 1, 0.5, ["triangle"], common=2)]},
}


def published_recs(spark, root: str) -> Lake:
    lake = Lake(root)
    lake.write_partition(spark.createDataFrame(ROWS, RECS_TOPK), "recs/topk", DS)
    lake.publish_tables(spark, "recs", [DS], ["recs/topk"])
    return lake


def keys_per_file(folder) -> dict[str, list[int]]:
    found = {}
    for path in sorted(folder.iterdir()):
        with path.open("rb") as fh:
            found[path.name] = [r["key"] for r in fastavro.reader(fh)]
    return found


def test_push_job_writes_partitioned_avro_and_serves_it(spark, tmp_path, monkeypatch):
    lake = published_recs(spark, str(tmp_path / "lake"))
    args = argparse.Namespace(date=DS, lake=lake.root, store=str(tmp_path / "store"), partitions=2, max_drop=0.2)

    first = push_job.run(spark, args)

    folder = tmp_path / "lake" / "push" / "recommendations" / f"ds={DS}"
    assert sorted(p.name for p in folder.iterdir()) == ["part-00000.avro", "part-00001.avro"]
    keys = []
    for path in sorted(folder.iterdir()):
        with path.open("rb") as fh:
            reader = fastavro.reader(fh)
            assert [f["name"] for f in reader.writer_schema["fields"]] == ["key", "value"]
            file_keys = [r["key"] for r in reader]
        assert file_keys == sorted(file_keys)
        keys += file_keys
    assert sorted(keys) == [1, 2, 3]
    assert (first["version"], first["records"], first["avro_records"]) == (1, 3, 3)

    store = open_store(str(tmp_path / "store"))
    read = store.get([1, 2, 99])
    assert read.version == 1
    assert read.values[0] == {"generated_ds": DS, "model_version": "m1", "candidates": [
        {"candidate_id": 20, "rank": 1, "score": 0.9, "common_connections": 3,
         "sources": ["triangle", "coworker"], "coworker_overlap_days": 120, "schoolmate_overlap_days": 0,
         "ppr_score": 0.0},
        {"candidate_id": 30, "rank": 2, "score": 0.4, "common_connections": 0, "sources": ["ppr"],
         "coworker_overlap_days": 0, "schoolmate_overlap_days": 0, "ppr_score": 0.02},
    ]}
    assert read.values[1]["candidates"][0]["schoolmate_overlap_days"] == 400
    assert read.values[2] is None
    store.close()

    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    again = push_job.run(spark, args)   # an Airflow retry: same files, and the push is a no-op
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before
    assert (again["version"], again.get("noop")) == (1, True)
    assert not [p for p in folder.parent.iterdir() if p.name.startswith("_staging")]

    monkeypatch.setenv("MUTUALS_STORE", str(tmp_path / "store"))
    sample = print_served_sample(lake.root, DS, count=3)
    assert sorted(r["key"] for r in sample) == [1, 2, 3]
    assert all(r["version"] == 1 and r["value"]["model_version"] == "m1" for r in sample)


def test_push_without_published_recs_fails_and_creates_no_store(spark, tmp_path):
    """recs/topk ds=D was written but never published (a recs run that stopped before its publication)."""
    lake = Lake(str(tmp_path / "lake"))
    lake.write_partition(spark.createDataFrame([rec(1, 20, 1, 0.9, ["triangle"])], RECS_TOPK), "recs/topk", DS)
    args = argparse.Namespace(date=DS, lake=lake.root, store=str(tmp_path / "store"), partitions=2, max_drop=0.2)
    with pytest.raises(UnpublishedPartition, match=r"^recs/topk ds=2026-01-03 is not published: "
                                                   r"run `mutuals run recs --date 2026-01-03` first$"):
        push_job.run(spark, args)
    assert not (tmp_path / "store").exists()
    assert not (tmp_path / "lake" / "push").exists()


def test_push_with_no_recs_table_at_all_fails_and_creates_nothing(spark, tmp_path):
    args = argparse.Namespace(date=DS, lake=str(tmp_path / "lake"), store=None, partitions=2, max_drop=0.2)
    with pytest.raises(UnpublishedPartition, match=r"^recs/topk ds=2026-01-03 is not published"):
        push_job.run(spark, args)
    assert not (tmp_path / "lake").exists()


def test_the_job_writes_the_layout_of_the_plain_writer_byte_for_byte(spark, tmp_path):
    """One layout: the job's files are the files `write_push_input` makes of the same served values."""
    lake = published_recs(spark, str(tmp_path / "lake"))
    args = argparse.Namespace(date=DS, lake=lake.root, store=str(tmp_path / "store"), partitions=2, max_drop=0.2)
    push_job.run(spark, args)
    folder = tmp_path / "lake" / "push" / "recommendations" / f"ds={DS}"
    assert keys_per_file(folder) == {"part-00000.avro": [2], "part-00001.avro": [1, 3]}
    write_push_input(tmp_path / "by_hand", sorted(SERVED.items()), load_value_schema(), partitions=2, ds=DS)
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == {
        p.name: p.read_bytes() for p in (tmp_path / "by_hand").iterdir()}


def test_the_job_writes_through_a_lake_given_as_a_uri(spark, tmp_path):
    """A `file:` lake goes through the non-local paths: pyarrow.fs in the executors, Hadoop renames."""
    lake = published_recs(spark, f"file:{tmp_path / 'lake'}")
    args = argparse.Namespace(date=DS, lake=lake.root, store=str(tmp_path / "store"), partitions=3, max_drop=0.2)
    first = push_job.run(spark, args)
    folder = tmp_path / "lake" / "push" / "recommendations" / f"ds={DS}"
    assert first["avro"] == f"file:{folder}"
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    assert sorted(before) == ["part-00000.avro", "part-00001.avro", "part-00002.avro"]
    push_job.run(spark, args)   # the second run replaces an existing folder
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before
    assert sorted(p.name for p in folder.parent.iterdir()) == [f"ds={DS}"]
    with open_store(str(tmp_path / "store")) as store:
        assert store.get([1, 2, 3]).values == [SERVED[1], SERVED[2], SERVED[3]]
