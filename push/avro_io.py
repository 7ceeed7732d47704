"""Avro on the push side: the push-input container files and the schemaless stored values.

Push input (a contract shared with other tools, as in Venice's push job): a folder of Avro container
files (`*.avro`) whose records have two fields, `key` (long) and `value` (the value record, or null for
an incremental delete). Stored values are `schema id (4 bytes, big-endian) + schemaless Avro`, so a reader
decodes each value with the schema it was written with and the schema can evolve between pushes.
"""

from __future__ import annotations

import io
import math
import os
import struct
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import fastavro

from push.errors import BadAvroFile, BadRecord
from push.schemas import (
    ALLOWED_SOURCES,
    KEY_FIELD,
    VALUE_FIELD,
    Schema,
    canonical,
    parsed,
    push_input_schema,
    split_push_input,
)

SCHEMA_ID = struct.Struct(">I")
KEY = struct.Struct(">Q")
SIGN = 1 << 63
MASK64 = (1 << 64) - 1


def key_bytes(key: int) -> bytes:
    """Stored key: the long with its sign bit flipped, 8 bytes big-endian, so byte order is numeric order
    (SST files must be written in the comparator's order)."""
    return KEY.pack(key + SIGN)


def key_from_bytes(raw: bytes) -> int:
    return KEY.unpack(raw)[0] - SIGN


def partition_of(key: int, partitions: int) -> int:
    """Stable key hash (splitmix64 finaliser) for plain-Python writers; Spark writers use xxhash64."""
    z = (key + 0x9E3779B97F4A7C15) & MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
    return (z ^ (z >> 31)) % partitions


# ------------------------------------------------------------------ stored values
def encode_value(schema_id: int, parsed_schema: Any, value: dict) -> bytes:
    buf = io.BytesIO()
    buf.write(SCHEMA_ID.pack(schema_id))
    fastavro.schemaless_writer(buf, parsed_schema, value)
    return buf.getvalue()


def decode_value(raw: bytes, parsed_for: Callable[[int], Any]) -> dict:
    """`parsed_for(schema_id)` returns the parsed writer schema (callers cache it: parsing is costly)."""
    (schema_id,) = SCHEMA_ID.unpack_from(raw)
    return fastavro.schemaless_reader(io.BytesIO(raw[SCHEMA_ID.size:]), parsed_for(schema_id), None)


def schema_id_of(raw: bytes) -> int:
    return SCHEMA_ID.unpack_from(raw)[0]


# ------------------------------------------------------------------ push input: reading
@dataclass(frozen=True)
class PushInput:
    files: list[Path]
    value_schema: Schema
    nullable_value: bool


def open_push_input(folder: str | os.PathLike) -> PushInput:
    """List the container files and check they all carry the same push-input schema (headers only)."""
    root = Path(folder)
    if not root.is_dir():
        raise BadAvroFile(f"{root}: push input folder does not exist")
    files = sorted(p for p in root.iterdir() if p.suffix == ".avro" and p.is_file())
    if not files:
        raise BadAvroFile(f"{root}: no *.avro files in the push input folder")
    value_schema: Schema | None = None
    nullable = False
    for path in files:
        try:
            with path.open("rb") as fh:
                writer_schema = fastavro.reader(fh).writer_schema
        except Exception as exc:  # fastavro raises ValueError/EOFError/... on a bad header
            raise BadAvroFile(f"{path}: not a readable Avro container file ({type(exc).__name__}: {exc})") from exc
        schema, is_nullable = split_push_input(writer_schema, str(path))
        if value_schema is None:
            value_schema, nullable = schema, is_nullable
        elif canonical(schema) != canonical(value_schema) or is_nullable != nullable:
            raise BadAvroFile(f"{path}: value schema differs from {files[0].name}'s; one push has one schema")
    assert value_schema is not None
    return PushInput(files, value_schema, nullable)


def iter_records(push_input: PushInput, allow_deletes: bool) -> Iterator[tuple[str, int, dict | None]]:
    """Every (key, value) in file order; a corrupt block or a bad value names file, record and field."""
    for path in push_input.files:
        index = -1
        try:
            with path.open("rb") as fh:
                for index, record in enumerate(fastavro.reader(fh)):
                    value = record[VALUE_FIELD]
                    if value is None and not allow_deletes:
                        raise BadRecord(f"{path}: record {index}: field {VALUE_FIELD}: expected a value "
                                        "(a full push cannot delete), found null")
                    where = f"{path}: record {index}"
                    if value is not None:
                        check_value(value, where)
                    yield where, record[KEY_FIELD], value
        except (BadRecord, BadAvroFile):
            raise
        except Exception as exc:
            raise BadAvroFile(f"{path}: unreadable at record {index + 1} ({type(exc).__name__}: {exc})") from exc


def check_value(value: dict, where: str) -> None:
    """The value contract beyond the schema: known sources, finite scores, ranks 1..n in order."""
    for i, cand in enumerate(value.get("candidates") or []):
        unknown = sorted(set(cand.get("sources") or []) - ALLOWED_SOURCES)
        if unknown:
            raise BadRecord(f"{where}: field candidates[{i}].sources: expected values from "
                            f"{sorted(ALLOWED_SOURCES)}, found {unknown}")
        score = cand.get("score")
        if isinstance(score, float) and not math.isfinite(score):
            raise BadRecord(f"{where}: field candidates[{i}].score: expected a finite number, found {score}")
        rank = cand.get("rank")
        if rank is not None and rank != i + 1:
            raise BadRecord(f"{where}: field candidates[{i}].rank: expected {i + 1}, found {rank}")


# ------------------------------------------------------------------ push input: writing
def write_push_input(
    folder: str | os.PathLike,
    records: Iterable[tuple[int, dict | None]],
    value_schema: Schema,
    partitions: int = 4,
    codec: str = "null",
    nullable_value: bool = False,
) -> list[Path]:
    """Write (key, value) pairs as `part-XXXXX.avro` files partitioned by key hash, keys sorted per file.

    Every partition gets a file, even an empty one, so the file set depends only on `partitions`.
    """
    root = Path(folder)
    root.mkdir(parents=True, exist_ok=True)
    buckets: list[list[tuple[int, dict | None]]] = [[] for _ in range(partitions)]
    for key, value in records:
        buckets[partition_of(key, partitions)].append((key, value))
    schema = parsed(push_input_schema(value_schema, nullable_value))
    paths = []
    for part, rows in enumerate(buckets):
        path = root / f"part-{part:05d}.avro"
        rows.sort(key=lambda kv: kv[0])
        with path.open("wb") as fh:
            fastavro.writer(fh, schema, ({KEY_FIELD: k, VALUE_FIELD: v} for k, v in rows), codec=codec)
        paths.append(path)
    return paths
