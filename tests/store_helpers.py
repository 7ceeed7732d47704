"""Helpers shared by the store tests: hand-made values, push-input folders, and both backends.

Values carry a `tag` in model_version so a test can tell which push (or real-time write) a read came from
without computing expectations with the code under test.
"""

from __future__ import annotations

import uuid
from pathlib import Path

from push.push_input import write_push_input
from push.schemas import load_value_schema
from push.store import StoreOptions, VersionedStore
from push.stores import open_store

DS = "2026-01-05"


class ManualClock:
    """Time that moves only when a test says so (replay windows and TTLs without sleeping)."""

    def __init__(self, start: float = 1_000.0):
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def value(key: int, tag: str, sources: tuple[str, ...] = ("triangle",)) -> dict:
    """A one-candidate served value for `key`; `tag` says which push wrote it."""
    return {
        "generated_ds": DS,
        "model_version": tag,
        "candidates": [{
            "candidate_id": key + 1000, "rank": 1, "score": 0.5, "common_connections": 2,
            "sources": list(sources), "coworker_overlap_days": 0, "schoolmate_overlap_days": 0,
            "ppr_score": 0.25,
        }],
    }


def make_input(folder: Path, keys, tag: str, partitions: int = 3) -> Path:
    write_push_input(folder, [(k, value(k, tag)) for k in keys], load_value_schema(), partitions=partitions)
    return folder


def store_url(backend: str, tmp_path: Path, redis_url: str | None) -> str:
    if backend == "rocks":
        return str(tmp_path / "store")
    assert redis_url is not None
    return f"{redis_url}?ns=t{uuid.uuid4().hex[:12]}"


def open_test_store(url: str, clock=None, **options) -> VersionedStore:
    """Open (creating it if needed, as a pusher does) with `options`; a new store records their settings."""
    kwargs = {"clock": clock} if clock is not None else {}
    return open_store(url, StoreOptions(**options), create=True, **kwargs)


def tags(store: VersionedStore, keys) -> tuple[int | None, list[str | None]]:
    read = store.get(list(keys))
    return read.version, [None if v is None else v["model_version"] for v in read.values]


def version_data_present(store: VersionedStore, version: int) -> bool:
    """Whether any of a version's data is still stored (files for RocksDB, keys for Redis)."""
    if hasattr(store, "version_dir"):
        root = store.root  # type: ignore[attr-defined]
        return any(p.name.startswith(f"v{version:06d}") for p in (root / "versions").iterdir())
    pattern = f"{store.ns}:v{version}:*"  # type: ignore[attr-defined]
    return bool(list(store.r.scan_iter(match=pattern, count=1000)))  # type: ignore[attr-defined]


def error_line(stderr: str) -> dict[str, str]:
    """The CLI's failure line, `ClassName: message` (the last line of stderr), as {"error", "message"}."""
    name, _, message = stderr.strip().splitlines()[-1].partition(": ")
    return {"error": name, "message": message}
