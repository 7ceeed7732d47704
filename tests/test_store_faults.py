"""Crashes and failures on both backends: kill -9 at named points of a real `mutuals store push` process,
reads racing a swap and a rollback, a bad record halfway through the input, Redis stopped mid-push."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from push import faults
from push.push_input import write_push_input
from push.schemas import load_value_schema
from tests.store_helpers import (
    error_line,
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


def start_push(url: str, avro: Path, hook_dir: Path | None = None, point: str | None = None,
               *extra: str) -> subprocess.Popen:
    """A real `mutuals store push` process (python -m push.cli), optionally pausing at a fault point."""
    env = dict(os.environ)
    if point is not None:
        env[faults.POINT_ENV], env[faults.DIR_ENV] = point, str(hook_dir)
    return subprocess.Popen([sys.executable, "-m", "push.cli", "push", "--store", url, "--avro", str(avro), *extra],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for(path: Path, proc: subprocess.Popen, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if proc.poll() is not None:
            raise AssertionError(f"push exited {proc.returncode} before {path.name}: {proc.stderr.read()}")
        if time.monotonic() > deadline:
            proc.kill()
            raise AssertionError(f"push never reached {path.name}")
        time.sleep(0.01)


def reopen_until_settled(url: str, **options):
    """Open (recovery runs on open) until no version is still building: on Redis the server may take a
    moment to notice the killed pusher's closed connection."""
    deadline = time.monotonic() + 10
    while True:
        store = open_test_store(url, **options)
        building = [v for v in store.versions()["versions"] if v["status"] in ("started", "pushed")]
        if not building or time.monotonic() > deadline:
            return store
        store.close()
        time.sleep(0.05)


def leftovers(store, url: str) -> list[str]:
    """Files or keys that belong to no retained version (staging SSTs, temp manifests, stale locks)."""
    if "://" not in url:
        root = Path(url)
        found = [p.name for p in (root / "versions").iterdir() if p.name.endswith(".sst")]
        return found + [p.name for p in root.glob(".*.tmp")]
    return [k.decode() for k in store.r.scan_iter(match=f"{store.ns}:lock:*")]


@pytest.mark.parametrize("point", [faults.WRITING, faults.WRITTEN])
def test_kill_before_the_swap_leaves_the_old_version(url, tmp_path, point):
    store = open_test_store(url)
    store.push(str(make_input(tmp_path / "v1", range(1, 101), "b1")))
    make_input(tmp_path / "v2", range(1, 101), "b2")
    proc = start_push(url, tmp_path / "v2", tmp_path / "hook", point)
    wait_for(tmp_path / "hook" / f"{point}.reached", proc)
    assert tags(store, [1, 100]) == (1, ["b1", "b1"])     # a reader during the push sees v1 only
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    store = reopen_until_settled(url)
    listing = store.versions()
    assert listing["current"] == 1
    assert [(v["version"], v["status"], v["data"]) for v in listing["versions"]] == [
        (1, "online", "present"), (2, "killed", "removed")]
    assert tags(store, range(1, 101)) == (1, ["b1"] * 100)
    assert not version_data_present(store, 2)
    assert leftovers(store, url) == []
    retry = store.push(str(tmp_path / "v2"))
    assert retry["version"] == 3 and tags(store, [1]) == (3, ["b2"])


def test_kill_after_the_swap_before_cleanup_shows_the_new_version(url, tmp_path):
    store = open_test_store(url, retain=1)
    store.push(str(make_input(tmp_path / "v1", range(1, 101), "b1")))
    make_input(tmp_path / "v2", range(1, 101), "b2")
    proc = start_push(url, tmp_path / "v2", tmp_path / "hook", faults.SWAPPED, "--retain", "1")
    wait_for(tmp_path / "hook" / f"{faults.SWAPPED}.reached", proc)
    assert tags(store, [1]) == (2, ["b2"])
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    store = reopen_until_settled(url, retain=1)
    assert store.versions()["current"] == 2
    assert tags(store, range(1, 101)) == (2, ["b2"] * 100)
    assert not version_data_present(store, 1)             # cleanup finished on open
    assert leftovers(store, url) == []


def test_reads_during_a_swap_and_a_rollback_see_one_version_each(url, tmp_path):
    """10k reads (every hundredth a 1,000-key batch) on 4 threads while another store object swaps to v2 and
    rolls back to v1: no errors, and every response's values all come from the version it names."""
    keys = list(range(1, 1001))
    store = open_test_store(url)
    store.push(str(make_input(tmp_path / "v1", keys, "b1")))
    make_input(tmp_path / "v2", keys, "b2")
    errors: list[str] = []
    sequences: list[list[int]] = [[] for _ in range(4)]
    stop = threading.Event()

    def reader(slot: int) -> None:
        small = keys[slot * 7: slot * 7 + 10]
        while len(sequences[slot]) < 2500 or not stop.is_set():
            batch = keys if len(sequences[slot]) % 100 == 0 else small
            try:
                read = store.get(batch)
                found = {v["model_version"] if v else None for v in read.values}
                if found != {f"b{read.version}"}:
                    errors.append(f"version {read.version} served {found}")
                sequences[slot].append(read.version)
            except Exception as exc:  # noqa: BLE001 - every error is a test failure, collected
                errors.append(repr(exc))
                sequences[slot].append(-1)

    threads = [threading.Thread(target=reader, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    while sum(map(len, sequences)) < 400:
        time.sleep(0.01)
    open_test_store(url).push(str(tmp_path / "v2"))
    while sum(s.count(2) for s in sequences) < 200:
        time.sleep(0.01)
    open_test_store(url).rollback()
    time.sleep(0.1)
    stop.set()
    for t in threads:
        t.join(120)
    assert errors == []
    assert sum(map(len, sequences)) >= 10_000
    merged = [v for seq in sequences for v in seq]
    assert set(merged) == {1, 2}
    for seq in sequences:   # per thread: v1, then v2 after the swap, then v1 again after the rollback
        changes = [v for i, v in enumerate(seq) if i == 0 or v != seq[i - 1]]
        assert changes in ([1, 2, 1], [1, 2], [1]), changes[:10]
    assert any(seq[-1] == 1 and 2 in seq for seq in sequences)


def test_bad_record_halfway_fails_naming_file_record_and_field(url, tmp_path):
    store = open_test_store(url)
    store.push(str(make_input(tmp_path / "v1", range(1, 101), "b1")))
    rows = [(k, value(k, "b2", sources=("gossip",) if k == 50 else ("triangle",))) for k in range(1, 101)]
    write_push_input(tmp_path / "v2", rows, load_value_schema(), partitions=1)
    proc = start_push(url, tmp_path / "v2")
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode != 0
    error = error_line(stderr)
    assert error["error"] == "BadRecord"
    assert "part-00000.avro: record 49: field candidates[0].sources" in error["message"]
    assert "gossip" in error["message"]
    store = open_test_store(url)
    assert tags(store, [1, 50, 100]) == (1, ["b1", "b1", "b1"])
    assert [(v["version"], v["status"], v["data"]) for v in store.versions()["versions"]] == [
        (1, "online", "present"), (2, "error", "removed")]


def test_truncated_file_fails_naming_the_file(url, tmp_path):
    store = open_test_store(url)
    store.push(str(make_input(tmp_path / "v1", range(1, 101), "b1")))
    folder = make_input(tmp_path / "v2", range(1, 2001), "b2", partitions=2)
    part = folder / "part-00001.avro"
    part.write_bytes(part.read_bytes()[: part.stat().st_size // 2])
    proc = start_push(url, folder)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode != 0
    assert "part-00001.avro: unreadable at record" in stderr
    assert tags(open_test_store(url), [1]) == (1, ["b1"])


def test_redis_stopped_mid_push_fails_cleanly_then_a_retry_succeeds(redis_factory, tmp_path):
    server = redis_factory()
    url = f"{server.url}?ns=stop"
    make_input(tmp_path / "v1", range(1, 101), "b1")
    proc = start_push(url, tmp_path / "v1", tmp_path / "hook", faults.WRITING)
    wait_for(tmp_path / "hook" / f"{faults.WRITING}.reached", proc)
    server.stop()
    (tmp_path / "hook" / f"{faults.WRITING}.go").touch()
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 8, stderr
    assert error_line(stderr)["error"] == "StoreUnavailable"
    server.start()
    retry = start_push(url, tmp_path / "v1")
    stdout, stderr = retry.communicate(timeout=60)
    assert retry.returncode == 0, stderr
    assert json.loads(stdout)["records"] == 100
    assert tags(open_test_store(url), [1, 100]) == (json.loads(stdout)["version"], ["b1", "b1"])
