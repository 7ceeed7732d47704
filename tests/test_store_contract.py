"""The store contract, one suite run against both backends: RocksDB in tmp_path and a real redis-server."""

from __future__ import annotations

import copy
import os
import threading
import time

import pytest

from mutuals.errors import DuplicateKey
from push import faults
from push.errors import (
    BadAvroFile,
    IncompatibleSchema,
    NothingToRollBack,
    PushInProgress,
    SizeDropRefused,
)
from push.push_input import write_push_input
from push.schemas import load_value_schema
from tests.store_helpers import (
    DS,
    ManualClock,
    make_input,
    open_test_store,
    store_url,
    tags,
    value,
    version_data_present,
)

BACKENDS = ["rocks", "redis"]


@pytest.fixture(params=BACKENDS)
def url(request, tmp_path):
    redis_url = request.getfixturevalue("redis_server").url if request.param == "redis" else None
    return store_url(request.param, tmp_path, redis_url)


def statuses(store) -> dict[int, str]:
    return {v["version"]: v["status"] for v in store.versions()["versions"]}


def test_full_push_serves_the_pushed_values(url, tmp_path):
    store = open_test_store(url)
    result = store.push(str(make_input(tmp_path / "in1", range(1, 101), "b1")), push_id="p1")
    assert (result["version"], result["records"], result["keys"]) == (1, 100, 100)
    read = store.get([7, 4242])
    assert read.version == 1
    assert read.values == [{
        "generated_ds": DS, "model_version": "b1",
        "candidates": [{"candidate_id": 1007, "rank": 1, "score": 0.5, "common_connections": 2,
                        "sources": ["triangle"], "coworker_overlap_days": 0, "schoolmate_overlap_days": 0,
                        "ppr_score": 0.25}],
    }, None]
    listing = store.versions()
    assert listing["current"] == 1
    assert [(v["version"], v["status"], v["keys"]) for v in listing["versions"]] == [(1, "online", 100)]


def test_swap_numbers_upwards_and_same_push_id_is_a_noop(url, tmp_path):
    store = open_test_store(url)
    store.push(str(make_input(tmp_path / "in1", range(1, 101), "b1")), push_id="day1")
    second = store.push(str(make_input(tmp_path / "in2", range(1, 101), "b2")), push_id="day2")
    assert second["version"] == 2
    assert tags(store, [1, 100]) == (2, ["b2", "b2"])
    again = store.push(str(tmp_path / "in2"), push_id="day2")
    assert again["noop"] is True and again["version"] == 2
    assert statuses(store) == {1: "online", 2: "online"}


def test_rollback_makes_the_previous_version_current_and_never_reuses_numbers(url, tmp_path):
    store = open_test_store(url)
    with pytest.raises(NothingToRollBack):
        store.rollback()
    store.push(str(make_input(tmp_path / "in1", range(1, 101), "b1")))
    store.push(str(make_input(tmp_path / "in2", range(1, 101), "b2")))
    assert store.rollback() == {"current": 1, "rolled_back": 2}
    assert tags(store, [5]) == (1, ["b1"])
    assert statuses(store) == {1: "online", 2: "rolled_back"}
    with pytest.raises(NothingToRollBack):
        store.rollback()
    third = store.push(str(make_input(tmp_path / "in3", range(1, 101), "b3")))
    assert third["version"] == 3
    assert tags(store, [5]) == (3, ["b3"])


def test_retention_keeps_current_plus_one_backup(url, tmp_path):
    store = open_test_store(url, retain=2)
    for n in (1, 2, 3):
        store.push(str(make_input(tmp_path / f"in{n}", range(1, 101), f"b{n}")))
    store.cleanup()
    assert [version_data_present(store, v) for v in (1, 2, 3)] == [False, True, True]
    data = {v["version"]: v["data"] for v in store.versions()["versions"]}
    assert data == {1: "removed", 2: "present", 3: "present"}
    assert store.rollback()["current"] == 2
    with pytest.raises(NothingToRollBack):
        store.rollback()


def test_gate_blocks_a_shrinking_push_and_keeps_current(url, tmp_path):
    store = open_test_store(url, max_drop=0.2)
    store.push(str(make_input(tmp_path / "in1", range(1, 101), "b1")))
    with pytest.raises(SizeDropRefused, match=r"key count dropped from 100 .* to 70"):
        store.push(str(make_input(tmp_path / "in2", range(1, 71), "b2")))
    assert tags(store, [1, 90]) == (1, ["b1", "b1"])
    assert statuses(store) == {1: "online", 2: "error"}
    assert not version_data_present(store, 2)
    ok = store.push(str(make_input(tmp_path / "in3", range(1, 86), "b3")))  # -15% passes a 20% gate
    assert ok["version"] == 3


def test_duplicate_key_with_different_values_fails_identical_ones_pass(url, tmp_path):
    store = open_test_store(url)
    schema = load_value_schema()
    write_push_input(tmp_path / "same", [(1, value(1, "a")), (1, value(1, "a")), (2, value(2, "a"))], schema)
    assert store.push(str(tmp_path / "same"))["keys"] == 2
    write_push_input(tmp_path / "diff", [(1, value(1, "a")), (1, value(1, "b")), (2, value(2, "a"))], schema,
                     partitions=1)
    with pytest.raises(DuplicateKey, match=r"part-00000.avro: record 1: key 1 appears twice"):
        store.push(str(tmp_path / "diff"))
    assert statuses(store) == {1: "online", 2: "error"}


def test_schema_evolution_accepts_defaults_and_refuses_incompatible_before_building(url, tmp_path):
    store = open_test_store(url)
    store.push(str(make_input(tmp_path / "in1", range(1, 11), "b1")))
    evolved = copy.deepcopy(load_value_schema())
    evolved["fields"].append({"name": "experiment", "type": "string", "default": "control"})
    write_push_input(tmp_path / "in2", [(k, dict(value(k, "b2"), experiment="x")) for k in range(1, 11)], evolved)
    store.push(str(tmp_path / "in2"))
    assert store.get([3]).values[0]["experiment"] == "x"
    broken = copy.deepcopy(load_value_schema())
    broken["fields"][1] = {"name": "model_version", "type": "long"}
    write_push_input(tmp_path / "in3", [(k, {**value(k, "x"), "model_version": 1}) for k in range(1, 11)], broken)
    with pytest.raises(IncompatibleSchema, match=r"in3: .*model_version"):
        store.push(str(tmp_path / "in3"))
    assert statuses(store) == {1: "online", 2: "online"}  # refused before a version was registered
    store.rollback()   # values of v1 still decode with their own schema id
    assert tags(store, [3]) == (1, ["b1"])


def test_unreadable_input_names_the_file(url, tmp_path):
    store = open_test_store(url)
    folder = tmp_path / "bad"
    folder.mkdir()
    (folder / "part-00000.avro").write_bytes(b"this is not avro")
    with pytest.raises(BadAvroFile, match=r"part-00000.avro: not a readable Avro container"):
        store.push(str(folder))
    assert store.versions()["versions"] == []


def test_incremental_push_upserts_and_deletes_whole_values(url, tmp_path):
    store = open_test_store(url)
    store.push(str(make_input(tmp_path / "full", range(1, 101), "b1")))
    schema = load_value_schema()
    write_push_input(tmp_path / "inc", [(5, value(5, "inc")), (6, None), (500, value(500, "inc"))], schema,
                     nullable_value=True)
    result = store.push(str(tmp_path / "inc"), incremental=True, push_id="inc-1")
    assert (result["version"], result["upserts"], result["deletes"]) == (1, 2, 1)
    assert tags(store, [5, 6, 7, 500]) == (1, ["inc", None, "b1", "inc"])
    assert store.push(str(tmp_path / "inc"), incremental=True, push_id="inc-1")["noop"] is True


def test_incremental_push_that_deletes_too_many_keys_is_refused_and_changes_nothing(url, tmp_path):
    store = open_test_store(url, max_drop=0.2)
    store.push(str(make_input(tmp_path / "full", range(1, 101), "b1")))
    schema = load_value_schema()
    deletes = [(k, None) for k in range(1, 22)]                      # 21 of 100 keys: -21 % > 20 %
    write_push_input(tmp_path / "inc", [(200, value(200, "inc")), *deletes], schema, nullable_value=True)
    with pytest.raises(SizeDropRefused, match=r"deleting 21 of its 100 keys"):
        store.push(str(tmp_path / "inc"), incremental=True, push_id="inc-1")
    assert tags(store, [1, 21, 22, 200]) == (1, ["b1", "b1", "b1", None])
    write_push_input(tmp_path / "ok", deletes[:20], schema, nullable_value=True)   # -20 % passes
    assert store.push(str(tmp_path / "ok"), incremental=True, push_id="inc-2")["deletes"] == 20
    assert tags(store, [20, 21]) == (1, [None, "b1"])


def test_incremental_push_reaches_the_version_being_built(url, tmp_path, monkeypatch):
    store = open_test_store(url)
    store.push(str(make_input(tmp_path / "full1", range(1, 101), "b1")))
    make_input(tmp_path / "full2", range(1, 101), "b2")
    write_push_input(tmp_path / "inc", [(5, value(5, "inc"))], load_value_schema(), nullable_value=True)
    monkeypatch.setenv(faults.POINT_ENV, faults.WRITTEN)
    monkeypatch.setenv(faults.DIR_ENV, str(tmp_path / "hook"))
    pusher_store = open_test_store(url)
    outcome: dict = {}
    pusher = threading.Thread(target=lambda: outcome.update(pusher_store.push(str(tmp_path / "full2"))))
    pusher.start()
    reached = tmp_path / "hook" / f"{faults.WRITTEN}.reached"
    deadline = time.monotonic() + 30
    while not reached.exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert reached.exists()
    with pytest.raises(PushInProgress):
        store.push(str(tmp_path / "full2"))
    inc = store.push(str(tmp_path / "inc"), incremental=True)
    assert inc["also_building"] == [2]
    assert tags(store, [5, 6]) == (1, ["inc", "b1"])
    (tmp_path / "hook" / f"{faults.WRITTEN}.go").touch()
    pusher.join(30)
    os.environ.pop(faults.POINT_ENV, None)
    assert outcome["version"] == 2
    assert tags(store, [5, 6]) == (2, ["inc", "b2"])


def test_realtime_overlay_venice_sequence(url, tmp_path):
    """v1 with 100 keys; real-time writes to 1-10 survive the v2 push; once the rewind window has passed,
    writes to 10-20 survive v3 while key 2 reverts to its batch value."""
    clock = ManualClock(1_000.0)
    store = open_test_store(url, clock=clock, rewind_s=100.0)
    store.push(str(make_input(tmp_path / "v1", range(1, 101), "b1")))
    clock.advance(10)                                   # t = 1010
    for k in range(1, 11):
        store.write(k, value(k, "rt1"))
    assert tags(store, [1, 10, 11]) == (1, ["rt1", "rt1", "b1"])
    clock.advance(10)                                   # t = 1020: v2 starts 10 s after the writes
    store.push(str(make_input(tmp_path / "v2", range(1, 101), "b2")))
    assert tags(store, [1, 2, 10, 11]) == (2, ["rt1", "rt1", "rt1", "b2"])
    clock.advance(180)                                  # t = 1200
    for k in range(10, 21):
        store.write(k, value(k, "rt2"))
    clock.advance(50)                                   # t = 1250: rt1 (t=1010) is outside [1150, 1250)
    store.push(str(make_input(tmp_path / "v3", range(1, 101), "b3")))
    assert tags(store, [2, 10, 20, 21]) == (3, ["b3", "rt2", "rt2", "b3"])


def test_realtime_order_is_timestamp_then_sequence_and_entries_expire(url, tmp_path):
    clock = ManualClock(1_000.0)
    store = open_test_store(url, clock=clock, rt_ttl_s=60.0)
    store.push(str(make_input(tmp_path / "v1", range(1, 11), "b1")))
    clock.advance(5)
    store.write(1, value(1, "late"), ts=1_003.0)
    store.write(1, value(1, "early"), ts=1_002.0)       # older timestamp: does not win
    store.write(2, value(2, "first"), ts=1_004.0)
    store.write(2, value(2, "second"), ts=1_004.0)      # same timestamp: higher sequence wins
    store.delete(3)
    assert tags(store, [1, 2, 3, 4]) == (1, ["late", "second", None, "b1"])
    clock.advance(61)                                    # past the TTL: batch values again
    assert tags(store, [1, 2, 3]) == (1, ["b1", "b1", "b1"])


def test_realtime_write_older_than_the_batch_start_is_not_served(url, tmp_path):
    clock = ManualClock(1_000.0)
    store = open_test_store(url, clock=clock)
    store.push(str(make_input(tmp_path / "v1", range(1, 11), "b1")))
    store.write(4, value(4, "old"), ts=900.0)
    assert tags(store, [4]) == (1, ["b1"])
