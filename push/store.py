"""The versioned key-value store contract, shared by the RocksDB and Redis backends.

Semantics copied from Venice, stricter where it is weak:
- A full push builds version N+1 beside the current one, validates it (record count, duplicate keys,
  schema compatibility, a shrink gate on keys and bytes, a canary read) and only then swaps the current
  pointer in one atomic step. A push that fails anywhere leaves the current version untouched and its
  leftovers are cleaned; a bad push can never become current.
- Versions are numbered upwards and never reused; the manifest keeps every version's history.
- A reader sees exactly one version per request (`get` of up to thousands of keys included).
- Rollback is one call: the previous online version becomes current, the one left is `rolled_back`.
- Incremental pushes upsert/delete whole values in the current version and in a version being built
  (logged, and replayed by the full pusher just before its swap, so they are not lost under it).
- Real-time writes (hybrid store): timestamped upserts/deletes beside the batch data. A read returns the
  real-time value when it is newer than the batch version's start; on each swap the writes inside the
  rewind window are replayed onto the new version and older ones are dropped once no retained version
  can need them. Order is (timestamp, sequence); each entry has a TTL so the overlay stays bounded.
- The store's own settings (retention, grace period, rewind window, real-time TTL) live in its manifest:
  recorded when the store is created by its first push, changed only by `configure`. Whoever opens the
  store later cannot change them by passing other options, so a reader can never drop a backup.
- Only a push creates a store (`push.stores.open_store(..., create=True)`); opening one that does not
  exist raises StoreNotFound. Reads (`get`, `versions`, opened with `recover=False`) never write to the store.

Backends implement the primitives at the bottom (`_mutex`, `_load`, `_save`, `_build`, ...); everything
about versions, validation and ordering lives here once, so the two backends cannot drift apart. This
module knows no backend: `push.stores` sits above both and picks one from a store URL.
"""

from __future__ import annotations

import functools
import numbers
import random
import struct
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass, field, replace
from typing import Any, TypeVar

import numpy as np

from mutuals.errors import DuplicateKey
from push import faults
from push.avro_io import (
    SCHEMA_ID,
    PushInput,
    RawRecords,
    check_value,
    decode_body,
    decode_value,
    encode_value,
    open_push_input,
    read_raw_records,
)
from push.errors import (
    BadArgument,
    CorruptStore,
    EmptyPush,
    NothingToRollBack,
    SizeDropRefused,
    StoreUnavailable,
    ValidationFailed,
)
from push.schemas import Schema, canonical, check_compatible, load_value_schema, parsed

STARTED, PUSHED, ONLINE, ERROR, KILLED, ROLLED_BACK = "started", "pushed", "online", "error", "killed", "rolled_back"
STATUSES = (STARTED, PUSHED, ONLINE, ERROR, KILLED, ROLLED_BACK)
BUILDING = (STARTED, PUSHED)
DATA_BUILDING, DATA_PRESENT, DATA_REMOVED = "building", "present", "removed"
PUT, DELETE = "put", "del"
US = 1_000_000
KEY_MIN, KEY_MAX = -(2**63), 2**63 - 1
SETTINGS = ("retain", "grace_s", "rewind_s", "rt_ttl_s")   # StoreOptions fields the store itself keeps
F = TypeVar("F", bound=Callable[..., Any])


def to_us(seconds: float) -> int:
    return int(round(seconds * US))


def member_key(key: object) -> int:
    """A member id as the store keys it: an integer in the signed 64-bit range of an Avro long.

    Checked at the edge (CLI and API), so a bad key is a usage error naming it rather than a packing
    error deep in a backend."""
    if isinstance(key, str):
        try:
            found = int(key.strip())
        except ValueError:
            raise BadArgument(f"key {key!r}: expected an integer member id in [{KEY_MIN}, {KEY_MAX}]") from None
    elif isinstance(key, numbers.Integral) and not isinstance(key, bool):
        found = int(key)
    else:
        raise BadArgument(f"key {key!r}: expected an integer member id in [{KEY_MIN}, {KEY_MAX}], "
                          f"found a {type(key).__name__}")
    if not KEY_MIN <= found <= KEY_MAX:
        raise BadArgument(f"key {found}: outside the signed 64-bit range [{KEY_MIN}, {KEY_MAX}] of member ids")
    return found


@dataclass(frozen=True)
class StoreOptions:
    """Knobs an operator may change; by default the current version plus one backup keep their data.

    `retain`, `grace_s`, `rewind_s` and `rt_ttl_s` (SETTINGS) belong to the store: the values given when a
    push creates the store are recorded in its manifest, and from then on the recorded ones win over what
    any later opener passes (change them with `VersionedStore.configure`). `max_drop`, `canary_keys` and
    `incremental_ids_kept` are per opener: each push may use its own gate."""

    retain: int = 2                 # online versions kept with data: current + backups
    max_drop: float = 0.2           # gate: refuse a swap when keys or bytes drop by more than this share
    rewind_s: float = 3600.0        # real-time writes this old before a version's start are replayed onto it
    rt_ttl_s: float = 7 * 86400.0   # a real-time entry expires after this long
    grace_s: float = 0.0            # a retired version's data is removed this long after it left service
    canary_keys: int = 100          # sampled keys read back through the read path before a swap
    incremental_ids_kept: int = 1000

    def __post_init__(self) -> None:
        if self.retain < 1:
            raise BadArgument(f"retain: expected >= 1, found {self.retain}")
        if not 0.0 <= self.max_drop <= 1.0:
            raise BadArgument(f"max_drop: expected a share in [0, 1], found {self.max_drop}")
        for name in ("grace_s", "rewind_s"):
            if getattr(self, name) < 0:
                raise BadArgument(f"{name}: expected seconds >= 0, found {getattr(self, name)}")
        if self.rt_ttl_s <= 0:
            raise BadArgument(f"rt_ttl_s: expected seconds > 0, found {self.rt_ttl_s}")

    def settings(self) -> dict[str, Any]:
        """The fields a store records at creation, as stored in its manifest."""
        return {name: value for name, value in asdict(self).items() if name in SETTINGS}


@dataclass(frozen=True)
class Read:
    """One request's answer: every value comes from `version` (plus its real-time overlay)."""

    version: int | None
    values: list[dict | None]


@dataclass(frozen=True)
class RtEntry:
    key: int
    ts_us: int
    seq: int
    op: str
    value: bytes | None
    expires_us: int

    @property
    def order(self) -> tuple[int, int]:
        return (self.ts_us, self.seq)


@dataclass(frozen=True)
class SortedBatch:
    """A version's content: distinct keys in ascending order (int64) and their stored values
    (schema id + schemaless Avro), position for position. Arrays, not pairs: the build hands them to the
    backend's bulk writer without per-record Python objects."""

    keys: np.ndarray
    values: list[bytes]

    def __len__(self) -> int:
        return len(self.values)


@dataclass(frozen=True)
class PartTask:
    """One executor task of a full push built outside the pusher: one push-input file (one key-hash
    partition, `part` of `partitions`, or None when the files are not named by partition) into the new
    version's data at `target`, a picklable backend object whose `write(part, keys, values)` stores a
    sorted batch and returns the files it made (SST files for RocksDB, none for Redis)."""

    target: Any
    version: int
    schema_id: int
    folder: str
    path: str
    value_schema: Schema
    nullable_value: bool
    part: int | None
    partitions: int
    canary_keys: int


@dataclass
class PartBuilt:
    """What one task built; `error` is a failure the store reports on purpose (bad record, duplicate key),
    sent back as a value so the pusher raises its own class rather than a task failure."""

    index: int
    records: int = 0
    keys: int = 0
    bytes: int = 0
    files: list[str] = field(default_factory=list)
    sample: list[tuple[int, bytes]] = field(default_factory=list)
    error: Exception | None = None


PartRunner = Callable[[list[PartTask]], list[PartBuilt]]


def collect_records(push_input: PushInput, schema_id: int) -> tuple[SortedBatch, int, int]:
    """Read and check every record once; keys sorted and duplicates resolved with array operations.

    Identical duplicates collapse to one key; a key repeated with a different value fails naming the
    first record (in file order) that disagrees, unless a bad record comes before it, as a streaming
    reader would report them. A module function so an executor task runs the same checks on its file."""
    raw = read_raw_records(push_input, allow_deletes=False)
    keys = np.array(raw.keys, dtype=np.int64)
    order = np.argsort(keys, kind="stable")
    sorted_keys = keys[order]
    repeats = np.flatnonzero(sorted_keys[1:] == sorted_keys[:-1]) + 1
    conflict = first_conflict(raw, order, repeats, push_input)
    if conflict is not None:
        raise DuplicateKey(f"{raw.where(conflict)}: key {raw.keys[conflict]} appears twice with different values")
    if raw.error is not None:
        raise raw.error
    keep = np.ones(len(keys), dtype=bool)
    keep[repeats] = False
    prefix = SCHEMA_ID.pack(schema_id)
    bodies = raw.values
    values = [prefix + bodies[i] for i in order[keep].tolist()]  # type: ignore[operator]
    total = 8 * len(values) + sum(map(len, values))
    return SortedBatch(sorted_keys[keep], values), len(keys), total


def first_conflict(raw: RawRecords, order: np.ndarray, repeats: np.ndarray, push_input: PushInput) -> int | None:
    """Position (file order) of the first record whose key was seen before with another value.

    Bytes are compared first; bytes that differ are decoded and compared as values, since another
    writer may encode an equal value differently (e.g. arrays in several blocks)."""
    schema = None
    first = None
    for i in repeats.tolist():
        here, before = int(order[i]), int(order[i - 1])
        if raw.values[here] == raw.values[before]:
            continue
        if schema is None:
            schema = parsed(push_input.value_schema)
        if decode_body(raw.values[here], schema) == decode_body(raw.values[before], schema):
            continue
        first = here if first is None else min(first, here)
    return first


def part_numbers(files: Sequence[str]) -> list[int] | None:
    """Each file's key-hash partition when the files are exactly part-00000.avro .. part-(n-1) (the
    push-input layout), else None: then no task can tell a key in the wrong file."""
    found = []
    for path in files:
        name = path.rsplit("/", 1)[-1]
        digits = name.removeprefix("part-").removesuffix(".avro")
        if not (name.startswith("part-") and name.endswith(".avro") and digits.isdigit()):
            return None
        found.append(int(digits))
    return found if sorted(found) == list(range(len(files))) else None


def empty_manifest(settings: dict[str, Any] | None = None) -> dict[str, Any]:
    manifest: dict[str, Any] = {"format": 1, "current": None, "next_version": 1, "schemas": {}, "versions": {},
                                "incr_seq": 0, "incremental_push_ids": []}
    if settings is not None:
        manifest["settings"] = dict(settings)
    return manifest


def maps_unavailable(doing: str) -> Callable[[F], F]:
    """Backend connection failures (Redis down, connection refused) inside the decorated public call become
    StoreUnavailable naming the store, so callers see one failure family whatever the backend."""
    def wrap(method: F) -> F:
        @functools.wraps(method)
        def call(self: VersionedStore, *args: Any, **kwargs: Any) -> Any:
            try:
                return method(self, *args, **kwargs)
            except self.unavailable_errors() as exc:
                raise StoreUnavailable(f"{self.describe()}: backend unreachable during {doing} "
                                       f"({type(exc).__name__}: {exc})") from exc
        return call  # type: ignore[return-value]
    return wrap


class VersionedStore(ABC):
    """The contract; see the module docstring. Subclasses: `RocksStore`, `RedisStore`."""

    def __init__(self, options: StoreOptions | None = None, clock: Callable[[], float] = time.time):
        self.options = options or StoreOptions()
        self.clock = clock
        self._schemas: dict[int, Schema] = {}
        self._parsed: dict[int, Any] = {}

    # ================================================================== public API
    @maps_unavailable("push (the current version is unchanged)")
    def push(self, avro_dir: str, push_id: str | None = None, incremental: bool = False,
             allow_empty: bool = False) -> dict[str, Any]:
        """Full (or incremental) push of a push-input folder; returns what the CLI prints.

        A full push of zero records is refused (EmptyPush) unless `allow_empty`: an empty version served
        by mistake answers "no recommendations" for every member. The shrink gate still applies to an
        allowed empty push when a current version exists."""
        push_input = open_push_input(avro_dir)   # headers only: a bad folder fails before any state change
        if incremental:
            return self._incremental_push(push_input, push_id)
        return self._full_push(push_input, push_id, allow_empty)

    @maps_unavailable("push (the current version is unchanged)")
    def push_parts(self, avro_dir: str, run_parts: PartRunner, push_id: str | None = None,
                   allow_empty: bool = False) -> dict[str, Any]:
        """A full push whose build runs in `run_parts` (Spark executors: `push.parallel`), one task per
        push-input file, that is per key-hash partition, each writing straight into the new version's
        data (an SST file in the version's staging folder for RocksDB, pipelined writes into the version's
        keyspace for Redis). The store then ingests what was built and validates and swaps exactly as
        `push` does: same versions, gate, canary, replay and rollback, and a failed build leaves the
        current version untouched. The tasks must reach the store (a local RocksDB folder: local mode or
        a shared mount)."""
        push_input = open_push_input(avro_dir)
        return self._full_push(push_input, push_id, allow_empty, run_parts)

    @maps_unavailable("get")
    def get(self, keys: Sequence[int]) -> Read:
        """Values of `keys`, all from one version (None for an absent key)."""
        version, raws = self._get_raw([member_key(k) for k in keys], to_us(self.clock()))
        return Read(version, [None if raw is None else self.decode(raw) for raw in raws])

    @maps_unavailable("exists")
    def exists(self) -> bool:
        """Whether the store has been created (its manifest is there)."""
        return self._manifest_exists()

    @maps_unavailable("create")
    def create(self) -> bool:
        """Create the store with this opener's settings unless it exists; True when this call created it."""
        self._create_layout()
        with self._mutex():
            if self._manifest_exists():
                return False
            self._save(empty_manifest(self.options.settings()))
            return True

    def effective_options(self, manifest: dict[str, Any]) -> StoreOptions:
        """This opener's options with the store's recorded settings in place of its own."""
        stored = manifest.get("settings") or {}
        return replace(self.options, **{name: stored[name] for name in SETTINGS if name in stored})

    @maps_unavailable("settings")
    def settings(self) -> dict[str, Any]:
        """The settings the store runs with (recorded ones; this opener's for a store that has none yet)."""
        return self.effective_options(self._load()).settings()

    @maps_unavailable("configure")
    def configure(self, **changes: Any) -> dict[str, Any]:
        """Change recorded settings (SETTINGS names only) and return all of them. Retention takes effect at
        the next cleanup (push, rollback, or open with recovery)."""
        unknown = sorted(set(changes) - set(SETTINGS))
        if unknown:
            raise BadArgument(f"configure: expected settings among {', '.join(SETTINGS)}, found {', '.join(unknown)}")
        with self._mutex():
            manifest = self._load()
            updated = replace(self.effective_options(manifest), **changes)   # validates the new values
            manifest["settings"] = updated.settings()
            self._save(manifest)
        return dict(manifest["settings"])

    @maps_unavailable("versions")
    def versions(self) -> dict[str, Any]:
        manifest = self._load()
        rows = [dict(v, current=(int(n) == manifest["current"])) for n, v in sorted(
            manifest["versions"].items(), key=lambda kv: int(kv[0]))]
        return {"store": self.describe(), "current": manifest["current"], "versions": rows}

    @maps_unavailable("rollback")
    def rollback(self) -> dict[str, Any]:
        """Make the previous online version current; the one left is marked rolled_back."""
        with self._mutex():
            manifest = self._load()
            current = manifest["current"]
            if current is None:
                raise NothingToRollBack(f"{self.describe()}: no current version to roll back from")
            candidates = [int(n) for n, v in manifest["versions"].items()
                          if int(n) < current and v["status"] == ONLINE and v["data"] == DATA_PRESENT]
            if not candidates:
                raise NothingToRollBack(f"{self.describe()}: expected an online backup older than v{current} "
                                        "with its data present, found none")
            target = max(candidates)
            left = manifest["versions"][str(current)]
            left.update(status=ROLLED_BACK, retired_at=self.clock())
            manifest["current"] = target
            self._save(manifest)
        self.cleanup()
        return {"current": target, "rolled_back": current}

    @maps_unavailable("write")
    def write(self, key: int, value: dict, ts: float | None = None) -> dict[str, Any]:
        """A real-time upsert, encoded with the current version's schema."""
        key = member_key(key)
        schema_id, schema = self._write_schema()
        check_value(value, f"key {key}")
        try:
            raw = encode_value(schema_id, parsed(schema), value)
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            raise BadArgument(f"key {key}: value does not match schema {schema_id}: {exc}") from exc
        return self._rt_write_entry(key, PUT, raw, ts)

    @maps_unavailable("delete")
    def delete(self, key: int, ts: float | None = None) -> dict[str, Any]:
        """A real-time delete: reads of `key` return None until a newer write or a newer batch version."""
        return self._rt_write_entry(member_key(key), DELETE, None, ts)

    @maps_unavailable("recovery")
    def recover(self, holding_push_lock: bool = False) -> dict[str, Any]:
        """On open: a started/pushed version without a live pusher becomes killed; then clean up.

        `holding_push_lock`: the caller is the (only) pusher and has not registered its version yet, so
        every building version it finds was left by a dead one."""
        killed = []
        if not holding_push_lock:
            self._clear_dead_locks()
        with self._mutex():
            manifest = self._load()
            building = [n for n, v in manifest["versions"].items() if v["status"] in BUILDING]
            if building and (holding_push_lock or not self._pusher_alive()):
                for n in building:
                    manifest["versions"][n].update(status=KILLED, finished_at=self.clock(),
                                                   message="no live pusher found on open")
                    killed.append(int(n))
                self._save(manifest)
        cleaned = self.cleanup(holding_push_lock)
        return {"killed": killed, "cleaned": cleaned}

    @maps_unavailable("cleanup")
    def cleanup(self, holding_push_lock: bool = False) -> list[int]:
        """Remove the data of versions no one may read any more (retention, failed, rolled back), by the
        store's recorded settings."""
        removed = []
        with self._mutex():
            manifest = self._load()
            grace_s = self.effective_options(manifest).grace_s
            keep = self._retained(manifest)
            now = self.clock()
            building_alive = None
            for n, v in manifest["versions"].items():
                version = int(n)
                if v["data"] == DATA_REMOVED or version in keep:
                    continue
                if v["status"] in BUILDING:
                    if building_alive is None:
                        building_alive = not holding_push_lock and self._pusher_alive()
                    if building_alive:
                        continue
                    v.update(status=KILLED, message="no live pusher found on cleanup")
                if v["status"] in (ONLINE, ROLLED_BACK):
                    if v.get("retired_at") is None:
                        v["retired_at"] = now
                    if now - v["retired_at"] < grace_s:
                        continue
                if self._drop_data(version):
                    v["data"] = DATA_REMOVED
                    removed.append(version)
            removed += self._drop_orphans({int(n) for n, v in manifest["versions"].items()
                                           if v["data"] != DATA_REMOVED})
            if not any(v["status"] in BUILDING for v in manifest["versions"].values()):
                self._drop_incremental_logs(manifest["incr_seq"] + 1)
            self._save(manifest)
        return sorted(set(removed))

    def decode(self, raw: bytes) -> dict:
        return decode_value(raw, self._parsed_schema)

    def _parsed_schema(self, schema_id: int) -> Any:
        found = self._parsed.get(schema_id)
        if found is None:
            found = self._parsed[schema_id] = parsed(self.schema(schema_id))
        return found

    def schema(self, schema_id: int) -> Schema:
        if schema_id not in self._schemas:
            found = self._load()["schemas"].get(str(schema_id))
            if found is None:
                raise CorruptStore(f"{self.describe()}: value written with schema id {schema_id}, "
                                   "which the manifest does not hold")
            self._schemas[schema_id] = found
        return self._schemas[schema_id]

    # ================================================================== full push
    def _full_push(self, push_input: PushInput, push_id: str | None, allow_empty: bool,
                   run_parts: PartRunner | None = None) -> dict[str, Any]:
        with self._push_lock():
            self.recover(holding_push_lock=True)
            version, schema_id, noop = self._start_version(push_input, push_id)
            if noop is not None:
                return noop
            try:
                result = self._build_validate_swap(version, schema_id, push_input, push_id, allow_empty, run_parts)
            except BaseException as exc:
                self._fail_version(version, exc)
                raise
        began = time.perf_counter()
        self.cleanup()
        result["timings"].update(cleanup_s=round(time.perf_counter() - began, 4), finished_epoch=time.time())
        return result

    def _start_version(self, push_input: PushInput, push_id: str | None
                       ) -> tuple[int, int, dict[str, Any] | None]:
        """Register version N+1 as started (schema checked and registered first)."""
        with self._mutex():
            manifest = self._load()
            if push_id is not None:
                for n, v in manifest["versions"].items():
                    if v.get("push_id") == push_id and v["status"] in (ONLINE, ROLLED_BACK):
                        return int(n), v["schema_id"], dict(self._result(int(n), v), noop=True)
            schema_id = self._register_schema(manifest, push_input)
            manifest.setdefault("settings", self.options.settings())   # a store made before settings were kept
            version = manifest["next_version"]
            manifest["next_version"] = version + 1
            manifest["versions"][str(version)] = {
                "version": version, "status": STARTED, "push_id": push_id, "started_at": self.clock(),
                "finished_at": None, "records": None, "keys": None, "bytes": None, "schema_id": schema_id,
                "data": DATA_BUILDING, "message": None, "incr_seq_at_start": manifest["incr_seq"],
                "generation": 0, "retired_at": None,
            }
            self._save(manifest)
            return version, schema_id, None

    def _register_schema(self, manifest: dict[str, Any], push_input: PushInput) -> int:
        """Reuse the id of an identical schema; a new one must be compatible with the current version's."""
        source = push_input.folder
        current = manifest["current"]
        if current is not None:
            current_schema = manifest["schemas"][str(manifest["versions"][str(current)]["schema_id"])]
            check_compatible(push_input.value_schema, current_schema, source)
        wanted = canonical(push_input.value_schema)
        for sid, schema in manifest["schemas"].items():
            if canonical(schema) == wanted:
                return int(sid)
        schema_id = max((int(s) for s in manifest["schemas"]), default=0) + 1
        manifest["schemas"][str(schema_id)] = push_input.value_schema
        return schema_id

    def _build_validate_swap(self, version: int, schema_id: int, push_input: PushInput,
                             push_id: str | None, allow_empty: bool = False,
                             run_parts: PartRunner | None = None) -> dict[str, Any]:
        began = time.perf_counter()
        if run_parts is None:
            batch, records, total_bytes = self._collect_input(push_input, schema_id)
            self._refuse_empty(version, records, allow_empty, push_input)
            read_s = time.perf_counter() - began
            build_started = time.time()
            self._build(version, batch)
            keys, sample = len(batch), self._canary_sample(version, batch)
        else:
            read_s, build_started = 0.0, time.time()   # the tasks read and build in one pass
            keys, records, total_bytes, sample = self._build_parts(version, schema_id, push_input, run_parts)
            self._refuse_empty(version, records, allow_empty, push_input)
        self._set_version(version, data=DATA_PRESENT)
        built = time.perf_counter()
        counted = self._count(version)
        if counted != keys:
            raise ValidationFailed(f"v{version}: expected {keys} keys (distinct input keys), "
                                   f"found {counted} in the built version")
        self._gate(version, keys, total_bytes)
        self._canary(version, sample)
        self._set_version(version, status=PUSHED, records=records, keys=keys, bytes=total_bytes)
        validated = time.perf_counter()
        faults.fault_point(faults.WRITTEN)
        with self._mutex():
            manifest = self._load()
            entry = manifest["versions"][str(version)]
            self._check_still_pusher()
            self._replay_incremental(version, entry["incr_seq_at_start"], manifest["incr_seq"])
            rt_applied = self._replay_realtime(version, to_us(entry["started_at"]),
                                               self.effective_options(manifest).rewind_s)
            entry.update(status=ONLINE, finished_at=self.clock())
            previous = manifest["current"]
            manifest["current"] = version
            self._save(manifest, swapped_to=version)
        swapped = time.perf_counter()
        faults.fault_point(faults.SWAPPED)
        self._drop_old_realtime()
        timings = {"read_input_s": round(read_s, 4), "build_s": round(built - began - read_s, 4),
                   "validate_s": round(validated - built, 4), "swap_s": round(swapped - validated, 4),
                   "build_started_epoch": build_started}
        return dict(self._result(version, entry), previous=previous, realtime_replayed=rt_applied,
                    push_id=push_id, timings=timings)

    @staticmethod
    def _refuse_empty(version: int, records: int, allow_empty: bool, push_input: PushInput) -> None:
        if records == 0 and not allow_empty:
            raise EmptyPush(f"v{version}: {push_input.folder} holds no records; an empty full push "
                            "would serve nothing for every member and is refused unless asked for "
                            "(allow_empty=True, --allow-empty)")

    def _build_parts(self, version: int, schema_id: int, push_input: PushInput,
                     run_parts: PartRunner) -> tuple[int, int, int, list[tuple[int, bytes]]]:
        """Run one build task per push-input file, raise the first reported failure (in file order), then
        ingest what the tasks wrote. Returns (keys, records, bytes, canary sample)."""
        self._prepare_version(version)
        numbered = part_numbers(push_input.files)
        tasks = [PartTask(self._part_target(version), version, schema_id, push_input.folder, path,
                          push_input.value_schema, push_input.nullable_value,
                          None if numbered is None else numbered[i], len(push_input.files), self.options.canary_keys)
                 for i, path in enumerate(push_input.files)]
        built = sorted(run_parts(tasks), key=lambda b: b.index)
        if [b.index for b in built] != list(range(len(tasks))):
            raise ValidationFailed(f"v{version}: expected one build result per push-input file "
                                   f"({len(tasks)}), found {len(built)}")
        for part in built:
            if part.error is not None:
                raise part.error
        faults.fault_point(faults.WRITING)
        self._ingest_parts(version, [f for part in built for f in part.files])
        pool = [pair for part in built for pair in part.sample]
        sample = random.Random(version).sample(pool, min(self.options.canary_keys, len(pool)))
        return (sum(b.keys for b in built), sum(b.records for b in built), sum(b.bytes for b in built), sample)

    def _part_target(self, version: int) -> Any:
        """The picklable writer build tasks use for `version` (see PartTask)."""
        raise NotImplementedError(f"{type(self).__name__}: no parallel build")

    def _ingest_parts(self, version: int, files: list[str]) -> None:  # noqa: B027 - optional hook
        """Take the files the build tasks wrote into the version (RocksDB ingests its SST files)."""

    def _collect_input(self, push_input: PushInput, schema_id: int) -> tuple[SortedBatch, int, int]:
        """The whole input read in this process (`collect_records`); a method so a caller can swap it."""
        return collect_records(push_input, schema_id)

    def _gate(self, version: int, keys: int, total_bytes: int) -> None:
        manifest = self._load()
        if manifest["current"] is None:
            return
        current = manifest["versions"][str(manifest["current"])]
        for what, new, old in (("key count", keys, current["keys"]), ("total size", total_bytes, current["bytes"])):
            if old and (old - new) / old > self.options.max_drop:
                raise SizeDropRefused(
                    f"v{version}: {what} dropped from {old} (v{manifest['current']}) to {new} "
                    f"(-{(old - new) / old:.1%}); expected a drop of at most {self.options.max_drop:.0%}")

    def _gate_deletes(self, current: int, entry: dict[str, Any], ordered: list[tuple[int, bytes | None]]) -> None:
        """Refuse an incremental push whose deletes would drop the current version's keys by more than
        `max_drop`, before anything is applied: the same gate a full push passes, measured against the key
        count of the version's full push (upserts of new keys are not credited)."""
        keys = entry.get("keys") or 0
        deletes = sum(v is None for _, v in ordered)
        if keys and deletes / keys > self.options.max_drop:
            raise SizeDropRefused(
                f"v{current}: an incremental push deleting {deletes} of its {keys} keys (-{deletes / keys:.1%}) "
                f"was refused; expected a drop of at most {self.options.max_drop:.0%}")

    def _canary_sample(self, version: int, batch: SortedBatch) -> list[tuple[int, bytes]]:
        rng = random.Random(version)
        picked = rng.sample(range(len(batch)), min(self.options.canary_keys, len(batch)))
        return [(int(batch.keys[i]), batch.values[i]) for i in picked]

    def _canary(self, version: int, sample: list[tuple[int, bytes]]) -> None:
        """Read sampled keys back through a fresh reader of the new version; decode and compare."""
        found = self._read_version(version, [k for k, _ in sample])
        for (key, expected), raw in zip(sample, found, strict=True):
            if raw != expected:
                raise ValidationFailed(f"v{version}: canary read of key {key}: expected "
                                       f"{len(expected)} bytes as pushed, found {None if raw is None else len(raw)}")
            self.decode(raw)

    def _fail_version(self, version: int, exc: BaseException) -> None:
        """Mark the version error (killed for an interrupt) and remove its data; best effort if the backend
        is gone (recovery on the next open finishes the job)."""
        status = KILLED if isinstance(exc, KeyboardInterrupt | SystemExit) else ERROR
        try:
            self._set_version(version, status=status, finished_at=self.clock(),
                              message=f"{type(exc).__name__}: {exc}"[:2000])
            if self._drop_data(version):
                self._set_version(version, data=DATA_REMOVED)
        except Exception:  # noqa: BLE001 - the original failure is what the caller must see
            pass

    def _set_version(self, version: int, **fields: Any) -> None:
        with self._mutex():
            manifest = self._load()
            manifest["versions"][str(version)].update(fields)
            self._save(manifest)

    def _result(self, version: int, entry: dict[str, Any]) -> dict[str, Any]:
        return {"version": version, "records": entry.get("records"), "keys": entry.get("keys"),
                "bytes": entry.get("bytes"), "status": entry["status"], "store": self.describe()}

    def _retained(self, manifest: dict[str, Any]) -> set[int]:
        current = manifest["current"]
        if current is None:
            return set()
        online = sorted((int(n) for n, v in manifest["versions"].items()
                         if int(n) <= current and v["status"] == ONLINE and v["data"] == DATA_PRESENT),
                        reverse=True)
        return {current, *online[: self.effective_options(manifest).retain]} - {None}

    # ================================================================== incremental push
    def _incremental_push(self, push_input: PushInput, push_id: str | None) -> dict[str, Any]:
        with self._mutex():
            manifest = self._load()
            if push_id is not None and push_id in manifest["incremental_push_ids"]:
                return {"version": manifest["current"], "records": 0, "incremental": True, "noop": True,
                        "push_id": push_id}
            current = manifest["current"]
            if current is None:
                raise NothingToRollBack(f"{self.describe()}: an incremental push needs a current version")
            schema_id = self._register_schema(manifest, push_input)
            raw = read_raw_records(push_input, allow_deletes=True)
            if raw.error is not None:
                raise raw.error
            prefix = SCHEMA_ID.pack(schema_id)
            items = {key: None if body is None else prefix + body   # the last record of a key wins
                     for key, body in zip(raw.keys, raw.values, strict=True)}
            records = len(raw.keys)
            ordered = sorted(items.items())
            self._gate_deletes(current, manifest["versions"][str(current)], ordered)
            targets = [current] + [int(n) for n, v in manifest["versions"].items()
                                   if v["status"] in BUILDING and v["data"] != DATA_REMOVED]
            seq = manifest["incr_seq"] + 1
            if len(targets) > 1:
                self._log_incremental(seq, ordered)   # the full pusher replays it just before its swap
            self._apply(current, ordered)
            manifest["incr_seq"] = seq
            entry = manifest["versions"][str(current)]
            entry["generation"] = entry.get("generation", 0) + 1
            entry["incremental_pushes"] = entry.get("incremental_pushes", 0) + 1
            if push_id is not None:
                entry["last_push_id"] = push_id
                ids = manifest["incremental_push_ids"] + [push_id]
                manifest["incremental_push_ids"] = ids[-self.options.incremental_ids_kept:]
            self._save(manifest)
        return {"version": current, "records": records, "keys": len(ordered), "incremental": True,
                "upserts": sum(v is not None for _, v in ordered), "deletes": sum(v is None for _, v in ordered),
                "also_building": targets[1:], "push_id": push_id}

    def _replay_incremental(self, version: int, after_seq: int, upto_seq: int) -> None:
        for seq in range(after_seq + 1, upto_seq + 1):
            items = self._read_incremental(seq)
            if items is not None:
                self._apply(version, items)

    # ================================================================== real-time overlay
    def _write_schema(self) -> tuple[int, Schema]:
        manifest = self._load()
        current = manifest["current"]
        if current is not None:
            sid = manifest["versions"][str(current)]["schema_id"]
            return sid, manifest["schemas"][str(sid)]
        schema = load_value_schema()
        for sid, found in manifest["schemas"].items():
            if canonical(found) == canonical(schema):
                return int(sid), found
        with self._mutex():
            manifest = self._load()
            sid = max((int(s) for s in manifest["schemas"]), default=0) + 1
            manifest["schemas"][str(sid)] = schema
            self._save(manifest)
        return sid, schema

    def _rt_write_entry(self, key: int, op: str, raw: bytes | None, ts: float | None) -> dict[str, Any]:
        ts_us = to_us(self.clock() if ts is None else ts)
        expires_us = ts_us + to_us(self.effective_options(self._load()).rt_ttl_s)
        seq, applied = self._rt_put(int(key), ts_us, op, raw, expires_us)
        return {"key": int(key), "op": op, "ts_us": ts_us, "seq": seq, "applied": applied}

    def _replay_realtime(self, version: int, start_us: int, rewind_s: float) -> int:
        """Replay the latest real-time entry of each key that falls in [start - rewind, start) onto
        `version`, in (timestamp, sequence) order; newer entries are served by the overlay at read time."""
        window_start = start_us - to_us(rewind_s)
        now_us = to_us(self.clock())
        entries = sorted((e for e in self._rt_entries()
                          if window_start <= e.ts_us < start_us and e.expires_us > now_us),
                         key=lambda e: e.order)
        if entries:
            self._apply(version, [(e.key, e.value if e.op == PUT else None) for e in entries])
        return len(entries)

    def _drop_old_realtime(self) -> int:
        """Drop expired entries, and entries older than every retained version's replay window and start."""
        manifest = self._load()
        keep = self._retained(manifest)
        if not keep:
            return 0
        starts = [to_us(manifest["versions"][str(v)]["started_at"]) for v in keep]
        current_start = to_us(manifest["versions"][str(manifest["current"])]["started_at"])
        horizon = min(current_start - to_us(self.effective_options(manifest).rewind_s), min(starts))
        now_us = to_us(self.clock())
        stale = [e for e in self._rt_entries() if e.ts_us < horizon or e.expires_us <= now_us]
        if stale:
            self._rt_drop(stale)
        return len(stale)

    # ================================================================== backend primitives
    @abstractmethod
    def describe(self) -> str: ...

    @abstractmethod
    def manifest_name(self) -> str:
        """Where the manifest lives (a file, a key), for messages."""

    @abstractmethod
    def unavailable_errors(self) -> tuple[type[BaseException], ...]: ...

    @abstractmethod
    def _mutex(self) -> AbstractContextManager[None]:
        """Serialises manifest read-modify-write across threads and processes."""

    @abstractmethod
    def _load(self) -> dict[str, Any]: ...

    @abstractmethod
    def _manifest_exists(self) -> bool:
        """Whether the manifest is stored: what makes a store exist."""

    def _create_layout(self) -> None:  # noqa: B027 - optional hook
        """Create whatever the backend needs before the first manifest (folders)."""

    @abstractmethod
    def _save(self, manifest: dict[str, Any], swapped_to: int | None = None) -> None:
        """Replace the manifest and the current pointer in one atomic step."""

    @abstractmethod
    def _push_lock(self) -> AbstractContextManager[None]:
        """Held for a whole full push; raises PushInProgress when another pusher holds it."""

    @abstractmethod
    def _pusher_alive(self) -> bool: ...

    def _clear_dead_locks(self) -> None:  # noqa: B027 - optional hook
        """Backends whose locks outlive a killed holder (Redis keys) remove them here."""

    def _check_still_pusher(self) -> None:  # noqa: B027 - optional hook
        """Backends whose lock can be lost (Redis) re-check it right before the swap."""

    def _build(self, version: int, batch: SortedBatch) -> None:
        """Bulk-load a sorted batch into a new version's data."""
        self._prepare_version(version)
        self._write_version(version, self._storage_keys(version, batch.keys), batch.values)

    def _prepare_version(self, version: int) -> None:  # noqa: B027 - optional hook
        """Create whatever an empty version needs before its data is written."""

    @abstractmethod
    def _storage_keys(self, version: int, keys: np.ndarray) -> list[Any]:
        """The backend's own key for each (sorted, distinct) member id of a version."""

    @abstractmethod
    def _write_version(self, version: int, storage_keys: list[Any], values: list[bytes]) -> None:
        """The write phase: already-encoded keys and values, in key order, into a new version."""

    @abstractmethod
    def _count(self, version: int) -> int: ...

    @abstractmethod
    def _read_version(self, version: int, keys: list[int]) -> list[bytes | None]:
        """Raw values from a version through a fresh reader (the canary)."""

    @abstractmethod
    def _apply(self, version: int, items: Sequence[tuple[int, bytes | None]]) -> None:
        """Upsert (bytes) or delete (None) whole values in a version, in order."""

    @abstractmethod
    def _drop_data(self, version: int) -> bool:
        """Remove a version's data; False (try again later) while a reader still holds it."""

    def _drop_orphans(self, known: set[int]) -> list[int]:
        return []

    @abstractmethod
    def _log_incremental(self, seq: int, items: list[tuple[int, bytes | None]]) -> None: ...

    @abstractmethod
    def _read_incremental(self, seq: int) -> list[tuple[int, bytes | None]] | None: ...

    @abstractmethod
    def _drop_incremental_logs(self, below_seq: int) -> None: ...

    @abstractmethod
    def _rt_put(self, key: int, ts_us: int, op: str, raw: bytes | None, expires_us: int) -> tuple[int, bool]:
        """Store the entry unless the key already holds a newer one; returns (sequence, applied)."""

    @abstractmethod
    def _rt_entries(self) -> Iterator[RtEntry]: ...

    @abstractmethod
    def _rt_drop(self, entries: list[RtEntry]) -> None:
        """Remove these entries (only if the key still holds exactly this entry)."""

    @abstractmethod
    def _get_raw(self, keys: list[int], now_us: int) -> tuple[int | None, list[bytes | None]]:
        """Resolve the current version once and read every key from it, real-time overlay applied."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release handles and connections."""

    def __enter__(self) -> VersionedStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


FRAME = struct.Struct(">qI")
DELETED_LEN = 0xFFFFFFFF


def frame_items(items: Sequence[tuple[int, bytes | None]]) -> bytes:
    """An incremental batch as bytes: (key, length) frames, length 0xFFFFFFFF for a delete."""
    parts = []
    for key, value in items:
        parts.append(FRAME.pack(key, DELETED_LEN if value is None else len(value)))
        if value is not None:
            parts.append(value)
    return b"".join(parts)


def unframe_items(blob: bytes) -> list[tuple[int, bytes | None]]:
    items: list[tuple[int, bytes | None]] = []
    pos = 0
    while pos < len(blob):
        key, length = FRAME.unpack_from(blob, pos)
        pos += FRAME.size
        if length == DELETED_LEN:
            items.append((key, None))
        else:
            items.append((key, blob[pos:pos + length]))
            pos += length
    return items
