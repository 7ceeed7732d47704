"""Push at scale and incremental push: full pushes built in Spark executors (one RocksDB SST file per
key-hash partition, ingested by the store; pipelined Redis writes from every task), and the push job's
incremental push when the model version is unchanged.

Real components only: RocksDB in tmp_path, the session redis-server, the session Spark. Expected values are
written out by hand (or made by `tests.store_helpers.value`), never with the code under test.
"""

from __future__ import annotations

import argparse
import uuid
from pathlib import Path

import fastavro
import pytest
from pyspark.sql import Row
from rocksdict import AccessType, Rdict

from mutuals.lake import Lake
from mutuals.tables import RECS_TOPK
from push.errors import BadRecord
from push.parallel import spark_runner
from push.push_input import part_name, partition_of, write_parts, write_push_input
from push.rocks_store import _options
from push.schemas import load_value_schema
from push.stores import open_store
from spark_jobs import push as push_job
from tests.store_helpers import make_input, open_test_store, value


def keys_by_file(folder) -> dict[str, list[int]]:
    found = {}
    for path in sorted(folder.iterdir()):
        with path.open("rb") as fh:
            found[path.name] = [r["key"] for r in fastavro.reader(fh)]
    return found


def test_rocks_full_push_built_in_executors_one_sst_per_partition(spark, tmp_path):
    keys = list(range(1, 401))
    folder = make_input(tmp_path / "in", keys, "x", partitions=4)
    per_file = keys_by_file(folder)
    store = open_test_store(str(tmp_path / "store"))
    result = store.push_parts(str(folder), spark_runner(spark), push_id="p1")
    assert (result["version"], result["records"], result["keys"], result["status"]) == (1, 400, 400, "online")

    db = Rdict(str(store.version_dir(1)), _options(), access_type=AccessType.read_only())
    try:
        entries = sorted(f["num_entries"] for f in db.live_files())
    finally:
        db.close()
    assert entries == sorted(len(v) for v in per_file.values())   # one SST per key-hash partition
    assert sorted(p.name for p in (tmp_path / "store" / "versions").iterdir()) == ["v000001"]   # staging gone
    read = store.get([1, 200, 400, 401])
    assert read.version == 1
    assert read.values == [value(1, "x"), value(200, "x"), value(400, "x"), None]

    again = store.push_parts(str(folder), spark_runner(spark), push_id="p1")   # same push id: a no-op
    assert (again["version"], again.get("noop")) == (1, True)
    store.close()


def test_failed_executor_build_leaves_the_served_version_and_rollback_intact(spark, tmp_path):
    store = open_test_store(str(tmp_path / "store"))
    store.push_parts(str(make_input(tmp_path / "a", range(1, 101), "a", partitions=2)), spark_runner(spark))
    store.push_parts(str(make_input(tmp_path / "b", range(1, 101), "b", partitions=2)), spark_runner(spark))

    bad = value(7, "c")
    bad["candidates"][0]["rank"] = 2   # the value contract: ranks 1..n in order
    write_push_input(tmp_path / "c", [(k, value(k, "c")) for k in range(1, 101) if k != 7] + [(7, bad)],
                     load_value_schema(), partitions=2)
    with pytest.raises(BadRecord, match=r"record \d+: field candidates\[0\]\.rank: expected 1, found 2"):
        store.push_parts(str(tmp_path / "c"), spark_runner(spark))

    # a key written into the wrong partition's file: no task could see a duplicate of it in another file
    misplaced = 5
    home = int(partition_of([misplaced], 2)[0])
    parts: dict[int, list] = {0: [], 1: []}
    for k in range(1, 101):
        parts[1 - home if k == misplaced else int(partition_of([k], 2)[0])].append((k, value(k, "d")))
    (tmp_path / "d").mkdir()
    write_parts(str(tmp_path / "d"), parts, load_value_schema(), ds="")
    with pytest.raises(BadRecord, match=rf"{part_name(1 - home)}: key 5: expected keys of key-hash partition"):
        store.push_parts(str(tmp_path / "d"), spark_runner(spark))

    listing = store.versions()
    assert listing["current"] == 2
    assert [(v["version"], v["status"], v["data"]) for v in listing["versions"]] == [
        (1, "online", "present"), (2, "online", "present"), (3, "error", "removed"), (4, "error", "removed")]
    assert sorted(p.name for p in (tmp_path / "store" / "versions").iterdir()) == ["v000001", "v000002"]
    assert store.get([7]).values == [value(7, "b")]
    assert store.rollback() == {"current": 1, "rolled_back": 2}
    assert store.get([7, 100]).values == [value(7, "a"), value(100, "a")]
    store.close()


def test_redis_full_push_goes_out_from_the_executors(spark, tmp_path, redis_server):
    url = f"{redis_server.url}?ns=t{uuid.uuid4().hex[:12]}"
    store = open_test_store(url)
    first = store.push_parts(str(make_input(tmp_path / "a", range(1, 301), "a", partitions=3)), spark_runner(spark))
    second = store.push_parts(str(make_input(tmp_path / "b", range(1, 301), "b", partitions=3)), spark_runner(spark))
    assert (first["version"], first["keys"], second["version"], second["keys"]) == (1, 300, 2, 300)
    assert store.get([1, 150, 300, 301]).values == [value(1, "b"), value(150, "b"), value(300, "b"), None]
    assert store.r.dbsize() >= 600   # both versions' values are stored (current + one backup)
    assert store.rollback()["current"] == 1
    assert store.get([150]).values == [value(150, "a")]
    store.close()


# ------------------------------------------------------------------ the push job's incremental push
D1, D2, D3 = "2026-02-01", "2026-02-02", "2026-02-03"


def rec(member: int, cand: int, rank: int, score: float, model: str) -> Row:
    return Row(member_id=member, candidate_id=cand, rank=rank, score=score, sources=["triangle"],
               common_connections=rank, coworker_overlap_days=0, schoolmate_overlap_days=0, ppr_score=0.0,
               model_version=model)


def served(ds: str, model: str, cands: list[tuple[int, int, float]]) -> dict:
    """The served value of (candidate, rank, score) triples, written out field by field."""
    return {"generated_ds": ds, "model_version": model, "candidates": [
        {"candidate_id": c, "rank": r, "score": s, "common_connections": r, "sources": ["triangle"],
         "coworker_overlap_days": 0, "schoolmate_overlap_days": 0, "ppr_score": 0.0} for c, r, s in cands]}


DAY1 = {1: [(10, 1, 0.9)], 2: [(20, 1, 0.8), (21, 2, 0.5)], 3: [(30, 1, 0.7)], 4: [(40, 1, 0.6)],
        6: [(60, 1, 0.9), (61, 2, 0.3)]}
# member 1 and 4 unchanged; 2 rescored; 3 gone; 5 new; 6 reordered
DAY2 = {1: [(10, 1, 0.9)], 2: [(20, 1, 0.8), (21, 2, 0.4)], 4: [(40, 1, 0.6)], 5: [(50, 1, 0.2)],
        6: [(61, 1, 0.9), (60, 2, 0.3)]}


def publish(spark, lake: Lake, ds: str, day: dict, model: str) -> None:
    rows = [rec(m, c, r, s, model) for m, cands in day.items() for c, r, s in cands]
    lake.write_partition(spark.createDataFrame(rows, RECS_TOPK), "recs/topk", ds)
    lake.publish_tables(spark, "recs", [ds], ["recs/topk"])


def job_args(lake: Lake, store: str, ds: str, full: bool = False) -> argparse.Namespace:
    return argparse.Namespace(date=ds, lake=lake.root, store=store, partitions=2, max_drop=0.5, full=full)


@pytest.fixture(scope="module")
def recs_lake(spark, tmp_path_factory) -> Lake:
    """Two published days of recs/topk with model m1, shared by both backends."""
    lake = Lake(str(tmp_path_factory.mktemp("recs_lake") / "lake"))
    publish(spark, lake, D1, DAY1, "m1")
    publish(spark, lake, D2, DAY2, "m1")
    return lake


@pytest.mark.parametrize("backend", ["rocks", "redis"])
def test_push_job_ships_only_changed_members_when_the_model_is_unchanged(spark, tmp_path, backend, request,
                                                                         recs_lake):
    store_url = (str(tmp_path / "store") if backend == "rocks"
                 else f"{request.getfixturevalue('redis_server').url}?ns=t{uuid.uuid4().hex[:12]}")
    lake = recs_lake

    first = push_job.run(spark, job_args(lake, store_url, D1))
    assert (first["mode"], first["full_reason"], first["version"], first["keys"]) == ("full", "no current version",
                                                                                       1, 5)
    second = push_job.run(spark, job_args(lake, store_url, D2))
    assert (second["mode"], second["base_ds"], second["version"]) == ("incremental", D1, 1)
    assert (second["members_changed"], second["upserts"], second["deletes"]) == (4, 3, 1)
    incremental = Path(second["incremental_avro"])
    pushed = {p.name: p.read_bytes() for p in incremental.iterdir()}
    retry = push_job.run(spark, job_args(lake, store_url, D2))   # an Airflow retry, or a backfill re-run
    assert (retry["mode"], retry["version"], retry["noop"]) == ("incremental", 1, True)
    assert {p.name: p.read_bytes() for p in incremental.iterdir()} == pushed   # the 4 changes, not 0
    with open_store(store_url) as store:
        read = store.get([1, 2, 3, 4, 5, 6])
        assert read.version == 1
        assert read.values == [
            served(D1, "m1", DAY1[1]), served(D2, "m1", DAY2[2]), None, served(D1, "m1", DAY1[4]),
            served(D2, "m1", DAY2[5]), served(D2, "m1", DAY2[6])]
        assert len(store.versions()["versions"]) == 1
        if backend == "redis":
            return
        # the next day: another model means a full push; --full forces one; the same model goes incremental
        rows = [rec(m, c, r, s, "m2") for m, cands in DAY2.items() for c, r, s in cands]
        other_model = spark.createDataFrame(rows, RECS_TOPK)
        plan = push_job.plan_push(spark, lake, store, D3, other_model, force_full=False)
        assert (plan.base, plan.reason) == (None, f"model version changed: ['m1'] on {D2}, ['m2'] on {D3}")
        same_model = spark.createDataFrame([rec(1, 10, 1, 0.9, "m1")], RECS_TOPK)
        assert push_job.plan_push(spark, lake, store, D3, same_model, force_full=True).reason == "--full"
        assert push_job.plan_push(spark, lake, store, D3, same_model, force_full=False).base == D2
        assert push_job.plan_push(spark, lake, store, D1, same_model, force_full=False).reason == (
            f"current version v1 serves {D2}, a later day than {D1}")
