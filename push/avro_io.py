"""Avro on the push side: the push-input container files and the schemaless stored values.

Push input (a contract shared with other tools, as in Venice's push job): a folder of Avro container
files (`*.avro`) whose records have two fields, `key` (long) and `value` (the value record, or null for
an incremental delete). Stored values are `schema id (4 bytes, big-endian) + schemaless Avro`, so a reader
decodes each value with the schema it was written with and the schema can evolve between pushes.
The layout's writer is `push.push_input`; this module reads it, from any filesystem the lake supports.
"""

from __future__ import annotations

import bisect
import io
import math
import os
import posixpath
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import fastavro

from mutuals.lake import is_folder, list_files, open_input
from push.errors import BadAvroFile, BadRecord, StoreError
from push.schemas import (
    ALLOWED_SOURCES,
    KEY_FIELD,
    VALUE_FIELD,
    Schema,
    canonical,
    parsed,
    split_push_input,
)

SCHEMA_ID = struct.Struct(">I")
KEY = struct.Struct(">Q")
SIGN = 1 << 63


def key_bytes(key: int) -> bytes:
    """Stored key: the long with its sign bit flipped, 8 bytes big-endian, so byte order is numeric order
    (SST files must be written in the comparator's order)."""
    return KEY.pack(key + SIGN)


def key_from_bytes(raw: bytes) -> int:
    return KEY.unpack(raw)[0] - SIGN


# ------------------------------------------------------------------ stored values
def encode_value(schema_id: int, parsed_schema: Any, value: dict) -> bytes:
    buf = io.BytesIO()
    buf.write(SCHEMA_ID.pack(schema_id))
    fastavro.schemaless_writer(buf, parsed_schema, value)
    return buf.getvalue()


def encode_body(parsed_schema: Any, value: dict) -> bytes:
    """Schemaless Avro of one value, without the schema id."""
    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, parsed_schema, value)
    return buf.getvalue()


def decode_body(body: bytes, parsed_schema: Any) -> dict:
    """One schemaless Avro value (no schema id)."""
    return fastavro.schemaless_reader(io.BytesIO(body), parsed_schema, None)


def decode_value(raw: bytes, parsed_for: Callable[[int], Any]) -> dict:
    """`parsed_for(schema_id)` returns the parsed writer schema (callers cache it: parsing is costly)."""
    buf = io.BytesIO(raw)
    buf.seek(SCHEMA_ID.size)   # no copy of the value to drop the id
    return fastavro.schemaless_reader(buf, parsed_for(SCHEMA_ID.unpack_from(raw)[0]), None)


def schema_id_of(raw: bytes) -> int:
    return SCHEMA_ID.unpack_from(raw)[0]


# ------------------------------------------------------------------ push input: reading
@dataclass(frozen=True)
class PushInput:
    folder: str
    files: list[str]
    value_schema: Schema
    nullable_value: bool


def open_push_input(folder: str | os.PathLike) -> PushInput:
    """List the container files and check they all carry the same push-input schema (headers only)."""
    root = str(folder)
    if not is_folder(root):
        raise BadAvroFile(f"{root}: push input folder does not exist")
    files = list_files(root, ".avro")
    if not files:
        raise BadAvroFile(f"{root}: no *.avro files in the push input folder")
    value_schema: Schema | None = None
    nullable = False
    for path in files:
        try:
            with open_input(path) as fh:
                writer_schema = fastavro.reader(fh).writer_schema
        except Exception as exc:  # fastavro raises ValueError/EOFError/... on a bad header
            raise BadAvroFile(f"{path}: not a readable Avro container file ({type(exc).__name__}: {exc})") from exc
        schema, is_nullable = split_push_input(writer_schema, str(path))
        if value_schema is None:
            value_schema, nullable = schema, is_nullable
        elif canonical(schema) != canonical(value_schema) or is_nullable != nullable:
            raise BadAvroFile(f"{path}: value schema differs from {posixpath.basename(files[0])}'s; "
                              "one push has one schema")
    assert value_schema is not None
    return PushInput(root, files, value_schema, nullable)


def value_problem(value: dict) -> str | None:
    """The value contract beyond the schema: known sources, finite scores, ranks 1..n in order.

    Returns what is wrong (None when nothing is): the push reads every record through here, so the
    common case does no string formatting at all."""
    for i, cand in enumerate(value.get("candidates") or ()):
        sources = cand.get("sources")
        if sources and not ALLOWED_SOURCES.issuperset(sources):
            unknown = sorted(set(sources) - ALLOWED_SOURCES)
            return (f"field candidates[{i}].sources: expected values from {sorted(ALLOWED_SOURCES)}, "
                    f"found {unknown}")
        score = cand.get("score")
        if isinstance(score, float) and not math.isfinite(score):
            return f"field candidates[{i}].score: expected a finite number, found {score}"
        rank = cand.get("rank")
        if rank is not None and rank != i + 1:
            return f"field candidates[{i}].rank: expected {i + 1}, found {rank}"
    return None


def check_value(value: dict, where: str) -> None:
    problem = value_problem(value)
    if problem is not None:
        raise BadRecord(f"{where}: {problem}")


# ------------------------------------------------------------------ push input: raw reading (the push path)
@dataclass
class RawRecords:
    """Every record of a push input in file order, values kept as the container's own Avro bytes.

    Why raw: the container's value schema has the same Parsing Canonical Form as the schema id the
    push registers (that is how the id is chosen), so the value bytes inside the container are already
    the stored encoding; re-encoding every value would only cost time. `error` is the first failure,
    with the records before it kept, so the caller can report an earlier duplicate key first, as a
    streaming reader would.
    """

    files: list[str]
    keys: list[int] = field(default_factory=list)
    values: list[bytes | None] = field(default_factory=list)
    file_starts: list[int] = field(default_factory=list)
    error: StoreError | None = None

    def where(self, position: int) -> str:
        """`FILE: record I` of the record at `position` (in file order)."""
        file_no = bisect.bisect_right(self.file_starts, position) - 1
        return f"{self.files[file_no]}: record {position - self.file_starts[file_no]}"


def zigzag_size(value: int) -> int:
    """Bytes of an Avro long (zigzag varint)."""
    z = (value << 1) ^ (value >> 63)
    return (z.bit_length() + 6) // 7 or 1


def read_raw_records(push_input: PushInput, allow_deletes: bool) -> RawRecords:
    """Decode each record once (the checks need the values), and keep each value's bytes as written.

    A record is `key` (long) then `value`; for a nullable value a one-byte union index comes first.
    Record boundaries come from the decoder's position in the block, so nothing is re-encoded.
    """
    out = RawRecords(list(push_input.files))
    keys, values = out.keys, out.values
    read = fastavro.schemaless_reader
    value_schema = parsed(push_input.value_schema)
    union_index = 1 if push_input.nullable_value else 0
    for path in push_input.files:
        out.file_starts.append(len(keys))
        index = -1
        try:
            with open_input(path) as fh:
                blocks = fastavro.block_reader(fh)
                schema = parsed(blocks.writer_schema)
                # Bytes after the value are another field's: then the value must be re-encoded.
                as_written = [f["name"] for f in blocks.writer_schema["fields"]] == [KEY_FIELD, VALUE_FIELD]
                for block in blocks:
                    buf = block.bytes_
                    buf.seek(0)
                    data = buf.getvalue()
                    for _ in range(block.num_records):
                        index += 1
                        start = buf.tell()
                        record = read(buf, schema, None)
                        key, value = record[KEY_FIELD], record[VALUE_FIELD]
                        if value is None:
                            if not allow_deletes:
                                raise BadRecord(f"{path}: record {index}: field {VALUE_FIELD}: expected a value "
                                                "(a full push cannot delete), found null")
                            keys.append(key)
                            values.append(None)
                            continue
                        problem = value_problem(value)
                        if problem is not None:
                            raise BadRecord(f"{path}: record {index}: {problem}")
                        keys.append(key)
                        if as_written:
                            values.append(data[start + zigzag_size(key) + union_index:buf.tell()])
                        else:
                            values.append(encode_body(value_schema, value))
        except (BadRecord, BadAvroFile) as exc:
            out.error = exc
            return out
        except Exception as exc:  # noqa: BLE001 - fastavro raises many types on a corrupt block
            out.error = BadAvroFile(f"{path}: unreadable at record {index + 1} ({type(exc).__name__}: {exc})")
            out.error.__cause__ = exc
            return out
    return out
