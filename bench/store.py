"""Store benchmark; prints one JSON document.

    python bench/store.py [--records 100000] [--candidates 10]

- push write phase vs a plain-put baseline on the same pre-encoded records, same run (goal >= 5x):
  RocksDB SST bulk ingest vs one put per key (WAL on); Redis MSET batches of 10k vs one SET per key;
- end-to-end push from Avro files (decode + checks + encode + build + validate + swap), records/s;
- batch get of 1,000 keys: p50 and p99 (decoded values), steady state;
- p99 of those gets while another process pushes and swaps, against steady state (goal <= 1.5x);
- Avro encode and decode per record (schemaless, as stored).
Starts its own redis-server on a free loopback port and stops it at the end.
"""

from __future__ import annotations

import argparse
import io
import json
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import fastavro
import redis
from rocksdict import Options, Rdict

from push.avro_io import encode_value, key_bytes, write_push_input
from push.schemas import load_value_schema, parsed
from push.store import StoreOptions, open_store

SOURCES = ["triangle", "coworker", "schoolmate", "ppr"]


def make_value(rng: random.Random, key: int, candidates: int) -> dict:
    return {"generated_ds": "2026-01-05", "model_version": "bench", "candidates": [
        {"candidate_id": key * 100 + i, "rank": i + 1, "score": round(1.0 - i * 0.01, 4),
         "common_connections": rng.randint(0, 40), "sources": rng.sample(SOURCES, rng.randint(1, 3)),
         "coworker_overlap_days": rng.randint(0, 900), "schoolmate_overlap_days": 0,
         "ppr_score": round(rng.random() / 100, 6)} for i in range(candidates)]}


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


def write_phase(url: str, items: list[tuple[int, bytes]], plain_dir: Path | None) -> dict:
    """The store's bulk build against one-put-per-key of the same bytes."""
    store = open_store(url if plain_dir is not None else f"{url}?ns=bench_build")
    began = time.perf_counter()
    store._build(999, items)   # noqa: SLF001 - the write phase alone, as in a push
    build_s = time.perf_counter() - began
    store._drop_data(999)      # noqa: SLF001
    store.close()
    if plain_dir is not None:
        db = Rdict(str(plain_dir), Options(raw_mode=True))
        began = time.perf_counter()
        for key, value in items:
            db[key_bytes(key)] = value
        plain_s = time.perf_counter() - began
        db.close()
    else:
        client = redis.Redis.from_url(url)
        began = time.perf_counter()
        for key, value in items:
            client.set(f"bench_plain:v1:k:{key}", value)
        plain_s = time.perf_counter() - began
        client.flushdb()
    n = len(items)
    return {"bulk_records_per_s": round(n / build_s), "plain_put_records_per_s": round(n / plain_s),
            "speedup_vs_plain_put": round(plain_s / build_s, 2), "goal_speedup": 5.0}


def read_latencies(store, keys: list[int], seconds: float, raw: bool = False) -> list[float]:
    """1,000-key gets for `seconds`; raw=True skips Avro decoding (the store's own cost)."""
    rng = random.Random(7)
    out: list[float] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        batch = rng.sample(keys, 1000)
        began = time.perf_counter()
        if raw:
            store._get_raw(batch, 0)  # noqa: SLF001
        else:
            store.get(batch)
        out.append(time.perf_counter() - began)
    return out


def reads_during_swap(url: str, avro: Path, keys: list[int]) -> dict:
    store = open_store(url, StoreOptions(max_drop=1.0))
    steady_raw = read_latencies(store, keys, 3.0, raw=True)
    steady = read_latencies(store, keys, 4.0)
    proc = subprocess.Popen([sys.executable, "-m", "push.cli", "push", "--store", url, "--avro", str(avro),
                             "--max-drop", "1.0"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    during: list[float] = []
    during_raw: list[float] = []
    while proc.poll() is None:
        during += read_latencies(store, keys, 0.5)
        during_raw += read_latencies(store, keys, 0.2, raw=True)
    version_after = store.get(keys[:1]).version
    store.close()
    p99_steady, p99_swap = percentile(steady, 0.99), percentile(during, 0.99)
    return {
        "get_1000_p50_ms": round(percentile(steady, 0.5) * 1e3, 2),
        "get_1000_p99_ms": round(p99_steady * 1e3, 2),
        "get_1000_p99_during_push_and_swap_ms": round(p99_swap * 1e3, 2),
        "p99_swap_over_steady": round(p99_swap / p99_steady, 2), "goal_p99_ratio": 1.5,
        "raw_get_1000_p50_ms": round(percentile(steady_raw, 0.5) * 1e3, 2),
        "raw_get_1000_p99_ms": round(percentile(steady_raw, 0.99) * 1e3, 2),
        "raw_get_1000_p99_during_push_and_swap_ms": round(percentile(during_raw, 0.99) * 1e3, 2),
        "raw_p99_swap_over_steady": round(percentile(during_raw, 0.99) / percentile(steady_raw, 0.99), 2),
        "requests_steady": len(steady), "requests_during_push": len(during),
        "push_exit_code": proc.returncode, "version_after": version_after,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--candidates", type=int, default=10)
    args = parser.parse_args()
    rng = random.Random(42)
    values = [make_value(rng, k, args.candidates) for k in range(args.records)]
    report: dict = {"records": args.records, "candidates_per_value": args.candidates, "avro": avro_costs(values)}
    schema = load_value_schema()
    ps = parsed(schema)
    items = [(k, encode_value(1, ps, v)) for k, v in enumerate(values)]
    work = Path(tempfile.mkdtemp(prefix="bench-store-"))
    redis_proc, redis_url = start_redis(work / "redis")
    try:
        avro = work / "avro"
        write_push_input(avro, enumerate(values), schema, partitions=8)
        keys = list(range(args.records))
        for name, url in (("rocksdb", str(work / "store")), ("redis", f"{redis_url}?ns=bench")):
            section: dict = {}
            section["write_phase"] = write_phase(redis_url if name == "redis" else url,
                                                 items, work / "plain" if name == "rocksdb" else None)
            store = open_store(url, StoreOptions(max_drop=1.0))
            began = time.perf_counter()
            store.push(str(avro))
            push_s = time.perf_counter() - began
            store.close()
            section["end_to_end_push_records_per_s"] = round(args.records / push_s)
            section["end_to_end_push_s"] = round(push_s, 2)
            section["reads"] = reads_during_swap(url, avro, keys)
            report[name] = section
    finally:
        redis_proc.kill()
        redis_proc.wait()
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
