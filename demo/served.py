"""The end of `make demo`: a few members of the last pushed day, read back through the serving store."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import fastavro

from mutuals.lake import Lake, list_files, open_input
from push.schemas import KEY_FIELD
from push.stores import open_store
from spark_jobs.push import default_store, push_folder


def read_back(store_url: str, keys: Sequence[int]) -> list[dict[str, Any]]:
    """`keys` read through the store, one dict per key as `mutuals store get` prints them; the store is
    opened as a reader (no recovery), so the demo never writes to it."""
    store = open_store(store_url, recover=False)
    try:
        read = store.get(list(keys))
        return [{"key": k, "version": read.version, "value": v} for k, v in zip(keys, read.values, strict=True)]
    finally:
        store.close()


def first_pushed_keys(lake_root: str, ds: str, count: int) -> list[int]:
    """The first `count` keys of day `ds`'s push input, in file order."""
    keys: list[int] = []
    for path in list_files(push_folder(Lake(lake_root), ds), ".avro"):
        with open_input(path) as fh:
            keys += [r[KEY_FIELD] for _, r in zip(range(count - len(keys)), fastavro.reader(fh), strict=False)]
        if len(keys) >= count:
            break
    return keys


def describe(row: dict[str, Any]) -> str:
    """One line per member: version, day, model, candidate count and the top three candidates."""
    value = row["value"] or {}
    top = ", ".join(
        f"{c['candidate_id']} (score {c['score']:.3f}, common {c['common_connections']}, {'+'.join(c['sources'])})"
        for c in value.get("candidates", [])[:3]
    )
    return (f"member {row['key']} @ version {row['version']} [{value.get('generated_ds')}, "
            f"{value.get('model_version')}, {len(value.get('candidates', []))} candidates]: {top}")


def print_served_sample(lake_root: str, ds: str, count: int = 3) -> list[dict[str, Any]]:
    """Read a few members of day `ds` back through the lake's store and print them; returns the rows."""
    store = default_store(lake_root)
    rows = read_back(store, first_pushed_keys(lake_root, ds, count))
    print(f"\nserved values read back through the store ({store}); full JSON: mutuals store get --store STORE KEY")
    for row in rows:
        print(describe(row))
    return rows
