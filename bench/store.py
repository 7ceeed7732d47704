"""Store benchmark; prints one JSON document.

    python bench/store.py [--records 200000] [--candidates 10] [--swap-requests 200]

Every baseline runs in the same process run as what it is compared with, on the same input.
- write phase (goal >= 5x): both sides take the same already-encoded input, the backend's storage keys
  (bytes for RocksDB, strings for Redis) and the stored value bytes, and feed it through the same
  `map` loop. Bulk: the store's own write phase (`_write_version`: SST files + ingest for RocksDB, MSET
  batches of 10k for Redis). Plain: one put per key into a database with the same options (RocksDB,
  WAL on) or one SET per key (Redis). Creating the empty target database is outside both timings;
  RocksDB bulk time ends with the SST files ingested (durable), plain time ends when the last put
  returns (memtable + unsynced WAL: the close/flush it still owes is not counted, which favours plain).
  Best of 3 runs each side; the ratio is plain time / bulk time. For RocksDB also the write phase as
  the push job's executors run it (`executor_style_*`): one SST file per key-hash partition (8), written
  by a pool of two processes forked with the input in memory, then one ingest.
- end-to-end push (reported): `store.push` of the Avro folder (read + check + build + validate + swap +
  cleanup) against a naive pusher in the same run: fastavro.reader over the same files, the same value
  checks, schemaless re-encoding of each value, one put per key.
- 1,000-key batch gets: p50 and p99 in steady state (at least --swap-requests requests each, decoded
  values; raw bytes alternate with them and are reported too).
- p99 during a swap (goal <= 1.5x of steady): a second process (at nice 10: pushes run below serving)
  pushes again and again, with a pause of --gap-requests reads between pushes; every request
  overlapping a swap window (build + validate + swap + cleanup, from the push's own timings) counts,
  until at least --swap-requests decoded requests did (or --max-pushes). Steady state is every request
  overlapping no push: a first phase plus the gaps, so both sides see the same machine load. The first
  push is a whole push; later ones reuse its decoded input (read + checks take minutes at nice 10 on a
  loaded machine) and redo build, validation, swap and cleanup for real. Requests overlapping the first
  push's input reading are reported separately ("whole push").
- Avro encode and decode per record (schemaless, as stored).
- push at scale (goal: --scale-records, 1M by default, in under 60 s): the push job's full push, built in
  Spark executors (`VersionedStore.push_parts` with `push.parallel.spark_runner`: one task per key-hash
  push-input file reads, checks and writes it, one SST file per partition ingested by RocksDB, pipelined
  MSET batches into Redis), then validate + swap + cleanup, timed from the call to its return, on a push
  input of the job's layout (8 partitions) written beforehand by two processes. Spark starts before the
  timing (its start is reported). Beside it, in the same run: plain puts of the same stored bytes, one put
  per key into a RocksDB with the store's options (the bytes read from the push input outside the timing),
  so `speedup_vs_plain_put` compares a whole checked push against bare puts.
Sections to run: --sections (default all: write,e2e,reads,scale).
Starts its own redis-server on a free loopback port and stops it at the end.
"""

from __future__ import annotations

import argparse
import io
import json
import multiprocessing
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from pathlib import Path

import fastavro
import numpy as np
import redis
from rocksdict import Rdict

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from mutuals.lake import open_input  # noqa: E402
from push.avro_io import (  # noqa: E402
    SCHEMA_ID,
    PushInput,
    check_value,
    encode_value,
    open_push_input,
    read_raw_records,
)
from push.push_input import partition_of, write_parts  # noqa: E402
from push.rocks_store import _options as rocks_options  # noqa: E402
from push.rocks_store import storage_key_list as key_list  # noqa: E402
from push.schemas import KEY_FIELD, VALUE_FIELD, load_value_schema, parsed  # noqa: E402
from push.store import SortedBatch, StoreOptions, VersionedStore  # noqa: E402
from push.stores import open_store  # noqa: E402

SOURCES = ["triangle", "coworker", "schoolmate", "ppr"]
SCALE_PARTITIONS = 8
SECTIONS = ("write", "e2e", "reads", "scale")


def make_value(rng: random.Random, key: int, candidates: int) -> dict:
    return {"generated_ds": "2026-01-05", "model_version": "bench", "candidates": [
        {"candidate_id": key * 100 + i, "rank": i + 1, "score": round(1.0 - i * 0.01, 4),
         "common_connections": rng.randint(0, 40), "sources": rng.sample(SOURCES, rng.randint(1, 3)),
         "coworker_overlap_days": rng.randint(0, 900), "schoolmate_overlap_days": 0,
         "ppr_score": round(rng.random() / 100, 6)} for i in range(candidates)]}


def value_for(key: int, candidates: int) -> dict:
    """Deterministic per key, so values are generated where used instead of held all at once."""
    return make_value(random.Random(key), key, candidates)


def write_input(folder: Path, records: int, candidates: int, partitions: int = 8) -> None:
    """The push job's layout, written by its writer one partition at a time (values made where used)."""
    folder.mkdir(parents=True)
    schema = load_value_schema()
    keys = np.arange(records, dtype=np.int64)
    parts = partition_of(keys, partitions)
    for part in range(partitions):
        rows = [(k, value_for(k, candidates)) for k in keys[parts == part].tolist()]
        write_parts(str(folder), {part: rows}, schema, ds="2026-01-05")


def write_input_part(args: tuple[str, int, int, int]) -> int:
    """One partition of the scale input (a worker process): values made where used, written by the job's
    writer."""
    folder, records, candidates, part = args
    keys = np.arange(records, dtype=np.int64)
    mine = keys[partition_of(keys, SCALE_PARTITIONS) == part].tolist()
    write_parts(folder, {part: [(k, value_for(k, candidates)) for k in mine]}, load_value_schema(), ds="2026-01-05")
    return len(mine)


def write_input_parallel(folder: Path, records: int, candidates: int, workers: int = 2) -> float:
    folder.mkdir(parents=True)
    began = time.perf_counter()
    with multiprocessing.get_context("spawn").Pool(workers) as pool:
        written = sum(pool.map(write_input_part, [(str(folder), records, candidates, part)
                                                  for part in range(SCALE_PARTITIONS)]))
    assert written == records
    return time.perf_counter() - began


def plain_puts_of(avro: Path, plain_dir: Path) -> float:
    """One put per key of the stored bytes (schema id + the container's value bytes), file by file; the
    reading is outside the timing."""
    push_input = open_push_input(avro)
    db = Rdict(str(plain_dir), rocks_options())
    spent = 0.0
    prefix = SCHEMA_ID.pack(1)
    for path in push_input.files:
        raw = read_raw_records(PushInput(push_input.folder, [path], push_input.value_schema, False), False)
        keys = key_list(np.array(raw.keys, dtype=np.int64))
        values = [prefix + v for v in raw.values]  # type: ignore[operator]
        del raw
        began = time.perf_counter()
        deque(map(db.__setitem__, keys, values), maxlen=0)
        spent += time.perf_counter() - began
    db.close()
    Rdict.destroy(str(plain_dir))
    return spent


def push_at_scale(work: Path, records: int, candidates: int, redis_url: str) -> dict:
    """The executor-built full push of `records` members on both backends; see the module docstring."""
    from mutuals.session import build_session
    from push.parallel import spark_runner

    avro = work / "scale_avro"
    out: dict = {"records": records, "partitions": SCALE_PARTITIONS,
                 "input_write_s": round(write_input_parallel(avro, records, candidates), 1),
                 "input_bytes": sum(p.stat().st_size for p in avro.iterdir())}
    began = time.perf_counter()
    spark = build_session("bench-store", conf={"spark.ui.enabled": "false"})
    out["spark_start_s"] = round(time.perf_counter() - began, 1)
    run = spark_runner(spark)
    try:
        for name, url in (("rocksdb", str(work / "scale_store")), ("redis", f"{redis_url}?ns=bench_scale")):
            store = open_store(url, StoreOptions(max_drop=1.0), create=True)
            began = time.perf_counter()
            result = store.push_parts(str(avro), run)
            push_s = time.perf_counter() - began
            assert store.get([0, records - 1]).version == result["version"]
            store.close()
            section = {"push_s": round(push_s, 2), "push_records_per_s": round(records / push_s),
                       "keys": result["keys"], "bytes": result["bytes"],
                       "push_timings": {k: v for k, v in result["timings"].items() if not k.endswith("_epoch")},
                       "goal_s": 60.0, "goal_met": push_s < 60.0}
            if name == "rocksdb":
                plain_s = plain_puts_of(avro, work / "scale_plain")
                section.update(plain_put_s=round(plain_s, 2), plain_put_records_per_s=round(records / plain_s),
                               speedup_vs_plain_put=round(plain_s / push_s, 2))
            out[name] = section
            if name == "redis":
                client = redis.Redis.from_url(redis_url)
                client.flushdb()
                client.close()
    finally:
        spark.stop()
    return out


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def avro_costs(values: list[dict]) -> dict:
    schema = parsed(load_value_schema())
    sample = values[:5000]
    began = time.perf_counter()
    blobs = []
    for v in sample:
        buf = io.BytesIO()
        fastavro.schemaless_writer(buf, schema, v)
        blobs.append(buf.getvalue())
    encode = (time.perf_counter() - began) / len(sample)
    began = time.perf_counter()
    for b in blobs:
        fastavro.schemaless_reader(io.BytesIO(b), schema, None)
    decode = (time.perf_counter() - began) / len(sample)
    return {"encode_us_per_record": round(encode * 1e6, 1), "decode_us_per_record": round(decode * 1e6, 1),
            "value_bytes_mean": round(sum(map(len, blobs)) / len(blobs))}


def start_redis(workdir: Path) -> tuple[subprocess.Popen, str]:
    workdir.mkdir(parents=True, exist_ok=True)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = subprocess.Popen([shutil.which("redis-server") or "redis-server", "--port", str(port), "--bind",
                             "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", str(workdir)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(200):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return proc, f"redis://127.0.0.1:{port}/0"
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("redis-server did not start")


def best_of(runs: int, once) -> list[float]:
    return sorted(once() for _ in range(runs))


def write_phase(store: VersionedStore, batch: SortedBatch, plain_dir: Path | None, url: str) -> dict:
    """The store's write phase against one put per key, same encoded keys and values, same loop."""
    storage_keys = store._storage_keys(999_999, batch.keys)  # noqa: SLF001 - the write phase alone
    values = batch.values

    def bulk() -> float:
        store._prepare_version(999_999)  # noqa: SLF001 - the empty target, like the plain side's open
        began = time.perf_counter()
        store._write_version(999_999, storage_keys, values)  # noqa: SLF001
        spent = time.perf_counter() - began
        store._drop_data(999_999)  # noqa: SLF001
        return spent

    def plain() -> float:
        if plain_dir is not None:
            db = Rdict(str(plain_dir), rocks_options())
            began = time.perf_counter()
            deque(map(db.__setitem__, storage_keys, values), maxlen=0)
            spent = time.perf_counter() - began
            db.close()
            Rdict.destroy(str(plain_dir))
        else:
            client = redis.Redis.from_url(url)
            began = time.perf_counter()
            deque(map(client.set, storage_keys, values), maxlen=0)
            spent = time.perf_counter() - began
            store._drop_data(999_999)  # noqa: SLF001
            client.close()
        return spent

    def parts_bulk() -> float:
        """The write phase as the executors run it: one SST file per key-hash partition, written by
        SCALE_PARTITIONS tasks on a pool of two forked processes (children inherit the input, nothing is
        pickled but the file names back), then one ingest of all of them."""
        store._prepare_version(999_999)  # noqa: SLF001
        target = store._part_target(999_999)  # noqa: SLF001
        began = time.perf_counter()
        with multiprocessing.get_context("fork").Pool(2) as pool:
            files = [f for found in pool.map(_write_part_of, [(target, part) for part in range(SCALE_PARTITIONS)])
                     for f in found]
        store._ingest_parts(999_999, files)  # noqa: SLF001
        spent = time.perf_counter() - began
        store._drop_data(999_999)  # noqa: SLF001
        return spent

    global _PARTS   # noqa: PLW0603 - read by the forked pool's children
    bulk_runs, plain_runs = best_of(3, bulk), best_of(3, plain)
    n = len(values)
    out = {"bulk_records_per_s": round(n / bulk_runs[0]), "plain_put_records_per_s": round(n / plain_runs[0]),
           "bulk_s_runs": [round(x, 3) for x in bulk_runs], "plain_s_runs": [round(x, 3) for x in plain_runs],
           "speedup_vs_plain_put": round(plain_runs[0] / bulk_runs[0], 2), "goal_speedup": 5.0,
           "goal_met": plain_runs[0] / bulk_runs[0] >= 5.0}
    if plain_dir is not None:
        parts = partition_of(batch.keys, SCALE_PARTITIONS)
        _PARTS = [(batch.keys[parts == part], [values[i] for i in np.flatnonzero(parts == part).tolist()])
                  for part in range(SCALE_PARTITIONS)]
        runs = best_of(3, parts_bulk)
        _PARTS = []
        out.update(executor_style_bulk_s_runs=[round(x, 3) for x in runs],
                   executor_style_bulk_records_per_s=round(n / runs[0]),
                   executor_style_speedup_vs_plain_put=round(plain_runs[0] / runs[0], 2),
                   executor_style_goal_met=plain_runs[0] / runs[0] >= 5.0)
    return out


_PARTS: list[tuple[np.ndarray, list[bytes]]] = []


def _write_part_of(args: tuple) -> list[str]:
    target, part = args
    keys, values = _PARTS[part]
    return target.write(part, keys, values)


def naive_push(avro: Path, put) -> int:
    """What a pusher without a bulk path does: decode, check, re-encode, one put per key."""
    push_input = open_push_input(avro)
    schema = parsed(push_input.value_schema)
    n = 0
    for path in push_input.files:
        with open_input(path) as fh:
            for record in fastavro.reader(fh):
                value = record[VALUE_FIELD]
                check_value(value, str(path))
                put(record[KEY_FIELD], encode_value(1, schema, value))
                n += 1
    return n


def end_to_end(url: str, avro: Path, records: int, plain_dir: Path | None, redis_url: str) -> dict:
    store = open_store(url, StoreOptions(max_drop=1.0), create=True)
    began = time.perf_counter()
    result = store.push(str(avro))
    push_s = time.perf_counter() - began
    store.close()
    if plain_dir is not None:
        db = Rdict(str(plain_dir), rocks_options())
        began = time.perf_counter()
        naive_push(avro, lambda k, v: db.put(k.to_bytes(8, "big", signed=True), v))
        naive_s = time.perf_counter() - began
        db.close()
        Rdict.destroy(str(plain_dir))
    else:
        client = redis.Redis.from_url(redis_url)
        began = time.perf_counter()
        naive_push(avro, lambda k, v: client.set(f"bench_naive:k:{k}", v))
        naive_s = time.perf_counter() - began
        stale = list(client.scan_iter(match="bench_naive:*", count=10_000))
        for start in range(0, len(stale), 10_000):
            client.unlink(*stale[start:start + 10_000])
        client.close()
    return {"push_s": round(push_s, 2), "push_records_per_s": round(records / push_s),
            "push_timings": {k: v for k, v in result["timings"].items() if not k.endswith("_epoch")},
            "naive_push_s": round(naive_s, 2), "naive_push_records_per_s": round(records / naive_s),
            "speedup_vs_naive_push": round(naive_s / push_s, 2)}


class Requests:
    """1,000-key gets, alternating decoded values and raw bytes; wall-clock start/end of each request."""

    def __init__(self, store: VersionedStore, keys: list[int]):
        self.store, self.keys, self.rng = store, keys, random.Random(7)
        self.done: list[tuple[bool, float, float]] = []   # (decoded, started_epoch, seconds)

    def one(self) -> None:
        decoded = len(self.done) % 2 == 0
        batch = self.rng.sample(self.keys, 1000)
        started = time.time()
        began = time.perf_counter()
        if decoded:
            self.store.get(batch)
        else:
            self.store._get_raw(batch, 0)  # noqa: SLF001 - the store's own cost, without decoding
        self.done.append((decoded, started, time.perf_counter() - began))

    def latencies(self, decoded: bool, windows: list[tuple[float, float]], inside: bool = True) -> list[float]:
        """Requests overlapping any window (inside=True) or none of them (inside=False)."""
        return [s for d, t0, s in self.done if d == decoded and inside == any(
            t0 < end and t0 + s > begin for begin, end in windows)]


def p(values: list[float], q: float) -> float | None:
    return round(percentile(values, q) * 1e3, 2) if values else None


def reads_during_swap(url: str, avro: Path, keys: list[int], want: int, max_pushes: int, gap: int) -> dict:
    store = open_store(url, StoreOptions(max_drop=1.0))
    during = Requests(store, keys)
    while len(during.done) < 2 * want:
        during.one()
    pusher = subprocess.Popen([sys.executable, __file__, "--pusher", url, str(avro)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    swap_windows: list[tuple[float, float]] = []
    push_windows: list[tuple[float, float]] = []
    failures: list[str] = []

    def manage() -> None:
        for _ in range(max_pushes):
            settled = len(during.done) + gap
            while len(during.done) < settled:
                time.sleep(0.01)
            pusher.stdin.write("push\n")
            pusher.stdin.flush()
            line = pusher.stdout.readline()
            if not line:
                failures.append(pusher.stderr.read()[-2000:])
                break
            timings = json.loads(line)["timings"]
            swap_windows.append((timings["build_started_epoch"], timings["finished_epoch"]))
            push_windows.append((timings["push_started_epoch"], timings["finished_epoch"]))
            if len(during.latencies(True, swap_windows)) >= want and len(during.latencies(False, swap_windows)) >= want:
                break
        pusher.stdin.close()

    manager = threading.Thread(target=manage)
    manager.start()
    while manager.is_alive():
        during.one()
    manager.join()
    pusher.wait(60)
    version_after = store.get(keys[:1]).version
    store.close()
    out: dict = {"pushes_during": len(swap_windows), "pusher_exit_code": pusher.returncode,
                 "pusher_failures": failures, "version_after": version_after,
                 "swap_window_s_mean": round(sum(b - a for a, b in swap_windows) / max(1, len(swap_windows)), 2),
                 "push_s_mean": round(sum(b - a for a, b in push_windows) / max(1, len(push_windows)), 2)}
    pushing = [(begin - 0.001, end + 0.001) for begin, end in push_windows]
    for label, decoded in (("", True), ("raw_", False)):
        base = during.latencies(decoded, pushing, inside=False)
        swap = during.latencies(decoded, swap_windows)
        push = during.latencies(decoded, push_windows)
        out.update({
            f"{label}get_1000_p50_ms": p(base, 0.5), f"{label}get_1000_p99_ms": p(base, 0.99),
            f"{label}requests_steady": len(base),
            f"{label}get_1000_p50_during_swap_ms": p(swap, 0.5),
            f"{label}get_1000_p99_during_swap_ms": p(swap, 0.99), f"{label}requests_during_swap": len(swap),
            f"{label}p99_swap_over_steady": round(percentile(swap, 0.99) / percentile(base, 0.99), 2) if swap else None,
            f"{label}get_1000_p99_during_whole_push_ms": p(push, 0.99), f"{label}requests_during_whole_push": len(push),
            f"{label}p99_whole_push_over_steady": round(percentile(push, 0.99) / percentile(base, 0.99), 2)
            if push else None,
        })
    out["goal_p99_ratio"] = 1.5
    out["goal_met"] = out["p99_swap_over_steady"] is not None and out["p99_swap_over_steady"] <= 1.5
    return out


def pusher_main(url: str, avro: str) -> None:
    """The competing pusher: one full push per `push` line on stdin, below serving priority."""
    os.nice(10)
    store = open_store(url, StoreOptions(max_drop=1.0))
    read_input = store._collect_input  # noqa: SLF001
    decoded: dict = {}

    def reuse(push_input, schema_id):   # after the first push: same input, decoded once
        if schema_id not in decoded:
            decoded[schema_id] = read_input(push_input, schema_id)
        return decoded[schema_id]

    store._collect_input = reuse  # noqa: SLF001
    for line in sys.stdin:
        if line.strip() != "push":
            continue
        started = time.time()
        result = store.push(avro)
        result["timings"]["push_started_epoch"] = started
        print(json.dumps(result), flush=True)
    store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--candidates", type=int, default=10)
    parser.add_argument("--swap-requests", type=int, default=200)
    parser.add_argument("--max-pushes", type=int, default=12)
    parser.add_argument("--gap-requests", type=int, default=20)
    parser.add_argument("--scale-records", type=int, default=1_000_000)
    parser.add_argument("--sections", default=",".join(SECTIONS), help=f"comma-separated among {', '.join(SECTIONS)}")
    parser.add_argument("--pusher", nargs=2, metavar=("STORE", "AVRO"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.pusher:
        pusher_main(*args.pusher)
        return
    sections = set(args.sections.split(","))
    unknown = sections - set(SECTIONS)
    if unknown:
        parser.error(f"--sections: expected names among {', '.join(SECTIONS)}, found {', '.join(sorted(unknown))}")
    sample = [value_for(k, args.candidates) for k in range(min(5000, args.records))]
    report: dict = {"records": args.records, "candidates_per_value": args.candidates, "sections": sorted(sections),
                    "command": " ".join(sys.argv), "cpus": os.cpu_count(), "load_avg_at_start": os.getloadavg(),
                    "avro": avro_costs(sample)}
    work = Path(tempfile.mkdtemp(prefix="bench-store-"))
    redis_proc, redis_url = start_redis(work / "redis")
    try:
        if sections & {"write", "e2e", "reads"}:
            ps = parsed(load_value_schema())
            batch = SortedBatch(np.arange(args.records, dtype=np.int64),
                                [encode_value(1, ps, value_for(k, args.candidates)) for k in range(args.records)])
            avro = work / "avro"
            write_input(avro, args.records, args.candidates)
            keys = list(range(args.records))
            for name, url in (("rocksdb", str(work / "store")), ("redis", f"{redis_url}?ns=bench")):
                plain_dir = work / "plain" if name == "rocksdb" else None
                section: dict = {}
                if "write" in sections:
                    builder = open_store(str(work / "build") if name == "rocksdb" else f"{redis_url}?ns=bench_build",
                                         create=True)
                    section["write_phase"] = write_phase(builder, batch, plain_dir, redis_url)
                    builder.close()
                if "e2e" in sections or "reads" in sections:
                    section["end_to_end"] = end_to_end(url, avro, args.records, plain_dir, redis_url)
                if "reads" in sections:
                    section["reads"] = reads_during_swap(url, avro, keys, args.swap_requests,
                                                         args.max_pushes, args.gap_requests)
                report[name] = section
            del batch
        if "scale" in sections:
            report["push_at_scale"] = push_at_scale(work, args.scale_records, args.candidates, redis_url)
        report["load_avg_at_end"] = os.getloadavg()
    finally:
        redis_proc.kill()
        redis_proc.wait()
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
