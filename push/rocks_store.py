"""The embedded backend: one RocksDB per version in a store folder, a JSON manifest as the current pointer.

Layout of STORE/:
    MANIFEST.json        every version's status and counts, the schemas, and `current` (the pointer).
                         Replaced by write-to-temp + fsync + rename + fsync(dir): readers see old or new.
    manifest.lock        flock: manifest read-modify-write, across threads and processes
    push.lock            flock held for a whole full push; a kill -9 releases it, which is how recovery
                         knows a `started` version has no live pusher
    versions/vNNNNNN/    a version's RocksDB, built from sorted SST files bulk-ingested (.sst = staging)
    leases/vNNNNNN.lock  readers hold a shared flock while they have the version open; data is removed
                         only under an exclusive flock, so never under a reader. Created with the
                         version, so a reader opens an existing file and a read writes nothing.
    realtime/db          the real-time overlay (one RocksDB, latest entry per key); realtime/GEN changes on
                         every write so readers reopen their read-only view
    incremental/         incremental pushes logged while a full push is building, replayed before its swap

Readers open versions read-only (many processes may read while one pushes); the pusher alone writes.
The store exists once MANIFEST.json does; the folders are made only when a push creates the store.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import struct
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from rocksdict import (
    AccessType,
    DBCompressionType,
    IngestExternalFileOptions,
    Options,
    Rdict,
    SstFileWriter,
    WriteBatch,
)

from push import faults
from push.avro_io import SIGN, key_bytes, key_from_bytes
from push.errors import CorruptStore, PushInProgress, StoreUnavailable
from push.store import (
    DELETE,
    PUT,
    RtEntry,
    StoreOptions,
    VersionedStore,
    empty_manifest,
    frame_items,
    to_us,
    unframe_items,
)

SST_CHUNK = 250_000
RT_HEADER = struct.Struct(">qqqB")   # ts_us, seq, expires_us, op (1 put, 0 delete)
RT_SEQ_KEY = b"__seq__"


def _options() -> Options:
    """Raw bytes in and out (no pickling), and no block compression: values are already compact Avro,
    compressing blocks cost the SST writer 1-3 µs per record here, and reads skip decompression (Venice's
    RocksDB default is no compression too)."""
    options = Options(raw_mode=True)
    options.set_compression_type(DBCompressionType.none())
    return options


def _open_ro(path: Path) -> Rdict:
    return Rdict(str(path), _options(), access_type=AccessType.read_only())


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    with tmp.open("wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def pack_rt(ts_us: int, seq: int, expires_us: int, op: str, raw: bytes | None) -> bytes:
    return RT_HEADER.pack(ts_us, seq, expires_us, 1 if op == PUT else 0) + (raw or b"")


def unpack_rt(key: int, blob: bytes) -> RtEntry:
    ts_us, seq, expires_us, op = RT_HEADER.unpack_from(blob)
    return RtEntry(key, ts_us, seq, PUT if op else DELETE, blob[RT_HEADER.size:] if op else None, expires_us)


@dataclass
class _Handle:
    """A read-only RocksDB view shared by reader threads; closed when stale and no request uses it."""

    key: int
    generation: Any
    db: Rdict
    lease_fd: int | None
    refs: int = 0
    stale: bool = False
    closed: bool = field(default=False)

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.db.close()
        if self.lease_fd is not None:
            fcntl.flock(self.lease_fd, fcntl.LOCK_UN)
            os.close(self.lease_fd)


def storage_key_list(keys: np.ndarray) -> list[bytes]:
    """`key_bytes` for a whole sorted key array at once (sign bit flipped, 8 bytes big-endian)."""
    blob = (keys.astype(np.int64).view(np.uint64) ^ np.uint64(SIGN)).astype(">u8").tobytes()
    return [blob[i:i + 8] for i in range(0, len(blob), 8)]


@dataclass(frozen=True)
class RocksPartTarget:
    """Where a build task writes its partition: one SST file in the version's staging folder.

    Why one SST per key-hash partition: a task holds its whole partition sorted by key, so it writes the
    file in one pass and no process ever merges partitions; the store ingests all of them at once."""

    staging: str

    def write(self, part: int, keys: np.ndarray, values: list[bytes]) -> list[str]:
        if not values:
            return []   # an SST file cannot be empty; the version simply has no file for this partition
        path = os.path.join(self.staging, f"part-{part:05d}.sst")
        writer = SstFileWriter(options=_options())
        writer.open(path)
        deque(map(writer.__setitem__, storage_key_list(keys), values), maxlen=0)
        writer.finish()
        return [path]


class _Retry(Exception):
    """The version went away between reading the pointer and opening it; read the pointer again."""


class RocksStore(VersionedStore):
    def __init__(self, path: str | os.PathLike, options: StoreOptions | None = None,
                 clock: Callable[[], float] = time.time):
        super().__init__(options, clock)
        self.root = Path(path).resolve()
        self.manifest_path = self.root / "MANIFEST.json"
        self._tlock = threading.RLock()
        self._depth = 0
        self._mutex_fd: int | None = None
        self._hlock = threading.Lock()
        self._handles: dict[int, _Handle] = {}
        self._cache: tuple[Any, dict[str, Any]] | None = None

    # ------------------------------------------------------------------ paths
    def describe(self) -> str:
        return str(self.root)

    def manifest_name(self) -> str:
        return str(self.manifest_path)

    def unavailable_errors(self) -> tuple[type[BaseException], ...]:
        return ()

    def _manifest_exists(self) -> bool:
        return self.manifest_path.is_file()

    def _create_layout(self) -> None:
        for sub in ("versions", "leases", "incremental", "realtime"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)

    def version_dir(self, version: int) -> Path:
        return self.root / "versions" / f"v{version:06d}"

    def _staging_dir(self, version: int) -> Path:
        return self.root / "versions" / f"v{version:06d}.sst"

    def _lease_path(self, version: int) -> Path:
        return self.root / "leases" / f"v{version:06d}.lock"

    # ------------------------------------------------------------------ manifest
    @contextlib.contextmanager
    def _mutex(self) -> Iterator[None]:
        with self._tlock:
            if self._depth == 0:
                fd = os.open(self.root / "manifest.lock", os.O_RDWR | os.O_CREAT, 0o644)
                fcntl.flock(fd, fcntl.LOCK_EX)
                self._mutex_fd = fd
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
                if self._depth == 0 and self._mutex_fd is not None:
                    fcntl.flock(self._mutex_fd, fcntl.LOCK_UN)
                    os.close(self._mutex_fd)
                    self._mutex_fd = None

    def _load(self) -> dict[str, Any]:
        try:
            text = self.manifest_path.read_text()
        except FileNotFoundError:
            return empty_manifest()
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise CorruptStore(f"{self.manifest_path}: not valid JSON ({exc})") from exc

    def _save(self, manifest: dict[str, Any], swapped_to: int | None = None) -> None:
        atomic_write(self.manifest_path, json.dumps(manifest, indent=1, sort_keys=True).encode())

    def _cached_manifest(self) -> dict[str, Any]:
        """The read path stats the manifest per request and re-parses only when it was replaced."""
        try:
            st = os.stat(self.manifest_path)
        except FileNotFoundError:
            return empty_manifest()
        signature = (st.st_ino, st.st_mtime_ns, st.st_size)
        cached = self._cache
        if cached is not None and cached[0] == signature:
            return cached[1]
        manifest = self._load()
        self._cache = (signature, manifest)
        self._retire_handles(manifest)
        return manifest

    def cleanup(self, holding_push_lock: bool = False) -> list[int]:
        """Close this process's views of versions that stopped being current first, so their leases do not
        hold back the removal (other processes' readers still do)."""
        self._cache = None
        self._cached_manifest()
        return super().cleanup(holding_push_lock)

    # ------------------------------------------------------------------ push lock
    @contextlib.contextmanager
    def _push_lock(self) -> Iterator[None]:
        path = self.root / "push.lock"
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = path.read_text().strip() or "unknown"
            os.close(fd)
            raise PushInProgress(f"{path}: another full push holds the push lock (pid {holder}); "
                                 "this push is refused, not queued") from None
        try:
            os.ftruncate(fd, 0)
            os.write(fd, str(os.getpid()).encode())
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def _pusher_alive(self) -> bool:
        fd = os.open(self.root / "push.lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        else:
            fcntl.flock(fd, fcntl.LOCK_UN)
            return False
        finally:
            os.close(fd)

    # ------------------------------------------------------------------ building
    def _storage_keys(self, version: int, keys: np.ndarray) -> list[bytes]:
        return storage_key_list(keys)

    def _part_target(self, version: int) -> RocksPartTarget:
        return RocksPartTarget(str(self._staging_dir(version)))

    def _ingest_parts(self, version: int, files: list[str]) -> None:
        """The tasks' SST files, one per key-hash partition, moved into the version in one ingest.

        Partitions overlap in key range (keys are spread by hash), so RocksDB stacks the files in L0 and the
        bottom level rather than one level; a key is still in exactly one file, and `_count` iterates to
        check it (disjoint files would let it read the counts from the table properties)."""
        staging = self._staging_dir(version)
        if files:
            db = Rdict(str(self.version_dir(version)), _options())
            try:
                ingest = IngestExternalFileOptions()
                ingest.set_move_files(True)
                db.ingest_external_file(files, ingest)
            finally:
                db.close()
        shutil.rmtree(staging, ignore_errors=True)

    def _prepare_version(self, version: int) -> None:
        """The version's empty RocksDB, its SST staging folder and its reader lease file (creating a
        database costs a few fsyncs, the same for any write path)."""
        self._staging_dir(version).mkdir(parents=True, exist_ok=False)
        self._lease_path(version).touch(exist_ok=True)
        Rdict(str(self.version_dir(version)), _options()).close()

    def _write_version(self, version: int, storage_keys: list[bytes], values: list[bytes]) -> None:
        """Sorted SST files, bulk-ingested (moved, not copied) into the version's RocksDB.

        The write loop is `map` over the writer's own setter: no Python bytecode per record. Files are
        large (SST_CHUNK keys) and never overlap, so the ingest places them in the bottom level and
        nothing is compacted afterwards."""
        staging, target = self._staging_dir(version), self.version_dir(version)
        files = []
        for start in range(0, len(values), SST_CHUNK):
            writer = SstFileWriter(options=_options())
            path = staging / f"{start // SST_CHUNK:06d}.sst"
            writer.open(str(path))
            stop = start + SST_CHUNK
            deque(map(writer.__setitem__, storage_keys[start:stop], values[start:stop]), maxlen=0)
            writer.finish()
            files.append(str(path))
            if start == 0:
                faults.fault_point(faults.WRITING)
        if not files:
            faults.fault_point(faults.WRITING)
        db = Rdict(str(target), _options())
        try:
            if files:
                ingest = IngestExternalFileOptions()
                ingest.set_move_files(True)
                db.ingest_external_file(files, ingest)
        finally:
            db.close()
        shutil.rmtree(staging, ignore_errors=True)

    def _count(self, version: int) -> int:
        """Keys in the version. Right after a build the answer is in RocksDB's own table properties
        (entries per SST file, counted by RocksDB as it wrote them): no deletes, nothing in memory and
        no two files overlapping means every entry is a distinct key. Anything else is iterated."""
        db = _open_ro(self.version_dir(version))
        try:
            files = sorted(db.live_files(), key=lambda f: f["start_key"])
            disjoint = all(a["end_key"] < b["start_key"] for a, b in zip(files, files[1:], strict=False))
            in_memory = (db.property_int_value("rocksdb.num-entries-active-mem-table") or 0) + (
                db.property_int_value("rocksdb.num-entries-imm-mem-tables") or 0)
            if disjoint and in_memory == 0 and not any(f["num_deletions"] for f in files):
                return sum(f["num_entries"] for f in files)
            return sum(1 for _ in db.keys())  # noqa: SIM118 - Rdict iteration
        finally:
            db.close()

    def _read_version(self, version: int, keys: list[int]) -> list[bytes | None]:
        db = _open_ro(self.version_dir(version))
        try:
            return db.get([key_bytes(k) for k in keys])
        finally:
            db.close()

    def _apply(self, version: int, items: Sequence[tuple[int, bytes | None]]) -> None:
        db = Rdict(str(self.version_dir(version)), _options())
        try:
            batch = WriteBatch(raw_mode=True)
            for key, value in items:
                if value is None:
                    batch.delete(key_bytes(key))
                else:
                    batch.put(key_bytes(key), value)
            db.write(batch)
            db.flush()
        finally:
            db.close()

    def _drop_data(self, version: int) -> bool:
        """Remove a version's files under an exclusive lease; False while any reader holds a shared one."""
        lease = self._lease_path(version)
        fd = os.open(lease, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return False
            shutil.rmtree(self._staging_dir(version), ignore_errors=True)
            shutil.rmtree(self.version_dir(version), ignore_errors=True)
            lease.unlink(missing_ok=True)
            return True
        finally:
            os.close(fd)

    def _drop_orphans(self, known: set[int]) -> list[int]:
        dropped = []
        for entry in (self.root / "versions").iterdir():
            name = entry.name.removesuffix(".sst")
            if not (name.startswith("v") and name[1:].isdigit()):
                continue
            version = int(name[1:])
            if version not in known and self._drop_data(version):
                dropped.append(version)
        for tmp in self.root.glob(".*.tmp"):
            tmp.unlink(missing_ok=True)
        return dropped

    # ------------------------------------------------------------------ incremental logs
    def _log_path(self, seq: int) -> Path:
        return self.root / "incremental" / f"{seq:012d}.bin"

    def _log_incremental(self, seq: int, items: list[tuple[int, bytes | None]]) -> None:
        atomic_write(self._log_path(seq), frame_items(items))

    def _read_incremental(self, seq: int) -> list[tuple[int, bytes | None]] | None:
        try:
            return unframe_items(self._log_path(seq).read_bytes())
        except FileNotFoundError:
            return None

    def _drop_incremental_logs(self, below_seq: int) -> None:
        for path in (self.root / "incremental").glob("*.bin"):
            if int(path.stem) < below_seq:
                path.unlink(missing_ok=True)

    # ------------------------------------------------------------------ real-time overlay
    @contextlib.contextmanager
    def _rt_writer(self) -> Iterator[Rdict]:
        with self._tlock:
            fd = os.open(self.root / "realtime.lock", os.O_RDWR | os.O_CREAT, 0o644)
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                db = Rdict(str(self.root / "realtime" / "db"), _options())
                try:
                    yield db
                    db.flush()
                finally:
                    db.close()
                atomic_write(self.root / "realtime" / "GEN", uuid.uuid4().hex.encode())
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
                os.close(fd)

    def _rt_put(self, key: int, ts_us: int, op: str, raw: bytes | None, expires_us: int) -> tuple[int, bool]:
        kb = key_bytes(key)
        with self._rt_writer() as db:
            seq = int.from_bytes(db.get(RT_SEQ_KEY) or b"\x00", "big") + 1
            db[RT_SEQ_KEY] = seq.to_bytes(8, "big")
            existing = db.get(kb)
            if existing is not None and unpack_rt(key, existing).ts_us > ts_us:
                return seq, False
            db[kb] = pack_rt(ts_us, seq, expires_us, op, raw)
            return seq, True

    def _rt_entries(self) -> Iterator[RtEntry]:
        path = self.root / "realtime" / "db"
        if not (path / "CURRENT").exists():
            return iter(())
        db = _open_ro(path)
        try:
            entries = [unpack_rt(key_from_bytes(k), v) for k, v in db.items() if k != RT_SEQ_KEY]
        finally:
            db.close()
        return iter(entries)

    def _rt_drop(self, entries: list[RtEntry]) -> None:
        with self._rt_writer() as db:
            for entry in entries:
                kb = key_bytes(entry.key)
                found = db.get(kb)
                if found is not None and unpack_rt(entry.key, found).order == entry.order:
                    del db[kb]

    # ------------------------------------------------------------------ reads
    def _acquire(self, key: int, generation: Any, opener: Callable[[], tuple[Rdict, int | None]]) -> _Handle:
        with self._hlock:
            handle = self._handles.get(key)
            if handle is not None and handle.generation == generation and not handle.stale:
                handle.refs += 1
                return handle
            db, lease_fd = opener()
            fresh = _Handle(key, generation, db, lease_fd, refs=1)
            if handle is not None:
                handle.stale = True
                if handle.refs == 0:
                    handle.close()
            self._handles[key] = fresh
            return fresh

    def _release(self, handle: _Handle) -> None:
        with self._hlock:
            handle.refs -= 1
            if handle.refs == 0 and handle.stale:
                handle.close()

    def _retire_handles(self, manifest: dict[str, Any]) -> None:
        """Versions that stopped being current: close their views once no request uses them."""
        with self._hlock:
            for key, handle in list(self._handles.items()):
                if key >= 0 and key != manifest["current"]:
                    handle.stale = True
                    del self._handles[key]
                    if handle.refs == 0:
                        handle.close()

    def _version_opener(self, version: int) -> Callable[[], tuple[Rdict, int | None]]:
        def open_version() -> tuple[Rdict, int | None]:
            fd = os.open(self._lease_path(version), os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                raise _Retry from None
            path = self.version_dir(version)
            if not (path / "CURRENT").exists():
                fcntl.flock(fd, fcntl.LOCK_UN)
                os.close(fd)
                raise _Retry
            try:
                return _open_ro(path), fd
            except Exception:
                fcntl.flock(fd, fcntl.LOCK_UN)
                os.close(fd)
                raise
        return open_version

    def _rt_view(self) -> _Handle | None:
        gen_path = self.root / "realtime" / "GEN"
        try:
            generation = gen_path.read_bytes()
        except FileNotFoundError:
            return None
        return self._acquire(-1, generation, lambda: (_open_ro(self.root / "realtime" / "db"), None))

    def _get_raw(self, keys: list[int], now_us: int) -> tuple[int | None, list[bytes | None]]:
        kbs = [key_bytes(k) for k in keys]
        for _ in range(20):
            manifest = self._cached_manifest()
            current = manifest["current"]
            if current is None:
                return None, [None] * len(keys)
            entry = manifest["versions"][str(current)]
            try:
                handle = self._acquire(current, entry.get("generation", 0), self._version_opener(current))
            except _Retry:
                self._cache = None
                time.sleep(0.001)
                continue
            rt = None
            try:
                values = handle.db.get(kbs)
                rt = self._rt_view()
                overlay = rt.db.get(kbs) if rt is not None else [None] * len(kbs)
            finally:
                self._release(handle)
                if rt is not None:
                    self._release(rt)
            start_us = to_us(entry["started_at"])
            for i, blob in enumerate(overlay):
                if blob is None:
                    continue
                rt_entry = unpack_rt(keys[i], blob)
                if rt_entry.ts_us >= start_us and rt_entry.expires_us > now_us:
                    values[i] = rt_entry.value
            return current, values
        raise StoreUnavailable(f"{self.root}: the current version kept moving away while opening it")

    def close(self) -> None:
        with self._hlock:
            for handle in self._handles.values():
                handle.stale = True
                if handle.refs == 0:
                    handle.close()
            self._handles.clear()
