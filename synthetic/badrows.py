"""Bad rows of every kind the ingest must quarantine, one defect per row, labelled reason:field.

Why one defect per row, named like the ingest's quarantine reasons (`bad_type`, `missing_field`,
`unknown_enum`, `out_of_window`, `self_loop`, `invalid_range`): a test can then check that ingest
quarantined exactly what was injected, per table, reason and field, with no ambiguity about which check
fires first. A bad row is a copy of a good row of the same file with one field broken, so everything else
in it stays realistic.

Tokens: a row is a dict field -> token. A CSV token is the field text; a JSON token is a JSON literal.
`None` means the key is absent (JSON) or the field is empty (CSV).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from synthetic.timefmt import iso_timestamps

DAY = 86_400
Tokens = dict[str, str | None]


@dataclass(frozen=True)
class BadKind:
    reason: str
    field: str
    corrupt: Callable[[Tokens, str, int, np.random.Generator], Tokens]  # (tokens, fmt, day_start, rng)

    @property
    def label(self) -> str:
        return f"{self.reason}:{self.field}"


def text(value: str, fmt: str) -> str:
    """A string value as a token of the format (a JSON string literal, or bare CSV text)."""
    return json.dumps(value) if fmt == "jsonl" else value


def _set(field: str, value: str) -> Callable:
    def corrupt(tokens: Tokens, fmt: str, day_start: int, rng: np.random.Generator) -> Tokens:
        return {**tokens, field: text(value, fmt)}
    return corrupt


def _absent(field: str) -> Callable:
    def corrupt(tokens: Tokens, fmt: str, day_start: int, rng: np.random.Generator) -> Tokens:
        return {**tokens, field: None}
    return corrupt


def _null(field: str) -> Callable:
    def corrupt(tokens: Tokens, fmt: str, day_start: int, rng: np.random.Generator) -> Tokens:
        return {**tokens, field: "null" if fmt == "jsonl" else None}
    return corrupt


def _self_loop(tokens: Tokens, fmt: str, day_start: int, rng: np.random.Generator) -> Tokens:
    return {**tokens, "dst": tokens["src"]}


def _timestamp_at(field: str, earliest: int, latest: int) -> Callable:
    """A well-formed timestamp between day_start + earliest and day_start + latest seconds."""
    def corrupt(tokens: Tokens, fmt: str, day_start: int, rng: np.random.Generator) -> Tokens:
        moment = day_start + int(rng.integers(earliest, latest))
        return {**tokens, field: text(str(iso_timestamps(np.array([moment]))[0]), fmt)}
    return corrupt


def _end_before_start(tokens: Tokens, fmt: str, day_start: int, rng: np.random.Generator) -> Tokens:
    start = np.datetime64(json.loads(tokens["start_date"]) if fmt == "jsonl" else tokens["start_date"])
    return {**tokens, "end_date": text(str(start - np.timedelta64(int(rng.integers(1, 400)), "D")), fmt)}


UNPARSEABLE_LONG, UNPARSEABLE_DATE, UNPARSEABLE_TS = "abc", "2026-13-45", "2026-13-45T25:61:00Z"
_OLD, _FUTURE = (-5 * DAY, -4 * DAY), (DAY + 3600, 2 * DAY)


def _career_kinds(org: str) -> tuple[BadKind, ...]:
    return (
        BadKind("bad_type", org, _set(org, UNPARSEABLE_LONG)),
        BadKind("missing_field", "member_id", _absent("member_id")),
        BadKind("missing_field", "start_date", _absent("start_date")),
        BadKind("bad_type", "start_date", _set("start_date", UNPARSEABLE_DATE)),
        BadKind("invalid_range", "end_date", _end_before_start),
    )


BAD_KINDS: dict[str, tuple[BadKind, ...]] = {
    "members": (
        BadKind("bad_type", "member_id", _set("member_id", UNPARSEABLE_LONG)),
        BadKind("missing_field", "member_id", _absent("member_id")),
        BadKind("bad_type", "joined_on", _set("joined_on", UNPARSEABLE_DATE)),
    ),
    "connections": (
        BadKind("bad_type", "src", _set("src", UNPARSEABLE_LONG)),
        BadKind("missing_field", "dst", _absent("dst")),
        BadKind("self_loop", "dst", _self_loop),
        BadKind("out_of_window", "connected_at", _timestamp_at("connected_at", *_OLD)),
        BadKind("bad_type", "connected_at", _set("connected_at", UNPARSEABLE_TS)),
    ),
    "positions": _career_kinds("company_id"),
    "educations": _career_kinds("school_id"),
    "events": (
        BadKind("bad_type", "member_id", _set("member_id", UNPARSEABLE_LONG)),
        BadKind("missing_field", "event_id", _null("event_id")),
        BadKind("missing_field", "candidate_id", _absent("candidate_id")),
        BadKind("unknown_enum", "event_type", _set("event_type", "purchase")),
        BadKind("bad_type", "ts", _set("ts", UNPARSEABLE_TS)),
        BadKind("out_of_window", "ts", _timestamp_at("ts", *_OLD)),
        BadKind("out_of_window", "ts", _timestamp_at("ts", *_FUTURE)),
    ),
    "experiment_assignments": (
        BadKind("bad_type", "member_id", _set("member_id", UNPARSEABLE_LONG)),
        BadKind("missing_field", "member_id", _null("member_id")),
        BadKind("missing_field", "variant", _absent("variant")),
        BadKind("out_of_window", "assigned_at", _timestamp_at("assigned_at", *_FUTURE)),
    ),
}
