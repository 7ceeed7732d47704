"""The networked backend: the same contract on a real redis-server.

Layout (prefix NS, default `mutuals`, set with `redis://HOST:PORT/DB?ns=NAME`):
    NS:manifest         JSON: versions, statuses, counts, schemas, settings (same document as the RocksDB
                        manifest); the store exists once this key does
    NS:current          the pointer: the current version number
    NS:vstart           hash version -> start (µs), so a read can apply the real-time overlay
    NS:v<N>:k:<key>     one value per key per version, written with MSET batches
    NS:rt:<key>         hash ts, seq, exp, op, v: the latest real-time entry of a key (PEXPIRE = TTL)
    NS:rt:idx, rt:seq   sorted set of real-time keys by timestamp; the sequence counter
    NS:incr:<seq>       incremental batches logged while a full push is building
    NS:lock:manifest    mutex for manifest read-modify-write
    NS:lock:push        held for a whole full push

Why locks hold a client id: a lock's value is the Redis client id of the holder's own connection. A
process killed with -9 loses its connection, so `CLIENT LIST ID` tells at once that the lock is dead (no
TTL to wait out), which is how recovery finds a `started` version with no live pusher.

A read is one Lua call: it reads the pointer, the version's start and every value and real-time entry
at once, so a request sees exactly one version even while a swap or a rollback happens. Manifest and
pointer change together in one MULTI/EXEC. Keys are built inside Lua, so this targets a single Redis
node (not Redis Cluster). Old versions are removed with SCAN + UNLINK after the grace period.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit, urlunsplit

import numpy as np
import redis

from push import faults
from push.errors import BadArgument, PushInProgress, StoreUnavailable
from push.store import (
    PUT,
    RtEntry,
    StoreOptions,
    VersionedStore,
    empty_manifest,
    frame_items,
    to_us,
    unframe_items,
)

MSET_BATCH = 10_000
PIPELINE_DEPTH = 4
SCAN_COUNT = 10_000
LOCK_WAIT_S = 30.0

READ_LUA = """
local ns = ARGV[1]
local now = tonumber(ARGV[2])
local cur = redis.call('GET', ns .. ':current')
if not cur then return {false} end
local start = tonumber(redis.call('HGET', ns .. ':vstart', cur))
local out = {cur}
for i = 3, #ARGV do
  local k = ARGV[i]
  local rt = redis.call('HMGET', ns .. ':rt:' .. k, 'ts', 'op', 'v', 'exp')
  if rt[1] and tonumber(rt[1]) >= start and tonumber(rt[4]) > now then
    if rt[2] == 'put' then out[#out + 1] = rt[3] else out[#out + 1] = false end
  else
    out[#out + 1] = redis.call('GET', ns .. ':v' .. cur .. ':k:' .. k) or false
  end
end
return out
"""

RT_PUT_LUA = """
local seq = redis.call('INCR', KEYS[2])
local ts = redis.call('HGET', KEYS[1], 'ts')
if ts and tonumber(ts) > tonumber(ARGV[1]) then return {seq, 0} end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'ts', ARGV[1], 'seq', seq, 'exp', ARGV[3], 'op', ARGV[2], 'v', ARGV[4])
redis.call('PEXPIRE', KEYS[1], ARGV[5])
redis.call('ZADD', KEYS[3], ARGV[1], ARGV[6])
return {seq, 1}
"""

RT_DROP_LUA = """
local n = 0
for i = 1, #KEYS do
  local seq = redis.call('HGET', KEYS[i], 'seq')
  if (not seq) or seq == ARGV[2 * i - 1] then
    redis.call('DEL', KEYS[i])
    redis.call('ZREM', ARGV[#ARGV], ARGV[2 * i])
    n = n + 1
  end
end
return n
"""

CAS_LUA = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  if ARGV[2] == '' then redis.call('DEL', KEYS[1]) else redis.call('SET', KEYS[1], ARGV[2]) end
  return 1
end
return 0
"""


def split_url(url: str) -> tuple[str, str]:
    """`redis://h:p/db?ns=x` -> (`redis://h:p/db`, `x`)."""
    parts = urlsplit(url)
    if not parts.hostname:
        raise BadArgument(f"--store: expected redis://HOST:PORT/DB, found {url!r}")
    ns = parse_qs(parts.query).get("ns", ["mutuals"])[0]
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "", "")), ns


@dataclass(frozen=True)
class RedisPartTarget:
    """Where a build task writes its partition: the version's keyspace, MSET batches sent in one pipeline
    per MSET_BATCH * PIPELINE_DEPTH keys, from every task at once (Redis serialises them; the tasks overlap
    their Avro decoding with the other tasks' writes)."""

    base_url: str
    prefix: str

    def write(self, part: int, keys: np.ndarray, values: list[bytes]) -> list[str]:
        client = redis.Redis.from_url(self.base_url, socket_timeout=60, socket_connect_timeout=5)
        try:
            names = [self.prefix + str(key) for key in keys.tolist()]
            step = MSET_BATCH * PIPELINE_DEPTH
            for start in range(0, len(values), step):
                pipe = client.pipeline(transaction=False)
                for at in range(start, min(start + step, len(values)), MSET_BATCH):
                    pipe.mset(dict(zip(names[at:at + MSET_BATCH], values[at:at + MSET_BATCH], strict=True)))
                pipe.execute()
        finally:
            client.close()
        return []


class RedisStore(VersionedStore):
    def __init__(self, url: str, options: StoreOptions | None = None, clock: Callable[[], float] = time.time):
        super().__init__(options, clock)
        self.url = url
        base, self.ns = split_url(url)
        self._base = base
        self.r = redis.Redis.from_url(base, socket_timeout=30, socket_connect_timeout=5)
        self._owner: redis.Redis | None = None
        self._owner_id: int | None = None
        self._tlock = threading.RLock()
        self._depth = 0
        self._mutex_value: str | None = None
        self._read = self.r.register_script(READ_LUA)
        self._rt_put_script = self.r.register_script(RT_PUT_LUA)
        self._rt_drop_script = self.r.register_script(RT_DROP_LUA)
        self._cas = self.r.register_script(CAS_LUA)

    def describe(self) -> str:
        return self.url

    def manifest_name(self) -> str:
        return f"key {self.k('manifest')}"

    def unavailable_errors(self) -> tuple[type[BaseException], ...]:
        return (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)

    def _manifest_exists(self) -> bool:
        return bool(self.r.exists(self.k("manifest")))

    def k(self, *parts: object) -> str:
        return ":".join([self.ns, *map(str, parts)])

    def _vkey(self, version: int, key: int) -> str:
        return f"{self.ns}:v{version}:k:{key}"

    # ------------------------------------------------------------------ liveness-aware locks
    def _client_id(self) -> int:
        """Locks are owned by a dedicated connection, opened on first use (readers never need it): if the
        process dies, so does the connection."""
        if self._owner_id is None:
            if self._owner is None:
                self._owner = redis.Redis.from_url(self._base, single_connection_client=True, socket_timeout=30,
                                                   socket_connect_timeout=5)
            self._owner_id = int(self._owner.client_id())
        return self._owner_id

    def _holder_alive(self, value: bytes | None) -> bool:
        if value is None:
            return False
        client_id = value.decode().split(":", 1)[0]
        return bool(self.r.execute_command("CLIENT", "LIST", "ID", client_id))

    def _try_lock(self, name: str, value: str) -> bool:
        key = self.k("lock", name)
        if self.r.set(key, value, nx=True):
            return True
        held = self.r.get(key)
        if held is not None and not self._holder_alive(held):
            return bool(self._cas(keys=[key], args=[held, value]))
        return False

    def _unlock(self, name: str, value: str) -> None:
        with contextlib.suppress(*self.unavailable_errors()):
            self._cas(keys=[self.k("lock", name)], args=[value, ""])

    @contextlib.contextmanager
    def _mutex(self) -> Iterator[None]:
        with self._tlock:
            if self._depth == 0:
                value = f"{self._client_id()}:{uuid.uuid4().hex}"
                deadline = time.monotonic() + LOCK_WAIT_S
                while not self._try_lock("manifest", value):
                    if time.monotonic() > deadline:
                        raise StoreUnavailable(f"{self.url}: manifest lock held by a live client for "
                                               f"more than {LOCK_WAIT_S:.0f} s")
                    time.sleep(0.002)
                self._mutex_value = value
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
                if self._depth == 0 and self._mutex_value is not None:
                    self._unlock("manifest", self._mutex_value)
                    self._mutex_value = None

    @contextlib.contextmanager
    def _push_lock(self) -> Iterator[None]:
        value = f"{self._client_id()}:{uuid.uuid4().hex}"
        if not self._try_lock("push", value):
            raise PushInProgress(f"{self.url}: another full push holds {self.k('lock', 'push')} "
                                 f"({self.r.get(self.k('lock', 'push'))!r}); this push is refused, not queued")
        self._push_value = value
        try:
            yield
        finally:
            self._unlock("push", value)
            self._push_value = None

    def _pusher_alive(self) -> bool:
        return self._holder_alive(self.r.get(self.k("lock", "push")))

    def _clear_dead_locks(self) -> None:
        for name in ("push", "manifest"):
            key = self.k("lock", name)
            held = self.r.get(key)
            if held is not None and not self._holder_alive(held):
                self._cas(keys=[key], args=[held, ""])

    def _check_still_pusher(self) -> None:
        held = self.r.get(self.k("lock", "push"))
        if held is None or held.decode() != getattr(self, "_push_value", None):
            raise PushInProgress(f"{self.url}: this pusher lost the push lock before its swap")

    # ------------------------------------------------------------------ manifest
    def _load(self) -> dict[str, Any]:
        raw = self.r.get(self.k("manifest"))
        return empty_manifest() if raw is None else json.loads(raw)

    def _save(self, manifest: dict[str, Any], swapped_to: int | None = None) -> None:
        pipe = self.r.pipeline(transaction=True)
        pipe.set(self.k("manifest"), json.dumps(manifest, sort_keys=True))
        starts = {n: to_us(v["started_at"]) for n, v in manifest["versions"].items()}
        if starts:
            pipe.hset(self.k("vstart"), mapping=starts)
        if manifest["current"] is None:
            pipe.delete(self.k("current"))
        else:
            pipe.set(self.k("current"), manifest["current"])
        pipe.execute()

    # ------------------------------------------------------------------ version data
    def _storage_keys(self, version: int, keys: np.ndarray) -> list[str]:
        prefix = f"{self.ns}:v{version}:k:"
        return [prefix + str(key) for key in keys.tolist()]

    def _part_target(self, version: int) -> RedisPartTarget:
        return RedisPartTarget(self._base, f"{self.ns}:v{version}:k:")

    def _write_version(self, version: int, storage_keys: list[str], values: list[bytes]) -> None:
        """MSET in batches of MSET_BATCH: one round trip per batch instead of one per key."""
        for start in range(0, max(len(values), 1), MSET_BATCH):
            stop = start + MSET_BATCH
            if start < len(values):
                self.r.mset(dict(zip(storage_keys[start:stop], values[start:stop], strict=True)))
            if start == 0:
                faults.fault_point(faults.WRITING)

    def _scan(self, pattern: str) -> Iterator[list[bytes]]:
        cursor = 0
        while True:
            cursor, keys = self.r.scan(cursor=cursor, match=pattern, count=SCAN_COUNT)
            if keys:
                yield keys
            if cursor == 0:
                return

    def _count(self, version: int) -> int:
        seen: set[bytes] = set()
        for keys in self._scan(f"{self.ns}:v{version}:k:*"):
            seen.update(keys)
        return len(seen)

    def _read_version(self, version: int, keys: list[int]) -> list[bytes | None]:
        return self.r.mget([self._vkey(version, key) for key in keys]) if keys else []

    def _apply(self, version: int, items: Sequence[tuple[int, bytes | None]]) -> None:
        pipe = self.r.pipeline(transaction=True)
        for key, value in items:
            if value is None:
                pipe.delete(self._vkey(version, key))
            else:
                pipe.set(self._vkey(version, key), value)
        pipe.execute()

    def _drop_data(self, version: int) -> bool:
        for keys in self._scan(f"{self.ns}:v{version}:*"):
            self.r.unlink(*keys)
        return True

    # ------------------------------------------------------------------ incremental logs
    def _log_incremental(self, seq: int, items: list[tuple[int, bytes | None]]) -> None:
        self.r.set(self.k("incr", seq), frame_items(items))

    def _read_incremental(self, seq: int) -> list[tuple[int, bytes | None]] | None:
        blob = self.r.get(self.k("incr", seq))
        return None if blob is None else unframe_items(blob)

    def _drop_incremental_logs(self, below_seq: int) -> None:
        for keys in self._scan(f"{self.ns}:incr:*"):
            stale = [k for k in keys if int(k.rsplit(b":", 1)[1]) < below_seq]
            if stale:
                self.r.unlink(*stale)

    # ------------------------------------------------------------------ real-time overlay
    def _rt_put(self, key: int, ts_us: int, op: str, raw: bytes | None, expires_us: int) -> tuple[int, bool]:
        ttl_ms = max(1, (expires_us - ts_us) // 1000)
        seq, applied = self._rt_put_script(
            keys=[self.k("rt", key), self.k("rt", "seq"), self.k("rt", "idx")],
            args=[ts_us, op, expires_us, raw or b"", ttl_ms, key])
        return int(seq), bool(applied)

    def _rt_entries(self) -> Iterator[RtEntry]:
        members = self.r.zrange(self.k("rt", "idx"), 0, -1)
        pipe = self.r.pipeline(transaction=False)
        for member in members:
            pipe.hgetall(self.k("rt", member.decode()))
        entries, expired = [], []
        for member, fields in zip(members, pipe.execute(), strict=True):
            if not fields:
                expired.append(member)   # the hash expired (TTL); forget it in the index too
                continue
            op = fields[b"op"].decode()
            entries.append(RtEntry(int(member), int(fields[b"ts"]), int(fields[b"seq"]), op,
                                   fields[b"v"] if op == PUT else None, int(fields[b"exp"])))
        if expired:
            self.r.zrem(self.k("rt", "idx"), *expired)
        return iter(entries)

    def _rt_drop(self, entries: list[RtEntry]) -> None:
        keys = [self.k("rt", e.key) for e in entries]
        args: list[Any] = []
        for e in entries:
            args += [e.seq, e.key]
        self._rt_drop_script(keys=keys, args=[*args, self.k("rt", "idx")])

    # ------------------------------------------------------------------ reads
    def _get_raw(self, keys: list[int], now_us: int) -> tuple[int | None, list[bytes | None]]:
        out = self._read(args=[self.ns, now_us, *keys])
        if not out or out[0] is None:
            return None, [None] * len(keys)
        return int(out[0]), list(out[1:])

    def close(self) -> None:
        if self._owner is not None:
            with contextlib.suppress(Exception):
                self._owner.close()
        with contextlib.suppress(Exception):
            self.r.close()
