"""Value schemas: the checked-in .avsc, the push-input (key, value) layout, and schema evolution rules.

Why a compatibility check of our own: values are stored schemaless with a schema id, so a reader decodes
old values with the schema they were written with. A new push may only change the schema in ways that
keep both directions readable ("full" compatibility, as Venice defaults to): adding a field with a
default is fine; removing a field without a default, or changing a type beyond Avro's promotions, is
refused before anything is built.
"""

from __future__ import annotations

import copy
import json
from functools import lru_cache
from pathlib import Path
from typing import Any

import fastavro
from fastavro.schema import expand_schema, to_parsing_canonical_form

from push.errors import BadAvroFile, IncompatibleSchema

SCHEMA_DIR = Path(__file__).resolve().parent / "schemas"
VALUE_SCHEMA_PATH = SCHEMA_DIR / "recommendation.avsc"
KEY_FIELD, VALUE_FIELD = "key", "value"
ALLOWED_SOURCES = frozenset({"triangle", "coworker", "schoolmate", "ppr"})

Schema = dict[str, Any]

_PRIMITIVES = {"null", "boolean", "int", "long", "float", "double", "bytes", "string"}
# Avro's schema-resolution promotions: writer type -> reader types that can read it.
_PROMOTIONS = {
    "int": {"int", "long", "float", "double"},
    "long": {"long", "float", "double"},
    "float": {"float", "double"},
    "string": {"string", "bytes"},
    "bytes": {"bytes", "string"},
}


def load_value_schema(path: Path = VALUE_SCHEMA_PATH) -> Schema:
    """The checked-in value schema, as a plain JSON dict."""
    return json.loads(Path(path).read_text())


def push_input_schema(value_schema: Schema, nullable_value: bool = False) -> Schema:
    """The push-input record: `key` (long) and `value` (the value record; nullable for incremental deletes)."""
    value: Any = ["null", value_schema] if nullable_value else value_schema
    return {
        "type": "record", "name": "KeyValue", "namespace": "mutuals.push.input",
        "fields": [{"name": KEY_FIELD, "type": "long"}, {"name": VALUE_FIELD, "type": value}],
    }


def canonical(schema: Schema) -> str:
    """Parsing Canonical Form: equal strings mean the same binary encoding."""
    return to_parsing_canonical_form(copy.deepcopy(schema))


@lru_cache(maxsize=64)
def _parsed(canonical_json: str) -> Any:
    return fastavro.parse_schema(json.loads(canonical_json))


def parsed(schema: Schema) -> Any:
    """fastavro's parsed form, cached by canonical form (parsing costs far more than one record)."""
    return _parsed(json.dumps(expand_schema(copy.deepcopy(schema)), sort_keys=True))


def split_push_input(writer_schema: Schema, source: str) -> tuple[Schema, bool]:
    """From a container file's writer schema, the value record schema and whether the value is nullable.

    The layout is a contract shared with other tools, so anything else is refused naming the file.
    """
    schema = expand_schema(copy.deepcopy(writer_schema))
    fields = {f["name"]: f["type"] for f in schema.get("fields", [])} if isinstance(schema, dict) else {}
    key_type = fields.get(KEY_FIELD)
    if _type_name(key_type) != "long":
        raise BadAvroFile(f"{source}: push input needs field `{KEY_FIELD}` of type long; "
                          f"found fields {sorted(fields)} with key type {key_type!r}")
    value = fields.get(VALUE_FIELD)
    if isinstance(value, list):
        branches = [b for b in value if _type_name(b) != "null"]
        if len(branches) != 1 or _type_name(branches[0]) != "record":
            raise BadAvroFile(f"{source}: field `{VALUE_FIELD}` must be a record or [null, record]; found {value!r}")
        return branches[0], True
    if _type_name(value) != "record":
        raise BadAvroFile(f"{source}: push input needs field `{VALUE_FIELD}` of type record; found {value!r}")
    return value, False


def _type_name(schema: Any) -> str:
    if isinstance(schema, str):
        return schema
    if isinstance(schema, list):
        return "union"
    if isinstance(schema, dict):
        return str(schema.get("type"))
    return repr(schema)


def _short_name(schema: dict) -> str:
    return str(schema.get("name", "")).rsplit(".", 1)[-1]


def read_problems(reader: Any, writer: Any, path: str = "") -> list[str]:
    """Why data written with `writer` cannot be read with `reader` (empty list: it can)."""
    here = path or "<root>"
    r_name, w_name = _type_name(reader), _type_name(writer)
    if w_name == "union":
        return [p for branch in writer for p in read_problems(reader, branch, path)]
    if r_name == "union":
        if any(not read_problems(branch, writer, path) for branch in reader):
            return []
        return [f"{here}: no branch of reader union {reader!r} reads writer type {w_name}"]
    if w_name in _PRIMITIVES or r_name in _PRIMITIVES:
        if r_name == w_name or r_name in _PROMOTIONS.get(w_name, set()):
            return []
        return [f"{here}: expected a type readable from {w_name}, found {r_name}"]
    if r_name != w_name:
        return [f"{here}: expected {w_name}, found {r_name}"]
    if r_name == "record":
        if _short_name(reader) != _short_name(writer):
            return [f"{here}: record name changed from {_short_name(writer)} to {_short_name(reader)}"]
        writer_fields = {f["name"]: f for f in writer["fields"]}
        problems: list[str] = []
        for field in reader["fields"]:
            sub = f"{path}.{field['name']}" if path else field["name"]
            if field["name"] in writer_fields:
                problems += read_problems(field["type"], writer_fields[field["name"]]["type"], sub)
            elif "default" not in field:
                problems.append(f"{sub}: field present on one side only and has no default")
        return problems
    if r_name == "array":
        return read_problems(reader["items"], writer["items"], f"{path}[]")
    if r_name == "map":
        return read_problems(reader["values"], writer["values"], f"{path}{{}}")
    if r_name == "enum":
        missing = sorted(set(writer["symbols"]) - set(reader["symbols"]))
        if missing and "default" not in reader:
            return [f"{here}: enum symbols {missing} missing on the other side"]
        return []
    if r_name == "fixed" and reader.get("size") != writer.get("size"):
        return [f"{here}: fixed size {writer.get('size')} vs {reader.get('size')}"]
    return []


def check_compatible(new: Schema, current: Schema, source: str) -> None:
    """Full compatibility: the new schema reads current data and the current schema reads new data."""
    new_x, cur_x = expand_schema(copy.deepcopy(new)), expand_schema(copy.deepcopy(current))
    problems = [f"new schema reading current data: {p}" for p in read_problems(new_x, cur_x)]
    problems += [f"current schema reading new data: {p}" for p in read_problems(cur_x, new_x)]
    if problems:
        raise IncompatibleSchema(f"{source}: value schema is not compatible with the current version's; "
                                 + "; ".join(problems))
